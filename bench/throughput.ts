/**
 * Part 1: throughput, CPU per byte and memory of the upload node (in a Node-RED worker) against
 * curl, each sending the same file to a simulator process; and one segment through Node-RED's core
 * `http request` node.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { HEARTBEAT_PATH, apiRoot } from '../lib/api';
import { type BenchFile, withBenchFile } from './files';
import { MiB, fixed, mbPerSecond, median, runsMs, sizeLabel } from './format';
import type { Options } from './options';
import type { CoreOutcome, LoadOutcome, Sha256Outcome, UploadOutcome } from './protocol';
import { type CurlRun, type Worker, assertUploaded, startSimulatorProcess, withWorker } from './runner';
import { type Target, curlUpload, prepareTarget, segmentUrl } from './target';

export interface SizeResult {
  bytes: number;
  segments: number;
  oursMs: number[];
  curlMs: number[];
  oursMBps: number;
  curlMBps: number;
  ratio: number;
  /** CPU seconds per GiB sent (medians): the whole Node-RED process, and curl. */
  oursCpuPerGiB: number;
  curlCpuPerGiB: number;
  cpuRatio: number;
  /**
   * The same file through the config node's client alone, in the same process and the same runs
   * (no upload node: no journal, no SHA-256): what the node adds to the transport.
   */
  client: { ms: number[]; mbps: number; ratio: number; cpuPerGiB: number; cpuRatio: number };
  /**
   * The journal's SHA-256 of the file's bytes alone, in the same process after each run (no
   * read, no send): what the upload node is expected to add to the client.
   */
  sha256CpuPerGiB: number;
  /** Highest RSS of the Node-RED process over its RSS once the flow was loaded (warm-up included). */
  peakGrowthMiB: number;
  /** Highest RSS growth within one measured upload, over the RSS at its start. */
  perUploadGrowthMiB: number;
}

export interface CoreResult {
  bytes: number;
  ms: number[];
  mbps: number;
  growthMiB: number;
}

/**
 * The upload node (in `worker`), the config node's client alone (same worker) and curl send the
 * same file, after one segment each way as a warm-up (JIT, TLS session, F5 session, page cache),
 * `repeats` times each, taking turns.
 */
