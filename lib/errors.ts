/**
 * Typed errors of the M2M client. Every error says what went wrong and what the
 * user can do about it, and never carries a secret (passphrase, key, .pfx bytes).
 */

export type M2MErrorKind =
  | 'certificate'
  | 'validation'
  | 'authorisation'
  | 'session'
  | 'server'
  | 'network'
  | 'protocol';

export interface M2MErrorDetails {
  /** Machine-readable code, e.g. `WRONG_PASSPHRASE`, `INVALID_ORGANISATIONSNUMMER`. */
  code: string;
  /** What the user should do, in one sentence. */
  hint?: string;
  /** HTTP status when the server answered. */
  statusCode?: number;
  /** The field at fault (validation errors). */
  field?: string;
  /** The offending value (validation errors; never a secret). */
  value?: unknown;
  /** Whether repeating the same request may succeed. */
  retryable?: boolean;
  cause?: unknown;
}

export class M2MError extends Error {
  readonly kind: M2MErrorKind;
  readonly code: string;
  readonly hint?: string;
  readonly statusCode?: number;
  readonly field?: string;
  readonly value?: unknown;
  readonly retryable: boolean;

  constructor(kind: M2MErrorKind, message: string, details: M2MErrorDetails) {
    super(details.hint ? `${message} ${details.hint}` : message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = details.code;
    this.hint = details.hint;
    this.statusCode = details.statusCode;
    this.field = details.field;
    this.value = details.value;
    this.retryable = details.retryable ?? false;
  }

  /**
   * The message alone, without the class name: Node-RED shows an error's toString() in its log,
   * the debug sidebar and a Catch node's msg.error.message, which users read. `name` stays for code.
   */
  override toString(): string {
    return this.message;
  }

  /** A plain object for msg.error-like output and logs. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      code: this.code,
      message: this.message,
      ...(this.statusCode !== undefined && { statusCode: this.statusCode }),
      ...(this.field !== undefined && { field: this.field }),
    };
  }
}

export class CertificateError extends M2MError {
  constructor(message: string, details: M2MErrorDetails) {
    super('certificate', message, details);
  }
}

export class ValidationError extends M2MError {
  constructor(message: string, details: M2MErrorDetails & { field: string }) {
    super('validation', message, details);
  }
}

export class AuthorisationError extends M2MError {
  constructor(message: string, details: M2MErrorDetails) {
    super('authorisation', message, { statusCode: 401, ...details });
  }
}

export class SessionError extends M2MError {
  constructor(message: string, details: M2MErrorDetails) {
    super('session', message, details);
  }
}

export class ServerError extends M2MError {
  constructor(message: string, details: M2MErrorDetails) {
    super('server', message, { retryable: true, ...details });
  }
}

export class NetworkError extends M2MError {
  constructor(message: string, details: M2MErrorDetails) {
    super('network', message, { retryable: true, ...details });
  }
}

export class ProtocolError extends M2MError {
  constructor(message: string, details: M2MErrorDetails) {
    super('protocol', message, details);
  }
}

export function isM2MError(err: unknown): err is M2MError {
  return err instanceof M2MError;
}
