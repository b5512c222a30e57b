/**
 * A streaming multipart/form-data reader for one file part: it passes on the bytes of the
 * part whose field name matches (case-insensitively) and drops everything else, holding
 * at most one chunk plus a boundary in memory whatever the file size.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** The body is not the multipart the API expects (answered 400). */
export class MultipartError extends Error {}

/** Longest part header block accepted. */
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a multipart content type, quoted (.NET) or not; undefined when not multipart. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/(form-data|mixed)\s*(;|$)/i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^;\s]{1,200}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** A parameter (`name`, `filename`) of a part's Content-Disposition header, quoted or not. */
function dispositionParam(headers: string, param: 'name' | 'filename'): string | undefined {
  for (const line of headers.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.slice(0, colon).trim().toLowerCase() !== 'content-disposition') continue;
    // The leading `;` keeps `name` from matching inside `filename`.
    const m = new RegExp(`;\\s*${param}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i').exec(line.slice(colon + 1));
    return m ? (m[1] ?? m[2]) : undefined;
  }
  return undefined;
}

type State = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'done';

export class FilePartReader extends Transform {
  /** Parts whose name matched the field. */
  fileParts = 0;
  /** The filename parameter of the file part, when it had one. */
  filename: string | undefined;
  private readonly delimiter: Buffer;
  private state: State = 'preamble';
  private emitting = false;
  // The body starts with `--boundary`, not `\r\n--boundary`: a virtual CRLF makes them alike.
  private pending: Buffer = Buffer.from('\r\n');

  constructor(
    boundary: string,
    private readonly field: string,
  ) {
    super();
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    try {
      this.consume();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.state !== 'done')
      return callback(new MultipartError('the multipart body ends before its closing boundary'));
    if (this.fileParts !== 1) {
      return callback(
        new MultipartError(
          `the multipart body must have exactly one part named "${this.field}", it has ${this.fileParts}`,
        ),
      );
    }
    callback();
  }

  private consume(): void {
    for (;;) {
      const data = this.pending;
      if (this.state === 'done') {
        this.pending = Buffer.alloc(0); // the epilogue is ignored
        return;
      }
      if (this.state === 'preamble' || this.state === 'body') {
        const at = data.indexOf(this.delimiter);
        // Without a whole delimiter, all but a possible delimiter start is safe to pass on.
        const safe = at >= 0 ? at : Math.max(0, data.length - this.delimiter.length + 1);
        if (this.emitting && safe > 0) this.push(data.subarray(0, safe));
        if (at < 0) {
          this.pending = data.subarray(safe);
          return;
        }
        this.pending = data.subarray(at + this.delimiter.length);
        this.emitting = false;
        this.state = 'after-boundary';
      } else if (this.state === 'after-boundary') {
        if (data.length < 2) return;
        if (data[0] === 0x2d && data[1] === 0x2d) {
          this.state = 'done';
          continue;
        }
        // Transport padding (spaces, tabs) may precede the CRLF.
        const eol = data.indexOf('\r\n');
        if (eol < 0) {
          if (data.length > 256) throw new MultipartError('a multipart boundary line is not followed by CRLF');
          return;
        }
        if (!/^[ \t]*$/.test(data.subarray(0, eol).toString('latin1')))
          throw new MultipartError('a multipart boundary line has extra characters');
        this.pending = data.subarray(eol + 2);
        this.state = 'headers';
      } else {
        // An empty header block is just the CRLF that ends it.
        const end = data.subarray(0, 2).toString('latin1') === '\r\n' ? -2 : data.indexOf('\r\n\r\n');
        if (end === -1) {
          if (data.length > MAX_HEADER_BYTES)
            throw new MultipartError(`a multipart part header is longer than ${MAX_HEADER_BYTES} bytes`);
          return;
        }
        const headers = end < 0 ? '' : data.subarray(0, end).toString('utf8');
        const name = dispositionParam(headers, 'name');
        if (name !== undefined && name.toLowerCase() === this.field.toLowerCase()) {
          this.fileParts++;
          this.filename = dispositionParam(headers, 'filename');
          this.emitting = true;
        }
        this.pending = data.subarray(end + 4);
        this.state = 'body';
      }
    }
  }
}
