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
 */
export class RunningDigest {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes [0, hashed) are in the hash. */
  private hashed = 0;
  private hex?: string;

  constructor(readonly size: number) {}

  /** The bytes of the file at `offset`. */
  feed(offset: number, chunk: Buffer): void {
    const end = offset + chunk.length;
    if (offset > this.hashed || end <= this.hashed || this.hex !== undefined) return;
    this.hash.update(offset === this.hashed ? chunk : chunk.subarray(this.hashed - offset));
    this.hashed = end;
  }

  /** The digest once every byte was fed, else undefined. */
  digest(): string | undefined {
    if (this.hex === undefined && this.hashed >= this.size) this.hex = this.hash.digest('hex');
    return this.hex;
  }
}
