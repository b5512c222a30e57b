/**
 * The one PKCS#12 (.pfx) writer of the project, with the ASN.1 helpers it needs. It writes
 * what forge's own `toPkcs12Asn1` cannot: the legacy layout OpenSSL 1.x made by default
 * (certificates in an RC2-40 encrypted bag, which OpenSSL 3 and so Node 17+ refuse), RC2-128
 * (which forge cannot read either), and files without a key or without a certificate.
 * The simulator makes its client certificates with it; the tests make odd files with it.
 */
import forge from 'node-forge';

const { asn1, pki } = forge;

/** PKCS#12 key-derivation iterations (OpenSSL's default). */
const ITERATIONS = 2048;
const OID_RC2_40 = '1.2.840.113549.1.12.1.6';
const OID_RC2_128 = '1.2.840.113549.1.12.1.5';

export function der(node: forge.asn1.Asn1): string {
  return asn1.toDer(node).getBytes();
}
export function seq(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
}
export function oid(id: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
}
export function octets(bytes: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
}
export function int(n: number): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(n).getBytes());
}
export function explicit0(inner: forge.asn1.Asn1): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
}
export function nullValue(): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '');
}

/**
 * How a .pfx is encrypted. `modern`: key with PBES2/AES-256, what OpenSSL 3 writes and reads;
 * `3des`: key with 3DES, still read by OpenSSL 3; `legacy-rc2-40`: OpenSSL 1.x's default,
 * refused by OpenSSL 3; `rc2-128`: read by neither OpenSSL 3 nor forge.
 */
export type PfxFormat = 'modern' | '3des' | 'legacy-rc2-40' | 'rc2-128';

export interface PfxOptions {
  /** PKCS#8 PEM; absent: a file without a key. */
  keyPem?: string;
  /** The client certificate and any chain, in the order to write them. */
  certs: string[];
  passphrase: string;
  /** Default `modern`. */
  format?: PfxFormat;
}

/** ContentInfo of type data wrapping SafeContents. */
function dataContentInfo(safeContents: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([oid(pki.oids.data), explicit0(octets(der(safeContents)))]);
}

/** EncryptedData ContentInfo of SafeContents, RC2-CBC with the PKCS#12 key derivation. */
function rc2ContentInfo(safeContents: forge.asn1.Asn1, passphrase: string, bits: 40 | 128): forge.asn1.Asn1 {
  const salt = forge.random.getBytesSync(8);
  const key = forge.pkcs12.generateKey(passphrase, forge.util.createBuffer(salt), 1, ITERATIONS, bits / 8);
  const iv = forge.pkcs12.generateKey(passphrase, forge.util.createBuffer(salt), 2, ITERATIONS, 8);
  const cipher = forge.rc2.createEncryptionCipher(key, bits);
  cipher.start(iv);
  cipher.update(forge.util.createBuffer(der(safeContents)));
  cipher.finish();
  const algorithm = seq([oid(bits === 40 ? OID_RC2_40 : OID_RC2_128), seq([octets(salt), int(ITERATIONS)])]);
  const content = asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, cipher.output.getBytes());
  return seq([oid(pki.oids.encryptedData), explicit0(seq([int(0), seq([oid(pki.oids.data), algorithm, content])]))]);
}

/** A .pfx (PKCS#12) file with a SHA-1 MAC, as OpenSSL writes them. */
export function makePfx(options: PfxOptions): Buffer {
  const format = options.format ?? 'modern';
  const localKeyId = forge.random.getBytesSync(20);
  const attributes = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
    seq([oid(pki.oids.localKeyId), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [octets(localKeyId)])]),
  ]);
  const contents: forge.asn1.Asn1[] = [];
  if (options.certs.length > 0) {
    const certBags = seq(
      options.certs.map((pem, i) => {
        const bag = seq([oid(pki.oids.x509Certificate), explicit0(octets(forge.pem.decode(pem)[0].body))]);
        return seq([oid(pki.oids.certBag), explicit0(bag), ...(i === 0 ? [attributes] : [])]);
      }),
    );
    if (format === 'legacy-rc2-40') contents.push(rc2ContentInfo(certBags, options.passphrase, 40));
    else if (format === 'rc2-128') contents.push(rc2ContentInfo(certBags, options.passphrase, 128));
    else contents.push(dataContentInfo(certBags));
  }
  if (options.keyPem) {
    const keyInfo = asn1.fromDer(forge.pem.decode(options.keyPem)[0].body);
    const algorithm = format === 'modern' ? 'aes256' : '3des';
    const shrouded = pki.encryptPrivateKeyInfo(keyInfo, options.passphrase, { algorithm, count: ITERATIONS });
    contents.push(dataContentInfo(seq([seq([oid(pki.oids.pkcs8ShroudedKeyBag), explicit0(shrouded), attributes])])));
  }
  const authSafe = seq(contents);
  const macSalt = forge.random.getBytesSync(8);
  const hmac = forge.hmac.create();
  hmac.start('sha1', forge.pkcs12.generateKey(options.passphrase, forge.util.createBuffer(macSalt), 3, ITERATIONS, 20));
  hmac.update(der(authSafe));
  const macData = seq([
    seq([seq([oid(pki.oids.sha1), nullValue()]), octets(hmac.digest().getBytes())]),
    octets(macSalt),
    int(ITERATIONS),
  ]);
  return Buffer.from(der(seq([int(3), dataContentInfo(authSafe), macData])), 'binary');
}
