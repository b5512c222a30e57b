/** Uploads: v2 in segments closed by segment -1, v1 in one POST; a bounded number at once, one at a time per target. */
import {
  CLOSING_SEGMENT,
  FILE_FIELD,
  SEGMENT_SIZE,
  SEGMENTS_SURVIVE_SESSION_RENEWAL,
  isSegmentOutOfOrder,
  propertyCI,
  v1UploadPath,
  v2SegmentPath,
} from './api';
import { firstLine, parseJson, v1UploadId } from './answers';
import { ProtocolError, SessionError } from './errors';
import type { Exchanges } from './exchange';
import type { ClientSettings, Counters } from './options';
import { ConcurrencyLimit, OneAtATime } from './queue';
import { SESSION_CHANGED, SESSION_REFUSED_HINT, type Tally } from './session';
import { SourceFile } from './source-file';
import type { Answer } from './transport';
import type { UploadOptions, UploadRequest, UploadResult } from './types';

export class Uploads {
  private readonly limit: ConcurrencyLimit;
  private readonly targets = new OneAtATime();

  constructor(
    private readonly exchanges: Exchanges,
    private readonly settings: ClientSettings,
    private readonly counters: Counters,
  ) {
    this.limit = new ConcurrencyLimit(settings.maxUploads);
  }

  get inFlight(): number {
    return this.limit.active;
  }

  /**
   * Uploads to the same target (organisationsnummer, undersokning, referensperiod, filformat,
   * filnamn, version) run one after the other: the server keeps one file per target in a
   * session (assumed), so two at once would mix their segments.
   */
  run(req: UploadRequest, opts: UploadOptions, signal: AbortSignal): Promise<UploadResult> {
    return this.targets.run(v2SegmentPath(0, req), signal, () =>
      this.limit.run(
        () => (this.settings.apiVersion === 'v2' ? this.uploadV2(req, opts, signal) : this.uploadV1(req, opts, signal)),
        signal,
      ),
    );
  }

  /** Opens the source, sends it with `send`, and closes it however that ends. */
  private async withFile<T>(req: UploadRequest, hash: boolean, send: (file: SourceFile) => Promise<T>): Promise<T> {
    const file = await SourceFile.open(req.source, req.filnamn, hash);
    try {
      return await send(file);
    } finally {
      await file.close();
    }
  }

  private uploadV2(req: UploadRequest, opts: UploadOptions, signal: AbortSignal): Promise<UploadResult> {
    return this.withFile(req, opts.sha256 === true, (file) => this.sendV2(req, file, opts, signal));
  }

  private async sendV2(
    req: UploadRequest,
    file: SourceFile,
    opts: UploadOptions,
    signal: AbortSignal,
  ): Promise<UploadResult> {
    const segments = Math.ceil(file.size / SEGMENT_SIZE);
    const tally: Tally = { retries: 0 };
    for (let restarted = false; ; restarted = true) {
      const outcome = await this.sendSegments(req, file, segments, opts, signal, tally);
      if ('receipt' in outcome) return this.receipt(outcome, segments, file.size, tally);
      // Out of order: the server lost the earlier segments (assumed: with the old session).
      if (restarted && outcome.refused === SESSION_CHANGED) {
        throw new SessionError(
          `Upload of ${req.filnamn}: the session was lost again, at segment ${outcome.segment}, after a restart from segment 0.`,
          {
            code: 'SESSION_REFUSED',
            hint: SESSION_REFUSED_HINT,
          },
        );
      }
      if (restarted) {
        throw new ProtocolError(
          `Upload of ${req.filnamn}: segment ${outcome.segment} was refused as out of order again after a restart from segment 0: ${firstLine(outcome.refused.text)}`,
          {
            code: 'SEGMENT_OUT_OF_ORDER',
            statusCode: outcome.refused.statusCode || undefined,
            hint: 'Send the file again later; if it persists contact SCB.',
          },
        );
      }
      this.settings.log(
        'warn',
        `Upload of ${req.filnamn}: segment ${outcome.segment}: ${firstLine(outcome.refused.text)}; restarting from segment 0.`,
      );
      tally.retries++;
      this.counters.retries++;
    }
  }

