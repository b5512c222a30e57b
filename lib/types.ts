/**
 * The public shapes of the M2M client. The Node-RED nodes, the benchmark and the tests
 * depend on these; change them deliberately.
 */
import type { ApiVersion, Environment, ScbStatus, UploadPathParts } from './api';

/** Where a .pfx/.p12 comes from: a path on disk or its bytes, and its passphrase. */
export interface CertificateSource {
  path?: string;
  pfx?: Buffer;
  passphrase: string;
}

/** What a user may see of a certificate (no key material). */
export interface CertificateInfo {
  subject: string;
  /** The subject's common name, when it has one. */
  commonName?: string;
  issuer: string;
  /** Upper-case hex, as Windows and OpenSSL show it. */
  serialNumber: string;
  /** SHA-256 of the DER certificate, upper-case hex pairs joined by ':'. */
  fingerprint256: string;
  /** ISO 8601. */
  validFrom: string;
  /** ISO 8601. */
  validTo: string;
  /** Whole days from now until validTo; negative when expired. */
  daysLeft: number;
  /** True when Node's OpenSSL refuses the .pfx as it is and it was decoded with node-forge. */
  legacyFormat: boolean;
}

/** A decoded certificate, ready for TLS. `key` is not enumerable so it is never logged by accident. */
export interface LoadedCertificate {
  info: CertificateInfo;
  /** PEM of the client certificate followed by any chain certificates in the .pfx. */
  readonly cert: string;
  /** PEM of the private key (non-enumerable). */
  readonly key: string;
}

export interface RetryOptions {
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  /** First backoff delay (default 500 ms); doubles each time, with jitter. */
  minDelayMs?: number;
  /** Longest single delay (default 30 s). */
  maxDelayMs?: number;
  /** Give up retrying once this much time has passed since the first attempt (default 10 min). */
  maxElapsedMs?: number;
}

export interface TimeoutOptions {
  /** TCP+TLS connect (default 10 s). */
  connectMs?: number;
  /** One whole request, including sending a 9 MB segment (default 10 min). */
  requestMs?: number;
  /** One heartbeat or history request (default 60 s). */
  shortRequestMs?: number;
}

export interface M2MClientOptions {
  /** Default `production`. */
  environment?: Environment;
  /** For `custom`: the server's origin, optionally with a path prefix; https only. */
  baseUrl?: string;
  /** Default `v2`. */
  apiVersion?: ApiVersion;
  certificate: LoadedCertificate | CertificateSource;
  /** Extra CA certificates (PEM) to trust for the server, besides Node's roots. */
  ca?: string | Buffer;
  /** Proxy URL; undefined: HTTPS_PROXY / NO_PROXY from the environment; false: none. */
  proxy?: string | false;
  timeouts?: TimeoutOptions;
  retry?: RetryOptions;
  /** Uploads running at once through this client; more wait their turn (default 4). */
  maxConcurrentUploads?: number;
  /**
   * Whether the server keeps a file's segments when the session is renewed in the middle of it
   * (default SEGMENTS_SURVIVE_SESSION_RENEWAL, assumed false): false starts the file again from
   * segment 0, true carries on in the new session.
   */
  segmentsSurviveSessionRenewal?: boolean;
  /** Replaces the default history classification rule. */
  classify?: (record: unknown) => ScbStatus;
  /** Receives debug lines (never secrets). */
  log?: (level: 'debug' | 'warn', message: string) => void;
}

export interface HeartbeatResult {
  ok: true;
  /** The server's answer as text (opaque: SCB sends a date-time). */
  serverTime: string;
  statusCode: number;
}

export type UploadSource = { path: string } | { buffer: Buffer };

/** Where a file goes (the URL's parts, lib/api.ts) and what is sent. referensperiod: required in v2, ignored in v1. */
export interface UploadRequest extends UploadPathParts {
  /** The file's bare name as SCB will see it. */
  filnamn: string;
  source: UploadSource;
}

export interface UploadProgress {
  /** 1-based number of the data segment just sent. */
  segment: number;
  segments: number;
  bytesSent: number;
  totalBytes: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface UploadOptions extends RequestOptions {
  onProgress?: (p: UploadProgress) => void;
  /**
   * Keep the SHA-256 of the content sent: given to beforeClosing and in the result. A file's is
   * taken from the bytes its data segments read (v2), so it is not read twice for it.
   */
  sha256?: boolean;
  /**
   * Awaited before the request that closes the delivery (v2: segment -1; v1: the one POST) goes
   * out, each time it does: from then on SCB may hold the file, so a record of that must exist
   * first. A rejection stops the upload before anything is closed.
   */
  beforeClosing?: (closing: { sha256?: string }) => Promise<void> | void;
}

export interface UploadResult {
  /** deliveryId (v2) or the upload id (v1). */
  uploadId: string;
  timeStamp?: string;
  statusCode: number;
  /** The parsed answer: JSON object, or the text. */
  body: unknown;
  apiVersion: ApiVersion;
  segments: number;
  bytes: number;
  /** Retries this upload needed (segments resent, session renewals, restarts). */
  retries: number;
  /** SHA-256 (hex) of the content, when asked for (UploadOptions.sha256). */
  sha256?: string;
}

export interface HistoryResult {
  statusCode: number;
  /** The server's JSON as parsed. */
  body: unknown;
  /** For one upload: its classification. For the list: accepted when it was read. */
  status: ScbStatus;
  /** For the list: each record and its classification. */
  items?: Array<{ record: unknown; status: ScbStatus }>;
}

/** Counters for benchmarks and tests. */
export interface ClientStats {
  heartbeats: number;
  requests: number;
  retries: number;
  sessionRenewals: number;
  /** TCP connections opened. */
  connections: number;
  uploadsInFlight: number;
}
