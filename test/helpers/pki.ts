/**
 * Test certificates made at test time: keys by Node's crypto (fast, native), X.509 with
 * node-forge's ASN.1 tools (RSA and EC keys). .pfx files come from the simulator's one
 * PKCS#12 writer (simulator/pkcs12.ts), re-exported here.
 */
import * as crypto from 'node:crypto';
import forge from 'node-forge';
import { der as derBytes } from '../../simulator/pkcs12';

export { makePfx, type PfxFormat, type PfxOptions } from '../../simulator/pkcs12';

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
