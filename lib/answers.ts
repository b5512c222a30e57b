/** SCB's answers read: an answer that is not a success becomes the typed error that says what to do. */
import { isSessionLost, propertyCI } from './api';
import { AuthorisationError, ProtocolError, ServerError } from './errors';
import type { Answer, Exchange } from './transport';
import type { CertificateInfo } from './types';

/** Longest part of an answer quoted in an error message. */
const QUOTED_CHARS = 200;

/** The first line of an answer, short and printable, for an error message. */
export function firstLine(text: string): string {
  const line = text.trim().split(/\r?\n/, 1)[0] ?? '';
  const printable = line.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return printable.length > QUOTED_CHARS ? `${printable.slice(0, QUOTED_CHARS)}…` : printable || '(empty body)';
}

/** Turns a non-2xx answer into the typed error that says what to do. */
export function assertOk(answer: Answer, x: Exchange, certificate: CertificateInfo): void {
  const { statusCode } = answer;
  if (statusCode >= 200 && statusCode < 300) return;
  const quoted = firstLine(answer.text);
  if (statusCode === 401) {
    throw new AuthorisationError(
      `${x.what} was refused (401): the certificate ${certificate.commonName ?? certificate.subject} may not ${x.delivery ? `deliver for ${x.delivery}` : 'do this'}.`,
      {
        code: 'NOT_AUTHORISED',
        hint: 'Check which organisationsnummer and surveys (undersokning) the certificate was issued for; SCB issues one per combination.',
      },
    );
  }
  if (statusCode >= 500) {
    throw new ServerError(`${x.what} failed: SCB's server answered ${statusCode}: ${quoted}`, {
      code: 'SERVER_ERROR',
      statusCode,
      hint: 'A fault at SCB; try again later, and contact SCB if it persists.',
    });
  }
  throw new ProtocolError(`${x.what} failed: unexpected answer ${statusCode}: ${quoted}`, {
    code: `HTTP_${statusCode}`,
    statusCode,
    hint:
      statusCode === 413
        ? 'The server refused the size of the request; report it to SCB.'
        : "Check the request's values; report the answer to SCB if they are right.",
  });
}

export function parseJson(answer: Answer, what: string): unknown {
  try {
    return JSON.parse(answer.text);
  } catch {
    throw new ProtocolError(`${what}: the answer is not JSON: ${firstLine(answer.text)}`, {
      code: 'NOT_JSON',
      statusCode: answer.statusCode,
      hint: 'Something between you and SCB (a proxy?) may have answered; try again, and report it to SCB if it persists.',
    });
  }
}

export function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function sessionLost(answer: Answer): boolean {
  return isSessionLost(answer.statusCode, headerText(answer.headers['content-type']), answer.text.slice(0, 512));
}

/** SCB may send the server time as a JSON string; the text inside is what users want. */
export function unquote(text: string): string {
  const trimmed = text.trim();
  if (trimmed.startsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (typeof parsed === 'string') return parsed;
    } catch {
      // Not JSON after all: keep the text.
    }
  }
  return trimmed;
}

/** The v1 answer's upload id: plain text, a JSON string, or an object with id / uploadId / deliveryId / uppladdningsid. */
export function v1UploadId(text: string): { id?: string; body: unknown } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const line = text.trim();
    return { id: line !== '' && !/[\s<>]/.test(line) ? line : undefined, body: text };
  }
  if (typeof body === 'string' || typeof body === 'number') return { id: String(body) || undefined, body };
  for (const name of ['id', 'uploadId', 'deliveryId', 'uppladdningsid']) {
    const value = propertyCI(body, name);
    if ((typeof value === 'string' && value !== '') || typeof value === 'number') return { id: String(value), body };
  }
  return { body };
}
