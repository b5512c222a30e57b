/**
 * Test certificates made at test time: keys by Node's crypto (fast, native), X.509 and
 * PKCS#12 built with node-forge's ASN.1 tools. The PKCS#12 builder also writes what
 * forge's own writer cannot: legacy RC2-40 encrypted certificates (which OpenSSL 3
 * refuses), RC2-128 (which forge cannot read either), EC keys, files without key or cert.
 */
import * as crypto from 'node:crypto';
import forge from 'node-forge';

const { asn1, pki } = forge;

export interface Issued {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export interface IssueOptions {
  commonName: string;
  /** Signs it; self-signed when absent. */
  issuer?: Issued;
  /** Default now − 1 day. */
  notBefore?: Date;
  /** Default now + 365 days. */
  notAfter?: Date;
  isCa?: boolean;
  /** DNS names / IPs for a server certificate (also sets serverAuth). */
  serverNames?: string[];
  keyType?: 'rsa' | 'ec';
  organisation?: string;
}

const DAY_MS = 86_400_000;
let serial = 1;

function derBytes(node: forge.asn1.Asn1): string {
  return asn1.toDer(node).getBytes();
}

function pemOf(type: string, der: Buffer): string {
  return `-----BEGIN ${type}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${type}-----\n`;
}

/** A certificate (self-signed or signed by `issuer`) with a fresh key. */
export function issue(options: IssueOptions): Issued {
  const keys =
    options.keyType === 'ec'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // forge builds the TBSCertificate around an RSA key; for EC the subjectPublicKeyInfo is swapped in below.
  const placeholder = options.keyType === 'ec' ? crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey : keys.publicKey;
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(placeholder.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = (0x10000 + serial++).toString(16).padStart(6, '0');
  const now = Date.now();
  cert.validity.notBefore = options.notBefore ?? new Date(now - DAY_MS);
  cert.validity.notAfter = options.notAfter ?? new Date(now + 365 * DAY_MS);
  const subject = [
    { name: 'countryName', value: 'SE' },
    { name: 'organizationName', value: options.organisation ?? 'Test' },
    { name: 'commonName', value: options.commonName },
  ];
  cert.setSubject(subject);
  const issuerCert = options.issuer ? pki.certificateFromPem(options.issuer.certPem) : undefined;
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : subject);
  const extensions: object[] = [{ name: 'basicConstraints', cA: options.isCa === true, critical: true }];
  if (options.isCa) extensions.push({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
  else {
    extensions.push({ name: 'keyUsage', digitalSignature: true, keyEncipherment: true });
    extensions.push({ name: 'extKeyUsage', serverAuth: options.serverNames !== undefined, clientAuth: options.serverNames === undefined });
  }
  if (options.serverNames) {
    extensions.push({
      name: 'subjectAltName',
      altNames: options.serverNames.map((n) => (/^[\d.]+$/.test(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    });
  }
  cert.setExtensions(extensions);
  cert.signatureOid = pki.oids.sha256WithRSAEncryption;
  cert.siginfo.algorithmOid = pki.oids.sha256WithRSAEncryption;

  // getTBSCertificate is public in forge but missing from its type definitions.
  const tbs = (pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  if (options.keyType === 'ec') {
    // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    const spkiDer = keys.publicKey.export({ type: 'spki', format: 'der' });
    (tbs.value as forge.asn1.Asn1[])[6] = asn1.fromDer(spkiDer.toString('binary'));
  }
  const signerKey = options.issuer?.keyPem ?? keyPem;
  const signature = crypto.sign('sha256', Buffer.from(derBytes(tbs), 'binary'), signerKey);
  const certAsn1 = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(pki.oids.sha256WithRSAEncryption).getBytes()),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${signature.toString('binary')}`),
  ]);
  return { certPem: pemOf('CERTIFICATE', Buffer.from(derBytes(certAsn1), 'binary')), keyPem };
}

/**
 * How the certificate bags are encrypted: `none` and `aes256`/`3des` key encryption are
 * what OpenSSL 3 and forge write; `rc2-40` is the legacy default OpenSSL 3 refuses;
 * `rc2-128` neither OpenSSL 3 nor forge read.
 */
export type PfxFormat = 'modern' | '3des' | 'legacy-rc2-40' | 'rc2-128';

export interface PfxOptions {
  /** PKCS#8 PEM; absent: a file without a key. */
  keyPem?: string;
  /** The client certificate and any chain, in the order to write them. */
  certs: string[];
  passphrase: string;
  format?: PfxFormat;
}

const OID_DATA = pki.oids.data;
const OID_ENCRYPTED_DATA = pki.oids.encryptedData;
const OID_RC2_40 = '1.2.840.113549.1.12.1.6';
const OID_RC2_128 = '1.2.840.113549.1.12.1.5';
const ITERATIONS = 2048;

function seq(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
}
function oid(id: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
}
function octets(bytes: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
}
function int(n: number): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(n).getBytes());
}
function explicit0(inner: forge.asn1.Asn1): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
}
function dataContentInfo(safeContents: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(OID_DATA), explicit0(octets(derBytes(safeContents)))]);
}

/** EncryptedData ContentInfo of SafeContents, RC2-CBC with the PKCS#12 key derivation. */
function rc2ContentInfo(safeContents: forge.asn1.Asn1, passphrase: string, bits: 40 | 128): forge.asn1.Asn1 {
  const salt = forge.random.getBytesSync(8);
  const key = forge.pkcs12.generateKey(passphrase, forge.util.createBuffer(salt), 1, ITERATIONS, bits / 8);
  const iv = forge.pkcs12.generateKey(passphrase, forge.util.createBuffer(salt), 2, ITERATIONS, 8);
  const cipher = forge.rc2.createEncryptionCipher(key, bits);
  cipher.start(iv);
  cipher.update(forge.util.createBuffer(derBytes(safeContents)));
  cipher.finish();
  const algorithm = seq([oid(bits === 40 ? OID_RC2_40 : OID_RC2_128), seq([octets(salt), int(ITERATIONS)])]);
  const encryptedContent = asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, cipher.output.getBytes());
  return seq([oid(OID_ENCRYPTED_DATA), explicit0(seq([int(0), seq([oid(OID_DATA), algorithm, encryptedContent])]))]);
}

/** A .pfx (PKCS#12) file. */
export function makePfx(options: PfxOptions): Buffer {
  const format = options.format ?? 'modern';
  const localKeyId = forge.random.getBytesSync(20);
  const attributes = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
    seq([oid(pki.oids.localKeyId), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [octets(localKeyId)])]),
  ]);
  const contents: forge.asn1.Asn1[] = [];
  if (options.certs.length > 0) {
    const certBags = options.certs.map((pem, i) => {
      const der = derBytes(asn1.fromDer(forge.pem.decode(pem)[0].body));
      const bag = seq([oid(pki.oids.x509Certificate), explicit0(octets(der))]);
      return seq([oid(pki.oids.certBag), explicit0(bag), ...(i === 0 ? [attributes] : [])]);
    });
    const certContents = seq(certBags);
    contents.push(
      format === 'legacy-rc2-40'
        ? rc2ContentInfo(certContents, options.passphrase, 40)
        : format === 'rc2-128'
          ? rc2ContentInfo(certContents, options.passphrase, 128)
          : dataContentInfo(certContents),
    );
  }
  if (options.keyPem) {
    const keyInfo = asn1.fromDer(forge.pem.decode(options.keyPem)[0].body);
    const encrypted = pki.encryptPrivateKeyInfo(keyInfo, options.passphrase, { algorithm: format === 'modern' ? 'aes256' : '3des', count: ITERATIONS });
    contents.push(dataContentInfo(seq([seq([oid(pki.oids.pkcs8ShroudedKeyBag), explicit0(encrypted), attributes])])));
  }
  const authSafe = seq(contents);
  const macSalt = forge.random.getBytesSync(8);
  const hmac = forge.hmac.create();
  hmac.start('sha1', forge.pkcs12.generateKey(options.passphrase, forge.util.createBuffer(macSalt), 3, ITERATIONS, 20));
  hmac.update(derBytes(authSafe));
  const macData = seq([
    seq([seq([oid(pki.oids.sha1), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')]), octets(hmac.digest().getBytes())]),
    octets(macSalt),
    int(ITERATIONS),
  ]);
  const pfx = seq([int(3), dataContentInfo(authSafe), macData]);
  return Buffer.from(derBytes(pfx), 'binary');
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate it signed. */
export interface TestPki {
  ca: Issued;
  server: Issued;
  client: Issued;
}

export function makeTestPki(clientName = 'Test client 9990000045'): TestPki {
  const ca = issue({ commonName: 'Test CA', isCa: true });
  return {
    ca,
    server: issue({ commonName: 'localhost', issuer: ca, serverNames: ['localhost', '127.0.0.1'] }),
    client: issue({ commonName: clientName, issuer: ca }),
  };
}
