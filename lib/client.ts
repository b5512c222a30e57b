/**
 * The M2M client: mutual TLS to SCB's Indataportalen through one undici dispatcher,
 * an F5 session kept alive by heartbeats, v2 segmented and v1 single uploads, history.
 * It knows nothing of Node-RED.
 */
import { setMaxListeners } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import * as tls from 'node:tls';
import { Agent, Pool, ProxyAgent, buildConnector, request, type Dispatcher } from 'undici';
import {
  CLOSING_SEGMENT,
  FILE_FIELD,
  HEARTBEAT_PATH,
  SEGMENT_SIZE,
  SEGMENTS_SURVIVE_SESSION_RENEWAL,
  SESSION_COOKIES,
  classifyHistory,
  historyPath,
  isSegmentOutOfOrder,
  isSessionLost,
  propertyCI,
  v1UploadPath,
  v2SegmentPath,
  type ApiVersion,
} from './api';
import { loadCertificate } from './certificate';
import { AuthorisationError, CertificateError, NetworkError, ProtocolError, ServerError, SessionError, ValidationError, isM2MError, type M2MError } from './errors';
import { ShortReadError, type MultipartBody } from './multipart';
import { SourceFile, fileChanged } from './source-file';
import { isLoadedCertificate, optionError, resolveOptions } from './options';
import { proxyFor } from './proxy';
import { ConcurrencyLimit } from './queue';
import { withRetry, type RetryPolicy } from './retry';
import { CookieJar } from './cookies';
import { describeValue, validateUploadRequest } from './validation';
import type {
  CertificateInfo,
  ClientStats,
  HeartbeatResult,
  HistoryResult,
  LoadedCertificate,
  M2MClientOptions,
  RequestOptions,
  TimeoutOptions,
  UploadOptions,
  UploadRequest,
  UploadResult,
} from './types';

export { DEFAULT_TIMEOUTS, DEFAULT_MAX_CONCURRENT_UPLOADS } from './options';

/** Connections beside the uploads' own, for heartbeats and history requests. */
export const EXTRA_CONNECTIONS = 4;
const SESSION_REFUSED_HINT = 'The F5 in front of SCB refuses the session: check the proxy and the certificate; if it persists contact SCB.';
/** Longest part of an answer quoted in an error message. */
const QUOTED_CHARS = 200;

/** TLS verification failures of the server's certificate (OpenSSL / Node codes). */
const SERVER_UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A TLS alert received from the server, as Node names it: ERR_SSL_TLSV1_ALERT_UNKNOWN_CA, ... */
const TLS_ALERT = /^ERR_SSL_.*ALERT/;

interface Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The session it was answered in (see M2MClient.sessionEpoch). */
  sessionEpoch?: number;
}

/** An answer never sent: the session that held this file's earlier segments is gone. */
const SESSION_CHANGED: Answer = { statusCode: 0, headers: {}, text: 'the session holding the earlier segments was renewed' };

/** One request to the API, described once so it can be sent again (retry, new session). */
interface Exchange {
  method: 'GET' | 'POST';
  /** Relative to the API root. */
  path: string;
  /** What is being done, for messages: 'Upload of V40.xml segment 3 of 12'. */
  what: string;
  /** Builds a fresh body for each attempt (a stream can be read once). */
  body?: () => Promise<MultipartBody>;
  timeoutMs: number;
  /** The operation's signal: the caller's abort and the client's close. */
  signal: AbortSignal;
  /** For a 401 on an upload: what the certificate was asked to deliver. */
  delivery?: string;
  /** Answers handed back to the caller instead of being turned into errors. */
  accept?: (answer: Answer) => boolean;
  /** Only meaningful in this session: once renewed, SESSION_CHANGED is answered instead of sending. */
  sessionEpoch?: number;
  /**
   * Not safe to repeat after the request may have reached the server (the closing segment
   * or a v1 upload: the server may already hold the file). Such failures become DELIVERY_UNCERTAIN.
   */
  once?: boolean;
  /** The heartbeat: its cookies are kept even when the session was dropped while it was on its way. */
  opensSession?: boolean;
}

/** Transport failures that happen before anything is sent, so repeating cannot deliver twice. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Counts the repeats one operation needed. */
interface Tally {
  retries: number;
}

type ResolvedOptions = M2MClientOptions & { certificate: LoadedCertificate };

