/**
 * Reads SCB's .pfx (PKCS#12) client certificate and hands TLS a PEM `cert` + `key`.
 * node-forge decodes every file, modern or legacy, so there is one code path to TLS;
 * Node's OpenSSL is only asked whether it would have taken the file itself
 * (`info.legacyFormat`: OpenSSL 3 refuses RC2-40 files). Nothing here keeps or reports
 * the passphrase, the key or the file's bytes.
 */
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as tls from 'node:tls';
import forge from 'node-forge';
import { CertificateError } from './errors';
import type { CertificateInfo, CertificateSource, LoadedCertificate } from './types';

const DAY_MS = 86_400_000;
const REEXPORT_HINT =
  'Re-export it with modern encryption, e.g. `openssl pkcs12 -in old.pfx -legacy -nodes | openssl pkcs12 -export -certpbe AES-256-CBC -keypbe AES-256-CBC -out new.pfx`.';

async function readSource(source: CertificateSource): Promise<{ bytes: Buffer; label: string }> {
  if (source.pfx !== undefined) {
    if (!Buffer.isBuffer(source.pfx)) {
      throw new CertificateError('The certificate bytes (pfx) must be a Buffer.', {
        code: 'NOT_PKCS12',
        hint: "Give the .pfx file's content as a Buffer.",
      });
    }
    return { bytes: source.pfx, label: `The uploaded certificate (${source.pfx.length} bytes)` };
  }
  if (typeof source.path === 'string' && source.path !== '') {
    try {
      return { bytes: await fs.readFile(source.path), label: `The certificate file ${source.path}` };
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new CertificateError(`The certificate file ${source.path} cannot be read (${reason}).`, {
        code: 'FILE_UNREADABLE',
        hint: 'Check the path and that the Node-RED user may read the file.',
        cause: err,
      });
    }
  }
  throw new CertificateError('No certificate was given.', {
    code: 'NO_CERTIFICATE_SOURCE',
    hint: 'Give the path of the .pfx file or its content.',
  });
}

/** What bytes that are not a PKCS#12 file look like, for the error message. */
function describeNonPfx(bytes: Buffer): string {
  if (bytes.length === 0) return 'is empty';
  const head = bytes.subarray(0, 64).toString('latin1');
  const pem = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(head);
  if (pem) return `is a PEM file (${pem[1]}), not a .pfx/.p12`;
  if (/^[\x09\x0a\x0d\x20-\x7e]*$/.test(head)) return 'is a text file, not a .pfx/.p12';
  return 'is not a PKCS#12 (.pfx/.p12) file';
}

/** Whether Node's own OpenSSL accepts the file as it is. */
function nodeAccepts(bytes: Buffer, passphrase: string): boolean {
  try {
    tls.createSecureContext({ pfx: bytes, passphrase });
    return true;
  } catch {
    return false;
  }
}

function decodePkcs12(bytes: Buffer, passphrase: string, label: string): forge.pkcs12.Pkcs12Pfx {
  let asn1: forge.asn1.Asn1;
  try {
    asn1 = forge.asn1.fromDer(forge.util.createBuffer(bytes.toString('binary')));
  } catch {
    throw new CertificateError(`${label} ${describeNonPfx(bytes)}.`, {
      code: 'NOT_PKCS12',
      hint: 'Use the .pfx (or .p12) file SCB delivered.',
    });
  }
  try {
    return forge.pkcs12.pkcs12FromAsn1(asn1, false, passphrase);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (/MAC could not be verified|invalid password|wrong password/i.test(reason)) {
      throw new CertificateError(`${label} cannot be opened with the passphrase given.`, {
        code: 'WRONG_PASSPHRASE',
        hint: 'Enter the passphrase that came with the .pfx file.',
      });
    }
    if (/unsupported (OID|MAC algorithm)|PBE/i.test(reason)) {
      throw new CertificateError(`${label} is encrypted with an algorithm neither Node nor node-forge can read.`, {
        code: 'UNSUPPORTED_ENCRYPTION',
        hint: REEXPORT_HINT,
      });
    }
    throw new CertificateError(
      `${label} is DER data but not a PKCS#12 (.pfx/.p12) file (perhaps a certificate without its key).`,
      {
        code: 'NOT_PKCS12',
        hint: 'Use the .pfx (or .p12) file SCB delivered, which holds both the certificate and the private key.',
      },
    );
  }
}

function bagsOf(p12: forge.pkcs12.Pkcs12Pfx, bagType: string): forge.pkcs12.Bag[] {
  return p12.getBags({ bagType })[bagType] ?? [];
}

/** forge parses RSA only; for other key types (EC) it keeps the PKCS#8 ASN.1, which we wrap ourselves. */
function keyPemOf(bag: forge.pkcs12.Bag): string | undefined {
  if (bag.key) return forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key)));
  return bag.asn1 ? forge.pki.privateKeyInfoToPem(bag.asn1) : undefined;
}

