/**
 * The simulator's certificates, made when its directory has none to reuse (simulator/state.ts), and the one
 * X.509 issuer the tests use too (issueCertificate): RSA keys by Node's crypto
 * (native, fast; generated in parallel on the thread pool), X.509, CRL and PKCS#12 by
 * node-forge's ASN.1 tools.
 */
import * as crypto from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { der, int, makePfx, nullValue, oid, seq } from './pkcs12';
import type { SimulatorClientSpec } from './types';

const { asn1, pki } = forge;
const generateKeyPair = promisify(crypto.generateKeyPair);

const DAY_MS = 86_400_000;
/** When the not-yet-valid certificate becomes valid, and the CRL's next update. */
const NOT_YET_VALID_IN_DAYS = 30;
const OID_SHA256_RSA = pki.oids.sha256WithRSAEncryption;

export const DEFAULT_PASSPHRASE = 'simulator';

export const DEFAULT_CLIENTS: SimulatorClientSpec[] = [
  { name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'] },
  { name: 'other-org', organisationsnummer: '5560160680', undersokningar: ['VINN'] },
  { name: 'expired', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'], kind: 'expired' },
  {
    name: 'not-yet-valid',
    organisationsnummer: '9990000045',
    undersokningar: ['VINN', 'KRITA'],
    kind: 'not-yet-valid',
  },
  { name: 'revoked', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'], kind: 'revoked' },
  { name: 'legacy', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'], kind: 'legacy' },
  { name: 'untrusted', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'], kind: 'untrusted' },
];

/**
 * Key pairs by position, shared by every simulator of this process: key generation is
 * most of the start-up time, and fresh certificates on reused keys test the same things.
 */
const keyPool: Promise<string>[] = [];

/** An RSA private key as PKCS#8 PEM. */
function pooledKeyPem(index: number): Promise<string> {
  keyPool[index] ??= generateKeyPair('rsa', { modulusLength: 2048 }).then(({ privateKey }) =>
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );
  return keyPool[index];
}

/** A positive 128-bit serial whose hex has no leading zero (so every tool prints it alike). */
function newSerial(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = 0x10 + (bytes[0] % 0x70);
  return bytes.toString('hex');
}

/** Serial numbers as Node's getPeerCertificate() and forge print them differ in case only. */
export function normaliseSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/** A certificate and its key, both PEM (the key PKCS#8). */
export interface Issued {
  certPem: string;
  keyPem: string;
  /** Hex, as forge prints it. */
  serialNumber: string;
}

export interface IssueOptions {
  subject: forge.pki.CertificateField[];
  /** The certificate's own key, PKCS#8 PEM: RSA or EC. */
  keyPem: string;
  /** Signs it (an RSA key); self-signed when absent. */
  issuer?: Pick<Issued, 'certPem' | 'keyPem'>;
  /** Default now − 1 day. */
  notBefore?: Date;
  /** Default now + 825 days. */
  notAfter?: Date;
  usage: 'ca' | 'server' | 'client';
  /** A server certificate's DNS names and IPs (default localhost and 127.0.0.1). */
  serverNames?: string[];
}

/** forge writes RSA public keys only: an EC certificate is built around this one, then given its own key's SubjectPublicKeyInfo. */
const STAND_IN_RSA_KEY = pki.setRsaPublicKey(new forge.jsbn.BigInteger('3'), new forge.jsbn.BigInteger('65537'));

/** The one X.509 issuer of the simulator and the tests: signed by Node's crypto (forge's JavaScript RSA is ten times slower). */
export function issueCertificate(o: IssueOptions): Issued {
  const spki = crypto.createPublicKey(o.keyPem).export({ type: 'spki', format: 'der' });
  const rsa = crypto.createPrivateKey(o.keyPem).asymmetricKeyType === 'rsa';
  const cert = pki.createCertificate();
  const now = Date.now();
  cert.publicKey = rsa ? pki.publicKeyFromAsn1(asn1.fromDer(spki.toString('binary'))) : STAND_IN_RSA_KEY;
  cert.serialNumber = newSerial();
  cert.validity.notBefore = o.notBefore ?? new Date(now - DAY_MS);
  cert.validity.notAfter = o.notAfter ?? new Date(now + 825 * DAY_MS);
  cert.setSubject(o.subject);
  cert.setIssuer(o.issuer ? pki.certificateFromPem(o.issuer.certPem).subject.attributes : o.subject);
  const extensions: object[] = [{ name: 'basicConstraints', cA: o.usage === 'ca', critical: true }];
  if (o.usage === 'ca') extensions.push({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
  else {
    extensions.push({ name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true });
    extensions.push({ name: 'extKeyUsage', serverAuth: o.usage === 'server', clientAuth: o.usage === 'client' });
  }
  if (o.usage === 'server') {
    const names = o.serverNames ?? ['127.0.0.1', 'localhost'];
    extensions.push({
      name: 'subjectAltName',
      altNames: names.map((n) => (/^[\d.]+$/.test(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    });
  }
  // forge computes the identifier from cert.publicKey, which for an EC key is the stand-in.
  if (rsa) extensions.push({ name: 'subjectKeyIdentifier' });
  cert.setExtensions(extensions);
  cert.signatureOid = cert.siginfo.algorithmOid = OID_SHA256_RSA;
  const tbs = getTbs(cert);
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
  if (!rsa) (tbs.value as forge.asn1.Asn1[])[6] = asn1.fromDer(spki.toString('binary'));
  (cert as unknown as { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate = tbs;
  cert.signature = rsaSign(der(tbs), (o.issuer ?? o).keyPem);
  // forge ends PEM lines with CRLF; Node and OpenSSL write LF.
  return {
    certPem: pki.certificateToPem(cert).replace(/\r\n/g, '\n'),
    keyPem: o.keyPem,
    serialNumber: cert.serialNumber,
  };
}

/** forge's getTBSCertificate is public but missing from its type definitions. */
function getTbs(cert: forge.pki.Certificate): forge.asn1.Asn1 {
  return (pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
}

/** sha256WithRSAEncryption signature of DER bytes (a binary string), as a binary string. */
function rsaSign(derBytes: string, keyPem: string): string {
  return crypto.sign('sha256', Buffer.from(derBytes, 'binary'), keyPem).toString('binary');
}

// --- ASN.1 for what forge cannot write: the CRL. ---

function utcTime(date: Date): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date));
}
function sha256WithRsa(): forge.asn1.Asn1 {
  return seq([oid(OID_SHA256_RSA), nullValue()]);
}

/** An X.509 v2 CRL signed by `ca` listing `serials` (hex) as revoked now. */
function makeCrl(ca: Issued, serials: string[]): string {
  const now = new Date();
  const revoked = serials.map((s) =>
    seq([asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(s)), utcTime(now)]),
  );
  const tbs = seq([
    int(1),
    sha256WithRsa(),
    pki.distinguishedNameToAsn1(pki.certificateFromPem(ca.certPem).subject),
    utcTime(new Date(now.getTime() - 60_000)),
    utcTime(new Date(now.getTime() + NOT_YET_VALID_IN_DAYS * DAY_MS)),
    ...(revoked.length > 0 ? [seq(revoked)] : []),
  ]);
  const signature = rsaSign(der(tbs), ca.keyPem);
  const crl = seq([
    tbs,
    sha256WithRsa(),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${signature}`),
  ]);
  return forge.pem.encode({ type: 'X509 CRL', body: der(crl) });
}

export interface GeneratedClient {
  spec: Required<Omit<SimulatorClientSpec, 'filformat'>> & { filformat?: string[] };
  pfx: Buffer;
  serialNumber: string;
}

export interface GeneratedPki {
  caPem: string;
  serverKeyPem: string;
  serverCertPem: string;
  crlPem: string;
  clients: GeneratedClient[];
  /** Normalised serials of the revoked client certificates. */
  revokedSerials: Set<string>;
  /** When a kept copy no longer behaves as made (epoch ms): a day before the CRL's next update and the not-yet-valid certificate's start. */
  renewAfter: number;
}

function clientSubject(spec: SimulatorClientSpec): forge.pki.CertificateField[] {
  return [
    { name: 'countryName', value: 'SE' },
    { name: 'organizationName', value: `Uppgiftslamnare ${spec.organisationsnummer}` },
    { name: 'serialNumber', value: spec.organisationsnummer },
    { name: 'commonName', value: `${spec.organisationsnummer} ${spec.undersokningar.join(' ')} M2M` },
  ];
}

/** The CA, the server certificate for 127.0.0.1/localhost and one .pfx per client spec. */
export async function generatePki(specs: SimulatorClientSpec[]): Promise<GeneratedPki> {
  const needsUntrusted = specs.some((s) => s.kind === 'untrusted');
  // Key generation dominates; run it all at once on libuv's thread pool.
  const keys = await Promise.all(
    Array.from({ length: specs.length + 2 + (needsUntrusted ? 1 : 0) }, (_, i) => pooledKeyPem(i)),
  );
  const ca = issueCertificate({
    subject: [
      { name: 'countryName', value: 'SE' },
      { name: 'organizationName', value: 'SCB M2M Simulator' },
      { name: 'commonName', value: 'SCB M2M Simulator CA' },
    ],
    keyPem: keys[0],
    usage: 'ca',
  });
  const server = issueCertificate({
    subject: [{ name: 'commonName', value: 'localhost' }],
    keyPem: keys[1],
    issuer: ca,
    usage: 'server',
  });
  const untrustedCa = needsUntrusted
    ? issueCertificate({
        subject: [{ name: 'commonName', value: 'Untrusted CA (not the simulator)' }],
        keyPem: keys[2],
        usage: 'ca',
      })
    : undefined;
  const clientKeys = keys.slice(needsUntrusted ? 3 : 2);
  const now = Date.now();
  const clients = specs.map((spec, i): GeneratedClient => {
    const kind = spec.kind ?? 'valid';
    const passphrase = spec.passphrase ?? DEFAULT_PASSPHRASE;
    const issuer = kind === 'untrusted' && untrustedCa ? untrustedCa : ca;
    const validity =
      kind === 'expired'
        ? { notBefore: new Date(now - 400 * DAY_MS), notAfter: new Date(now - DAY_MS) }
        : kind === 'not-yet-valid'
          ? { notBefore: new Date(now + NOT_YET_VALID_IN_DAYS * DAY_MS), notAfter: new Date(now + 400 * DAY_MS) }
          : {};
    const issued = issueCertificate({
      subject: clientSubject(spec),
      keyPem: clientKeys[i],
      issuer,
      usage: 'client',
      ...validity,
    });
    const pfx = makePfx({
      keyPem: issued.keyPem,
      certs: [issued.certPem, issuer.certPem],
      passphrase,
      format: kind === 'legacy' ? 'legacy-rc2-40' : 'modern',
    });
    return { spec: { ...spec, kind, passphrase }, pfx, serialNumber: issued.serialNumber };
  });
  const revoked = clients.filter((c) => c.spec.kind === 'revoked').map((c) => c.serialNumber);
  return {
    caPem: ca.certPem,
    serverKeyPem: server.keyPem,
    serverCertPem: server.certPem,
    crlPem: makeCrl(ca, revoked),
    clients,
    revokedSerials: new Set(revoked.map(normaliseSerial)),
    renewAfter: now + (NOT_YET_VALID_IN_DAYS - 1) * DAY_MS,
  };
}
