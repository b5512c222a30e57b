/**
 * Files being received: v2 segments written in place into one part file (or only hashed
 * when files are not kept), a running sha256, and the file's first bytes for the content
 * check. Nothing holds more than a chunk of a segment in memory.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** How much of the start of a file the content check reads. */
export const HEAD_BYTES = 1024 * 1024;
export const REJECT_MARKER = 'SIMULATE-REJECT';

interface Segment {
  start: number;
  size: number;
  /** This segment's share of the file's first HEAD_BYTES. */
  head: Buffer;
}

interface Received {
  size: number;
  hash: Hash;
  head: Buffer;
}

export interface AssembledFile {
  size: number;
  sha256: string;
  segments: number;
  /** Where the file is, when files are kept. */
  path?: string;
  /** Why history will reject it; empty: accepted. */
  meddelanden: string[];
}

/** The messages history shows for a file's content (the simulator's stand-in for SCB's checks). */
export function contentMessages(head: Buffer): string[] {
  const text = head.toString('latin1');
  const start = text.startsWith('\u00ef\u00bb\u00bf') ? 3 : 0;
  const first = /\S/.exec(text.slice(start));
  const messages: string[] = [];
  if (!first || first[0] !== '<') messages.push('Filen är inte XML: den börjar inte med "<".');
  if (text.includes(REJECT_MARKER)) messages.push(`Filen innehåller markören ${REJECT_MARKER}.`);
  return messages;
}

/** One file in transit. Calls are serialised per file: a resent segment waits for the one before. */
export class PendingFile {
  private readonly segments: Segment[] = [];
  private hash: Hash = createHash('sha256');
  private hashBeforeLast: Hash = createHash('sha256');
  private queue: Promise<unknown> = Promise.resolve();
  private created = false;

  /** partPath undefined: only hash (keepFiles false). */
  constructor(private readonly partPath: string | undefined) {}

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Runs `task` after every earlier task on this file. */
  serialise<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Receives segment `index` from `source`: 0 starts the file over, `segmentCount` appends,
   * `segmentCount - 1` replaces the last (a resend whose answer was lost). Commits only
   * when the whole source arrived, so an aborted segment leaves the file as it was.
   */
  async receive(index: number, source: Readable, extra: Transform[] = []): Promise<void> {
    const restart = index === 0;
    const replace = !restart && index === this.segments.length - 1;
    if (!restart && !replace && index !== this.segments.length)
      throw new Error(`segment ${index} does not follow ${this.segments.length}`);
    const start = restart ? 0 : replace ? this.segments[index].start : this.size();
    const base = restart ? createHash('sha256') : (replace ? this.hashBeforeLast : this.hash).copy();
    const received = await this.write(source, extra, start, base);
    const segment: Segment = { start, size: received.size, head: received.head };
    if (restart) {
      this.segments.length = 0;
      this.hashBeforeLast = createHash('sha256');
    } else if (!replace) {
      this.hashBeforeLast = this.hash;
    }
    this.segments[index] = segment;
    this.hash = received.hash;
  }

  /** The whole file: truncated to its committed size and moved to `finalPath` when kept. */
  async assemble(finalPath: string | undefined): Promise<AssembledFile> {
    const size = this.size();
    const head = Buffer.concat(this.segments.map((s) => s.head));
    let path: string | undefined;
    if (this.partPath && finalPath) {
      if (this.created) {
        await fsp.truncate(this.partPath, size);
        await fsp.rename(this.partPath, finalPath);
      } else {
        await fsp.writeFile(finalPath, '');
      }
      path = finalPath;
    }
    return {
      size,
      sha256: this.hash.digest('hex'),
      segments: this.segments.length,
      path,
      meddelanden: contentMessages(head),
    };
  }

  /** Removes the part file of a file that will not be finished. */
  async discard(): Promise<void> {
    if (this.partPath && this.created) await fsp.rm(this.partPath, { force: true });
  }

  private size(): number {
    const last = this.segments[this.segments.length - 1];
    return last ? last.start + last.size : 0;
  }

  private async write(source: Readable, extra: Transform[], start: number, hash: Hash): Promise<Received> {
    const received: Received = { size: 0, hash, head: Buffer.alloc(0) };
    const headWanted = Math.max(0, HEAD_BYTES - start);
    const heads: Buffer[] = [];
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        if (received.size < headWanted) heads.push(Buffer.from(chunk.subarray(0, headWanted - received.size)));
        received.size += chunk.length;
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    let sink: Writable;
    if (this.partPath) {
      if (!this.created) {
        await fsp.writeFile(this.partPath, '');
        this.created = true;
      }
      sink = createWriteStream(this.partPath, { flags: 'r+', start });
    } else {
      sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    }
    await pipeline([source, ...extra, tap, sink]);
    received.head = Buffer.concat(heads);
    return received;
  }
}