function x509Of(bag: forge.pkcs12.Bag): crypto.X509Certificate | undefined {
  const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
  return asn1 ? new crypto.X509Certificate(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary')) : undefined;
}

/** Node prints a DN one attribute per line; users know it comma-separated. */
function dn(text: string): string {
  return text.split('\n').filter(Boolean).join(', ');
}

/** Whole days from `now` until `validTo` (ISO); negative once expired. */
export function daysLeft(validTo: string, now: Date = new Date()): number {
  return Math.floor((Date.parse(validTo) - now.getTime()) / DAY_MS);
}

function certificateInfo(x509: crypto.X509Certificate, legacyFormat: boolean, now = new Date()): CertificateInfo {
  const validTo = new Date(x509.validTo);
  const commonName = /^CN=(.*)$/m.exec(x509.subject)?.[1];
  return {
    subject: dn(x509.subject),
    ...(commonName !== undefined && { commonName }),
    issuer: dn(x509.issuer),
    serialNumber: x509.serialNumber.toUpperCase(),
    fingerprint256: x509.fingerprint256,
    validFrom: new Date(x509.validFrom).toISOString(),
    validTo: validTo.toISOString(),
    daysLeft: daysLeft(validTo.toISOString(), now),
    legacyFormat,
  };
}

/**
 * Decodes a .pfx from a path or its bytes. Throws CertificateError with code
 * FILE_UNREADABLE, NOT_PKCS12, WRONG_PASSPHRASE, UNSUPPORTED_ENCRYPTION, NO_PRIVATE_KEY,
 * NO_CERTIFICATE or UNSUPPORTED_KEY. Does not check the validity dates (see
 * assertCertificateCurrent).
 */
export async function readCertificate(source: CertificateSource): Promise<LoadedCertificate> {
  const { bytes, label } = await readSource(source);
  const passphrase = typeof source.passphrase === 'string' ? source.passphrase : '';
  const legacyFormat = !nodeAccepts(bytes, passphrase);
  const p12 = decodePkcs12(bytes, passphrase, label);

  const keyBags = [...bagsOf(p12, forge.pki.oids.pkcs8ShroudedKeyBag), ...bagsOf(p12, forge.pki.oids.keyBag)];
  const keyPem = keyBags.map(keyPemOf).find((pem) => pem !== undefined);
  if (!keyPem) {
    throw new CertificateError(`${label} holds no private key.`, {
      code: 'NO_PRIVATE_KEY',
      hint: 'Export the certificate again together with its private key.',
    });
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch {
    throw new CertificateError(`${label} holds a private key of a type Node cannot use.`, {
      code: 'UNSUPPORTED_KEY',
      hint: REEXPORT_HINT,
    });
  }
  const certs = bagsOf(p12, forge.pki.oids.certBag)
    .map(x509Of)
    .filter((c): c is crypto.X509Certificate => c !== undefined);
  if (certs.length === 0) {
    throw new CertificateError(`${label} holds no certificate.`, {
      code: 'NO_CERTIFICATE',
      hint: 'Export the .pfx again including the certificate.',
    });
  }
  // The client certificate is the one whose public key matches the private key; the rest are its chain.
  const own = certs.find((c) => c.checkPrivateKey(key));
  if (!own) {
    throw new CertificateError(`${label} holds no certificate that matches its private key.`, {
      code: 'NO_CERTIFICATE',
      hint: 'Export the .pfx again with the certificate that belongs to the key.',
    });
  }
  const cert = [own, ...certs.filter((c) => c !== own)].map((c) => c.toString()).join('');
  const loaded = { info: certificateInfo(own, legacyFormat), cert } as LoadedCertificate;
  Object.defineProperty(loaded, 'key', {
    value: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    enumerable: false,
  });
  return loaded;
}

/** Throws CertificateError EXPIRED or NOT_YET_VALID when `now` is outside the validity dates. */
export function assertCertificateCurrent(info: CertificateInfo, now: Date = new Date()): void {
  const name = info.commonName ?? info.subject;
  if (now.getTime() > Date.parse(info.validTo)) {
    throw new CertificateError(
      `The client certificate ${name} expired on ${info.validTo} (valid from ${info.validFrom}).`,
      {
        code: 'EXPIRED',
        hint: 'Order a new certificate from SCB and configure it.',
      },
    );
  }
  if (now.getTime() < Date.parse(info.validFrom)) {
    throw new CertificateError(
      `The client certificate ${name} is not valid before ${info.validFrom} (valid to ${info.validTo}).`,
      {
        code: 'NOT_YET_VALID',
        hint: "Wait until it becomes valid, or check the computer's clock.",
      },
    );
  }
}

/** readCertificate, then assertCertificateCurrent. */
export async function loadCertificate(source: CertificateSource, now: Date = new Date()): Promise<LoadedCertificate> {
  const loaded = await readCertificate(source);
  assertCertificateCurrent(loaded.info, now);
  return loaded;
}
