/**
 * `npm run bench`: throughput, CPU per byte and memory of the upload node against curl and
 * Node-RED's core `http request` node (also with everything on the same two cores), and what
 * 200 sequential, 50 concurrent and 1000 polled uploads cost.
 * It prints figures (tables, a Markdown table for the README, a JSON block); it asserts nothing.
 *
 *   node bench/run.js [--quick] [--sizes 64,256,1024]
 *
 * Part 1 runs the simulator's CLI in a child process and Node-RED in another (bench/nr-worker.js),
 * so each measures only itself; part 2 runs the simulator in this process to read its counters.
 */
import { journalFigures, journalRows, type JournalResult } from './journal';
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HEARTBEAT_PATH, SEGMENT_SIZE, CLOSING_SEGMENT, apiRoot, v2SegmentPath, type UploadPathParts } from '../lib/api';
import { readCertificate } from '../lib';
import { startSimulator } from '../simulator';
import type { Simulator, SimulatorStats } from '../simulator/types';
import type { ClientStats } from '../lib/types';
import type {
  CoreOutcome,
  DecidedOutcome,
  FlowSettings,
  LoadOutcome,
  PollOutcome,
  UploadItem,
  UploadOutcome,
  WorkerCommand,
  WorkerResponse,
} from './protocol';
import { MiB, fixed, markdownTable, mbPerSecond, median, sizeLabel, textTable } from './format';

interface Options {
  quick: boolean;
  sizesMiB: number[];
  repeats: number;
  inRow: number;
  concurrent: number;
  polled: number;
  pollSeconds: number;
  /** The file of the shared-core run, and its runs each way. */
  sharedMiB: number;
  sharedRepeats: number;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const sizesAt = argv.indexOf('--sizes');
  const sizesMiB = sizesAt >= 0 ? (argv[sizesAt + 1] ?? '').split(',').map(Number) : quick ? [64] : [64, 256, 1024];
  if (sizesMiB.length === 0 || sizesMiB.some((s) => !Number.isInteger(s) || s < 1 || s > 4096)) {
    throw new Error(`--sizes takes sizes in MiB separated by commas, each 1..4096 (e.g. --sizes 64,256,1024); got "${argv[sizesAt + 1] ?? ''}".`);
  }
  return quick
    ? { quick, sizesMiB, repeats: 3, inRow: 50, concurrent: 50, polled: 200, pollSeconds: 8, sharedMiB: 128, sharedRepeats: 3 }
    : { quick, sizesMiB, repeats: 3, inRow: 200, concurrent: 50, polled: 1000, pollSeconds: 20, sharedMiB: 512, sharedRepeats: 7 };
}

/** Who the benchmark reports as: the simulator's default `valid` certificate. */
const REPORTER = { organisationsnummer: '9990000045', undersokning: 'VINN', filformat: 'V40', referensperiod: '2024-01-31' };
const ROOT = path.join(__dirname, '..');

// ---------------------------------------------------------------------------------------------
// Child processes

/** Keeps the last lines a child printed, to show when it fails (a pipe nobody reads would stall it). */
function tail(child: ChildProcess, lines: string[], onLine?: (line: string) => void) {
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (lines.length > 40) lines.shift();
        onLine?.(line);
      }
    });
  }
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Ends a child we started: politely, then by force after a bounded wait. */
async function endChild(child: ChildProcess, politely: () => void, timeoutMs = 10_000): Promise<void> {
  politely();
  if (!(await waitExit(child, timeoutMs))) {
    child.kill('SIGKILL');
    await waitExit(child, timeoutMs);
  }
}

