/**
 * A small cookie jar for the one API origin a client talks to. The F5 in front of SCB
 * sets its session cookies (LastMRH_Session, MRHSession) and maybe others (F5_ST, ...);
 * all are kept and sent back, as a browser would.
 */

interface StoredCookie {
  name: string;
  value: string;
  path: string;
  /** Epoch ms; undefined: until the session ends. */
  expiresAt?: number;
}

/** The cookie of one Set-Cookie header; undefined when it is malformed. */
export function parseSetCookie(header: string, now: number): StoredCookie | undefined {
  const [pair, ...attributes] = header.split(';');
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const cookie: StoredCookie = { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), path: '/' };
  let maxAgeSeen = false;
  for (const attribute of attributes) {
    const i = attribute.indexOf('=');
    const key = (i < 0 ? attribute : attribute.slice(0, i)).trim().toLowerCase();
    const value = i < 0 ? '' : attribute.slice(i + 1).trim();
    if (key === 'path' && value.startsWith('/')) cookie.path = value;
    else if (key === 'max-age' && /^-?\d+$/.test(value)) {
      // Max-Age wins over Expires (RFC 6265 5.3).
      maxAgeSeen = true;
      cookie.expiresAt = now + Number(value) * 1000;
    } else if (key === 'expires' && !maxAgeSeen) {
      const t = Date.parse(value);
      if (!Number.isNaN(t)) cookie.expiresAt = t;
    }
  }
  return cookie;
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

export class CookieJar {
  private readonly cookies = new Map<string, StoredCookie>();
  private cleared = 0;

  /** Bumped by clear(): an answer to a request sent before it belongs to a session already given up. */
  get generation(): number {
    return this.cleared;
  }

  /** Takes the Set-Cookie headers of an answer; an expiry in the past deletes the cookie. */
  store(setCookie: string | string[] | undefined, now: number = Date.now()): void {
    const headers = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
    for (const header of headers) {
      const cookie = parseSetCookie(header, now);
      if (!cookie) continue;
      const key = `${cookie.name}\u0000${cookie.path}`;
      if (cookie.expiresAt !== undefined && cookie.expiresAt <= now) this.cookies.delete(key);
      else this.cookies.set(key, cookie);
    }
  }

  /** The Cookie header for a request path (pathname only), or undefined when no cookie applies. */
  header(requestPath: string, now: number = Date.now()): string | undefined {
    const pairs: string[] = [];
    // Longer paths first (RFC 6265 5.4).
    const applicable = [...this.cookies.entries()].sort(([, a], [, b]) => b.path.length - a.path.length);
    for (const [key, cookie] of applicable) {
      if (cookie.expiresAt !== undefined && cookie.expiresAt <= now) this.cookies.delete(key);
      else if (pathMatches(requestPath, cookie.path)) pairs.push(`${cookie.name}=${cookie.value}`);
    }
    return pairs.length > 0 ? pairs.join('; ') : undefined;
  }

  /** Names of the cookies held (never their values: those are the session). */
  names(): string[] {
    return [...new Set([...this.cookies.values()].map((c) => c.name))];
  }

  /** The value of the cookie `name` (any path), or undefined. */
  value(name: string): string | undefined {
    for (const cookie of this.cookies.values()) if (cookie.name === name) return cookie.value;
    return undefined;
  }

  clear(): void {
    this.cookies.clear();
    this.cleared++;
  }
}
