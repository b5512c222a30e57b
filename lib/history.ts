/** GET history: one upload's state, or every upload of the certificate's organisation and survey. */
import { classifyHistory, historyPath } from './api';
import { firstLine, parseJson } from './answers';
import { ProtocolError, ValidationError } from './errors';
import type { Exchanges } from './exchange';
import type { ClientSettings } from './options';
import { describeValue } from './validation';
import type { HistoryResult } from './types';

/** The upload id asked about, trimmed; undefined for the whole history. */
export function historyUploadId(id: unknown): string | undefined {
  if (id !== undefined && (typeof id !== 'string' || id.trim() === '')) {
    throw new ValidationError(`uploadId ${describeValue(id)} is not valid: it must be a non-empty text.`, {
      code: 'INVALID_UPLOAD_ID',
      field: 'uploadId',
      value: id,
      hint: 'Give the deliveryId an upload returned, or nothing for the whole history.',
    });
  }
  return id?.trim();
}

export async function history(
  exchanges: Exchanges,
  settings: ClientSettings,
  uploadId: string | undefined,
  what: string,
  signal: AbortSignal,
): Promise<HistoryResult> {
  const answer = await exchanges.run(
    {
      method: 'GET',
      path: historyPath(uploadId),
      what,
      timeoutMs: settings.timeouts.shortRequestMs,
      signal,
      accept: (a) => uploadId !== undefined && a.statusCode === 404,
    },
    { retries: 0 },
  );
  if (answer.statusCode === 404) {
    throw new ValidationError(`${what}: SCB knows no upload with id ${uploadId}.`, {
      code: 'UNKNOWN_UPLOAD_ID',
      field: 'uploadId',
      value: uploadId,
      statusCode: 404,
      hint: 'Check the id (the deliveryId of the upload) and that the certificate belongs to the same organisation and survey.',
    });
  }
  const body = parseJson(answer, what);
  const classify = settings.options.classify ?? classifyHistory;
  if (uploadId) return { statusCode: answer.statusCode, body, status: classify(body) };
  if (!Array.isArray(body)) {
    throw new ProtocolError(`${what}: expected a JSON array, got ${firstLine(answer.text)}`, {
      code: 'UNEXPECTED_ANSWER',
      statusCode: answer.statusCode,
    });
  }
  return {
    statusCode: answer.statusCode,
    body,
    status: 'accepted',
    items: body.map((record: unknown) => ({ record, status: classify(record) })),
  };
}