/** The first line of an answer, short and printable, for an error message. */
function firstLine(text: string): string {
  const line = text.trim().split(/\r?\n/, 1)[0] ?? '';
  const printable = line.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return printable.length > QUOTED_CHARS ? `${printable.slice(0, QUOTED_CHARS)}…` : printable || '(empty body)';
}

/** Every `code` along an error's cause chain (undici wraps the socket's error). */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

/** Waits for `promise` but gives up as soon as `signal` aborts (the promise itself runs on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** A failure after which the server may or may not have acted on a request that must not be repeated. */
function uncertain(err: unknown): unknown {
  if (!(err instanceof NetworkError) || !err.retryable || errorCodes(err.cause).some((c) => NOT_SENT_CODES.has(c)) || NOT_SENT_CODES.has(err.code)) return err;
  const reason = err.hint ? err.message.slice(0, -err.hint.length).trim() : err.message;
  return new NetworkError(`${reason} SCB may or may not have received the file.`, {
    code: 'DELIVERY_UNCERTAIN',
    retryable: false,
    hint: 'Look it up in the history (scb-m2m-history without an uploadId lists every upload) before sending it again, so it is not delivered twice.',
    cause: err,
  });
}

export class M2MClient {
  /** e.g. `https://m2m.gdb.scb.se/m2m/v2/`. */
  readonly apiRoot: string;
  readonly apiVersion: ApiVersion;
  readonly certificate: CertificateInfo;

  private readonly options: ResolvedOptions;
  private readonly timeouts: Required<TimeoutOptions>;
  private readonly retry: RetryPolicy;
  private readonly dispatcher: Dispatcher;
  private readonly jar = new CookieJar();
  private readonly uploads: ConcurrencyLimit;
  /** The last upload in flight or waiting for each target; see oneAtATime. */
  private readonly targets = new Map<string, Promise<void>>();
  private readonly closing = new AbortController();
  private readonly host: string;
  private readonly counters = { heartbeats: 0, requests: 0, retries: 0, sessionRenewals: 0, connections: 0 };
  /**
   * Bumped by each heartbeat that opens a new session (not one that keeps the live session),
   * so one lost session is renewed once and a closing segment is never sent in another
   * session than its data segments.
   */
  private sessionEpoch = 0;
  private sessionLive = false;
  private pendingSession?: Promise<void>;
  /** The last TLS alert a connection received, and when (performance.now()); see watchTlsAlerts. */
  private lastTlsAlert?: { code: string; at: number };

  /**
   * Needs a decoded certificate (readCertificate / loadCertificate); to start from a
   * path or the .pfx bytes use `M2MClient.create`. Throws ValidationError for a bad option.
   */
  constructor(options: M2MClientOptions) {
    const settings = resolveOptions(options);
    this.options = settings.options;
    this.apiVersion = settings.apiVersion;
    this.apiRoot = settings.apiRoot;
    this.host = settings.host;
    this.timeouts = settings.timeouts;
    this.retry = settings.retry;
    this.uploads = new ConcurrencyLimit(settings.maxUploads);
    const { certificate } = settings;
    this.certificate = certificate.info;
    // Every operation in flight listens for close(); many polls at once are normal.
    setMaxListeners(0, this.closing.signal);
    this.dispatcher = this.createDispatcher(certificate);
  }

  /** Like the constructor, but also reads and checks (validity dates) a certificate given as a path or bytes. */
  static async create(options: M2MClientOptions): Promise<M2MClient> {
    const { certificate } = options ?? {};
    if (certificate && !isLoadedCertificate(certificate)) return new M2MClient({ ...options, certificate: await loadCertificate(certificate) });
    return new M2MClient(options);
  }

