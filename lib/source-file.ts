import { promises as fs } from 'node:fs';
import { SEGMENT_SIZE } from './api';
import { RunningDigest, sha256File, sha256Of } from './digest';
import { ValidationError } from './errors';
import { FileSlices, multipartBody, type MultipartBody } from './multipart';
import type { UploadSource } from './types';

export function fileChanged(path: string, detail: string): ValidationError {
  return new ValidationError(`The file ${path} changed while being sent (${detail}).`, {
    code: 'FILE_CHANGED',
    field: 'source',
    value: path,
    hint: 'Write the file completely (or to another name, then rename it) before uploading it, then send it again.',
  });
}

/**
 * The file being uploaded. A path is stated and opened once and streamed from disk slice by
 * slice (never read whole) through one buffer of at most a segment; if its size or time changes
 * while it is sent, the upload stops. Asked for its SHA-256, it hashes the bytes as they are
 * read for sending. Close it once the upload is over.
 */
export class SourceFile {
  private constructor(
    private readonly content: Buffer | FileSlices,
    private readonly filnamn: string,
    readonly size: number,
    private readonly mtimeMs: number,
    private readonly digest?: RunningDigest,
  ) {}

  /** `hash`: keep the SHA-256 of the bytes read (see sha256()). */
  static async open(source: UploadSource, filnamn: string, hash = false): Promise<SourceFile> {
    if ('buffer' in source) return new SourceFile(source.buffer, filnamn, source.buffer.length, 0);
    const stat = await unreadable(source.path, fs.stat(source.path));
    if (!stat.isFile()) {
      throw new ValidationError(`The upload source ${source.path} is not a file.`, {
        code: 'NOT_A_FILE',
        field: 'source',
        value: source.path,
        hint: 'Give the path of the file to upload.',
      });
    }
    const handle = await unreadable(source.path, fs.open(source.path, 'r'));
    const digest = hash ? new RunningDigest(stat.size) : undefined;
    const slices = new FileSlices(handle, source.path, Math.min(stat.size, SEGMENT_SIZE), {
      digest,
      verify: () => unchanged(source.path, stat),
    });
    return new SourceFile(slices, filnamn, stat.size, stat.mtimeMs, digest);
  }

  /**
   * The content's SHA-256 (hex). Of a file, from the bytes the data segments read when they
   * have all been sent, else (v1, whose one POST is also its closing request) from a pass over
   * the file; the file's size and time are checked again when it is sent.
   */
  async sha256(): Promise<string> {
    if (Buffer.isBuffer(this.content)) return sha256Of(this.content);
    await this.digest?.settle();
    return this.digest?.digest() ?? (await sha256File(this.content.path)).sha256;
  }

  /** Closes the file; the upload is over. */
  async close(): Promise<void> {
    if (!Buffer.isBuffer(this.content)) await this.content.close();
  }

  /**
   * A multipart body with one file part holding bytes [start, end); a resent part is read from
   * disk again. A part of a file is sent only while the file is as it was when opened (checked
   * as the part is read; before the closing POST, first).
   */
  async part(field: string, start: number, end: number): Promise<MultipartBody> {
    if (Buffer.isBuffer(this.content))
      return multipartBody(field, this.filnamn, { buffer: this.content.subarray(start, end) });
    if (start === end) {
      // The closing POST comes once every data segment was answered: the read buffer may serve other files meanwhile.
      void this.content.release();
      await unchanged(this.content.path, { size: this.size, mtimeMs: this.mtimeMs });
    }
    return multipartBody(field, this.filnamn, { file: this.content, start, end });
  }
}

/** Throws FILE_CHANGED when the file's size or time is not what it was when opened, FILE_UNREADABLE when it is gone. */
async function unchanged(path: string, was: { size: number; mtimeMs: number }): Promise<void> {
  const stat = await unreadable(path, fs.stat(path));
  if (stat.size !== was.size || stat.mtimeMs !== was.mtimeMs) {
    throw fileChanged(
      path,
      `it was ${was.size} bytes, now ${stat.size}${stat.size === was.size ? ', with a new modification time' : ''}`,
    );
  }
}

/** A failed stat or open of the file as FILE_UNREADABLE. */
async function unreadable<T>(path: string, attempt: Promise<T>): Promise<T> {
  try {
    return await attempt;
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ValidationError(`The file ${path} cannot be read (${reason}).`, {
      code: 'FILE_UNREADABLE',
      field: 'source',
      value: path,
      hint: 'Check the path and that Node-RED may read it.',
      cause: err,
    });
  }
}
