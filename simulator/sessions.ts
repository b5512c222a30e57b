/**
 * The F5 BIG-IP APM session layer as far as the client sees it (assumed behaviour, see
 * the API description): a heartbeat creates a session bound to the client certificate,
 * cookies `MRHSession` (32 hex) and `LastMRH_Session` (its last 8), idle expiry.
 */
import { randomBytes } from 'node:crypto';
import { SESSION_COOKIES } from '../lib/api';
import type { PendingFile } from './uploads';

const [LAST_MRH_SESSION, MRH_SESSION] = SESSION_COOKIES;
/** F5_ST's last field: the longest session life in seconds (F5 habit; informational). */
const F5_MAX_SESSION_SECONDS = 604_800;

export interface Session {
  id: string;
  /** Normalised serial of the certificate that created it. */
  serial: string;
  lastSeen: number;
  /** Pending v2 uploads, lost with the session. */
  uploads: Map<string, PendingFile>;
}

/** Set-Cookie values in the F5 style: `name=value;path=/;secure`, no expiry. */
export function sessionCookies(id: string): string[] {
  return [
    `${LAST_MRH_SESSION}=${id.slice(-8)};path=/;secure`,
    `${MRH_SESSION}=${id};path=/;secure`,
    `F5_ST=1z1z1z${Math.floor(Date.now() / 1000)}z${F5_MAX_SESSION_SECONDS};path=/;secure`,
  ];
}

export function newSessionId(): string {
  return randomBytes(16).toString('hex');
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return undefined;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  created = 0;

  constructor(
    private readonly idleMs: number,
    /** Called for each session that ends, so its pending uploads can be cleaned up. */
    private readonly onEnd: (session: Session) => void,
  ) {}

  /** The live session the request's cookies name for this certificate, touched; else undefined. */
  find(cookieHeader: string | undefined, serial: string, now = Date.now()): Session | undefined {
    const id = cookieValue(cookieHeader, MRH_SESSION);
    const session = id ? this.sessions.get(id) : undefined;
    if (!session) return undefined;
    if (now - session.lastSeen > this.idleMs) {
      this.end(session);
      return undefined;
    }
    // A cookie presented with another certificate does not open that session.
    if (session.serial !== serial) return undefined;
    session.lastSeen = now;
    return session;
  }

  /** The serial of the certificate whose live session the cookies name, without touching it. */
  holder(cookieHeader: string | undefined, now = Date.now()): string | undefined {
    const id = cookieValue(cookieHeader, MRH_SESSION);
    const session = id ? this.sessions.get(id) : undefined;
    return session && now - session.lastSeen <= this.idleMs ? session.serial : undefined;
  }

  create(serial: string, now = Date.now()): Session {
    this.sweep(now);
    const session: Session = { id: newSessionId(), serial, lastSeen: now, uploads: new Map() };
    this.sessions.set(session.id, session);
    this.created++;
    return session;
  }

  expireAll(): void {
    for (const session of [...this.sessions.values()]) this.end(session);
  }

  /** Idle sessions are removed lazily, here and on lookup, so no timer is needed. */
  private sweep(now: number): void {
    for (const session of [...this.sessions.values()]) {
      if (now - session.lastSeen > this.idleMs) this.end(session);
    }
  }

  private end(session: Session): void {
    this.sessions.delete(session.id);
    this.onEnd(session);
  }
}