  private createDispatcher(certificate: LoadedCertificate): Dispatcher {
    let ca: string[] | undefined;
    if (this.options.ca !== undefined) {
      const extra = Buffer.isBuffer(this.options.ca) ? this.options.ca.toString('utf8') : this.options.ca;
      try {
        tls.createSecureContext({ ca: extra });
      } catch {
        throw optionError('ca', '(PEM)', 'it is not a PEM certificate', 'Give the CA file of the server\'s certificate in PEM format.');
      }
      // Node's public roots stay trusted beside the extra CA.
      ca = [...tls.rootCertificates, extra];
    }
    // Server verification is always on: there is deliberately no option to turn it off.
    const tlsOptions = { cert: certificate.cert, key: certificate.key, ca, rejectUnauthorized: true, timeout: this.timeouts.connectMs };
    // Bounded: every upload may hold a connection, plus a few for heartbeats and history,
    // so a thousand polls at once queue here instead of opening a thousand TLS connections.
    const connections = this.uploads.limit + EXTRA_CONNECTIONS;
    const factory = (origin: string | URL, opts: Pool.Options): Dispatcher => {
      const pool = new Pool(origin, { ...opts, connect: this.watchTlsAlerts(opts.connect), connections });
      pool.on('connect', () => {
        this.counters.connections++;
      });
      return pool;
    };
    const proxy = proxyFor(new URL(this.apiRoot), this.options.proxy);
    if (proxy === undefined) return new Agent({ connect: tlsOptions, factory });
    try {
      new URL(proxy);
    } catch {
      // The value is not shown: a proxy URL may carry a password.
      throw optionError('proxy', '(hidden)', 'it must be a URL', 'Give it as http://host:port, or set HTTPS_PROXY.');
    }
    this.log('debug', `Proxy ${new URL(proxy).host} (CONNECT) for ${this.host}`);
    return new ProxyAgent({ uri: proxy, requestTls: tlsOptions, factory });
  }

  /**
   * A server that asks for the certificate after the first handshake (TLS renegotiation) refuses
   * it with an alert in the middle of a request, and undici then reports only "other side
   * closed": the socket's end overwrites its error. Each connection's alert is noted here, so
   * the failure can still say that the server refused the certificate.
   */
  private watchTlsAlerts(given: Pool.Options['connect']): buildConnector.connector {
    // The direct Agent hands its TLS options on; the ProxyAgent its own tunnelling connector.
    const connect = typeof given === 'function' ? given : buildConnector(given ?? {});
    return (options: buildConnector.Options, callback: buildConnector.Callback) =>
      connect(options, (...args) => {
        args[1]?.on('error', (e: NodeJS.ErrnoException) => {
          if (typeof e.code === 'string' && TLS_ALERT.test(e.code)) this.lastTlsAlert = { code: e.code, at: performance.now() };
        });
        callback(...args);
      });
  }

  stats(): ClientStats {
    return { ...this.counters, uploadsInFlight: this.uploads.active };
  }

