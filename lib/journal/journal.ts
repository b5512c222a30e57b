/**
 * One config node's delivery journal: a JSON-lines file in which every line is a whole record as
 * it stood after a change, so the last line of an id is its state. Appending a line is one
 * write(2), which a process crash cannot tear halfway (only a machine crash can, and such a torn
 * last line is skipped and logged); the lines that decide what may be sent again are synced to
 * disk before the step they record. The file is rewritten (compacted) to one line per record,
 * dropping decided records older than the retention period.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  closeSync,
  fdatasync as fdatasyncCallback,
  fsyncSync,
  mkdirSync,
  openSync,
  promises as fs,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { promisify } from 'node:util';
import * as path from 'node:path';
import {
  AT_SCB,
  IN_FLIGHT,
  DELIVERY_STATES,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryState,
  type DeliveryTarget,
  type DeliveryUpdate,
} from './types';

export interface JournalOptions {
  /** Decided records older than this many days are dropped at compaction (default 400: 13 months and more). */
  retentionDays?: number;
  /** fsync the lines that matter (default true). Off only where the disk's own guarantees suffice. */
  sync?: boolean;
  log?: (level: 'debug' | 'warn', message: string) => void;
}

export const DEFAULT_RETENTION_DAYS = 400;
/** Compact when the file holds this many lines more than records (superseded lines). */
const COMPACT_SLACK = 2000;
const DAY_MS = 86_400_000;
const fdatasync = promisify(fdatasyncCallback);
/** Spooled payloads up to this size are written synchronously (microseconds, page cache). */
const SMALL_SPOOL = 256 * 1024;

/**
 * The state whose line is synced to disk before the step it records: "closing" decides that a
 * file is never sent again blindly, even after a power cut. Every other line is written (so a
 * process crash keeps it) but not synced: losing one to a power cut errs on the safe side (a
 * "sent" lost is looked up in SCB's history, a decision lost is asked for again).
 */
const SYNCED: readonly DeliveryState[] = ['closing'];

/** A config node id as Node-RED makes them; anything else could name a path outside the journal's folder. */
const SAFE_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function isJournalId(id: unknown): id is string {
  return typeof id === 'string' && SAFE_ID.test(id) && id !== '.' && id !== '..';
}

export type NewDelivery = Omit<DeliveryRecord, 'id' | 'configId' | 'createdAt' | 'updatedAt' | 'changes' | 'state'> & {
  state?: DeliveryState;
  note?: string;
};

/** Every journal's changes, for whoever shows them (the editor's sidebar). */
export const journalEvents = new EventEmitter();
journalEvents.setMaxListeners(0);

function sameTarget(a: DeliveryTarget | undefined, b: DeliveryTarget): boolean {
  if (!a) return false;
  const norm = (s: string | undefined) => (s ?? '').trim().toUpperCase();
  return (
    norm(a.organisationsnummer) === norm(b.organisationsnummer) &&
    norm(a.undersokning) === norm(b.undersokning) &&
    norm(a.referensperiod) === norm(b.referensperiod) &&
    norm(a.filformat) === norm(b.filformat) &&
    norm(a.version) === norm(b.version)
  );
}

function isRecord(value: unknown): value is DeliveryRecord {
  const r = value as DeliveryRecord;
  return (
    !!r &&
    typeof r === 'object' &&
    typeof r.id === 'string' &&
    typeof r.configId === 'string' &&
    DELIVERY_STATES.includes(r.state) &&
    Array.isArray(r.changes)
  );
}

/** A file on disk as stated: what tells it from the same path saved again. */
export interface FileAsItIs {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Whether `r` delivers this file as it is now (same path, size and modification time): the same bytes, unread. */
export function isOfFile(r: DeliveryRecord, file: FileAsItIs): boolean {
  const source = r.source;
  return (
    source?.kind === 'path' && source.path === file.path && source.size === file.size && source.mtimeMs === file.mtimeMs
  );
}

export class Journal {
  private readonly records = new Map<string, DeliveryRecord>();
  private lines = 0;
  /** Open for appending from the first change on; closed (and reopened) around a compaction. */
  private fd: number | undefined;
  private spoolReady = false;
  readonly file: string;
  readonly spoolDir: string;

