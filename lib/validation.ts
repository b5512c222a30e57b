/**
 * Checks of what a user gives the client, before anything goes on the wire. Each error
 * names the field, shows the value (shortened, printable) and says the rule and the fix.
 */
import * as path from 'node:path';
import type { ApiVersion } from './api';
import { ValidationError } from './errors';
import type { UploadRequest, UploadSource } from './types';

/** Longest value shown in an error message. */
const SHOWN_VALUE_CHARS = 40;
/** Longest path value accepted (a common file-name limit; SCB publishes none). */
export const MAX_PATH_VALUE_LENGTH = 255;

/** The value as a short, printable text for an error message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  const text = typeof value === 'string' ? value : String(value);
  const shown = text.length > SHOWN_VALUE_CHARS ? `${text.slice(0, SHOWN_VALUE_CHARS)}…` : text;
  // JSON quoting makes control characters and surrounding spaces visible.
  return typeof value === 'string' ? JSON.stringify(shown) : shown;
}

/** The fields checked here; each has its code INVALID_<FIELD> in the catalogue (ErrorCode). */
type CheckedField = 'organisationsnummer' | 'referensperiod' | PathField | 'source' | 'request';

function invalid(field: CheckedField, value: unknown, rule: string, hint: string): ValidationError {
  return new ValidationError(`${field} ${describeValue(value)} is not valid: ${rule}.`, {
    code: `INVALID_${field.toUpperCase() as Uppercase<CheckedField>}`,
    field,
    value:
      typeof value === 'string' && value.length > SHOWN_VALUE_CHARS ? `${value.slice(0, SHOWN_VALUE_CHARS)}…` : value,
    hint,
  });
}

/** A string, or a finite number that converts to text exactly (integers only). */
function asText(field: CheckedField, value: unknown, example: string): string {
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  throw invalid(field, value, 'it must be text', `Give it as text, e.g. ${example}.`);
}

/** Luhn (mod 10) check digit over the digits given. */
function luhnCheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[i]) * (i % 2 === 0 ? 2 : 1);
    if (d > 9) d -= 9;
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/**
 * An organisationsnummer as SCB wants it on the wire: 10 digits, no dash. Accepts
 * `NNNNNN-NNNN` and a number that converts exactly; checks the Luhn digit and that the
 * third digit is 2 or more (which tells it from a personnummer).
 */
