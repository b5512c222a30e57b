/** Clients for the integration tests: one per simulator certificate, logs collected for scanning. */
import { M2MClient, readCertificate, type LoadedCertificate, type M2MClientOptions } from '../../lib';
import type { Simulator } from '../../simulator/types';

export interface LogLine {
  level: 'debug' | 'warn';
  message: string;
}

/** Every log line of every client made here, for the "no secrets" scan. */
export const allLogLines: LogLine[] = [];

const certificates = new Map<string, Promise<LoadedCertificate>>();

/** The simulator's generated certificate `name`, decoded once per simulator. */
export function certificateOf(sim: Simulator, name = 'valid'): Promise<LoadedCertificate> {
  const c = sim.certificates[name];
  if (!c) throw new Error(`the simulator has no certificate ${name}`);
  const key = `${sim.url}|${name}`;
  let loaded = certificates.get(key);
  if (!loaded) {
    loaded = readCertificate({ path: c.path, passphrase: c.passphrase });
    certificates.set(key, loaded);
  }
  return loaded;
}

/** Fast retries so failure paths finish in milliseconds. */
export const FAST_RETRY = { maxRetries: 3, minDelayMs: 1, maxDelayMs: 5, maxElapsedMs: 10_000 };

export async function clientFor(sim: Simulator, options: Partial<M2MClientOptions> & { certificateName?: string } = {}): Promise<M2MClient> {
  const { certificateName, ...rest } = options;
  return new M2MClient({
    environment: 'custom',
    baseUrl: sim.url,
    certificate: await certificateOf(sim, certificateName),
    ca: sim.caPem,
    proxy: false,
    retry: FAST_RETRY,
    log: (level, message) => allLogLines.push({ level, message }),
    ...rest,
  });
}

export const REQUEST = {
  organisationsnummer: '9990000045',
  undersokning: 'VINN',
  referensperiod: '2022-06-30',
  filformat: 'V40',
} as const;
