/** SHA-256 of what is sent: of bytes, of a file, or of a file's bytes as an upload reads them. */
import { createHash, type Hash } from 'node:crypto';
import { promises as fs } from 'node:fs';

/** SHA-256 (hex) of bytes. */
export function sha256Of(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * SHA-256 (hex) and size of a file, read through one buffer: memory stays flat whatever its
 * size, and it costs less CPU than a fresh buffer per chunk (see lib/multipart.ts).
 */
export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafeSlow(1 << 20);
  const handle = await fs.open(file, 'r');
  let size = 0;
  try {
    for (let read; (read = (await handle.read(buffer, 0, buffer.length, size)).bytesRead) > 0; size += read) {
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * The SHA-256 of a file taken from the chunks an upload reads anyway, so the file is not read
 * a second time for it. Chunks may come again (a resent segment, a restart from segment 0):
 * only bytes beyond those already hashed count, so each byte is hashed once, in order.
 *
 * Hashing waits for `settle()` and then goes one chunk per turn of the event loop: an upload
 * calls it once a segment's bytes are handed to TLS, so the hash runs while the server reads
 * the segment rather than between the socket's writes, and I/O is served between chunks. A fed
 * chunk must stay as it is until settled (the reader of a shared buffer awaits settle() first).
 */
export class RunningDigest {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes [0, hashed) are in the hash. */
  private hashed = 0;
  private hex?: string;
  private readonly fed: Array<{ offset: number; chunk: Buffer }> = [];
  private settling?: Promise<void>;

  constructor(readonly size: number) {}

  /** The bytes of the file at `offset`, hashed by the next settle(). */
  feed(offset: number, chunk: Buffer): void {
    this.fed.push({ offset, chunk });
  }

  /** Hashes every chunk fed, one per turn of the event loop; resolves when none is left. */
  settle(): Promise<void> {
    if (this.fed.length === 0) return Promise.resolve();
    this.settling ??= this.drain();
    return this.settling;
  }

  private async drain(): Promise<void> {
    try {
      while (this.fed.length > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        const next = this.fed.shift();
        if (next) this.add(next.offset, next.chunk);
      }
    } finally {
      // In the same step as the last chunk: a chunk fed from now on starts a new drain.
      this.settling = undefined;
    }
  }

  private add(offset: number, chunk: Buffer): void {
    const end = offset + chunk.length;
    if (offset > this.hashed || end <= this.hashed || this.hex !== undefined) return;
    this.hash.update(offset === this.hashed ? chunk : chunk.subarray(this.hashed - offset));
    this.hashed = end;
  }

  /** The digest once every byte was fed and settled, else undefined. */
  digest(): string | undefined {
    if (this.hex === undefined && this.fed.length === 0 && this.hashed >= this.size) this.hex = this.hash.digest('hex');
    return this.hex;
  }
}