  private constructor(
    readonly dir: string,
    readonly configId: string,
    private readonly options: JournalOptions,
  ) {
    this.file = path.join(dir, `${configId}.jsonl`);
    this.spoolDir = path.join(dir, `${configId}.spool`);
  }

  /** Reads the journal of `configId` in `dir` (none yet: empty). Creates nothing until the first change. */
  static async open(dir: string, configId: string, options: JournalOptions = {}): Promise<Journal> {
    if (!isJournalId(configId)) throw new Error(`Not a config node id: ${JSON.stringify(configId)}`);
    const journal = new Journal(dir, configId, options);
    await journal.load();
    return journal;
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const lines = text.split('\n');
    // A file that does not end in a newline ends in a torn line (a crash mid-write).
    const torn = lines.pop() ?? '';
    let skipped = torn.trim() === '' ? 0 : 1;
    for (const [n, line] of lines.entries()) {
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        value = undefined;
      }
      if (isRecord(value) && value.configId === this.configId) {
        this.records.set(value.id, value);
        this.lines++;
      } else {
        skipped++;
        this.log('warn', `Delivery journal ${this.file}: line ${n + 1} is not a whole record and was skipped.`);
      }
    }
    if (torn.trim() !== '')
      this.log(
        'warn',
        `Delivery journal ${this.file}: the last line was cut short (a crash while writing) and was skipped.`,
      );
    // Rewrite at once after a torn line (so the next line starts clean) or when old records are due to go.
    if (skipped > 0 || this.expired().length > 0 || this.lines - this.records.size > COMPACT_SLACK) this.compact();
  }

  get size(): number {
    return this.records.size;
  }

  get(id: string): DeliveryRecord | undefined {
    return this.records.get(id);
  }

  /** The newest record that SCB gave this uploadId. */
  findByUploadId(uploadId: string): DeliveryRecord | undefined {
    return this.list().find((r) => r.uploadId === uploadId);
  }

  /** Newest first (by creation). */
  list(query: DeliveryQuery = {}): DeliveryRecord[] {
    const states = query.state === undefined ? undefined : ([] as DeliveryState[]).concat(query.state);
    const since = query.since?.getTime();
    const out = [...this.records.values()]
      .filter(
        (r) => (states ? states.includes(r.state) : true) && (since === undefined || Date.parse(r.updatedAt) >= since),
      )
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    return query.limit !== undefined ? out.slice(0, query.limit) : out;
  }

  /**
   * Deliveries to the same target on the same server, of the same size, that are (or may be)
   * at SCB: in flight, sent, pending, accepted or uncertain. One pass, no sort: it runs before
   * every upload (lib/journal/duplicates.ts compares their content).
   */
  atScb(server: string, target: DeliveryTarget, size: number): DeliveryRecord[] {
    const found: DeliveryRecord[] = [];
    for (const r of this.records.values()) {
      if (r.size === size && r.server === server && AT_SCB.includes(r.state) && sameTarget(r.target, target))
        found.push(r);
    }
    return found;
  }

  /** The newest record of this file as it is now (same path, size and modification time), in any state. */
  knows(file: FileAsItIs): DeliveryRecord | undefined {
    let newest: DeliveryRecord | undefined;
    for (const r of this.records.values()) {
      if (isOfFile(r, file) && (!newest || r.createdAt > newest.createdAt)) newest = r;
    }
    return newest;
  }

  async create(init: NewDelivery): Promise<DeliveryRecord> {
    const now = new Date().toISOString();
    const { note, state = 'queued', ...fields } = init;
    const record: DeliveryRecord = {
      id: randomUUID(),
      configId: this.configId,
      createdAt: now,
      updatedAt: now,
      ...fields,
      state,
      changes: [{ state, at: now, ...(note && { note }) }],
    };
    this.records.set(record.id, record);
    await this.append(record, true);
    return record;
  }

