/**
 * The M2M client: mutual TLS to SCB's Indataportalen through one undici dispatcher,
 * an F5 session kept alive by heartbeats, v2 segmented and v1 single uploads, history.
 * It knows nothing of Node-RED. A facade over its parts, each with one job:
 * options (checks), transport (dispatcher, requests, transport errors), answers (answer → typed
 * error), session (F5 cookies, epoch, shared heartbeat), exchange (retries, "uncertain"),
 * upload (v2, v1, one at a time per target), history, source-file (the file being sent).
 */
import { setMaxListeners } from 'node:events';
import type { ApiVersion } from './api';
import { loadCertificate } from './certificate';
import { NetworkError } from './errors';
import { Exchanges } from './exchange';
import { history, historyUploadId } from './history';
import { isLoadedCertificate, resolveOptions, type ClientSettings, type Counters } from './options';
import { withRetry } from './retry';
import { Session } from './session';
import { Transport } from './transport';
import { Uploads } from './upload';
import { validateUploadRequest } from './validation';
import type {
  CertificateInfo,
  ClientStats,
  HeartbeatResult,
  HistoryResult,
  M2MClientOptions,
  RequestOptions,
  UploadOptions,
  UploadRequest,
  UploadResult,
} from './types';

export { DEFAULT_TIMEOUTS, DEFAULT_MAX_CONCURRENT_UPLOADS } from './options';
export { EXTRA_CONNECTIONS } from './transport';
export { v1UploadId } from './answers';

export class M2MClient {
  /** e.g. `https://m2m.gdb.scb.se/m2m/v2/`. */
  readonly apiRoot: string;
  readonly apiVersion: ApiVersion;
  readonly certificate: CertificateInfo;

  private readonly settings: ClientSettings;
  private readonly counters: Counters = { heartbeats: 0, requests: 0, retries: 0, sessionRenewals: 0, connections: 0 };
  private readonly closing = new AbortController();
  private readonly transport: Transport;
  private readonly session: Session;
  private readonly exchanges: Exchanges;
  private readonly uploads: Uploads;

  /**
   * Needs a decoded certificate (readCertificate / loadCertificate); to start from a
   * path or the .pfx bytes use `M2MClient.create`. Throws ValidationError for a bad option.
   */
  constructor(options: M2MClientOptions) {
    this.settings = resolveOptions(options);
    this.apiVersion = this.settings.apiVersion;
    this.apiRoot = this.settings.apiRoot;
    this.certificate = this.settings.certificate.info;
    // Every operation in flight listens for close(); many polls at once are normal.
    setMaxListeners(0, this.closing.signal);
    this.transport = new Transport(this.settings, this.counters);
    this.session = new Session(this.transport, this.settings, this.counters, this.closing.signal);
    this.exchanges = new Exchanges(this.session, this.settings, this.counters);
    this.uploads = new Uploads(this.exchanges, this.settings, this.counters);
  }

  /** Like the constructor, but also reads and checks (validity dates) a certificate given as a path or bytes. */
  static async create(options: M2MClientOptions): Promise<M2MClient> {
    const { certificate } = options ?? {};
    if (certificate && !isLoadedCertificate(certificate))
      return new M2MClient({ ...options, certificate: await loadCertificate(certificate) });
    return new M2MClient(options);
  }

  stats(): ClientStats {
    return { ...this.counters, uploadsInFlight: this.uploads.inFlight };
  }

  /**
   * Stops the client: requests in flight and queued uploads fail with a NetworkError
   * CLIENT_CLOSED, the connections are destroyed. Later calls fail the same way.
   */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    this.closing.abort(this.closedError('The request'));
    this.session.end();
    await this.transport.close();
  }

  /** Asks the server for its time; opens (or renews) the F5 session. */
  async heartbeat(opts: RequestOptions = {}): Promise<HeartbeatResult> {
    return this.operation('Heartbeat', opts.signal, (signal) =>
      withRetry(
        () => this.session.heartbeat(signal),
        this.settings.retry,
        this.exchanges.retryHooks(signal, { retries: 0 }),
      ),
    );
  }

  /** Uploads a file: v2 in segments then the closing POST, v1 in one POST. */
  async upload(req: UploadRequest, opts: UploadOptions = {}): Promise<UploadResult> {
    const request = validateUploadRequest(req, this.apiVersion);
    return this.operation(`Upload of ${request.filnamn}`, opts.signal, (signal) =>
      this.uploads.run(request, opts, signal),
    );
  }

  /** One upload's state (with `id`), or all uploads of the certificate's organisation and survey. */
  async history(id?: string, opts: RequestOptions = {}): Promise<HistoryResult> {
    const uploadId = historyUploadId(id);
    const what = uploadId ? `History of upload ${uploadId}` : 'History';
    return this.operation(what, opts.signal, (signal) =>
      history(this.exchanges, this.settings, uploadId, what, signal),
    );
  }

  /**
   * Runs one public operation with a signal that aborts when the caller's does (error
   * ABORTED) or the client closes (error CLIENT_CLOSED).
   */
  private async operation<T>(
    what: string,
    callerSignal: AbortSignal | undefined,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (this.closing.signal.aborted) throw this.closedError(what);
    const controller = new AbortController();
    const onCallerAbort = (): void =>
      controller.abort(
        new NetworkError(`${what} was aborted.`, {
          code: 'ABORTED',
          retryable: false,
          hint: 'It was stopped on request; send it again when wanted.',
        }),
      );
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
}
