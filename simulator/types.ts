/**
 * The public shape of the SCB M2M simulator: tests, the benchmark, `npm start` and the
 * `scb-m2m-simulator` command all use it. Change it deliberately.
 */
import type { ScbStatus, UploadPathParts } from '../lib/api';

/** Who a generated client certificate belongs to and what it may deliver. */
export interface SimulatorClientSpec {
  /** Key in `Simulator.certificates`, also the file name `<name>.pfx`. */
  name: string;
  organisationsnummer: string;
  /** e.g. ['VINN'] or ['VINN', 'KRITA']. */
  undersokningar: string[];
  /** Formats it may deliver; empty or absent: any. */
  filformat?: string[];
  /** Default 'valid'. */
  kind?: 'valid' | 'expired' | 'not-yet-valid' | 'revoked' | 'legacy' | 'untrusted';
  /** Default 'simulator'. */
  passphrase?: string;
}

/** Property names of history records: camelCase, .NET PascalCase, or SCB's `Rapporthuvud` model with rows. */
export type SimulatorHistoryShape = 'camel' | 'pascal' | 'rapporthuvud';

export interface SimulatorOptions {
  /**
   * Always bound to 127.0.0.1. Default 0: the port of the last run in `dir` when it is free,
   * else any free port.
   */
  port?: number;
  /**
   * Where certificates, segments and deliveries are kept; default a new temp dir. A restart on
   * the same dir keeps the CA, the client certificates (when `clients` is the same) and every
   * delivery with its history, as SCB does.
   */
  dir?: string;
  /**
   * Client certificates to generate. Default: `valid` (9990000045, VINN+KRITA),
   * `other-org` (5560160680, VINN), `expired`, `not-yet-valid`, `revoked`, `legacy` (RC2-40/3DES,
   * 9990000045, VINN+KRITA), `untrusted` (signed by a CA the server does not trust).
   */
  clients?: SimulatorClientSpec[];
  /** How long an upload stays pending in history before it is decided (default 2000 ms). */
  historyDelayMs?: number;
  /** How long history answers 404 for an upload after it closed, as if it did not know it yet (default 0). */
  unknownForMs?: number;
  /** The shape of history records (default 'camel'). */
  historyShape?: SimulatorHistoryShape;
  /**
   * When the client certificate is asked for (default 'handshake'): in the first TLS handshake,
   * or, as an F5 with on-demand certificate authentication does, by a TLS 1.2 renegotiation
   * (TLS 1.2 at most) when a heartbeat would open a session on a connection that has shown no
   * certificate; other requests on such a connection are known by their session. In
   * 'renegotiate' a certificate that does not verify is refused at the TLS level.
   */
  clientCert?: 'handshake' | 'renegotiate';
  /** Keep a v2 file's segments when its session is renewed (default false: they go with the session). */
  segmentsSurviveSessionRenewal?: boolean;
  /** A session ends after this long without a request (default 15 min). */
  sessionIdleMs?: number;
  /** Largest body of one request the simulator accepts (default 9 216 000 + 64 KiB). */
  maxSegmentBytes?: number;
  /** Keep delivered files on disk (default true); false keeps only size and sha256 (benchmarks). */
  keepFiles?: boolean;
  /** Log each request to stdout (the CLI turns it on). */
  verbose?: boolean;
}

/** A generated client certificate on disk. */
export interface SimulatorCertificate extends SimulatorClientSpec {
  path: string;
  passphrase: string;
  serialNumber: string;
}

/** One finished delivery (after the closing segment, or a v1 POST). */
export interface SimulatorDelivery extends UploadPathParts {
  deliveryId: string;
  apiVersion: 'v1' | 'v2';
  filnamn: string;
  size: number;
  sha256: string;
  /** The assembled file, when keepFiles. */
  path?: string;
  segments: number;
  receivedAt: string;
  /** Where it stands now in history. */
  status: ScbStatus;
}

/** Faults to inject; each applies to the next matching requests, then wears off. */
export interface SimulatorFaults {
  /** Answer the next `count` requests whose path matches with `status` (default 500). */
  failNext(count: number, options?: { status?: number; match?: RegExp; body?: string }): void;
  /** Destroy the connection of the next `count` matching requests after reading `afterBytes` of the body. */
  resetNext(count: number, options?: { match?: RegExp; afterBytes?: number }): void;
  /** Forget every session now (the next request gets a 302 to /my.policy). */
  expireSessions(): void;
  /** Forget every session just before the next matching request is handled. */
  expireSessionBeforeNext(options?: { match?: RegExp }): void;
  /** Wait `ms` before answering each of the next `count` matching requests. */
  slowNext(count: number, ms: number, options?: { match?: RegExp }): void;
  /** Answer the next `count` matching requests 200 with an F5 HTML logon page. */
  htmlNext(count: number, options?: { match?: RegExp }): void;
  /** Answer the next `count` matching requests 200 with a body that is not valid JSON. */
  invalidJsonNext(count: number, options?: { match?: RegExp }): void;
  /** Remove all pending faults. */
  /** How many armed faults (and session expiries) have not fired yet: a test waits for its fault to be hit. */
  pending(): number;
  clear(): void;
}

export interface SimulatorStats {
  connections: number;
  tlsHandshakes: number;
  requests: number;
  heartbeats: number;
  sessionsCreated: number;
  uploads: number;
  historyRequests: number;
  /** Requests refused for the certificate (TLS or 401). */
  refused: number;
  /** TLS renegotiations that asked for the client certificate (clientCert 'renegotiate'). */
  renegotiations: number;
  /** Requests being handled now: from their headers until their answer is sent or their connection is gone. */
  inFlight: number;
  /** The most requests in flight at once since the start or the last `resetMaxInFlight()`. */
  maxInFlight: number;
}

export interface Simulator {
  /** e.g. `https://127.0.0.1:45678/`; the API roots are `{url}m2m/v2/` and `{url}m2m/v1/`. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** PEM of the CA that signed the server certificate (give it to the client as `ca`). */
  readonly caPem: string;
  /** Path of that CA PEM on disk. */
  readonly caPath: string;
  readonly certificates: Record<string, SimulatorCertificate>;
  readonly faults: SimulatorFaults;
  stats(): SimulatorStats;
  /** Start counting `maxInFlight` again from the requests in flight now (a benchmark measures one scenario). */
  resetMaxInFlight(): void;
  deliveries(): SimulatorDelivery[];
  /** Decide pending deliveries now, as if historyDelayMs had passed. */
  settleHistory(): void;
  /** Stop listening, close every connection, clear timers. Files and history stay in `dir` for the next start. */
  stop(): Promise<void>;
}
