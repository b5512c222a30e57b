/**
 * Typed errors of the M2M client. Every error says what went wrong and what the
 * user can do about it, and never carries a secret (passphrase, key, .pfx bytes).
 */

export type M2MErrorKind =
  'certificate' | 'validation' | 'authorisation' | 'session' | 'server' | 'network' | 'protocol';

/**
 * Every code an error of this package carries, in one place; the compiler refuses any other.
 * Flows switch on them (msg.scbError.code, Catch nodes, the journal): a code is never renamed.
 */
export type ErrorCode =
  // The certificate (.pfx) and its dates (lib/certificate)
  | 'NO_CERTIFICATE_SOURCE'
  | 'NOT_PKCS12'
  | 'WRONG_PASSPHRASE'
  | 'UNSUPPORTED_ENCRYPTION'
  | 'NO_PRIVATE_KEY'
  | 'UNSUPPORTED_KEY'
  | 'NO_CERTIFICATE'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  // Values given: an upload's fields (lib/validation: INVALID_<FIELD>), the client's options, files
  | 'INVALID_ORGANISATIONSNUMMER'
  | 'INVALID_REFERENSPERIOD'
  | 'INVALID_UNDERSOKNING'
  | 'INVALID_FILFORMAT'
  | 'INVALID_VERSION'
  | 'INVALID_FILNAMN'
  | 'INVALID_SOURCE'
  | 'INVALID_REQUEST'
  | 'INVALID_UPLOAD_ID'
  | 'INVALID_OPTION'
  | 'FILE_UNREADABLE'
  | 'NOT_A_FILE'
  | 'FILE_CHANGED'
  // TLS, the F5 session and SCB's answers
  | 'SERVER_CERTIFICATE_UNTRUSTED'
  | 'CLIENT_CERTIFICATE_REFUSED'
  | 'CERTIFICATE_NOT_ACCEPTED'
  | 'NOT_AUTHORISED'
  | 'SESSION_REFUSED'
  | 'SERVER_ERROR'
  | `HTTP_${number}`
  | 'NOT_JSON'
  | 'UNEXPECTED_ANSWER'
  | 'SEGMENT_OUT_OF_ORDER'
  | 'NO_DELIVERY_ID'
  | 'NO_UPLOAD_ID'
  | 'UNKNOWN_UPLOAD_ID'
  // The connection and the operation's life
  | 'TIMEOUT'
  | 'NETWORK_ERROR'
  | 'DELIVERY_UNCERTAIN'
  | 'ABORTED'
  | 'CLIENT_CLOSED'
  // The Node-RED nodes: configuration, the msg, resends, the history node's rule and folders
  | 'NO_CONFIG'
  | 'NO_CERTIFICATE_CONFIGURED'
  | 'CA_UNREADABLE'
  | 'NO_FILE'
  | 'FILE_NOT_FOUND'
  | 'NOT_TEXT'
  | 'FILNAMN_MISSING'
  | 'MISSING'
  | 'ALREADY_DELIVERED'
  | 'SOURCE_GONE'
  | 'SOURCE_CHANGED'
  | 'NODE_REMOVED'
  | 'INVALID_RULE'
  | 'INVALID_RULE_RESULT'
  | 'INVALID_FOLDER'
  | 'FOLDER_UNREADABLE'
  | 'MOVE_FAILED'
  // The admin endpoints and the SCB sidebar
  | 'NOT_DEPLOYED'
  | 'NO_SUCH_DELIVERY'
  | 'NOT_CHECKABLE'
  | 'INVALID_QUERY'
  | 'JOURNAL_UNREADABLE'
  // A failure that is not an M2MError, as msg.scbError and the journal show it
  | 'UNEXPECTED';

/**
 * A connection failure's own code, which a NetworkError passes on as Node (ECONNRESET),
 * undici (UND_ERR_SOCKET) or OpenSSL (ERR_SSL_...) gave it: theirs, so not listed above.
 */
export type TransportCode = `E${string}` | `UND_ERR${string}` | `ERR_${string}`;

export interface M2MErrorDetails<Code extends string = ErrorCode> {
  /** Machine-readable code from the catalogue (ErrorCode), e.g. `WRONG_PASSPHRASE`, `INVALID_ORGANISATIONSNUMMER`. */
  code: Code;
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
  readonly code: ErrorCode | TransportCode;
  /** What went wrong, without the hint; `message` is the two together, as users read it. */
  readonly reason: string;
  readonly hint?: string;
  readonly statusCode?: number;
  readonly field?: string;
  readonly value?: unknown;
  readonly retryable: boolean;

  constructor(kind: M2MErrorKind, message: string, details: M2MErrorDetails<ErrorCode | TransportCode>) {
    super(
      details.hint ? `${message} ${details.hint}` : message,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.name = new.target.name;
    this.kind = kind;
    this.code = details.code;
    this.reason = message;
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
  constructor(message: string, details: M2MErrorDetails<ErrorCode | TransportCode>) {
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
