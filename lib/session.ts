/**
 * The F5 session in front of SCB: its cookies, an epoch that says which session an answer
 * belongs to, and one heartbeat shared by every request that needs a session while none is live.
 */
import { HEARTBEAT_PATH, SESSION_COOKIES } from './api';
import { assertOk, headerText, sessionLost, unquote } from './answers';
import { CookieJar } from './cookies';
import { AuthorisationError, SessionError } from './errors';
import type { ClientSettings, Counters } from './options';
import { untilAborted } from './queue';
import type { Answer, Exchange, Transport } from './transport';
import type { HeartbeatResult } from './types';

export const SESSION_REFUSED_HINT =
  'The F5 in front of SCB refuses the session: check the proxy and the certificate; if it persists contact SCB.';

/** An answer never sent: the session that held this file's earlier segments is gone. */
export const SESSION_CHANGED: Answer = {
  statusCode: 0,
  headers: {},
  text: 'the session holding the earlier segments was renewed',
};

/** Counts the repeats one operation needed. */
export interface Tally {
  retries: number;
}

export class Session {
  private readonly jar = new CookieJar();
  /**
   * Bumped by each heartbeat that opens a new session (not one that keeps the live session),
   * so one lost session is renewed once and a closing segment is never sent in another
   * session than its data segments.
   */
  private epoch = 0;
  private live = false;
  private pending?: Promise<void>;

  constructor(
    private readonly transport: Transport,
    private readonly settings: ClientSettings,
    private readonly counters: Counters,
    /** Aborts when the client closes: the shared heartbeat belongs to no single caller. */
    private readonly closing: AbortSignal,
  ) {}

  /** No session is live any more (the client closes). */
  end(): void {
    this.live = false;
  }

  /**
   * Sends with the session's cookies. A lost session (3xx, HTML) is renewed by one shared
   * heartbeat and the request sent once more; lost again → SessionError.
   */
  async send(x: Exchange, tally: Tally): Promise<Answer> {
    for (let renewed = false; ; renewed = true) {
      await this.ensure(x.signal);
      const epoch = this.epoch;
      if (x.sessionEpoch !== undefined && x.sessionEpoch !== epoch) return SESSION_CHANGED;
      const answer = await this.transport.send(x, this.jar);
      if (!sessionLost(answer)) return { ...answer, sessionEpoch: epoch };
      if (renewed) {
        throw new SessionError(
          `${x.what}: the session was refused again right after a new heartbeat (${answer.statusCode}).`,
          {
            code: 'SESSION_REFUSED',
            statusCode: answer.statusCode,
            hint: SESSION_REFUSED_HINT,
          },
        );
      }
      this.settings.log('debug', `${x.what}: session lost (${answer.statusCode}); renewing it.`);
      this.drop(epoch);
      tally.retries++;
      this.counters.retries++;
    }
  }

  private drop(epoch: number): void {
    // Concurrent requests may all see the same loss: only the first drops the session.
    if (epoch !== this.epoch || !this.live) return;
    this.live = false;
    this.jar.clear();
    this.counters.sessionRenewals++;
  }

  /** One heartbeat shared by every caller that needs a session while none is live. */
  private ensure(signal: AbortSignal): Promise<void> {
    if (this.live) return Promise.resolve();
    if (!this.pending) {
      const shared = this.heartbeat(this.closing).then(() => undefined);
      this.pending = shared;
      // Callers may all have given up; the outcome is still handled.
      shared.then(
        () => (this.pending = undefined),
        () => (this.pending = undefined),
      );
    }
    return untilAborted(this.pending, signal);
  }

  /** One heartbeat, not retried: opens a session, or keeps the live one. */
  async heartbeat(signal: AbortSignal): Promise<HeartbeatResult> {
    const certificate = this.settings.certificate.info;
    const x: Exchange = {
      method: 'GET',
      path: HEARTBEAT_PATH,
      what: 'Heartbeat',
      timeoutMs: this.settings.timeouts.shortRequestMs,
      signal,
      opensSession: true,
    };
    this.counters.heartbeats++;
    const sessionBefore = this.key();
    const answer = await this.transport.send(x, this.jar);
    if (sessionLost(answer)) {
      const where = headerText(answer.headers.location);
      throw new SessionError(
        `Heartbeat: the server answered ${answer.statusCode}${where ? ` (to ${where})` : ' with an HTML page'} instead of opening a session.`,
        {
          code: 'SESSION_REFUSED',
          statusCode: answer.statusCode,
          hint: SESSION_REFUSED_HINT,
        },
      );
    }
    if (answer.statusCode === 401) {
      throw new AuthorisationError(
        `Heartbeat: the certificate ${certificate.commonName ?? certificate.subject} is not accepted (401).`,
        {
          code: 'CERTIFICATE_NOT_ACCEPTED',
          hint: "Check that it is SCB's certificate for this environment (test or production) and still valid.",
        },
      );
    }
    assertOk(answer, x, certificate);
    // A heartbeat in a live session keeps it (the F5 sets no new cookies): bumping the epoch
    // then would make every upload in flight start over from segment 0.
    if (!this.live || this.key() !== sessionBefore) this.epoch++;
    this.live = true;
    this.settings.log('debug', `Session open; cookies held: ${this.jar.names().join(', ') || 'none'}`);
    return { ok: true, serverTime: unquote(answer.text), statusCode: answer.statusCode };
  }

  /** What identifies the server's session: the F5 session cookies, or every cookie when there are none. */
  private key(): string {
    const values = SESSION_COOKIES.map((name) => this.jar.value(name));
    return values.some((v) => v !== undefined) ? values.join('\u0000') : (this.jar.header('/') ?? '');
  }
}