  /**
   * Stops the client: requests in flight and queued uploads fail with a NetworkError
   * CLIENT_CLOSED, the connections are destroyed. Later calls fail the same way.
   */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort(this.closedError('The request'));
    this.sessionLive = false;
    await this.dispatcher.destroy().catch(() => undefined);
  }

  /** Asks the server for its time; opens (or renews) the F5 session. */
  async heartbeat(opts: RequestOptions = {}): Promise<HeartbeatResult> {
    return this.operation('Heartbeat', opts.signal, (signal) => withRetry(() => this.heartbeatOnce(signal), this.retry, this.retryHooks(signal, { retries: 0 })));
  }

  /** Uploads a file: v2 in segments then the closing POST, v1 in one POST. */
  async upload(req: UploadRequest, opts: UploadOptions = {}): Promise<UploadResult> {
    const request = validateUploadRequest(req, this.apiVersion);
    return this.operation(`Upload of ${request.filnamn}`, opts.signal, (signal) =>
      this.oneAtATime(v2SegmentPath(0, request), signal, () =>
        this.uploads.run(() => (this.apiVersion === 'v2' ? this.uploadV2(request, opts, signal) : this.uploadV1(request, opts, signal)), signal),
      ),
    );
  }

  /**
   * Runs uploads to the same target (organisationsnummer, undersokning, referensperiod,
   * filformat, filnamn, version) one after the other: the server keeps one file per target
   * in a session (assumed), so two at once would mix their segments.
   */
  private async oneAtATime<T>(target: string, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
    const earlier = this.targets.get(target);
    const mine = (earlier ? untilAborted(earlier, signal) : Promise.resolve()).then(run);
    // The next one waits for this one and for every one before it, even if this one was aborted while waiting.
    const done = Promise.allSettled([earlier, mine]).then(() => undefined);
    this.targets.set(target, done);
    try {
      return await mine;
    } finally {
      if (this.targets.get(target) === done) this.targets.delete(target);
    }
  }

  /** One upload's state (with `id`), or all uploads of the certificate's organisation and survey. */
  async history(id?: string, opts: RequestOptions = {}): Promise<HistoryResult> {
    if (id !== undefined && (typeof id !== 'string' || id.trim() === '')) {
      throw new ValidationError(`uploadId ${describeValue(id)} is not valid: it must be a non-empty text.`, {
        code: 'INVALID_UPLOADID',
        field: 'uploadId',
        value: id,
        hint: 'Give the deliveryId an upload returned, or nothing for the whole history.',
      });
    }
    const uploadId = id?.trim();
    const what = uploadId ? `History of upload ${uploadId}` : 'History';
    return this.operation(what, opts.signal, async (signal) => {
      const answer = await this.exchange(
        {
          method: 'GET',
          path: historyPath(uploadId),
          what,
          timeoutMs: this.timeouts.shortRequestMs,
          signal,
          accept: (a) => uploadId !== undefined && a.statusCode === 404,
        },
        { retries: 0 },
      );
      if (answer.statusCode === 404) {
        throw new ValidationError(`${what}: SCB knows no upload with id ${uploadId}.`, {
          code: 'UNKNOWN_UPLOAD_ID',
          field: 'uploadId',
          value: uploadId,
          statusCode: 404,
          hint: 'Check the id (the deliveryId of the upload) and that the certificate belongs to the same organisation and survey.',
        });
      }
      const body = this.parseJson(answer, what);
      const classify = this.options.classify ?? classifyHistory;
      if (uploadId) return { statusCode: answer.statusCode, body, status: classify(body) };
      if (!Array.isArray(body)) {
        throw new ProtocolError(`${what}: expected a JSON array, got ${firstLine(answer.text)}`, { code: 'UNEXPECTED_ANSWER', statusCode: answer.statusCode });
      }
      return { statusCode: answer.statusCode, body, status: 'accepted', items: body.map((record: unknown) => ({ record, status: classify(record) })) };
    });
  }

  // --- operations -------------------------------------------------------------------

  /**
   * Runs one public operation with a signal that aborts when the caller's does (error
   * ABORTED) or the client closes (error CLIENT_CLOSED).
   */
  private async operation<T>(what: string, callerSignal: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.closing.signal.aborted) throw this.closedError(what);
    const controller = new AbortController();
    const onCallerAbort = (): void =>
      controller.abort(new NetworkError(`${what} was aborted.`, { code: 'ABORTED', retryable: false, hint: 'It was stopped on request; send it again when wanted.' }));
    const onClose = (): void => controller.abort(this.closedError(what));
    if (callerSignal?.aborted) onCallerAbort();
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    try {
      return await run(controller.signal);
    } finally {
      callerSignal?.removeEventListener('abort', onCallerAbort);
      this.closing.signal.removeEventListener('abort', onClose);
    }
  }

  private closedError(what: string): NetworkError {
    return new NetworkError(`${what} was stopped: the client was closed.`, {
      code: 'CLIENT_CLOSED',
      retryable: false,
      hint: 'The configuration was closed or redeployed; send it again.',
    });
  }

  private async uploadV2(req: UploadRequest, opts: UploadOptions, signal: AbortSignal): Promise<UploadResult> {
    const file = await SourceFile.open(req.source, req.filnamn);
    const segments = Math.ceil(file.size / SEGMENT_SIZE);
    const tally: Tally = { retries: 0 };
    for (let restarted = false; ; restarted = true) {
      const outcome = await this.sendSegments(req, file, segments, opts, signal, tally);
      if ('receipt' in outcome) return this.receipt(outcome.receipt, outcome.what, segments, file.size, tally);
      // Out of order: the server lost the earlier segments (assumed: with the old session).
      if (restarted && outcome.refused === SESSION_CHANGED) {
        throw new SessionError(`Upload of ${req.filnamn}: the session was lost again, at segment ${outcome.segment}, after a restart from segment 0.`, {
          code: 'SESSION_REFUSED',
          hint: SESSION_REFUSED_HINT,
        });
      }
      if (restarted) {
        throw new ProtocolError(
          `Upload of ${req.filnamn}: segment ${outcome.segment} was refused as out of order again after a restart from segment 0: ${firstLine(outcome.refused.text)}`,
          { code: 'SEGMENT_OUT_OF_ORDER', statusCode: outcome.refused.statusCode || undefined, hint: 'Send the file again later; if it persists contact SCB.' },
        );
      }
      this.log('warn', `Upload of ${req.filnamn}: segment ${outcome.segment}: ${firstLine(outcome.refused.text)}; restarting from segment 0.`);
      tally.retries++;
      this.counters.retries++;
    }
  }

  /** Sends the data segments in order, then the closing one; stops at an out-of-order answer. */
  private async sendSegments(
    req: UploadRequest,
    file: SourceFile,
    segments: number,
    opts: UploadOptions,
    signal: AbortSignal,
    tally: Tally,
  ): Promise<{ receipt: Answer; what: string } | { refused: Answer; segment: number }> {
    // Whether the server keeps a file's segments across a session renewal is assumed
    // (SEGMENTS_SURVIVE_SESSION_RENEWAL). If not, a renewal after segment 0 restarts the file
    // at once instead of sending the rest in vain. Either way a data segment the server no
    // longer expects is refused as out of order; the closing POST would join an empty file, so
    // it is only sent in the session that accepted the last data segment.
    const outOfOrder = (a: Answer): boolean => a === SESSION_CHANGED || isSegmentOutOfOrder(a.statusCode, a.text);
    const survive = this.options.segmentsSurviveSessionRenewal ?? SEGMENTS_SURVIVE_SESSION_RENEWAL;
    const field = FILE_FIELD.v2;
    const delivery = this.deliveryText(req);
    /** The session of segment 0, and of the last data segment. */
    let firstEpoch: number | undefined;
    let sessionEpoch: number | undefined;
    for (let segment = 0; segment < segments; segment++) {
      const start = segment * SEGMENT_SIZE;
      const end = Math.min(file.size, start + SEGMENT_SIZE);
      const answer = await this.exchange(
        {
          method: 'POST',
          path: v2SegmentPath(segment, req),
          what: `Upload of ${req.filnamn} segment ${segment + 1} of ${segments}`,
          body: () => file.part(field, start, end),
          timeoutMs: this.timeouts.requestMs,
          signal,
          delivery,
          accept: outOfOrder,
          sessionEpoch: survive ? undefined : firstEpoch,
        },
        tally,
      );
      if (outOfOrder(answer)) return { refused: answer, segment };
      firstEpoch ??= answer.sessionEpoch;
      sessionEpoch = answer.sessionEpoch;
      this.progress(opts, { segment: segment + 1, segments, bytesSent: end, totalBytes: file.size });
    }
    const what = `Closing the upload of ${req.filnamn} (segment ${CLOSING_SEGMENT})`;
    await opts.beforeClosing?.();
    const answer = await this.exchange(
      {
        method: 'POST',
        path: v2SegmentPath(CLOSING_SEGMENT, req),
        what,
        body: () => file.part(field, 0, 0),
        timeoutMs: this.timeouts.requestMs,
        signal,
        delivery,
        // With no data segments there is nothing to have lost.
        accept: (a) => segments > 0 && outOfOrder(a),
        sessionEpoch,
        once: true,
      },
      tally,
    );
    return outOfOrder(answer) ? { refused: answer, segment: CLOSING_SEGMENT } : { receipt: answer, what };
  }

  /** The closing answer: `{deliveryId, timeStamp}`, names in any casing. */
  private receipt(answer: Answer, what: string, segments: number, bytes: number, tally: Tally): UploadResult {
    const body = this.parseJson(answer, what);
    const deliveryId = propertyCI(body, 'deliveryId');
    if (typeof deliveryId !== 'string' || deliveryId === '') {
      throw new ProtocolError(`${what}: the answer has no deliveryId: ${firstLine(answer.text)}`, {
        code: 'NO_DELIVERY_ID',
        statusCode: answer.statusCode,
        hint: 'Check the upload\'s state in SCB\'s portal; report this answer to SCB.',
      });
    }
    const timeStamp = propertyCI(body, 'timeStamp');
    return {
      uploadId: deliveryId,
      ...(typeof timeStamp === 'string' && { timeStamp }),
      statusCode: answer.statusCode,
      body,
      apiVersion: 'v2',
      segments,
      bytes,
      retries: tally.retries,
    };
  }

  private async uploadV1(req: UploadRequest, opts: UploadOptions, signal: AbortSignal): Promise<UploadResult> {
    const file = await SourceFile.open(req.source, req.filnamn);
    const tally: Tally = { retries: 0 };
    const what = `Upload of ${req.filnamn}`;
    await opts.beforeClosing?.();
    const answer = await this.exchange(
      {
        method: 'POST',
        path: v1UploadPath(req),
        what,
        body: () => file.part(FILE_FIELD.v1, 0, file.size),
        timeoutMs: this.timeouts.requestMs,
        signal,
        delivery: this.deliveryText(req),
        // One POST is the whole delivery: once it may have arrived, sending it again could deliver the file twice.
        once: true,
      },
      tally,
    );
    this.progress(opts, { segment: 1, segments: 1, bytesSent: file.size, totalBytes: file.size });
    const { id, body } = v1UploadId(answer.text);
    if (!id) {
      throw new ProtocolError(`${what}: the answer carries no upload id: ${firstLine(answer.text)}`, { code: 'NO_UPLOAD_ID', statusCode: answer.statusCode, hint: 'Check the upload in SCB\'s portal; report this answer to SCB.' });
    }
    return { uploadId: id, statusCode: answer.statusCode, body, apiVersion: 'v1', segments: 1, bytes: file.size, retries: tally.retries };
  }

  private deliveryText(req: UploadRequest): string {
    return `organisationsnummer ${req.organisationsnummer}, undersokning ${req.undersokning}, filformat ${req.filformat}`;
  }

  private progress(opts: UploadOptions, p: { segment: number; segments: number; bytesSent: number; totalBytes: number }): void {
    try {
      opts.onProgress?.(p);
    } catch (err) {
      this.log('warn', `onProgress failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private parseJson(answer: Answer, what: string): unknown {
    try {
      return JSON.parse(answer.text);
    } catch {
      throw new ProtocolError(`${what}: the answer is not JSON: ${firstLine(answer.text)}`, {
        code: 'NOT_JSON',
        statusCode: answer.statusCode,
        hint: 'Something between you and SCB (a proxy?) may have answered; try again, and report it to SCB if it persists.',
      });
    }
  }

  // --- requests ---------------------------------------------------------------------

  private retryHooks(signal: AbortSignal, tally: Tally) {
    return {
      signal,
      onRetry: (err: M2MError, retry: number, delayMs: number) => {
        tally.retries++;
        this.counters.retries++;
        this.log('warn', `${err.message} Retry ${retry} of ${this.retry.maxRetries} in ${delayMs} ms.`);
      },
    };
  }

  /** Sends one exchange with a live session, retrying retryable failures; answers that are not accepted become errors. */
  private exchange(x: Exchange, tally: Tally): Promise<Answer> {
    return withRetry(
      async () => {
        const answer = await this.withSession(x, tally).catch((err: unknown) => {
          throw x.once ? uncertain(err) : err;
        });
        if (x.accept?.(answer)) return answer;
        this.assertOk(answer, x);
        return answer;
      },
      this.retry,
      this.retryHooks(x.signal, tally),
    );
  }

  /**
   * Sends with the session's cookies. A lost session (3xx, HTML) is renewed by one shared
   * heartbeat and the request sent once more; lost again → SessionError.
   */
  private async withSession(x: Exchange, tally: Tally): Promise<Answer> {
    for (let renewed = false; ; renewed = true) {
      await this.ensureSession(x.signal);
      const epoch = this.sessionEpoch;
      if (x.sessionEpoch !== undefined && x.sessionEpoch !== epoch) return SESSION_CHANGED;
      const answer = await this.send(x);
      if (!sessionLost(answer)) return { ...answer, sessionEpoch: epoch };
      if (renewed) {
        throw new SessionError(`${x.what}: the session was refused again right after a new heartbeat (${answer.statusCode}).`, {
          code: 'SESSION_REFUSED',
          statusCode: answer.statusCode,
          hint: SESSION_REFUSED_HINT,
        });
      }
      this.log('debug', `${x.what}: session lost (${answer.statusCode}); renewing it.`);
      this.dropSession(epoch);
      tally.retries++;
      this.counters.retries++;
    }
  }

  private dropSession(epoch: number): void {
    // Concurrent requests may all see the same loss: only the first drops the session.
    if (epoch !== this.sessionEpoch || !this.sessionLive) return;
    this.sessionLive = false;
    this.jar.clear();
    this.counters.sessionRenewals++;
  }

  /** One heartbeat shared by every caller that needs a session while none is live. */
  private ensureSession(signal: AbortSignal): Promise<void> {
    if (this.sessionLive) return Promise.resolve();
    if (!this.pendingSession) {
      const shared = this.heartbeatOnce(this.closing.signal).then(() => undefined);
      this.pendingSession = shared;
      // Callers may all have given up; the outcome is still handled.
      shared.then(
        () => (this.pendingSession = undefined),
        () => (this.pendingSession = undefined),
      );
    }
    return untilAborted(this.pendingSession, signal);
  }

  private async heartbeatOnce(signal: AbortSignal): Promise<HeartbeatResult> {
    const x: Exchange = { method: 'GET', path: HEARTBEAT_PATH, what: 'Heartbeat', timeoutMs: this.timeouts.shortRequestMs, signal, opensSession: true };
    this.counters.heartbeats++;
    const sessionBefore = this.sessionKey();
    const answer = await this.send(x);
    if (sessionLost(answer)) {
      const where = headerText(answer.headers.location);
      throw new SessionError(`Heartbeat: the server answered ${answer.statusCode}${where ? ` (to ${where})` : ' with an HTML page'} instead of opening a session.`, {
        code: 'SESSION_REFUSED',
        statusCode: answer.statusCode,
        hint: SESSION_REFUSED_HINT,
      });
    }
    if (answer.statusCode === 401) {
      throw new AuthorisationError(`Heartbeat: the certificate ${this.certificate.commonName ?? this.certificate.subject} is not accepted (401).`, {
        code: 'CERTIFICATE_NOT_ACCEPTED',
        hint: 'Check that it is SCB\'s certificate for this environment (test or production) and still valid.',
      });
    }
    this.assertOk(answer, x);
    // A heartbeat in a live session keeps it (the F5 sets no new cookies): bumping the epoch
    // then would make every upload in flight start over from segment 0.
    if (!this.sessionLive || this.sessionKey() !== sessionBefore) this.sessionEpoch++;
    this.sessionLive = true;
    this.log('debug', `Session open; cookies held: ${this.jar.names().join(', ') || 'none'}`);
    return { ok: true, serverTime: unquote(answer.text), statusCode: answer.statusCode };
  }

  /** What identifies the server's session: the F5 session cookies, or every cookie when there are none. */
  private sessionKey(): string {
    const values = SESSION_COOKIES.map((name) => this.jar.value(name));
    return values.some((v) => v !== undefined) ? values.join('\u0000') : (this.jar.header('/') ?? '');
  }

  /** Turns a non-2xx answer into the typed error that says what to do. */
  private assertOk(answer: Answer, x: Exchange): void {
    const { statusCode } = answer;
    if (statusCode >= 200 && statusCode < 300) return;
    const quoted = firstLine(answer.text);
    if (statusCode === 401) {
      throw new AuthorisationError(
        `${x.what} was refused (401): the certificate ${this.certificate.commonName ?? this.certificate.subject} may not ${x.delivery ? `deliver for ${x.delivery}` : 'do this'}.`,
        { code: 'NOT_AUTHORISED', hint: 'Check which organisationsnummer and surveys (undersokning) the certificate was issued for; SCB issues one per combination.' },
      );
    }
    if (statusCode >= 500) {
      throw new ServerError(`${x.what} failed: SCB's server answered ${statusCode}: ${quoted}`, {
        code: 'SERVER_ERROR',
        statusCode,
        hint: 'A fault at SCB; try again later, and contact SCB if it persists.',
      });
    }
    throw new ProtocolError(`${x.what} failed: unexpected answer ${statusCode}: ${quoted}`, {
      code: `HTTP_${statusCode}`,
      statusCode,
      hint: statusCode === 413 ? 'The server refused the size of the request; report it to SCB.' : 'Check the request\'s values; report the answer to SCB if they are right.',
    });
  }

  /** One HTTP request: cookies out and in, a deadline, transport failures as typed errors. */
  private async send(x: Exchange): Promise<Answer> {
    const url = new URL(x.path, this.apiRoot);
    const deadline = AbortSignal.timeout(x.timeoutMs);
    const signal = AbortSignal.any([x.signal, deadline]);
    const cookie = this.jar.header(url.pathname);
    const jarGeneration = this.jar.generation;
    const started = performance.now();
    const multipart = x.body ? await x.body() : undefined;
    this.counters.requests++;
    try {
      const res = await request(url, {
        dispatcher: this.dispatcher,
        method: x.method,
        headers: { accept: 'application/json, text/plain;q=0.9, */*;q=0.5', ...(cookie && { cookie }), ...multipart?.headers },
        body: multipart?.body,
        signal,
        headersTimeout: x.timeoutMs,
        bodyTimeout: x.timeoutMs,
      });
      const text = await res.body.text();
      // An answer to a request of a session given up meanwhile (say, a 302 with fresh cookies)
      // must not overwrite the cookies of the session renewed since.
      if (x.opensSession || this.jar.generation === jarGeneration) this.jar.store(res.headers['set-cookie']);
      this.log('debug', `${x.method} ${url.pathname} ${res.statusCode} ${Math.round(performance.now() - started)} ms`);
      return { statusCode: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (x.signal.aborted) throw x.signal.reason;
      const error = this.transportError(err, x, deadline.aborted, started);
      this.log('debug', `${x.method} ${url.pathname} failed (${error.code}) ${Math.round(performance.now() - started)} ms`);
      throw error;
    }
  }

  private transportError(err: unknown, x: Exchange, timedOut: boolean, started: number): M2MError {
    if (isM2MError(err)) return err;
    if (err instanceof ShortReadError) return fileChanged(err.path, `${err.expected} bytes were expected of this part, ${err.actual} were read`);
    const codes = errorCodes(err);
    const untrusted = codes.find((c) => SERVER_UNTRUSTED_CODES.has(c));
    if (untrusted) {
      return new CertificateError(`${x.what}: the server's certificate at ${this.host} is not trusted (${untrusted}).`, {
        code: 'SERVER_CERTIFICATE_UNTRUSTED',
        hint: 'Set the CA file (caPath) to the CA that signed the server\'s certificate.',
      });
    }
    const alert = codes.find((c) => TLS_ALERT.test(c)) ?? (this.lastTlsAlert && this.lastTlsAlert.at >= started ? this.lastTlsAlert.code : undefined);
    if (alert) {
      return new CertificateError(`${x.what}: the server at ${this.host} refused the client certificate during the TLS handshake (${alert}).`, {
        code: 'CLIENT_CERTIFICATE_REFUSED',
        hint: 'Check that the certificate is SCB\'s for this environment (test or production), still valid and not revoked.',
      });
    }
    if (timedOut) {
      return new NetworkError(`${x.what}: no answer from ${this.host} within ${x.timeoutMs} ms.`, {
        code: 'TIMEOUT',
        hint: 'Check the connection to SCB; on a slow line raise the timeout.',
      });
    }
    const code = codes.find((c) => c !== 'UND_ERR_SOCKET' && c !== 'UND_ERR') ?? codes[0] ?? 'NETWORK_ERROR';
    const reason = err instanceof Error ? err.message : String(err);
    // A server that asks for the certificate by renegotiation may refuse it by just closing the connection.
    const closed = x.opensSession && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET');
    return new NetworkError(`${x.what}: the connection to ${this.host} failed (${code}: ${reason}).`, {
      code,
      hint: closed
        ? 'The server closed the connection without answering: if it does so every time, it may be refusing the client certificate (check that it is SCB\'s for this environment, still valid and not revoked); else check the network and proxy.'
        : 'Check the network, DNS and proxy settings; it was retried.',
      cause: err,
    });
  }

  private log(level: 'debug' | 'warn', message: string): void {
    try {
      this.options.log?.(level, message);
    } catch {
      // A failing logger must not break a delivery.
    }
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function sessionLost(answer: Answer): boolean {
  return isSessionLost(answer.statusCode, headerText(answer.headers['content-type']), answer.text.slice(0, 512));
}

/** SCB may send the server time as a JSON string; the text inside is what users want. */
function unquote(text: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (typeof parsed === 'string') return parsed;
    } catch {
      // Not JSON after all: keep the text.
    }
  }
  return trimmed;
}

/** The v1 answer's upload id: plain text, a JSON string, or an object with id / uploadId / deliveryId / uppladdningsid. */
export function v1UploadId(text: string): { id?: string; body: unknown } {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    const line = text.trim();
    return { id: line !== '' && !/[\s<>]/.test(line) ? line : undefined, body: text };
  }
  if (typeof body === 'string' || typeof body === 'number') return { id: String(body) || undefined, body };
  for (const name of ['id', 'uploadId', 'deliveryId', 'uppladdningsid']) {
    const value = propertyCI(body, name);
    if ((typeof value === 'string' && value !== '') || typeof value === 'number') return { id: String(value), body };
  }
  return { body };
}