export function validateOrganisationsnummer(value: unknown): string {
  const field = 'organisationsnummer';
  const text = asText(field, value, '"9990000045"');
  const digits = /^\d{6}-\d{4}$/.test(text) ? text.replace('-', '') : text;
  if (!/^\d{10}$/.test(digits)) {
    throw invalid(
      field,
      value,
      'it must be 10 digits, optionally with a dash after the sixth (NNNNNN-NNNN)',
      'Use the reporting organisation\'s number, e.g. "999000-0045".',
    );
  }
  if (Number(digits[2]) < 2) {
    throw invalid(
      field,
      value,
      'its third digit must be 2 or higher (a personnummer is not an organisationsnummer)',
      'Use the organisationsnummer the SCB certificate was issued for.',
    );
  }
  const expected = luhnCheckDigit(digits.slice(0, 9));
  if (Number(digits[9]) !== expected) {
    throw invalid(
      field,
      value,
      `its check digit (the last) should be ${expected} by the Luhn rule`,
      'Check the number for a typing error.',
    );
  }
  return digits;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** A referensperiod: `yyyy-MM-dd`, a real date, the last day of its month. */
export function validateReferensperiod(value: unknown): string {
  const field = 'referensperiod';
  const text = typeof value === 'string' ? value.trim() : value;
  const m = typeof text === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(text) : null;
  if (!m) {
    throw invalid(
      field,
      value,
      'it must be a date written yyyy-MM-dd',
      'Give the last day of the reference month, e.g. "2022-06-30".',
    );
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12) {
    throw invalid(
      field,
      value,
      `month ${m[2]} does not exist`,
      'Give the last day of the reference month, e.g. "2022-06-30".',
    );
  }
  const last = daysInMonth(year, month);
  if (day !== last) {
    const suggestion = `${m[1]}-${m[2]}-${String(last).padStart(2, '0')}`;
    const rule = day < 1 || day > last ? `${m[1]}-${m[2]} has no day ${m[3]}` : 'it must be the last day of its month';
    throw invalid(field, value, rule, `Did you mean "${suggestion}"?`);
  }
  return `${m[1]}-${m[2]}-${m[3]}`;
}

export type PathField = 'undersokning' | 'filformat' | 'version' | 'filnamn';

/**
 * A value that becomes one segment of the request path. Surrounding white space is
 * removed; what remains must be non-empty, at most 255 characters, free of `/`, `\`,
 * `?`, `#` and control characters, and neither `.` nor `..` (which a proxy would
 * resolve as a directory step). Numbers are accepted as their text (e.g. version 3).
 */
export function validatePathValue(field: PathField, value: unknown): string {
  const text = asText(field, value, field === 'version' ? '"1"' : '"V40"');
  const hint = `Give ${field} as plain text without path characters.`;
  if (text === '') throw invalid(field, value, 'it must not be empty', `Give ${field}.`);
  if (text.length > MAX_PATH_VALUE_LENGTH)
    throw invalid(field, value, `it must be at most ${MAX_PATH_VALUE_LENGTH} characters`, hint);
  const bad = /[/\\?#\u0000-\u001f\u007f]/.exec(text);
  if (bad) {
    const shown = /[\u0000-\u001f\u007f]/.test(bad[0])
      ? `control character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`
      : `"${bad[0]}"`;
    throw invalid(field, value, `it must not contain ${shown}`, hint);
  }
  if (text === '.' || text === '..') throw invalid(field, value, 'it must not be "." or ".."', hint);
  return text;
}

function validateSource(source: unknown): UploadSource {
  const field = 'source';
  const hint = 'Give source as { path: "/dir/file.xml" } or { buffer: <Buffer> }.';
  if (!source || typeof source !== 'object') throw invalid(field, source, 'it must be an object', hint);
  const { path: p, buffer } = source as { path?: unknown; buffer?: unknown };
  if (p !== undefined && buffer !== undefined)
    throw invalid(field, source, 'it must have either path or buffer, not both', hint);
  if (Buffer.isBuffer(buffer)) return { buffer };
  if (typeof p === 'string' && p.trim() !== '') return { path: p };
  throw invalid(field, source, 'it needs a non-empty path or a Buffer', hint);
}

/**
 * An upload request, normalised: organisationsnummer without dash, path values trimmed,
 * an empty version dropped, referensperiod checked in v2 (required) and dropped in v1
 * (not part of its path). A missing filnamn is taken from the source path's base name.
 */
export function validateUploadRequest(req: UploadRequest, apiVersion: ApiVersion): UploadRequest {
  if (!req || typeof req !== 'object') {
    throw invalid(
      'request',
      req,
      'it must be an object',
      'Give organisationsnummer, undersokning, filformat, filnamn and source.',
    );
  }
  const source = validateSource(req.source);
  const filnamnGiven =
    req.filnamn === undefined || req.filnamn === ''
      ? 'path' in source
        ? path.basename(source.path)
        : req.filnamn
      : req.filnamn;
  const versionGiven =
    req.version === undefined || req.version === null || (typeof req.version === 'string' && req.version.trim() === '')
      ? undefined
      : req.version;
  const out: UploadRequest = {
    organisationsnummer: validateOrganisationsnummer(req.organisationsnummer),
    undersokning: validatePathValue('undersokning', req.undersokning),
    filformat: validatePathValue('filformat', req.filformat),
    filnamn: validatePathValue('filnamn', filnamnGiven),
    source,
  };
  if (versionGiven !== undefined) out.version = validatePathValue('version', versionGiven);
  if (apiVersion === 'v2') out.referensperiod = validateReferensperiod(req.referensperiod);
  return out;
}