class Worker {
  private readonly child: ChildProcess;
  private readonly output: string[] = [];
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor(cpus?: string) {
    this.child = fork(path.join(__dirname, 'nr-worker.js'), [], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      ...(cpus && { execPath: 'taskset', execArgv: ['-c', cpus, process.execPath] }),
    });
    tail(this.child, this.output);
    this.child.on('message', (response: WorkerResponse) => {
      const waiter = this.pending.get(response.id);
      this.pending.delete(response.id);
      if (response.ok) waiter?.resolve(response.result);
      else waiter?.reject(new Error(`Node-RED worker: ${response.error}`));
    });
    this.child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`Node-RED worker ended (${signal ?? code}) while busy; its last output:\n${this.output.join('\n')}`));
      }
      this.pending.clear();
    });
  }

  request<T>(command: WorkerCommand, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`Node-RED worker: no answer to ${command.op} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, command });
    });
  }

  stop(): Promise<void> {
    return endChild(this.child, () => {
      if (this.child.connected) this.request({ op: 'stop' }, 10_000).catch(() => this.child.kill());
      else this.child.kill();
    });
  }
}

/** Runs fn with a freshly loaded worker (on the given CPUs) and always stops it. */
async function withWorker<T>(settings: FlowSettings, fn: (worker: Worker, loaded: LoadOutcome) => Promise<T>, cpus?: string): Promise<T> {
  const worker = new Worker(cpus);
  try {
    const loaded = await worker.request<LoadOutcome>({ op: 'load', settings }, 60_000);
    return await fn(worker, loaded);
  } finally {
    await worker.stop();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface SimulatorProcess {
  url: string;
  dir: string;
  caPath: string;
  certPath: string;
  passphrase: string;
  stop(): Promise<void>;
}

/** A command line run on the given CPUs (taskset), or as it is. */
function pinned(cpus: string | undefined, command: string[]): [string, string[]] {
  const [program, ...args] = cpus ? ['taskset', '-c', cpus, ...command] : command;
  return [program, args];
}

/** `node simulator/cli.js --port P --dir D --no-keep-files --quiet`, ready once it printed its URL. */
async function startSimulatorProcess(dir: string, cpus?: string): Promise<SimulatorProcess> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}/`;
  const child = spawn(
    ...pinned(cpus, [process.execPath, path.join(ROOT, 'simulator', 'cli.js'), '--port', String(port), '--dir', dir, '--no-keep-files', '--quiet']),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the simulator did not print ${url} within 30 s:\n${output.join('\n')}`)), 30_000);
    tail(child, output, (line) => {
      if (line.includes(url)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the simulator exited (${code}):\n${output.join('\n')}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill();
    throw err;
  }
  return {
    url,
    dir,
    // The CLI writes these into --dir (simulator/types.ts: `<name>.pfx`, ca.pem); `valid` uses the default passphrase.
    caPath: path.join(dir, 'ca.pem'),
    certPath: path.join(dir, 'valid.pfx'),
    passphrase: 'simulator',
    stop: () => endChild(child, () => child.kill('SIGTERM')),
  };
}

// ---------------------------------------------------------------------------------------------
// Files

/** Random-ish content, fast: one random MiB, its index stamped into each copy; starts with '<' like XML. */
async function writeTestFile(file: string, bytes: number): Promise<void> {
  const block = crypto.randomBytes(MiB);
  block.write('<?xml version="1.0" encoding="UTF-8"?><bench>', 0, 'latin1');
  const handle = await fs.open(file, 'w');
  try {
    for (let offset = 0, i = 0; offset < bytes; offset += MiB, i++) {
      block.writeUInt32BE(i, 64);
      await handle.write(block, 0, Math.min(MiB, bytes - offset));
    }
  } finally {
    await handle.close();
  }
}

/** Cuts the file into v2 segment files for curl (outside any timing). */
async function splitSegments(file: string, bytes: number, dir: string): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const handle = await fs.open(file, 'r');
  const buffer = Buffer.alloc(SEGMENT_SIZE);
  const segments: string[] = [];
  try {
    for (let offset = 0; offset < bytes; offset += SEGMENT_SIZE) {
      const { bytesRead } = await handle.read(buffer, 0, SEGMENT_SIZE, offset);
      const segment = path.join(dir, `segment-${segments.length}`);
      await fs.writeFile(segment, buffer.subarray(0, bytesRead));
      segments.push(segment);
    }
  } finally {
    await handle.close();
  }
  return segments;
}

function segmentUrl(base: string, segment: number, filnamn: string): string {
  const parts: UploadPathParts = { ...REPORTER, filnamn };
  return apiRoot(base, 'v2') + v2SegmentPath(segment, parts);
}

// ---------------------------------------------------------------------------------------------
// curl

interface CurlTls {
  certPem: string;
  keyPem: string;
  caPath: string;
}

interface CurlRun {
  /** From curl's start to its exit. */
  ms: number;
  /** curl's CPU time, user + system. */
  cpuMs: number;
}

/**
 * curl run by bash, which times it and then prints, with `times`, its own CPU time and
 * that of its children: curl's. Nothing else, such as bash starting, is in either figure.
 */
const TIMED_CURL = 'start=$EPOCHREALTIME; curl "$@"; code=$?; end=$EPOCHREALTIME; echo "bench-curl $start $end" >&2; times >&2; exit $code';

function runCurl(args: string[], cpus?: string): Promise<CurlRun & { stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...pinned(cpus, ['bash', '-c', TIMED_CURL, 'curl', ...args]), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => {
      // `times` prints the shell's user and system time, then (this line) its children's: "0m0.270s 0m0.220s".
      const timed = /^bench-curl ([\d.]+) ([\d.]+)\n.*\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/m.exec(stderr)?.slice(1).map(Number);
      if (code !== 0) reject(new Error(`curl exited ${code}: ${stderr.trim()}`));
      else if (!timed) reject(new Error(`bash (5 or later, for EPOCHREALTIME) did not time curl: ${stderr.trim()}`));
      else {
        const [start, end, userMin, userS, systemMin, systemS] = timed;
        resolve({ ms: (end - start) * 1000, cpuMs: (userMin * 60 + userS + systemMin * 60 + systemS) * 1000, stdout });
      }
    });
  });
}

/**
 * The same v2 upload with curl: a heartbeat into a cookie jar (not timed, as the flow's session is
 * already up when it is measured), then ONE curl process sending every segment and the closing
 * POST over one keep-alive connection (`--next`), timed from its start to its exit.
 */
async function curlUpload(target: Target, segments: string[], filnamn: string, cpus?: string): Promise<CurlRun> {
  const { url: base, tlsFiles, emptyFile, work } = target;
  const tlsArgs = ['--cert', tlsFiles.certPem, '--key', tlsFiles.keyPem, '--cacert', tlsFiles.caPath, '-sS'];
  const jar = path.join(work, 'cookies.txt');
  const beat = await runCurl([...tlsArgs, '-c', jar, '-o', '/dev/null', '-w', '%{http_code}', apiRoot(base, 'v2') + HEARTBEAT_PATH], cpus);
  if (beat.stdout !== '200') throw new Error(`curl heartbeat answered ${beat.stdout}`);
  const receipt = path.join(work, 'receipt.json');
  const parts = [...segments.map((file, k) => ({ file, k, out: '/dev/null' })), { file: emptyFile, k: CLOSING_SEGMENT, out: receipt }];
  const args = parts.flatMap(({ file, k, out }, i) => [
    ...(i > 0 ? ['--next'] : []),
    ...tlsArgs,
    '-b', jar,
    // Without this curl waits for "100 Continue" before each segment's body.
    '-H', 'Expect:',
    '-o', out,
    '-w', '%{http_code}\n',
    '-F', `File=@${file};filename=${filnamn}`,
    segmentUrl(base, k, filnamn),
  ]);
  const { ms, cpuMs, stdout } = await runCurl(args, cpus);
  const codes = stdout.trim().split('\n');
  if (codes.length !== parts.length || codes.some((c) => c !== '200')) throw new Error(`curl upload answered ${codes.join(',')}`);
  const deliveryId = /"deliveryId"\s*:\s*"([^"]+)"/i.exec(await fs.readFile(receipt, 'utf8'))?.[1];
  if (!deliveryId) throw new Error('curl upload: the closing segment answered no deliveryId');
  return { ms, cpuMs };
}

// ---------------------------------------------------------------------------------------------
// Part 1: throughput, CPU and memory

interface SizeResult {
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
  /** Highest RSS of the Node-RED process over its RSS once the flow was loaded (warm-up included). */
  peakGrowthMiB: number;
  /** Highest RSS growth within one measured upload, over the RSS at its start. */
  perUploadGrowthMiB: number;
}

interface CoreResult {
  bytes: number;
  ms: number[];
  mbps: number;
  growthMiB: number;
}

function assertUploaded(outcome: UploadOutcome, what: string): void {
  if (outcome.failures.length > 0 || outcome.uploadIds.length === 0) {
    throw new Error(`${what} failed: ${outcome.failures.join('; ') || 'no uploadId'}`);
  }
}

/** A simulator process and what the flows and curl need to reach it. */
interface Target {
  url: string;
  tlsFiles: CurlTls;
  settings: FlowSettings;
  /** The closing segment's content for curl. */
  emptyFile: string;
  /** curl's cookie jar and receipt go here. */
  work: string;
}

async function prepareTarget(sim: SimulatorProcess, work: string): Promise<Target> {
  await fs.mkdir(work, { recursive: true });
  // PEM copies of the .pfx for curl and the core tls-config node; the key file is the owner's only.
  const certificate = await readCertificate({ path: sim.certPath, passphrase: sim.passphrase });
  const certPem = path.join(work, 'client-cert.pem');
  const keyPem = path.join(work, 'client-key.pem');
  await fs.writeFile(certPem, certificate.cert, { mode: 0o600 });
  await fs.writeFile(keyPem, certificate.key, { mode: 0o600 });
  const emptyFile = path.join(work, 'empty');
  await fs.writeFile(emptyFile, '');
  return {
    url: sim.url,
    tlsFiles: { certPem, keyPem, caPath: sim.caPath },
    settings: { baseUrl: sim.url, certPath: sim.certPath, passphrase: sim.passphrase, caPath: sim.caPath, certPem, keyPem, ...REPORTER },
    emptyFile,
    work,
  };
}

interface BenchFile {
  mib: number;
  file: string;
  /** The same bytes as v2 segment files, for curl. */
  segments: string[];
}

async function withBenchFile<T>(work: string, mib: number, log: (line: string) => void, fn: (bench: BenchFile) => Promise<T>): Promise<T> {
  const file = path.join(work, `bench-${mib}MiB.xml`);
  const segmentsDir = path.join(work, `segments-${mib}`);
  try {
    await writeTestFile(file, mib * MiB);
    const segments = await splitSegments(file, mib * MiB, segmentsDir);
    log(`${sizeLabel(mib * MiB)}: ${segments.length} segments; file and segment files written`);
    return await fn({ mib, file, segments });
  } finally {
    await fs.rm(file, { force: true });
    await fs.rm(segmentsDir, { recursive: true, force: true });
  }
}

/**
 * The upload node (in `worker`) and curl send the same file, after one segment each way as
 * a warm-up (JIT, TLS session, F5 session, page cache), `repeats` times each, taking turns.
 */
async function sideBySide(
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
  const ours = async (filename: string) => {
    const outcome = await worker.request<UploadOutcome>({ op: 'upload', items: [{ filename, filnamn: `ours-${mib}-${++run}.xml` }], concurrent: false }, 15 * 60_000);
    assertUploaded(outcome, `upload node, ${label}`);
    return outcome;
  };
  const curl = (parts: string[]) => curlUpload(target, parts, `curl-${mib}-${++run}.xml`, cpus);
  await ours(segments[0]);
  await curl(segments.slice(0, 1));
  const oursRuns: UploadOutcome[] = [];
  const curlRuns: CurlRun[] = [];
  for (let r = 0; r < repeats; r++) {
    // Alternate who goes first, so that noise from the other engineers' jobs hits both.
    const order = r % 2 === 0 ? ['ours', 'curl'] : ['curl', 'ours'];
    for (const who of order) {
      if (who === 'ours') oursRuns.push(await ours(file));
      else curlRuns.push(await curl(segments));
    }
    log(`${label} run ${r + 1}: ours ${fixed(oursRuns[r].ms, 0)} ms ${fixed(oursRuns[r].cpuMicros / 1000, 0)} ms CPU, curl ${fixed(curlRuns[r].ms, 0)} ms ${fixed(curlRuns[r].cpuMs, 0)} ms CPU`);
  }
  const oursMs = oursRuns.map((o) => o.ms);
  const curlMs = curlRuns.map((c) => c.ms);
  const oursMBps = mbPerSecond(bytes, median(oursMs));
  const curlMBps = mbPerSecond(bytes, median(curlMs));
  const gib = bytes / (1024 * MiB);
  const oursCpuPerGiB = median(oursRuns.map((o) => o.cpuMicros / 1e6 / gib));
  const curlCpuPerGiB = median(curlRuns.map((c) => c.cpuMs / 1000 / gib));
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
    peakGrowthMiB: (Math.max(...oursRuns.map((o) => o.peakRss)) - loaded.loadedRss) / MiB,
    perUploadGrowthMiB: Math.max(...oursRuns.map((o) => o.peakRss - o.startRss)) / MiB,
  };
}

async function throughput(options: Options, work: string, log: (line: string) => void): Promise<{ sizes: SizeResult[]; core: CoreResult }> {
  const sim = await startSimulatorProcess(path.join(work, 'simulator'));
  try {
    const target = await prepareTarget(sim, path.join(work, 'target'));
    let core: CoreResult | undefined;
    const sizes: SizeResult[] = [];
    for (const mib of options.sizesMiB) {
      await withBenchFile(work, mib, log, async (bench) => {
        if (!core) {
          // One segment's worth through the core nodes (warm-up + repeats), in a Node-RED process of its own.
          const firstSegment = (await fs.stat(bench.segments[0])).size;
          const names = Array.from({ length: options.repeats + 1 }, (_, i) => `core-${i}.xml`);
          const outcome = await withWorker(target.settings, (worker) =>
            worker.request<CoreOutcome>(
              {
                op: 'core-segments',
                heartbeatUrl: apiRoot(sim.url, 'v2') + HEARTBEAT_PATH,
                segmentUrls: names.map((n) => segmentUrl(sim.url, 0, n)),
                segmentFile: bench.segments[0],
                filnamn: names,
              },
              10 * 60_000,
            ),
          );
          if (outcome.statusCodes.some((c) => c !== 200)) throw new Error(`core http request answered ${outcome.statusCodes.join(',')}`);
          const measured = outcome.ms.slice(1);
          core = { bytes: firstSegment, ms: measured, mbps: mbPerSecond(firstSegment, median(measured)), growthMiB: (outcome.peakRss - outcome.startRss) / MiB };
          log(`core http request, one segment (${firstSegment} bytes): ${measured.map((m) => fixed(m, 0)).join(' / ')} ms`);
        }
        sizes.push(await withWorker(target.settings, (worker, loaded) => sideBySide(worker, loaded, target, bench, options.repeats, log)));
      });
    }
    if (!core) throw new Error('no size was measured');
    return { sizes, core };
  } finally {
    await sim.stop();
  }
}

interface SharedCoresResult {
  /** The CPUs everything ran on, or undefined where it could not be pinned (`how` says why). */
  cpus?: string;
  how: string;
  size: SizeResult;
}

/**
 * The first two CPUs this process may use, for taskset. Where Node-RED shares its cores with
 * other work (here: the server), its CPU per byte is what separates it from curl.
 */
function twoCores(): { cpus?: string; how: string } {
  if (spawnSync('taskset', ['--version']).status !== 0) return { how: 'not pinned: taskset (util-linux) is not installed' };
  const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  const cpus = allowed.split(',').flatMap((range) => {
    const [from, to = from] = range.split('-').map(Number);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
  if (cpus.length < 2) return { how: `not pinned: this process may use CPUs "${allowed}" only` };
  return { cpus: `${cpus[0]},${cpus[1]}`, how: `simulator, Node-RED and curl pinned to CPUs ${cpus[0]},${cpus[1]} with taskset` };
}

/** Part 1 again for one file, with the simulator, the Node-RED process and curl on the same two cores. */
async function sharedCores(options: Options, work: string, log: (line: string) => void): Promise<SharedCoresResult> {
  const { cpus, how } = twoCores();
  log(`shared cores: ${how}`);
  const sim = await startSimulatorProcess(path.join(work, 'simulator-shared'), cpus);
  try {
    const target = await prepareTarget(sim, path.join(work, 'target-shared'));
    const size = await withBenchFile(work, options.sharedMiB, log, (bench) =>
      withWorker(target.settings, (worker, loaded) => sideBySide(worker, loaded, target, bench, options.sharedRepeats, log, cpus), cpus),
    );
    return { cpus, how, size };
  } finally {
    await sim.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Part 2: counts (simulator in this process, so its counters and in-flight requests can be read)

/** Requests the in-process simulator is handling right now, and the most at once since reset. */
function countInFlight() {
  const counter = { now: 0, max: 0, reset() { this.max = this.now; } };
  const emit = https.Server.prototype.emit;
  https.Server.prototype.emit = function (this: https.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'request') {
      counter.now++;
      counter.max = Math.max(counter.max, counter.now);
      (args[1] as http.ServerResponse).once('close', () => counter.now--);
    }
    return emit.apply(this, [event, ...args] as Parameters<typeof emit>);
  } as typeof emit;
  return counter;
}

function statsDiff(before: SimulatorStats, after: SimulatorStats): SimulatorStats {
  const diff = { ...after };
  for (const key of Object.keys(diff) as Array<keyof SimulatorStats>) diff[key] = after[key] - before[key];
  return diff;
}

interface CountsResult {
  inRow: { count: number; ms: number; arrived: number; server: SimulatorStats; client: ClientStats; failures: string[] };
  concurrent: { count: number; ms: number; maxInFlight: number; arrived: number; server: SimulatorStats; client: ClientStats; failures: string[] };
  polled: {
    count: number;
    seconds: number;
    maxInFlight: number;
    poll: PollOutcome;
    decided: DecidedOutcome;
    server: SimulatorStats;
  };
}

/** Distinct files the simulator holds whose filnamn starts with prefix. */
function arrivedWith(sim: Simulator, prefix: string): number {
  return new Set(sim.deliveries().map((d) => d.filnamn).filter((n) => n.startsWith(prefix))).size;
}

function smallItems(prefix: string, count: number, bytes: number): UploadItem[] {
  return Array.from({ length: count }, (_, i) => ({ filnamn: `${prefix}-${i}.xml`, bytes }));
}

async function counts(options: Options, work: string, log: (line: string) => void): Promise<CountsResult> {
  const inFlight = countInFlight();
  const sim: Simulator = await startSimulator({ dir: path.join(work, 'simulator-counts'), keepFiles: false, historyDelayMs: 60 * 60_000 });
  try {
    const valid = sim.certificates.valid;
    const certificate = await readCertificate({ path: valid.path, passphrase: valid.passphrase });
    const certPem = path.join(work, 'counts-cert.pem');
    const keyPem = path.join(work, 'counts-key.pem');
    await fs.writeFile(certPem, certificate.cert, { mode: 0o600 });
    await fs.writeFile(keyPem, certificate.key, { mode: 0o600 });
    const settings: FlowSettings = { baseUrl: sim.url, certPath: valid.path, passphrase: valid.passphrase, caPath: sim.caPath, certPem, keyPem, ...REPORTER };

    // Each scenario gets a fresh Node-RED (a fresh config node: a new session, a new pool).
    const measure = async <T>(fn: (worker: Worker) => Promise<T>) => {
      const before = sim.stats();
      const result = await withWorker(settings, fn);
      return { result, server: statsDiff(before, sim.stats()) };
    };

    const row = await measure((w) => w.request<UploadOutcome>({ op: 'upload', items: smallItems('row', options.inRow, 2048), concurrent: false }, 10 * 60_000));
    const rowArrived = arrivedWith(sim, 'row-');
    log(`${options.inRow} in a row: ${fixed(row.result.ms, 0)} ms, ${row.server.heartbeats} heartbeats, ${row.server.tlsHandshakes} TLS handshakes`);

    inFlight.reset();
    const together = await measure((w) =>
      w.request<UploadOutcome>({ op: 'upload', items: smallItems('together', options.concurrent, 256 * 1024), concurrent: true }, 10 * 60_000),
    );
    const arrived = arrivedWith(sim, 'together-');
    const togetherInFlight = inFlight.max;
    log(`${options.concurrent} at once: max ${togetherInFlight} requests in flight at the simulator, ${together.server.heartbeats} heartbeats, ${arrived} arrived`);

    let pollInFlight = 0;
    const polled = await measure(async (w) => {
      const uploaded = await w.request<UploadOutcome>({ op: 'upload', items: smallItems('polled', options.polled, 1024), concurrent: true }, 10 * 60_000);
      assertUploaded(uploaded, `${options.polled} uploads to poll`);
      inFlight.reset();
      const poll = await w.request<PollOutcome>({ op: 'poll', uploadIds: uploaded.uploadIds, seconds: options.pollSeconds }, (options.pollSeconds + 180) * 1000);
      pollInFlight = inFlight.max;
      sim.settleHistory();
      const decided = await w.request<DecidedOutcome>({ op: 'await-decided', count: uploaded.uploadIds.length, timeoutMs: 60_000 }, 90_000);
      return { poll, decided };
    });
    log(`${options.polled} polled: ${polled.result.decided.accepted} accepted after settling, ${polled.result.decided.failed} failed`);

    return {
      inRow: { count: options.inRow, ms: row.result.ms, arrived: rowArrived, server: row.server, client: row.result.client, failures: row.result.failures },
      concurrent: {
        count: options.concurrent,
        ms: together.result.ms,
        maxInFlight: togetherInFlight,
        arrived,
        server: together.server,
        client: together.result.client,
        failures: together.result.failures,
      },
      polled: { count: options.polled, seconds: options.pollSeconds, maxInFlight: pollInFlight, ...polled.result, server: polled.server },
    };
  } finally {
    await sim.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function machine() {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

function sizeTable(sizes: SizeResult[]): string {
  return textTable(
    ['file', 'segments', 'upload node MB/s', 'curl MB/s', 'ours/curl', 'CPU s/GiB ours', 'curl', 'ours/curl', 'NR peak RSS growth', 'per upload', 'ours ms (runs)', 'curl ms (runs)'],
    sizes.map((s) => [
      sizeLabel(s.bytes),
      String(s.segments),
      fixed(s.oursMBps),
      fixed(s.curlMBps),
      fixed(s.ratio, 2),
      fixed(s.oursCpuPerGiB, 2),
      fixed(s.curlCpuPerGiB, 2),
      fixed(s.cpuRatio, 2),
      `${fixed(s.peakGrowthMiB)} MiB`,
      `${fixed(s.perUploadGrowthMiB)} MiB`,
      s.oursMs.map((x) => fixed(x, 0)).join(' / '),
      s.curlMs.map((x) => fixed(x, 0)).join(' / '),
    ]),
  );
}

function report(
  options: Options,
  part1: { sizes: SizeResult[]; core: CoreResult },
  shared: SharedCoresResult,
  part2: CountsResult,
  part3: JournalResult,
  started: number,
): void {
  const m = machine();
  const command = `npm run bench${options.quick ? ' -- --quick' : ''}${process.argv.includes('--sizes') ? ` -- --sizes ${options.sizesMiB.join(',')}` : ''}`;
  const out = (s = '') => process.stdout.write(`${s}\n`);
  out();
  out(`== Throughput, CPU and memory (median of ${options.repeats}, after one warm-up; MB = 10^6 bytes; CPU: the whole Node-RED process) ==`);
  out(sizeTable(part1.sizes));
  out(
    `core http request + tls-config, one segment (${part1.core.bytes} bytes in memory): ${fixed(part1.core.mbps)} MB/s ` +
      `(${part1.core.ms.map((x) => fixed(x, 0)).join(' / ')} ms), RSS growth ${fixed(part1.core.growthMiB)} MiB`,
  );
  out('targets: ours/curl >= 0.9; CPU per GiB at most 2x curl\'s; Node-RED peak RSS growth < 64 MiB whatever the size');
  out();
  out(`== The same on two shared cores: ${shared.how} (median of ${options.sharedRepeats}) ==`);
  out(sizeTable([shared.size]));
  out('target: ours/curl >= 0.95');
  out();
  out('== Many uploads through one config node (fresh Node-RED per line) ==');
  const p = part2;
  out(
    textTable(
      ['scenario', 'time', 'heartbeats (server)', 'TLS handshakes (server)', 'connections (client)', 'max in flight', 'arrived', 'failures'],
      [
        [`${p.inRow.count} in a row`, `${fixed(p.inRow.ms, 0)} ms`, String(p.inRow.server.heartbeats), String(p.inRow.server.tlsHandshakes), String(p.inRow.client.connections), '-', String(p.inRow.arrived), String(p.inRow.failures.length)],
        [`${p.concurrent.count} at once`, `${fixed(p.concurrent.ms, 0)} ms`, String(p.concurrent.server.heartbeats), String(p.concurrent.server.tlsHandshakes), String(p.concurrent.client.connections), String(p.concurrent.maxInFlight), String(p.concurrent.arrived), String(p.concurrent.failures.length)],
      ],
    ),
  );
  out('targets: 1 heartbeat per session; 1 connection in a row (keep-alive); bounded concurrency; all arrive');
  out();
  const samples = p.polled.poll.samples;
  const pick = (f: (s: (typeof samples)[number]) => number) => ({ first: f(samples[0]), last: f(samples[samples.length - 1]), max: Math.max(...samples.map(f)) });
  const cpu = pick((s) => s.cpuPercent);
  const rss = pick((s) => s.rssMiB);
  out(`== ${p.polled.count} uploads polled at once by one history node (interval 1 s), ${p.polled.seconds} s ==`);
  out(textTable(['at s', 'CPU % of a core', 'RSS MiB', 'history requests'], samples.map((s) => [fixed(s.second), fixed(s.cpuPercent), fixed(s.rssMiB), String(s.historyRequests)])));
  out(
    `first/last/max: CPU ${fixed(cpu.first)}/${fixed(cpu.last)}/${fixed(cpu.max)} %, RSS ${fixed(rss.first)}/${fixed(rss.last)}/${fixed(rss.max)} MiB; ` +
      `after settling: ${p.polled.decided.accepted} accepted, ${p.polled.decided.rejected} rejected, ${p.polled.decided.pending} pending, ${p.polled.decided.failed} failed (Catch), ${p.polled.count - p.polled.decided.accepted - p.polled.decided.rejected - p.polled.decided.pending - p.polled.decided.failed} undecided when the bench stopped waiting; ` +
      `heartbeats ${p.polled.server.heartbeats}; at most ${p.polled.maxInFlight} history requests in flight at the simulator; ` +
      `${p.polled.server.tlsHandshakes} TLS handshakes (uploads included)`,
  );
  out();
  out(`machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}; load average at start ${m.loadAverageAtStart.join(' ')}; took ${fixed((Date.now() - started) / 1000, 0)} s`);
  out();
  out('== For the README (Performance) ==');
  out();
  out(`Measured with \`${command}\` on ${m.cpu}, ${m.cores} cores, Node ${m.node}, against the bundled simulator over loopback TLS.`);
  out();
  out(
    markdownTable(
      ['what', 'figure'],
      [
        ...part1.sizes.map((s) => [
          `upload node, ${sizeLabel(s.bytes)} file (${s.segments} segments)`,
          `${fixed(s.oursMBps)} MB/s; curl ${fixed(s.curlMBps)} MB/s (ratio ${fixed(s.ratio, 2)}); CPU ${fixed(s.oursCpuPerGiB, 2)} s/GiB, curl ${fixed(s.curlCpuPerGiB, 2)} (${fixed(s.cpuRatio, 2)}×); Node-RED peak RSS growth ${fixed(s.peakGrowthMiB)} MiB`,
        ]),
        [
          `simulator, Node-RED and curl on the same 2 cores, ${sizeLabel(shared.size.bytes)} file`,
          `${fixed(shared.size.oursMBps)} MB/s; curl ${fixed(shared.size.curlMBps)} MB/s (ratio ${fixed(shared.size.ratio, 2)}); CPU ${fixed(shared.size.oursCpuPerGiB, 2)} s/GiB, curl ${fixed(shared.size.curlCpuPerGiB, 2)} (${fixed(shared.size.cpuRatio, 2)}×)${shared.cpus ? '' : ` (${shared.how})`}`,
        ],
        [`core \`http request\` + \`tls-config\`, one segment in memory`, `${fixed(part1.core.mbps)} MB/s`],
        [`${p.inRow.count} small uploads in a row`, `${p.inRow.server.heartbeats} heartbeat(s), ${p.inRow.server.tlsHandshakes} TLS connection(s), ${fixed(p.inRow.ms / p.inRow.count, 1)} ms per upload`],
        [`${p.concurrent.count} concurrent uploads`, `at most ${p.concurrent.maxInFlight} requests in flight, ${p.concurrent.server.heartbeats} heartbeat(s), ${p.concurrent.arrived}/${p.concurrent.count} arrived`],
        [`${p.polled.count} uploads polled every second`, `CPU ${fixed(cpu.first)} → ${fixed(cpu.last)} % of a core (max ${fixed(cpu.max)}), RSS ${fixed(rss.first)} → ${fixed(rss.last)} MiB (max ${fixed(rss.max)}), ~${fixed(median(samples.map((s) => s.historyRequests)), 0)} requests/s`],
        ...journalRows(part3),
      ],
    ),
  );
  out();
  out('== JSON ==');
  out(JSON.stringify({ command, machine: m, options, throughput: part1, sharedCores: shared, counts: part2, journal: part3 }, null, 2));
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-m2m-bench-'));
  const log = (line: string) => process.stderr.write(`[bench ${fixed((Date.now() - started) / 1000, 0)} s] ${line}\n`);
  process.env.SCB_M2M_BENCH_JOURNAL = path.join(work, 'nr-journal');
  try {
    log(`sizes ${options.sizesMiB.join(', ')} MiB${options.quick ? ' (quick)' : ''}; work dir ${work}`);
    const part1 = await throughput(options, work, log);
    const shared = await sharedCores(options, work, log);
    const part2 = await counts(options, work, log);
    const part3 = await journalFigures(options, new Map(part1.sizes.map((s) => [s.bytes / MiB, median(s.oursMs)])), work, log);
    report(options, part1, shared, part2, part3, started);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