  /** Sends the data segments in order, then the closing one; stops at an out-of-order answer. */
  private async sendSegments(
    req: UploadRequest,
    file: SourceFile,
    segments: number,
    opts: UploadOptions,
    signal: AbortSignal,
    tally: Tally,
  ): Promise<{ receipt: Answer; what: string; sha256?: string } | { refused: Answer; segment: number }> {
    // Whether the server keeps a file's segments across a session renewal is assumed
    // (SEGMENTS_SURVIVE_SESSION_RENEWAL). If not, a renewal after segment 0 restarts the file
    // at once instead of sending the rest in vain. Either way a data segment the server no
    // longer expects is refused as out of order; the closing POST would join an empty file, so
    // it is only sent in the session that accepted the last data segment.
    const outOfOrder = (a: Answer): boolean => a === SESSION_CHANGED || isSegmentOutOfOrder(a.statusCode, a.text);
    const survive = this.settings.options.segmentsSurviveSessionRenewal ?? SEGMENTS_SURVIVE_SESSION_RENEWAL;
    const field = FILE_FIELD.v2;
    const delivery = deliveryText(req);
    const { requestMs } = this.settings.timeouts;
    /** The session of segment 0, and of the last data segment. */
    let firstEpoch: number | undefined;
    let sessionEpoch: number | undefined;
    for (let segment = 0; segment < segments; segment++) {
      const start = segment * SEGMENT_SIZE;
      const end = Math.min(file.size, start + SEGMENT_SIZE);
      const answer = await this.exchanges.run(
        {
          method: 'POST',
          path: v2SegmentPath(segment, req),
          what: `Upload of ${req.filnamn} segment ${segment + 1} of ${segments}`,
          body: () => file.part(field, start, end),
          timeoutMs: requestMs,
          signal,
          delivery,
          accept: outOfOrder,
          sessionEpoch: survive ? undefined : firstEpoch,
        },
        tally,
      );
      if (outOfOrder(answer)) return { refused: answer, segment };
      firstEpoch ??= answer.sessionEpoch;
      sessionEpoch = answer.sessionEpoch;
      this.progress(opts, { segment: segment + 1, segments, bytesSent: end, totalBytes: file.size });
    }
    const what = `Closing the upload of ${req.filnamn} (segment ${CLOSING_SEGMENT})`;
    const sha256 = opts.sha256 ? await file.sha256() : undefined;
    await opts.beforeClosing?.({ sha256 });
    const answer = await this.exchanges.run(
      {
        method: 'POST',
        path: v2SegmentPath(CLOSING_SEGMENT, req),
        what,
        body: () => file.part(field, 0, 0),
        timeoutMs: requestMs,
        signal,
        delivery,
        // With no data segments there is nothing to have lost.
        accept: (a) => segments > 0 && outOfOrder(a),
        sessionEpoch,
        once: true,
      },
      tally,
    );
    return outOfOrder(answer) ? { refused: answer, segment: CLOSING_SEGMENT } : { receipt: answer, what, sha256 };
  }

  /** The closing answer: `{deliveryId, timeStamp}`, names in any casing. */
  private receipt(
    { receipt: answer, what, sha256 }: { receipt: Answer; what: string; sha256?: string },
    segments: number,
    bytes: number,
    tally: Tally,
  ): UploadResult {
    const body = parseJson(answer, what);
    const deliveryId = propertyCI(body, 'deliveryId');
    if (typeof deliveryId !== 'string' || deliveryId === '') {
      throw new ProtocolError(`${what}: the answer has no deliveryId: ${firstLine(answer.text)}`, {
        code: 'NO_DELIVERY_ID',
        statusCode: answer.statusCode,
        hint: "Check the upload's state in SCB's portal; report this answer to SCB.",
      });
    }
    const timeStamp = propertyCI(body, 'timeStamp');
    return {
      uploadId: deliveryId,
      ...(typeof timeStamp === 'string' && { timeStamp }),
      statusCode: answer.statusCode,
      body,
      apiVersion: 'v2',
      segments,
      bytes,
      retries: tally.retries,
      ...(sha256 && { sha256 }),
    };
  }

  private uploadV1(req: UploadRequest, opts: UploadOptions, signal: AbortSignal): Promise<UploadResult> {
    return this.withFile(req, false, (file) => this.sendV1(req, file, opts, signal));
  }

  private async sendV1(
    req: UploadRequest,
    file: SourceFile,
    opts: UploadOptions,
    signal: AbortSignal,
  ): Promise<UploadResult> {
    const tally: Tally = { retries: 0 };
    const what = `Upload of ${req.filnamn}`;
    const sha256 = opts.sha256 ? await file.sha256() : undefined;
    await opts.beforeClosing?.({ sha256 });
    const answer = await this.exchanges.run(
      {
        method: 'POST',
        path: v1UploadPath(req),
        what,
        body: () => file.part(FILE_FIELD.v1, 0, file.size),
        timeoutMs: this.settings.timeouts.requestMs,
        signal,
        delivery: deliveryText(req),
        // One POST is the whole delivery: once it may have arrived, sending it again could deliver the file twice.
        once: true,
      },
      tally,
    );
    this.progress(opts, { segment: 1, segments: 1, bytesSent: file.size, totalBytes: file.size });
    const { id, body } = v1UploadId(answer.text);
    if (!id) {
      throw new ProtocolError(`${what}: the answer carries no upload id: ${firstLine(answer.text)}`, {
        code: 'NO_UPLOAD_ID',
        statusCode: answer.statusCode,
        hint: "Check the upload in SCB's portal; report this answer to SCB.",
      });
    }
    return {
      uploadId: id,
      statusCode: answer.statusCode,
      body,
      apiVersion: 'v1',
      segments: 1,
      bytes: file.size,
      retries: tally.retries,
      ...(sha256 && { sha256 }),
    };
  }

  private progress(
    opts: UploadOptions,
    p: { segment: number; segments: number; bytesSent: number; totalBytes: number },
  ): void {
    try {
      opts.onProgress?.(p);
    } catch (err) {
      this.settings.log('warn', `onProgress failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

function deliveryText(req: UploadRequest): string {
  return `organisationsnummer ${req.organisationsnummer}, undersokning ${req.undersokning}, filformat ${req.filformat}`;
}
