/**
 * Test certificates made at test time: keys by Node's crypto, certificates by the simulator's
 * issuer (simulator/pki.ts) and .pfx files by its PKCS#12 writer (simulator/pkcs12.ts).
 */
import * as crypto from 'node:crypto';
import { issueCertificate, type Issued } from '../../simulator/pki';

export { makePfx, type PfxFormat, type PfxOptions } from '../../simulator/pkcs12';
export type { Issued } from '../../simulator/pki';

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

/** A certificate (self-signed or signed by `issuer`) with a fresh key. */
export function issue(options: IssueOptions): Issued {
  const { privateKey } =
    options.keyType === 'ec'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return issueCertificate({
    subject: [
      { name: 'countryName', value: 'SE' },
      { name: 'organizationName', value: options.organisation ?? 'Test' },
      { name: 'commonName', value: options.commonName },
    ],
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    issuer: options.issuer,
    notBefore: options.notBefore,
    notAfter: options.notAfter ?? new Date(Date.now() + 365 * 86_400_000),
    usage: options.isCa ? 'ca' : options.serverNames ? 'server' : 'client',
    serverNames: options.serverNames,
  });
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
