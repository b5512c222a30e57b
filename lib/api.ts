/**
 * What we know, and what we assume, of SCB's Indataportalen M2M API
 * (../shared/reference/scb-m2m-api.md). Every "assumed" behaviour lives here, once,
 * so the client and the simulator change together when SCB tells us otherwise.
 */

export type ApiVersion = 'v1' | 'v2';
export type Environment = 'production' | 'test' | 'custom';
export type ScbStatus = 'accepted' | 'rejected' | 'pending';

/** Origins of SCB's environments (known). The API root is `{origin}m2m/{apiVersion}/`. */
export const ENVIRONMENT_ORIGINS: Record<Exclude<Environment, 'custom'>, string> = {
  production: 'https://m2m.gdb.scb.se/',
  test: 'https://test.m2m.gdb.scb.se/',
};

/** Largest v2 data segment: 1024 × 9000 bytes (known). */
export const SEGMENT_SIZE = 9_216_000;
/** The closing segment number of a v2 upload (known). */
export const CLOSING_SEGMENT = -1;
/** Multipart field name of the file part: `File` in v2 (known), `file` in v1 (known, the guide). */
export const FILE_FIELD: Record<ApiVersion, string> = { v1: 'file', v2: 'File' };

/** F5 BIG-IP APM session cookies (known names; any other cookie is kept too). */
export const SESSION_COOKIES = ['LastMRH_Session', 'MRHSession'] as const;
/** Where the F5 sends a request without a valid session (assumed: F5's default). */
export const SESSION_POLICY_PATH = '/my.policy';

/** The API root for a base origin (with optional path prefix) and version. */
export function apiRoot(baseUrl: string, apiVersion: ApiVersion): string {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return `${base}m2m/${apiVersion}/`;
}

export interface UploadPathParts {
  organisationsnummer: string;
  undersokning: string;
  referensperiod?: string;
  filformat: string;
  filnamn?: string;
  version?: string;
}

/** Relative path of a v2 segment POST (known); each part percent-encoded. */
export function v2SegmentPath(segment: number, p: UploadPathParts): string {
  const parts = [
    'file',
    String(segment),
    p.organisationsnummer,
    p.undersokning,
    p.referensperiod ?? '',
    p.filformat,
    p.filnamn ?? '',
  ].map((s, i) => (i < 2 ? s : encodeURIComponent(s)));
  // Without a version the reference client's URL ends in '/' (known).
  return `${parts.join('/')}/${p.version ? encodeURIComponent(p.version) : ''}`;
}

/** Relative path of a v1 upload POST (known, the guide). */
export function v1UploadPath(p: UploadPathParts): string {
  const parts = [p.organisationsnummer, p.undersokning, p.filformat].map(encodeURIComponent);
  if (p.version) parts.push(encodeURIComponent(p.version));
  return parts.join('/');
}

export const HEARTBEAT_PATH = 'heartbeat';

export function historyPath(id?: string): string {
  return id ? `history/${encodeURIComponent(id)}` : 'history';
}

/**
 * A v2 data segment that the server refuses because it does not follow the segments it
 * holds (assumed: it lost them with an expired session). The simulator answers 409 with
 * JSON `{"error":"SegmentOutOfOrder","expectedSegment":n}`; the client then restarts the
 * file from segment 0, once.
 */
export const SEGMENT_OUT_OF_ORDER_STATUS = 409;
export const SEGMENT_OUT_OF_ORDER_ERROR = 'SegmentOutOfOrder';

export function isSegmentOutOfOrder(statusCode: number, body: string): boolean {
  if (statusCode !== SEGMENT_OUT_OF_ORDER_STATUS) return false;
  try {
    return JSON.parse(body)?.error === SEGMENT_OUT_OF_ORDER_ERROR;
  } catch {
    return false;
  }
}

/**
 * Whether the server keeps a v2 file's data segments when the F5 session is renewed in the
 * middle of the file (assumed: no, they go with the old session). false: the client starts
 * the file again from segment 0 at once in the new session; true: it carries on with the
 * next segment and closes in the new session. Either way a closing POST is only sent in the
 * session that accepted the last data segment. Overridable per client
 * (M2MClientOptions.segmentsSurviveSessionRenewal).
 */
export const SEGMENTS_SURVIVE_SESSION_RENEWAL = false;

/**
 * An answer that means "the F5 session is gone" (assumed: F5's behaviour): a redirect,
 * or an HTML page where the API answers text or JSON.
 */
export function isSessionLost(statusCode: number, contentType: string | undefined, bodyStart: string): boolean {
  if (statusCode >= 300 && statusCode < 400) return true;
  if (statusCode >= 200 && statusCode < 300) {
    if (contentType && /text\/html/i.test(contentType)) return true;
    if (/^\s*<(!doctype\s+html|html)/i.test(bodyStart)) return true;
  }
  return false;
}

/** Answer of the closing v2 segment, read case-insensitively (names known, casing assumed). */
export interface DeliveryReceipt {
  deliveryId: string;
  timeStamp?: string;
}

/** The history record shape we assume (published nowhere); the raw JSON is always kept. */
export interface HistoryRecord {
  id?: string;
  undersokning?: string;
  filformat?: string;
  referensperiod?: string;
  inskickatDatum?: string;
  status?: string;
  progressStatus?: number;
  meddelanden?: string[];
  [key: string]: unknown;
}