export async function sideBySide(
  worker: Worker,
  loaded: LoadOutcome,
  target: Target,
  { mib, file, segments }: BenchFile,
  repeats: number,
  log: (line: string) => void,
  cpus?: string,
): Promise<SizeResult> {
  const bytes = mib * MiB;
  const label = `${sizeLabel(bytes)}${cpus ? ` on CPUs ${cpus}` : ''}`;
  let run = 0;
  const viaWorker = async (via: 'node' | 'client', filename: string) => {
    const items = [{ filename, filnamn: `${via}-${mib}-${++run}.xml` }];
    const outcome = await worker.request<UploadOutcome>({ op: 'upload', items, concurrent: false, via }, 15 * 60_000);
    assertUploaded(outcome, `${via === 'node' ? 'upload node' : 'client alone'}, ${label}`);
    return outcome;
  };
  const curl = (parts: string[]) => curlUpload(target, parts, `curl-${mib}-${++run}.xml`, cpus);
  await viaWorker('node', segments[0]);
  await viaWorker('client', segments[0]);
  await curl(segments.slice(0, 1));
  const oursRuns: UploadOutcome[] = [];
  const clientRuns: UploadOutcome[] = [];
  const curlRuns: CurlRun[] = [];
  const sha256Runs: Sha256Outcome[] = [];
  const turns = ['ours', 'client', 'curl'];
  for (let r = 0; r < repeats; r++) {
    // Each goes first in turn, so that noise from the other engineers' jobs hits all alike.
    for (const who of [...turns.slice(r % 3), ...turns.slice(0, r % 3)]) {
      if (who === 'ours') oursRuns.push(await viaWorker('node', file));
      else if (who === 'client') clientRuns.push(await viaWorker('client', file));
      else curlRuns.push(await curl(segments));
    }
    sha256Runs.push(await worker.request<Sha256Outcome>({ op: 'sha256', bytes }, 60_000));
    const [o, k, c] = [oursRuns[r], clientRuns[r], curlRuns[r]];
    log(
      `${label} run ${r + 1}: ours ${fixed(o.ms, 0)} ms ${fixed(o.cpuMicros / 1000, 0)} ms CPU, ` +
        `client alone ${fixed(k.ms, 0)} ms ${fixed(k.cpuMicros / 1000, 0)} ms CPU, ` +
        `curl ${fixed(c.ms, 0)} ms ${fixed(c.cpuMs, 0)} ms CPU, SHA-256 alone ${fixed(sha256Runs[r].cpuMicros / 1000, 0)} ms CPU`,
    );
  }
  const oursMs = oursRuns.map((o) => o.ms);
  const curlMs = curlRuns.map((c) => c.ms);
  const oursMBps = mbPerSecond(bytes, median(oursMs));
  const curlMBps = mbPerSecond(bytes, median(curlMs));
  const gib = bytes / (1024 * MiB);
  const cpuPerGiB = (runs: Array<{ cpuMicros: number }>) => median(runs.map((o) => o.cpuMicros / 1e6 / gib));
  const oursCpuPerGiB = cpuPerGiB(oursRuns);
  const curlCpuPerGiB = median(curlRuns.map((c) => c.cpuMs / 1000 / gib));
  const clientMs = clientRuns.map((k) => k.ms);
  const clientMBps = mbPerSecond(bytes, median(clientMs));
  return {
    bytes,
    segments: segments.length,
    oursMs,
    curlMs,
    oursMBps,
    curlMBps,
    ratio: oursMBps / curlMBps,
    oursCpuPerGiB,
    curlCpuPerGiB,
    cpuRatio: oursCpuPerGiB / curlCpuPerGiB,
    client: {
      ms: clientMs,
      mbps: clientMBps,
      ratio: clientMBps / curlMBps,
      cpuPerGiB: cpuPerGiB(clientRuns),
      cpuRatio: cpuPerGiB(clientRuns) / curlCpuPerGiB,
    },
    sha256CpuPerGiB: cpuPerGiB(sha256Runs),
    peakGrowthMiB: (Math.max(...oursRuns.map((o) => o.peakRss)) - loaded.loadedRss) / MiB,
    perUploadGrowthMiB: Math.max(...oursRuns.map((o) => o.peakRss - o.startRss)) / MiB,
  };
}

/** One segment's worth through the core nodes (warm-up + repeats), in a Node-RED process of its own. */
async function coreSegment(target: Target, segmentFile: string, repeats: number): Promise<CoreResult> {
  const bytes = (await fs.stat(segmentFile)).size;
  const names = Array.from({ length: repeats + 1 }, (_, i) => `core-${i}.xml`);
  const outcome = await withWorker(target.settings, (worker) =>
    worker.request<CoreOutcome>(
      {
        op: 'core-segments',
        heartbeatUrl: apiRoot(target.url, 'v2') + HEARTBEAT_PATH,
        segmentUrls: names.map((n) => segmentUrl(target.url, 0, n)),
        segmentFile,
        filnamn: names,
      },
      10 * 60_000,
    ),
  );
  if (outcome.statusCodes.some((c) => c !== 200)) {
    throw new Error(`core http request answered ${outcome.statusCodes.join(',')}`);
  }
  const ms = outcome.ms.slice(1);
  return { bytes, ms, mbps: mbPerSecond(bytes, median(ms)), growthMiB: (outcome.peakRss - outcome.startRss) / MiB };
}

export async function throughput(
  options: Options,
  work: string,
  log: (line: string) => void,
): Promise<{ sizes: SizeResult[]; core: CoreResult }> {
  const sim = await startSimulatorProcess(path.join(work, 'simulator'));
  try {
    const target = await prepareTarget(sim, path.join(work, 'target'));
    let core: CoreResult | undefined;
    const sizes: SizeResult[] = [];
    for (const mib of options.sizesMiB) {
      await withBenchFile(work, mib, log, async (bench) => {
        if (!core) {
          core = await coreSegment(target, bench.segments[0], options.repeats);
          log(`core http request, one segment (${core.bytes} bytes): ${runsMs(core.ms)} ms`);
        }
        sizes.push(
          await withWorker(target.settings, (worker, loaded) =>
            sideBySide(worker, loaded, target, bench, options.repeats, log),
          ),
        );
      });
    }
    if (!core) throw new Error('no size was measured');
    return { sizes, core };
  } finally {
    await sim.stop();
  }
}
