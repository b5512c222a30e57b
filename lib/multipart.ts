/**
 * A multipart/form-data body with one file part, streamed from disk (or a Buffer) with
 * an exact content-length. Measured against undici's FormData with `fs.openAsBlob`
 * slices on a 300 MB file over loopback TLS: ~550-700 MB/s against ~370-420 MB/s, RSS
 * growth ~60-75 MB in both whatever the file size (not the file);
 * so this small writer is used.
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { RunningDigest } from './digest';

export interface MultipartBody {
  body: Readable;
  headers: { 'content-type': string; 'content-length': string };
}

/** Bytes [start, end) of a file on disk (read through its FileSlices) or of a Buffer. */
export type PartSource = { file: FileSlices; start: number; end: number } | { buffer: Buffer };

/** Thrown from inside the body stream when the file yields fewer or more bytes than its slice. */
export class ShortReadError extends Error {
  constructor(
    readonly path: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`${path}: expected ${expected} bytes, read ${actual}`);
  }
}

/** Bytes read from disk at a time: few trips to the thread pool, the read buffer shared by a file's slices. */
export const READ_SIZE = 1024 * 1024;

/**
 * Bytes handed to TLS at a time. TLS encrypts a whole write before any of it reaches the
 * socket, so 1 MiB writes reach the server in bursts: measured side by side with curl (512 MiB,
 * loopback TLS), 1 MiB writes gave 0.92-0.94 of curl's throughput, 128 KiB writes 0.97-1.0, for
 * 0.05-0.1 s more CPU per GiB; smaller writes cost more CPU and gained nothing more.
 */
export const WRITE_SIZE = 128 * 1024;

/** `bytes` in writes of WRITE_SIZE (views, no copies). */
function* inWrites(bytes: Buffer): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += WRITE_SIZE) yield bytes.subarray(at, at + WRITE_SIZE);
}

/**
 * One read buffer kept between files, so that files sent one after another reuse the same
 * memory instead of leaving a buffer each to the garbage collector; freed after a minute unused.
 */
let spare: Buffer | undefined;
let spareTimer: NodeJS.Timeout | undefined;

function takeSpare(size: number): Buffer {
  const buffer = spare && spare.length >= size ? spare : Buffer.allocUnsafeSlow(size);
  if (buffer === spare) spare = undefined;
  return buffer;
}

function keepSpare(buffer: Buffer): void {
  if (spare && spare.length >= buffer.length) return;
  spare = buffer;
  clearTimeout(spareTimer);
  spareTimer = setTimeout(() => (spare = undefined), 60_000).unref();
}

/**
 * The slices of one file, read through one open handle into one buffer that each slice reuses.
 * Fresh buffers per chunk cost more CPU than the TLS encryption of their bytes (page faults,
 * and the garbage collections their external memory triggers). A slice overwrites the buffer
 * only once the previous slice's request has ended, which is when the client asks for the
 * next one, and goes to the next file once this one's requests are all answered (release). A
 * slice longer than the buffer is read into fresh chunks instead. With a digest, every chunk
 * read is fed to it and hashed once the slice is with TLS (once per byte, however often it is
 * sent); the buffer is read into again only once what it held is hashed. With `verify`, each
 * slice checks the file (say, that it did not change) while its chunks are read, and yields
 * its last chunk only once the check passed: the check costs the upload no wait between segments.
 */
export class FileSlices {
  private buffer?: Buffer;
  /** Which slice may read into the buffer: the latest one asked for. */
  private owner = 0;
  /** The last disk read started, which the next slice waits for before it reads. */
  private reading: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    private readonly capacity: number,
    private readonly options: { digest?: RunningDigest; verify?: () => Promise<void> } = {},
  ) {}

  /** Bytes [start, end) in chunks; from now on earlier slices of this file stop at their next chunk. */
  slice(start: number, end: number): AsyncGenerator<Buffer> {
    const owner = ++this.owner;
    const shared = end - start <= this.capacity;
    return this.chunks(start, end, shared, () => {
      if (!shared) return undefined;
      if (owner !== this.owner) throw new Error(`${this.path}: the read buffer went to a later slice or another file`);
      return (this.buffer ??= takeSpare(this.capacity));
    });
  }

  /**
   * Gives the buffer to other files: call it when no request of this file is under way. A
   * later slice takes one again. Resolves once the buffer is free (its last read done).
   */
  async release(): Promise<void> {
    const buffer = this.buffer;
    this.buffer = undefined;
    // An abandoned earlier slice reads no more.
    this.owner++;
    await this.reading.catch(() => undefined);
    await this.options.digest?.settle();
    if (buffer) keepSpare(buffer);
  }

  /** Releases the buffer and closes the file: call it once the upload is over, however it ended. */
  async close(): Promise<void> {
    await this.release();
    await this.handle.close().catch(() => undefined);
  }

  /** `into()`: the shared buffer if this slice uses it, else undefined; it throws once a later slice owns it. */
  private async *chunks(
    start: number,
    end: number,
    shared: boolean,
    into: () => Buffer | undefined,
  ): AsyncGenerator<Buffer> {
    const verified = this.options.verify?.();
    // Awaited before the last chunk; this only keeps a check of an abandoned body from being an unhandled rejection.
    verified?.catch(() => undefined);
    await this.reading.catch(() => undefined);
    // The buffer's bytes of the previous slice are hashed before they are overwritten.
    await this.options.digest?.settle();
    const length = end - start;
    const readAt = (at: number): Promise<Buffer> => {
      const size = Math.min(READ_SIZE, length - at);
      const buffer = into()?.subarray(at, at + size) ?? Buffer.allocUnsafeSlow(size);
      const read = this.handle.read(buffer, 0, size, start + at).then(({ bytesRead }) => buffer.subarray(0, bytesRead));
      // Awaited below; this only keeps a read of an abandoned body from being an unhandled rejection.
      read.catch(() => undefined);
      this.reading = read;
      return read;
    };
    let next = readAt(0);
    for (let done = 0; done < length;) {
      const chunk = await next;
      into(); // throws if the buffer went elsewhere while the chunk was read
      if (chunk.length === 0) throw new ShortReadError(this.path, length, done);
      this.options.digest?.feed(start + done, chunk);
      // Fresh chunks are hashed as they come, so that they are not all held until the slice ends.
      if (!shared) void this.options.digest?.settle();
      done += chunk.length;
      // The next chunk is read while this one is encrypted and sent.
      if (done < length) next = readAt(done);
      else await verified;
      for (const write of inWrites(chunk)) {
        into();
        yield write;
      }
    }
    // Every byte is with TLS: hash them while the server reads them.
    void this.options.digest?.settle();
  }
}

/** The filename parameter as browsers write it (WHATWG: ", CR, LF percent-encoded). */
function quoted(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

export function multipartBody(field: string, filename: string, source: PartSource): MultipartBody {
  const boundary = `----scb-m2m-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${quoted(field)}"; filename="${quoted(filename)}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length = 'buffer' in source ? source.buffer.length : source.end - source.start;
  const content =
    'buffer' in source ? source.buffer : length > 0 ? source.file.slice(source.start, source.end) : undefined;

  async function* parts(): AsyncGenerator<Buffer> {
    yield head;
    if (Buffer.isBuffer(content)) {
      yield* inWrites(content);
    } else if (content) {
      yield* content;
    }
    yield tail;
  }

  return {
    body: Readable.from(parts(), { objectMode: false }),
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + length + tail.length),
    },
  };
}