/** progressStatus values (assumed, after SCB's portal vocabulary). */
export const PROGRESS_STATUS = { notStarted: 0, inProgress: 1, finishedWithErrors: 2, finishedOk: 3 } as const;
/** The same values by the names of the enum `ProgresStatus` in SCB's client, should they be sent as text. */
const PROGRESS_NAMES: Record<string, number> = {
  ejpaborjad: PROGRESS_STATUS.notStarted,
  pagar: PROGRESS_STATUS.inProgress,
  avslutadfel: PROGRESS_STATUS.finishedWithErrors,
  avslutadok: PROGRESS_STATUS.finishedOk,
};

const ACCEPTED_WORDS = ['ok', 'godkänd', 'godkand', 'accepted', 'approved'];
const REJECTED_WORDS = ['fel', 'error', 'avvisad', 'underkänd', 'underkand', 'rejected', 'failed'];

/** Reads a property whatever its casing (the server's casing is assumed). */
export function propertyCI(obj: unknown, name: string): unknown {
  if (!obj || typeof obj !== 'object') return undefined;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (k.toLowerCase() === lower) return v;
  }
  return undefined;
}

/** progressStatus as a number: given as one, as digits or by its enum name; else undefined. */
function progressOf(record: unknown): number | undefined {
  const progress = propertyCI(record, 'progressStatus');
  if (typeof progress === 'number') return progress;
  if (typeof progress !== 'string') return undefined;
  const text = progress.trim();
  return /^\d+$/.test(text) ? Number(text) : PROGRESS_NAMES[text.toLowerCase()];
}

/**
 * The default classification rule (assumed): `progressStatus` when present, else the
 * `status` text; anything unknown is pending. Names in any casing, so the .NET PascalCase
 * shape and the head of a `Rapporthuvud` (its rows are not looked at) are read alike.
 */
export function classifyHistory(record: unknown): ScbStatus {
  const p = progressOf(record);
  if (p !== undefined) {
    if (p === PROGRESS_STATUS.finishedOk) return 'accepted';
    if (p === PROGRESS_STATUS.finishedWithErrors) return 'rejected';
    return 'pending';
  }
  const status = propertyCI(record, 'status');
  if (typeof status === 'string') {
    const s = status.trim().toLowerCase();
    if (ACCEPTED_WORDS.includes(s)) return 'accepted';
    if (REJECTED_WORDS.includes(s)) return 'rejected';
  }
  return 'pending';
}

/** Property names that may hold SCB's messages (assumed). */
const MESSAGE_PROPERTIES = ['meddelanden', 'felmeddelanden', 'meddelande'];
/** Where the text is in a message given as an object (assumed). */
const MESSAGE_TEXT_PROPERTIES = ['text', 'meddelande', 'message', 'beskrivning'];

/** The messages of one record or row: a text, or a list of texts or of objects holding one. */
function ownMessages(record: unknown): string[] {
  const out: string[] = [];
  for (const name of MESSAGE_PROPERTIES) {
    const value = propertyCI(record, name);
    for (const item of Array.isArray(value) ? value : [value]) {
      const text =
        typeof item === 'string'
          ? item
          : MESSAGE_TEXT_PROPERTIES.map((n) => propertyCI(item, n)).find((t) => typeof t === 'string');
      if (typeof text === 'string' && text.trim() !== '') out.push(text.trim());
    }
  }
  return out;
}

/**
 * SCB's messages in a history record of any of the shapes we know (assumed): `meddelanden` in
 * any casing, and the rows (`rapportrader`) of a `Rapporthuvud` with their own messages. For a
 * rejected record the reasons come first: the messages of its rejected rows, then the head's,
 * then the other rows'. Each text once.
 */
export function historyMessages(record: unknown): string[] {
  const rows = propertyCI(record, 'rapportrader');
  const list = Array.isArray(rows) ? rows : [];
  const failed =
    classifyHistory(record) === 'rejected' ? list.filter((row) => classifyHistory(row) === 'rejected') : [];
  const ordered = [...failed, record, ...list.filter((row) => !failed.includes(row))];
  return [...new Set(ordered.flatMap(ownMessages))];
}

/**
 * How long a history 404 for an uploadId that SCB itself gave means "not known yet" (assumed:
 * the history may lag behind the closing answer). After that, it is reported: the file is not
 * to be sent again, but looked up in SCB's portal.
 */
export const UNKNOWN_UPLOAD_GRACE_MS = 10 * 60_000;

/**
 * Whether a record of the history list is the delivery of `target` that was closed at or after
 * `sinceMs` (assumed: records carry filnamn, undersokning, filformat, referensperiod and a local
 * `inskickatDatum` to the minute). Used to settle a delivery whose closing request went unanswered.
 */
export function historyRecordMatches(
  record: unknown,
  target: UploadPathParts & { filnamn: string },
  sinceMs: number,
): boolean {
  const same = (name: string, expected: string | undefined) => {
    const value = propertyCI(record, name);
    if (expected === undefined || expected === '') return value === undefined || value === null || value === '';
    return typeof value === 'string' && value.trim().toUpperCase() === expected.trim().toUpperCase();
  };
  if (
    !same('filnamn', target.filnamn) ||
    !same('undersokning', target.undersokning) ||
    !same('filformat', target.filformat)
  )
    return false;
  if (
    target.referensperiod &&
    propertyCI(record, 'referensperiod') !== undefined &&
    !same('referensperiod', target.referensperiod)
  )
    return false;
  const sent = propertyCI(record, 'inskickatDatum');
  if (typeof sent !== 'string') return true;
  // Local time to the minute: a minute of slack either way keeps a delivery of this very second.
  const at = Date.parse(sent.includes('T') ? sent : sent.replace(' ', 'T'));
  return Number.isNaN(at) || at >= sinceMs - 60_000;
}
