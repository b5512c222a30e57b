/**
 * The processes the benchmark starts and ends: its Node-RED worker (bench/nr-worker.ts), the
 * simulator's CLI and timed curl runs, each optionally pinned to CPUs with taskset.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { pinned, runNode, type NodeProcess } from '../scripts/process';
import type { FlowSettings, LoadOutcome, UploadOutcome, WorkerCommand, WorkerResponse } from './protocol';

const ROOT = path.join(__dirname, '..');

/** The last lines of what a child printed, to show when it fails. */
function lastLines(run: NodeProcess): string {
  return run.output().split('\n').slice(-40).join('\n');
}

// ---------------------------------------------------------------------------------------------
// The Node-RED worker

export class Worker {
  private readonly run: NodeProcess;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor(cpus?: string) {
    this.run = runNode(path.join(__dirname, 'nr-worker.js'), [], { cwd: ROOT, cpus, ipc: true });
    this.run.child.on('message', (response: WorkerResponse) => {
      const waiter = this.pending.get(response.id);
      this.pending.delete(response.id);
      if (response.ok) waiter?.resolve(response.result);
      else waiter?.reject(new Error(`Node-RED worker: ${response.error}`));
    });
    void this.run.exited.then((code) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(
          new Error(`Node-RED worker ended (${code}) while busy; its last output:\n${lastLines(this.run)}`),
        );
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
      this.run.child.send({ id, command });
    });
  }

  /** Asks the worker to unload its flows and end; one that does not is ended by signal. */
  async stop(): Promise<void> {
    if (this.run.child.connected) await this.request({ op: 'stop' }, 10_000).catch(() => undefined);
    await this.run.stop();
  }
}

/** Runs fn with a freshly loaded worker (on the given CPUs) and always stops it. */
export async function withWorker<T>(
  settings: FlowSettings,
  fn: (worker: Worker, loaded: LoadOutcome) => Promise<T>,
  cpus?: string,
): Promise<T> {
  const worker = new Worker(cpus);
  try {
    const loaded = await worker.request<LoadOutcome>({ op: 'load', settings }, 60_000);
    return await fn(worker, loaded);
  } finally {
    await worker.stop();
  }
}

/** An upload the worker reports as failed, or without an uploadId, ends the benchmark. */
export function assertUploaded(outcome: UploadOutcome, what: string): void {
  if (outcome.failures.length > 0 || outcome.uploadIds.length === 0) {
    throw new Error(`${what} failed: ${outcome.failures.join('; ') || 'no uploadId'}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The simulator's CLI

export interface SimulatorProcess {
  url: string;
  dir: string;
  caPath: string;
  certPath: string;
  passphrase: string;
  stop(): Promise<void>;
}

/**
 * `node simulator/cli.js --port 0 --dir D --no-keep-files --quiet`, ready once it printed its URL
 * (in a new dir, port 0 is any free port).
 */
export async function startSimulatorProcess(dir: string, cpus?: string): Promise<SimulatorProcess> {
  const cli = path.join(ROOT, 'simulator', 'cli.js');
  const run = runNode(cli, ['--port', '0', '--dir', dir, '--no-keep-files', '--quiet'], { cpus });
  let url: string;
  try {
    [, url] = await run.waitFor(
      /listening on (https:\/\/127\.0\.0\.1:\d+\/)/,
      30_000,
      'the simulator printing its URL',
    );
  } catch (err) {
    await run.kill();
    throw err;
  }
  return {
    url,
    dir,
    // The CLI writes these into --dir (simulator/types.ts: `<name>.pfx`, ca.pem); `valid` uses the default passphrase.
    caPath: path.join(dir, 'ca.pem'),
    certPath: path.join(dir, 'valid.pfx'),
    passphrase: 'simulator',
    stop: async () => void (await run.stop()),
  };
}

// ---------------------------------------------------------------------------------------------
// curl

export interface CurlRun {
  /** From curl's start to its exit. */
  ms: number;
  /** curl's CPU time, user + system. */
  cpuMs: number;
}

/**
 * curl run by bash, which times it and then prints, with `times`, its own CPU time and
 * that of its children: curl's. Nothing else, such as bash starting, is in either figure.
 */
const TIMED_CURL =
  'start=$EPOCHREALTIME; curl "$@"; code=$?; end=$EPOCHREALTIME; ' +
  'echo "bench-curl $start $end" >&2; times >&2; exit $code';

export function runCurl(args: string[], cpus?: string): Promise<CurlRun & { stdout: string }> {
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
      const timed = /^bench-curl ([\d.]+) ([\d.]+)\n.*\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/m
        .exec(stderr)
        ?.slice(1)
        .map(Number);
      if (code !== 0) reject(new Error(`curl exited ${code}: ${stderr.trim()}`));
      else if (!timed) reject(new Error(`bash (5 or later, for EPOCHREALTIME) did not time curl: ${stderr.trim()}`));
      else {
        const [start, end, userMin, userS, systemMin, systemS] = timed;
        const cpuMs = (userMin * 60 + userS + systemMin * 60 + systemS) * 1000;
        resolve({ ms: (end - start) * 1000, cpuMs, stdout });
      }
    });
  });
}