  /**
   * Applies a change. A new state is added to the record's changes with its time; a field set to
   * undefined is removed (a poll that ended, say).
   */
  async update(id: string, update: DeliveryUpdate): Promise<DeliveryRecord> {
    const current = this.records.get(id);
    if (!current) throw new Error(`No delivery ${id} in the journal of ${this.configId}.`);
    const { note, ...fields } = update;
    const now = new Date().toISOString();
    const record: DeliveryRecord = { ...current, ...fields, updatedAt: now, changes: current.changes };
    for (const key of Object.keys(fields) as Array<keyof typeof fields>)
      if (fields[key] === undefined) delete record[key];
    const stateChanged = update.state !== undefined && update.state !== current.state;
    if (stateChanged || note) {
      record.changes = [
        ...current.changes,
        {
          state: record.state,
          at: now,
          ...(record.segments !== undefined &&
            record.state === 'sending' && { segment: record.segment, segments: record.segments }),
          ...(update.uploadId && { uploadId: update.uploadId }),
          ...(update.error && { error: update.error }),
          ...(note && { note }),
        },
      ];
    }
    this.records.set(id, record);
    await this.append(record, stateChanged && SYNCED.includes(record.state));
    return record;
  }

  /** Bytes of an in-memory payload, kept while the upload is in flight so it can be resumed. */
  /** Not synced: a spool torn by a power cut no longer matches its SHA-256 and is reported, never sent. */
  async spool(id: string, content: Buffer): Promise<void> {
    if (!this.spoolReady) {
      await fs.mkdir(this.spoolDir, { recursive: true });
      this.spoolReady = true;
    }
    // A small payload in one synchronous write (no trip to the thread pool); a large one without blocking.
    if (content.length <= SMALL_SPOOL) writeFileSync(this.spoolPath(id), content);
    else await fs.writeFile(this.spoolPath(id), content);
  }

  async readSpool(id: string): Promise<Buffer | undefined> {
    return fs.readFile(this.spoolPath(id)).catch(() => undefined);
  }

  async dropSpool(id: string): Promise<void> {
    rmSync(this.spoolPath(id), { force: true });
  }

  private spoolPath(id: string): string {
    if (!isJournalId(id)) throw new Error(`Not a delivery id: ${JSON.stringify(id)}`);
    return path.join(this.spoolDir, id);
  }

  /**
   * Rewrites the file with one line per kept record: to a new file, synced, then renamed over
   * the old one. Synchronous, like every append, so no line can fall between the two files.
   */
  compact(): void {
    for (const r of this.expired()) {
      this.records.delete(r.id);
      void this.dropSpool(r.id).catch(() => undefined);
    }
    this.closeFile();
    mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, [...this.records.values()].map((r) => `${JSON.stringify(r)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    this.lines = this.records.size;
    this.log('debug', `Delivery journal ${this.file} compacted to ${this.lines} records.`);
  }

  /** Decided records past the retention period; nothing in flight, uncertain or still polled ever expires. */
  private expired(): DeliveryRecord[] {
    const days = this.options.retentionDays ?? DEFAULT_RETENTION_DAYS;
    const cutoff = Date.now() - days * DAY_MS;
    return [...this.records.values()].filter(
      (r) => !IN_FLIGHT.includes(r.state) && r.state !== 'uncertain' && !r.poll && Date.parse(r.updatedAt) < cutoff,
    );
  }

  /**
   * One line, in one write(2) on a descriptor kept open: a process crash cannot tear it, and
   * lines land in the order of the changes. A line to be synced is on disk when this resolves.
   */
  private async append(record: DeliveryRecord, sync: boolean): Promise<void> {
    journalEvents.emit('change', record);
    if (this.fd === undefined) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.file, 'a');
    }
    const fd = this.fd;
    writeSync(fd, `${JSON.stringify(record)}\n`);
    this.lines++;
    if (sync && this.options.sync !== false) await fdatasync(fd);
    if (this.lines - this.records.size > COMPACT_SLACK) this.compact();
  }

  private closeFile(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private log(level: 'debug' | 'warn', message: string): void {
    this.options.log?.(level, message);
  }
}
