/**
 * HTTP to SCB: one undici dispatcher with the client certificate (mutual TLS, optional proxy),
 * one request at a time described as an Exchange, transport failures as typed errors.
 */
import type { IncomingHttpHeaders } from 'node:http';
import * as tls from 'node:tls';
import { Agent, Pool, ProxyAgent, buildConnector, request, type Dispatcher } from 'undici';
import type { CookieJar } from './cookies';
import { CertificateError, NetworkError, isM2MError, type M2MError, type TransportCode } from './errors';
import { ShortReadError, type MultipartBody } from './multipart';
import { optionError, type ClientSettings, type Counters } from './options';
import { proxyFor } from './proxy';
import { fileChanged } from './source-file';

/** Connections beside the uploads' own, for heartbeats and history requests. */
export const EXTRA_CONNECTIONS = 4;

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

/** Transport failures that happen before anything is sent, so repeating cannot deliver twice. */
export const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export interface Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The session it was answered in (see Session.epoch). */
  sessionEpoch?: number;
}

/** One request to the API, described once so it can be sent again (retry, new session). */
export interface Exchange {
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

/** Every `code` along an error's cause chain (undici wraps the socket's error). */
export function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (
    let e: unknown = err, depth = 0;
    e && typeof e === 'object' && depth < 5;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

export class Transport {
  private readonly dispatcher: Dispatcher;
  /** The last TLS alert a connection received, and when (performance.now()); see watchTlsAlerts. */
  private lastTlsAlert?: { code: string; at: number };

  constructor(
    private readonly settings: ClientSettings,
    private readonly counters: Counters,
  ) {
    this.dispatcher = this.createDispatcher();
  }

  private createDispatcher(): Dispatcher {
    const { options, certificate, timeouts, apiRoot, host, log } = this.settings;
    let ca: string[] | undefined;
    if (options.ca !== undefined) {
      const extra = Buffer.isBuffer(options.ca) ? options.ca.toString('utf8') : options.ca;
      try {
        tls.createSecureContext({ ca: extra });
      } catch {
        throw optionError(
          'ca',
          '(PEM)',
          'it is not a PEM certificate',
          "Give the CA file of the server's certificate in PEM format.",
        );
      }
      // Node's public roots stay trusted beside the extra CA.
      ca = [...tls.rootCertificates, extra];
    }
    // Server verification is always on: there is deliberately no option to turn it off.
    const tlsOptions = {
      cert: certificate.cert,
      key: certificate.key,
      ca,
      rejectUnauthorized: true,
      timeout: timeouts.connectMs,
    };
    // Bounded: every upload may hold a connection, plus a few for heartbeats and history,
    // so a thousand polls at once queue here instead of opening a thousand TLS connections.
    const connections = this.settings.maxUploads + EXTRA_CONNECTIONS;
    const factory = (origin: string | URL, opts: Pool.Options): Dispatcher => {
      const pool = new Pool(origin, { ...opts, connect: this.watchTlsAlerts(opts.connect), connections });
      pool.on('connect', () => {
        this.counters.connections++;
      });
      return pool;
    };
    const proxy = proxyFor(new URL(apiRoot), options.proxy);
    if (proxy === undefined) return new Agent({ connect: tlsOptions, factory });
    try {
      new URL(proxy);
    } catch {
      // The value is not shown: a proxy URL may carry a password.
      throw optionError('proxy', '(hidden)', 'it must be a URL', 'Give it as http://host:port, or set HTTPS_PROXY.');
    }
    log('debug', `Proxy ${new URL(proxy).host} (CONNECT) for ${host}`);
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
          if (typeof e.code === 'string' && TLS_ALERT.test(e.code))
            this.lastTlsAlert = { code: e.code, at: performance.now() };
        });
        callback(...args);
      });
  }

  /** Destroys the connections. */
  close(): Promise<void> {
    return this.dispatcher.destroy().catch(() => undefined);
  }

  /** One HTTP request: cookies out and in, a deadline, transport failures as typed errors. */
  async send(x: Exchange, jar: CookieJar): Promise<Answer> {
    const url = new URL(x.path, this.settings.apiRoot);
    const deadline = AbortSignal.timeout(x.timeoutMs);
    const signal = AbortSignal.any([x.signal, deadline]);
    const cookie = jar.header(url.pathname);
    const jarGeneration = jar.generation;
    const started = performance.now();
    const multipart = x.body ? await x.body() : undefined;
    this.counters.requests++;
    try {
      const res = await request(url, {
        dispatcher: this.dispatcher,
        method: x.method,
        headers: {
          accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
          ...(cookie && { cookie }),
          ...multipart?.headers,
        },
        body: multipart?.body,
        signal,
        headersTimeout: x.timeoutMs,
        bodyTimeout: x.timeoutMs,
      });
      const text = await res.body.text();
      // An answer to a request of a session given up meanwhile (say, a 302 with fresh cookies)
      // must not overwrite the cookies of the session renewed since.
      if (x.opensSession || jar.generation === jarGeneration) jar.store(res.headers['set-cookie']);
      this.settings.log(
        'debug',
        `${x.method} ${url.pathname} ${res.statusCode} ${Math.round(performance.now() - started)} ms`,
      );
      return { statusCode: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (x.signal.aborted) throw x.signal.reason;
      const error = this.transportError(err, x, deadline.aborted, started);
      this.settings.log(
        'debug',
        `${x.method} ${url.pathname} failed (${error.code}) ${Math.round(performance.now() - started)} ms`,
      );
      throw error;
    }
  }

  private transportError(err: unknown, x: Exchange, timedOut: boolean, started: number): M2MError {
    const { host } = this.settings;
    if (isM2MError(err)) return err;
    if (err instanceof ShortReadError)
      return fileChanged(err.path, `${err.expected} bytes were expected of this part, ${err.actual} were read`);
    const codes = errorCodes(err);
    const untrusted = codes.find((c) => SERVER_UNTRUSTED_CODES.has(c));
    if (untrusted) {
      return new CertificateError(`${x.what}: the server's certificate at ${host} is not trusted (${untrusted}).`, {
        code: 'SERVER_CERTIFICATE_UNTRUSTED',
        hint: "Set the CA file (caPath) to the CA that signed the server's certificate.",
      });
    }
    const alert =
      codes.find((c) => TLS_ALERT.test(c)) ??
      (this.lastTlsAlert && this.lastTlsAlert.at >= started ? this.lastTlsAlert.code : undefined);
    if (alert) {
      return new CertificateError(
        `${x.what}: the server at ${host} refused the client certificate during the TLS handshake (${alert}).`,
        {
          code: 'CLIENT_CERTIFICATE_REFUSED',
          hint: "Check that the certificate is SCB's for this environment (test or production), still valid and not revoked.",
        },
      );
    }
    if (timedOut) {
      return new NetworkError(`${x.what}: no answer from ${host} within ${x.timeoutMs} ms.`, {
        code: 'TIMEOUT',
        hint: 'Check the connection to SCB; on a slow line raise the timeout.',
      });
    }
    // The connection's own code, passed on as it came (a TransportCode).
    const code = (codes.find((c) => c !== 'UND_ERR_SOCKET' && c !== 'UND_ERR') ?? codes[0] ?? 'NETWORK_ERROR') as
      TransportCode | 'NETWORK_ERROR';
    const reason = err instanceof Error ? err.message : String(err);
    // A server that asks for the certificate by renegotiation may refuse it by just closing the connection.
    const closed = x.opensSession && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET');
    return new NetworkError(`${x.what}: the connection to ${host} failed (${code}: ${reason}).`, {
      code,
      hint: closed
        ? "The server closed the connection without answering: if it does so every time, it may be refusing the client certificate (check that it is SCB's for this environment, still valid and not revoked); else check the network and proxy."
        : 'Check the network, DNS and proxy settings; it was retried.',
      cause: err,
    });
  }
}
