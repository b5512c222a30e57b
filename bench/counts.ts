/**
 * Part 2: what many uploads in a row, at once and polled through one config node cost,
 * read from the simulator's counters. The simulator runs in this process so that they can be read;
 * each scenario gets a fresh Node-RED worker (a fresh config node: a new session, a new pool).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readCertificate } from '../lib';
import type { ClientStats } from '../lib/types';
import { startSimulator } from '../simulator';
import type { Simulator, SimulatorStats } from '../simulator/types';
import { fixed } from './format';
import { type Options, REPORTER } from './options';
import type { DecidedOutcome, FlowSettings, PollOutcome, UploadItem, UploadOutcome } from './protocol';
import { type Worker, assertUploaded, withWorker } from './runner';

/** The simulator's counters, without its in-flight figures (which are no sums to subtract). */
type ServerCounts = Omit<SimulatorStats, 'inFlight' | 'maxInFlight'>;

function countsDiff(before: SimulatorStats, after: SimulatorStats): ServerCounts {
  const { inFlight: _inFlight, maxInFlight: _maxInFlight, ...diff } = after;
  for (const key of Object.keys(diff) as Array<keyof ServerCounts>) diff[key] = after[key] - before[key];
  return diff;
}

interface ScenarioResult {
  count: number;
  ms: number;
  arrived: number;
  server: ServerCounts;
  client: ClientStats;
  failures: string[];
}

export interface CountsResult {
  inRow: ScenarioResult;
  /** maxInFlight: the most requests the simulator handled at once. */
  concurrent: ScenarioResult & { maxInFlight: number };
  polled: {
    count: number;
    seconds: number;
    maxInFlight: number;
    poll: PollOutcome;
    decided: DecidedOutcome;
    server: ServerCounts;
  };
}

/** Distinct files the simulator holds whose filnamn starts with prefix. */
function arrivedWith(sim: Simulator, prefix: string): number {
  return new Set(
    sim
      .deliveries()
      .map((d) => d.filnamn)
      .filter((n) => n.startsWith(prefix)),
  ).size;
}

function smallItems(prefix: string, count: number, bytes: number): UploadItem[] {
  return Array.from({ length: count }, (_, i) => ({ filnamn: `${prefix}-${i}.xml`, bytes }));
}

/** PEM copies of the simulator's `valid` certificate for the core tls-config node, and the flow settings. */
async function flowSettings(sim: Simulator, work: string): Promise<FlowSettings> {
  const valid = sim.certificates.valid;
  const certificate = await readCertificate({ path: valid.path, passphrase: valid.passphrase });
  const certPem = path.join(work, 'counts-cert.pem');
  const keyPem = path.join(work, 'counts-key.pem');
  await fs.writeFile(certPem, certificate.cert, { mode: 0o600 });
  await fs.writeFile(keyPem, certificate.key, { mode: 0o600 });
  const { url, caPath } = sim;
  return { baseUrl: url, certPath: valid.path, passphrase: valid.passphrase, caPath, certPem, keyPem, ...REPORTER };
}

export async function counts(options: Options, work: string, log: (line: string) => void): Promise<CountsResult> {
  const simDir = path.join(work, 'simulator-counts');
  const sim = await startSimulator({ dir: simDir, keepFiles: false, historyDelayMs: 60 * 60_000 });
  try {
    const settings = await flowSettings(sim, work);
    const measure = async <T>(fn: (worker: Worker) => Promise<T>) => {
      const before = sim.stats();
      const result = await withWorker(settings, fn);
      return { result, server: countsDiff(before, sim.stats()) };
    };
    const upload = (worker: Worker, items: UploadItem[], concurrent: boolean) =>
      worker.request<UploadOutcome>({ op: 'upload', items, concurrent }, 10 * 60_000);

    const row = await measure((w) => upload(w, smallItems('row', options.inRow, 2048), false));
    const rowArrived = arrivedWith(sim, 'row-');
    log(
      `${options.inRow} in a row: ${fixed(row.result.ms, 0)} ms, ${row.server.heartbeats} heartbeats, ` +
        `${row.server.tlsHandshakes} TLS handshakes`,
    );

    sim.resetMaxInFlight();
    const together = await measure((w) => upload(w, smallItems('together', options.concurrent, 256 * 1024), true));
    const arrived = arrivedWith(sim, 'together-');
    const togetherInFlight = sim.stats().maxInFlight;
    log(
      `${options.concurrent} at once: max ${togetherInFlight} requests in flight at the simulator, ` +
        `${together.server.heartbeats} heartbeats, ${arrived} arrived`,
    );

    let pollInFlight = 0;
    const polled = await measure(async (w) => {
      const uploaded = await upload(w, smallItems('polled', options.polled, 1024), true);
      assertUploaded(uploaded, `${options.polled} uploads to poll`);
      sim.resetMaxInFlight();
      const poll = await w.request<PollOutcome>(
        { op: 'poll', uploadIds: uploaded.uploadIds, seconds: options.pollSeconds },
        (options.pollSeconds + 180) * 1000,
      );
      pollInFlight = sim.stats().maxInFlight;
      sim.settleHistory();
      const decided = await w.request<DecidedOutcome>(
        { op: 'await-decided', count: uploaded.uploadIds.length, timeoutMs: 60_000 },
        90_000,
      );
      return { poll, decided };
    });
    const { decided } = polled.result;
    log(`${options.polled} polled: ${decided.accepted} accepted after settling, ${decided.failed} failed`);

    return {
      inRow: {
        count: options.inRow,
        ms: row.result.ms,
        arrived: rowArrived,
        server: row.server,
        client: row.result.client,
        failures: row.result.failures,
      },
      concurrent: {
        count: options.concurrent,
        ms: together.result.ms,
        maxInFlight: togetherInFlight,
        arrived,
        server: together.server,
        client: together.result.client,
        failures: together.result.failures,
      },
      polled: {
        count: options.polled,
        seconds: options.pollSeconds,
        maxInFlight: pollInFlight,
        ...polled.result,
        server: polled.server,
      },
    };
  } finally {
    await sim.stop();
  }
}
