/**
 * The messages between the benchmark (bench/runner.ts) and its Node-RED worker
 * (bench/nr-worker.ts), a separate process so that its memory and CPU are its own.
 */
import type { ClientStats } from '../lib/types';

/** What the worker's flows need to reach the simulator. */
export interface FlowSettings {
  /** e.g. `https://127.0.0.1:45678/`. */
  baseUrl: string;
  certPath: string;
  /** Given to the worker through IPC only, never printed. */
  passphrase: string;
  caPath: string;
  organisationsnummer: string;
  undersokning: string;
  filformat: string;
  referensperiod: string;
  /** PEM files of the same certificate, for the core `tls-config` node. */
  certPem: string;
  keyPem: string;
}

/** One file for the upload node: a path (streamed by the node) or `bytes` generated in memory. */
export interface UploadItem {
  filnamn: string;
  filename?: string;
  bytes?: number;
}

export type WorkerCommand =
  | { op: 'load'; settings: FlowSettings }
  /**
   * Sends the items through the upload node, one after the other or all at once; `via: 'client'`
   * sends files through the config node's client itself (no upload node: no journal, no SHA-256).
   */
  | { op: 'upload'; items: UploadItem[]; concurrent: boolean; via?: 'node' | 'client' }
  /** Sends every id to the history node (poll mode) at once and samples CPU and RSS each second. */
  | { op: 'poll'; uploadIds: string[]; seconds: number }
  /** Waits until the history node has decided `count` polls. */
  | { op: 'await-decided'; count: number; timeoutMs: number }
  /** The core `http request` node: a heartbeat, then one segment to each URL in turn. */
  | { op: 'core-segments'; heartbeatUrl: string; segmentUrls: string[]; segmentFile: string; filnamn: string[] }
  /** The journal's SHA-256 of `bytes` bytes alone, fed in 1 MiB chunks already in memory as an upload feeds it. */
  | { op: 'sha256'; bytes: number }
  | { op: 'stop' };

export interface UploadOutcome {
  ms: number;
  uploadIds: string[];
  failures: string[];
  /** RSS when the command started, and its highest sample (every 20 ms) while it ran. */
  startRss: number;
  peakRss: number;
  /** CPU time (user + system) of the whole worker process while the command ran, in microseconds. */
  cpuMicros: number;
  client: ClientStats;
}

export interface Sha256Outcome {
  /** CPU time (user + system) of the worker process while it hashed, in microseconds. */
  cpuMicros: number;
}

export interface Sample {
  /** Seconds since the polls started, when the sample was taken. */
  second: number;
  /** CPU time of the worker in that second, as % of one core. */
  cpuPercent: number;
  rssMiB: number;
  /** Requests the client made since the previous sample. */
  historyRequests: number;
}

export interface PollOutcome {
  samples: Sample[];
  pendingAtEnd: number;
  client: ClientStats;
}

export interface DecidedOutcome {
  accepted: number;
  rejected: number;
  pending: number;
  /** Polls that ended in a Catch; `failures` shows the first few. */
  failed: number;
  failures: string[];
  client: ClientStats;
}

export interface CoreOutcome {
  /** Milliseconds of each segment POST, inject to answer. */
  ms: number[];
  statusCodes: number[];
  startRss: number;
  peakRss: number;
}

export interface LoadOutcome {
  /** RSS once the flow is started, before any upload: the baseline of memory growth. */
  loadedRss: number;
}

export interface WorkerRequest {
  id: number;
  command: WorkerCommand;
}

export type WorkerResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
