import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { inspect } from 'node:util';
import {
  CertificateError,
  assertCertificateCurrent,
  loadCertificate,
  readCertificate,
  type LoadedCertificate,
} from '../../lib';
import { issue, makePfx, makeTestPki, type Issued, type PfxFormat, type TestPki } from '../helpers/pki';

const PASSPHRASE = 'Hemlig-fras-4711';
const DAY_MS = 86_400_000;

async function refusal(promise: Promise<unknown>, code: string): Promise<CertificateError> {
  const err = await promise.then(
    () => assert.fail(`expected CertificateError ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CertificateError, `expected a CertificateError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.ok(err.hint, 'the error says what to do');
  return err;
}

/** The first certificate of a PEM bundle. */
function firstCert(pem: string): crypto.X509Certificate {
  return new crypto.X509Certificate(pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 25));
}

function pfxOf(who: Issued, format: PfxFormat = 'modern', chain: string[] = []): Buffer {
  return makePfx({ keyPem: who.keyPem, certs: [...chain, who.certPem], passphrase: PASSPHRASE, format });
}

describe('certificate', () => {
  let pki: TestPki;
  let dir: string;

  before(async () => {
    pki = makeTestPki();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-cert-test-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  function assertUsableForTls(loaded: LoadedCertificate): void {
    assert.doesNotThrow(() => tls.createSecureContext({ cert: loaded.cert, key: loaded.key }));
    assert.ok(
      firstCert(loaded.cert).checkPrivateKey(crypto.createPrivateKey(loaded.key)),
      'the first certificate matches the key',
    );
  }

  it('reads a modern (AES) .pfx from a path: info, cert first then chain, usable key', async () => {
    const file = path.join(dir, 'modern.pfx');
    // The CA comes first in the file: the client certificate must still come first in cert.
    await fs.writeFile(file, pfxOf(pki.client, 'modern', [pki.ca.certPem]));
    const loaded = await readCertificate({ path: file, passphrase: PASSPHRASE });
    const x509 = new crypto.X509Certificate(pki.client.certPem);

    assert.equal(loaded.info.legacyFormat, false);
    assert.equal(loaded.info.commonName, 'Test client 9990000045');
    assert.equal(loaded.info.subject, 'C=SE, O=Test, CN=Test client 9990000045');
    assert.equal(loaded.info.issuer, 'C=SE, O=Test, CN=Test CA');
    assert.equal(loaded.info.serialNumber, x509.serialNumber.toUpperCase());
    assert.equal(loaded.info.fingerprint256, x509.fingerprint256);
    assert.match(loaded.info.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.equal(loaded.info.validTo, new Date(x509.validTo).toISOString());
    assert.equal(loaded.info.validFrom, new Date(x509.validFrom).toISOString());
    assert.ok(loaded.info.daysLeft >= 363 && loaded.info.daysLeft <= 365, `daysLeft ${loaded.info.daysLeft}`);

    assert.equal(firstCert(loaded.cert).fingerprint256, x509.fingerprint256);
    assert.equal(loaded.cert.match(/BEGIN CERTIFICATE/g)?.length, 2, 'the chain follows the client certificate');
    assert.ok(loaded.cert.includes(pki.ca.certPem.split('\n')[1]), 'the CA is in the chain');
    assertUsableForTls(loaded);
  });

  it('keeps the key out of enumeration, JSON and inspection', async () => {
    const loaded = await readCertificate({ pfx: pfxOf(pki.client), passphrase: PASSPHRASE });
    assert.match(loaded.key, /^-----BEGIN PRIVATE KEY-----/);
    assert.deepEqual(Object.keys(loaded).sort(), ['cert', 'info']);
    for (const text of [JSON.stringify(loaded), inspect(loaded, { depth: 5 })]) {
      assert.ok(!text.includes('PRIVATE KEY'), 'no key material');
      assert.ok(!text.includes(PASSPHRASE), 'no passphrase');
    }
  });

  it('reads a 3DES .pfx as a modern one (OpenSSL 3 accepts it)', async () => {
    const loaded = await readCertificate({ pfx: pfxOf(pki.client, '3des'), passphrase: PASSPHRASE });
    assert.equal(loaded.info.legacyFormat, false);
    assertUsableForTls(loaded);
  });

  it('reads a legacy RC2-40 .pfx that Node itself refuses, and marks it legacyFormat', async () => {
    const pfx = pfxOf(pki.client, 'legacy-rc2-40');
    assert.throws(
      () => tls.createSecureContext({ pfx, passphrase: PASSPHRASE }),
      /Unsupported PKCS12 PFX data/,
      'the fixture really is legacy',
    );
    const loaded = await readCertificate({ pfx, passphrase: PASSPHRASE });
    assert.equal(loaded.info.legacyFormat, true);
    assert.equal(loaded.info.commonName, 'Test client 9990000045');
    assertUsableForTls(loaded);
  });

  it('reads an EC key, which forge leaves undecoded, as PKCS#8', async () => {
    const ec = issue({ commonName: 'EC client', issuer: pki.ca, keyType: 'ec' });
    const loaded = await readCertificate({ pfx: pfxOf(ec), passphrase: PASSPHRASE });
    assert.equal(crypto.createPrivateKey(loaded.key).asymmetricKeyType, 'ec');
    assert.equal(loaded.info.commonName, 'EC client');
    assertUsableForTls(loaded);
  });

  for (const format of ['modern', 'legacy-rc2-40'] as const) {
    it(`refuses a wrong passphrase (${format}) with WRONG_PASSPHRASE, never echoing it`, async () => {
      const err = await refusal(
        readCertificate({ pfx: pfxOf(pki.client, format), passphrase: 'not-the-one' }),
        'WRONG_PASSPHRASE',
      );
      assert.match(err.message, /passphrase/);
      const shown = `${err.message} ${JSON.stringify(err)} ${inspect(err)}`;
      assert.ok(!shown.includes('not-the-one') && !shown.includes(PASSPHRASE));
    });
  }

  it('refuses an encryption neither OpenSSL 3 nor forge reads (RC2-128) and says how to re-export', async () => {
    const err = await refusal(
      readCertificate({ pfx: pfxOf(pki.client, 'rc2-128'), passphrase: PASSPHRASE }),
      'UNSUPPORTED_ENCRYPTION',
    );
    assert.ok(err.message.includes('-certpbe AES-256-CBC'));
  });

  it('refuses what is not a PKCS#12 file and says what it looks like', async () => {
    assert.match(
      (await refusal(readCertificate({ pfx: Buffer.from(pki.client.certPem), passphrase: '' }), 'NOT_PKCS12')).message,
      /PEM file \(CERTIFICATE\)/,
    );
    assert.match(
      (await refusal(readCertificate({ pfx: Buffer.alloc(0), passphrase: '' }), 'NOT_PKCS12')).message,
      /is empty/,
    );
    assert.match(
      (await refusal(readCertificate({ pfx: Buffer.from('just some text\n'), passphrase: '' }), 'NOT_PKCS12')).message,
      /text file/,
    );
    assert.match(
      (await refusal(readCertificate({ pfx: crypto.randomBytes(64).fill(0xff, 0, 1), passphrase: '' }), 'NOT_PKCS12'))
        .message,
      /not a PKCS#12/,
    );
    const der = new crypto.X509Certificate(pki.client.certPem).raw;
    assert.match(
      (await refusal(readCertificate({ pfx: der, passphrase: '' }), 'NOT_PKCS12')).message,
      /DER data but not a PKCS#12/,
    );
  });

  it('refuses a .pfx without a private key (NO_PRIVATE_KEY) or without a certificate (NO_CERTIFICATE)', async () => {
    await refusal(
      readCertificate({
        pfx: makePfx({ certs: [pki.client.certPem], passphrase: PASSPHRASE }),
        passphrase: PASSPHRASE,
      }),
      'NO_PRIVATE_KEY',
    );
    await refusal(
      readCertificate({
        pfx: makePfx({ keyPem: pki.client.keyPem, certs: [], passphrase: PASSPHRASE }),
        passphrase: PASSPHRASE,
      }),
      'NO_CERTIFICATE',
    );
    // A certificate that belongs to another key is no certificate for this key.
    await refusal(
      readCertificate({
        pfx: makePfx({ keyPem: pki.client.keyPem, certs: [pki.server.certPem], passphrase: PASSPHRASE }),
        passphrase: PASSPHRASE,
      }),
      'NO_CERTIFICATE',
    );
  });

  it('reports an unreadable file with its path and the OS reason', async () => {
    const missing = path.join(dir, 'missing.pfx');
    const err = await refusal(readCertificate({ path: missing, passphrase: PASSPHRASE }), 'FILE_UNREADABLE');
    assert.ok(err.message.includes(missing) && err.message.includes('ENOENT'), err.message);
  });

  describe('validity dates', () => {
    let expired: Issued;
    let future: Issued;

    before(() => {
      const now = Date.now();
      expired = issue({
        commonName: 'Expired client',
        issuer: pki.ca,
        notBefore: new Date(now - 400 * DAY_MS),
        notAfter: new Date(now - 10 * DAY_MS),
      });
      future = issue({
        commonName: 'Future client',
        issuer: pki.ca,
        notBefore: new Date(now + 10 * DAY_MS),
        notAfter: new Date(now + 400 * DAY_MS),
      });
    });

    it('readCertificate reads an expired certificate (daysLeft negative); loadCertificate refuses it with EXPIRED and the date', async () => {
      const read = await readCertificate({ pfx: pfxOf(expired), passphrase: PASSPHRASE });
      assert.ok(read.info.daysLeft <= -10 && read.info.daysLeft >= -11, `daysLeft ${read.info.daysLeft}`);
      const err = await refusal(loadCertificate({ pfx: pfxOf(expired), passphrase: PASSPHRASE }), 'EXPIRED');
      assert.ok(err.message.includes(read.info.validTo) && err.message.includes('Expired client'), err.message);
    });

    it('assertCertificateCurrent refuses a certificate not yet valid with NOT_YET_VALID and the date', async () => {
      const read = await readCertificate({ pfx: pfxOf(future), passphrase: PASSPHRASE });
      assert.throws(
        () => assertCertificateCurrent(read.info),
        (e: unknown) =>
          e instanceof CertificateError && e.code === 'NOT_YET_VALID' && e.message.includes(read.info.validFrom),
      );
      // The same certificate is current once its time has come.
      assert.doesNotThrow(() => assertCertificateCurrent(read.info, new Date(Date.now() + 20 * DAY_MS)));
    });

    it('assertCertificateCurrent passes a current certificate', async () => {
      const read = await loadCertificate({ pfx: pfxOf(pki.client), passphrase: PASSPHRASE });
      assert.doesNotThrow(() => assertCertificateCurrent(read.info));
    });
  });
});
