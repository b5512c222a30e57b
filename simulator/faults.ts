/**
 * Injected faults. Each armed fault applies to the next matching requests and wears off;
 * a request takes at most one (the first armed that matches), except the session expiry,
 * which fires on its own.
 */
import type { SimulatorFaults } from './types';

export type Fault =
  | { type: 'fail'; status: number; body?: string }
  | { type: 'reset'; afterBytes: number }
  | { type: 'slow'; ms: number }
  | { type: 'html' }
  | { type: 'invalidJson' };

interface Armed {
  fault: Fault;
  remaining: number;
  match: RegExp;
}

/** By default a fault applies to any API request. */
const ANY_API_REQUEST = /^\/m2m\//;

function matches(re: RegExp, url: string): boolean {
  re.lastIndex = 0; // a /g or /y pattern would otherwise remember where it stopped
  return re.test(url);
}

function checkCount(name: string, count: number): number {
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`faults.${name}: count must be a whole number of 1 or more, got ${count}`);
  return count;
}

export class FaultQueue implements SimulatorFaults {
  private armed: Armed[] = [];
  private expiries: RegExp[] = [];

  constructor(private readonly expireAllSessions: () => void) {}

  failNext(count: number, options: { status?: number; match?: RegExp; body?: string } = {}): void {
    const status = options.status ?? 500;
    if (!Number.isInteger(status) || status < 100 || status > 599)
      throw new RangeError(`faults.failNext: status must be an HTTP status 100-599, got ${status}`);
    this.arm('failNext', count, { type: 'fail', status, body: options.body }, options.match);
  }

  resetNext(count: number, options: { match?: RegExp; afterBytes?: number } = {}): void {
    this.arm('resetNext', count, { type: 'reset', afterBytes: Math.max(0, options.afterBytes ?? 0) }, options.match);
  }

  expireSessions(): void {
    this.expireAllSessions();
  }

  expireSessionBeforeNext(options: { match?: RegExp } = {}): void {
    this.expiries.push(options.match ?? ANY_API_REQUEST);
  }

  slowNext(count: number, ms: number, options: { match?: RegExp } = {}): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`faults.slowNext: ms must be 0 or more, got ${ms}`);
    this.arm('slowNext', count, { type: 'slow', ms }, options.match);
  }

  htmlNext(count: number, options: { match?: RegExp } = {}): void {
    this.arm('htmlNext', count, { type: 'html' }, options.match);
  }

  invalidJsonNext(count: number, options: { match?: RegExp } = {}): void {
    this.arm('invalidJsonNext', count, { type: 'invalidJson' }, options.match);
  }

  pending(): number {
    return this.armed.reduce((sum, a) => sum + a.remaining, 0) + this.expiries.length;
  }

  clear(): void {
    this.armed = [];
    this.expiries = [];
  }

  /** Fires a pending session expiry for this request, then hands out its fault, if any. */
  take(url: string): Fault | undefined {
    const expiry = this.expiries.findIndex((re) => matches(re, url));
    if (expiry >= 0) {
      this.expiries.splice(expiry, 1);
      this.expireAllSessions();
    }
    const i = this.armed.findIndex((a) => matches(a.match, url));
    if (i < 0) return undefined;
    const armed = this.armed[i];
    if (--armed.remaining === 0) this.armed.splice(i, 1);
    return armed.fault;
  }

  private arm(name: string, count: number, fault: Fault, match: RegExp | undefined): void {
    this.armed.push({ fault, remaining: checkCount(name, count), match: match ?? ANY_API_REQUEST });
  }
}
