/** Clients for the integration tests: one per simulator certificate, logs collected for scanning. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { M2MClient, readCertificate, type LoadedCertificate, type M2MClientOptions } from '../../lib';
import { startSimulator } from '../../simulator';
import type { Simulator, SimulatorOptions } from '../../simulator/types';

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

export async function clientFor(
  sim: Simulator,
  options: Partial<M2MClientOptions> & { certificateName?: string } = {},
): Promise<M2MClient> {
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

/** What simulatorSuite's hooks set up: valid from `before` (sim, dir) and `beforeEach` (client) on. */
export interface SimulatorSuite {
  /** The simulator, with its files in `<dir>/sim`. */
  readonly sim: Simulator;
  /** A temporary dir, removed after the suite. */
  readonly dir: string;
  /** A new client of the `valid` certificate for each test, closed after it. */
  readonly client: M2MClient;
}

/**
 * Registers the hooks of a client suite against the simulator (call it inside `describe`): a temp
 * dir `<prefix>…` and a simulator in it before all; a client per test; after each test the faults
 * cleared and the client closed; after all the simulator stopped and the dir removed.
 */
export function simulatorSuite(prefix: string, options: SimulatorOptions = {}): SimulatorSuite {
  const ctx = {} as { sim: Simulator; dir: string; client: M2MClient };
  before(async () => {
    ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    ctx.sim = await startSimulator({ dir: path.join(ctx.dir, 'sim'), ...options });
  });
  beforeEach(async () => {
    ctx.client = await clientFor(ctx.sim);
  });
  afterEach(async () => {
    ctx.sim.faults.clear();
    await ctx.client.close();
  });
  after(async () => {
    await ctx.sim.stop();
    await fs.rm(ctx.dir, { recursive: true, force: true });
  });
  return ctx;
}
