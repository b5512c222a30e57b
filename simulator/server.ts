/**
 * HTTP handling: certificate check on every request (as SCB does), the F5 session layer,
 * then the API routes. Route handlers return an Answer; the top level applies the
 * slow-answer fault and writes it, so every route is slowed alike.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import * as path from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import {
  CLOSING_SEGMENT,
  FILE_FIELD,
  HEARTBEAT_PATH,
  SEGMENT_OUT_OF_ORDER_ERROR,
  SEGMENT_OUT_OF_ORDER_STATUS,
  SESSION_POLICY_PATH,
  type ApiVersion,
  type UploadPathParts,
} from '../lib/api';
import { ValidationError } from '../lib/errors';
import { validateOrganisationsnummer, validatePathValue, validateReferensperiod } from '../lib/validation';
import type { Fault, FaultQueue } from './faults';
import { localIso, type DeliveryStore } from './history';
import { FilePartReader, MultipartError, multipartBoundary } from './multipart';
import { normaliseSerial } from './pki';
import { newSessionId, sessionCookies, type Session, type SessionStore } from './sessions';
import type { SimulatorCertificate, SimulatorOptions, SimulatorStats } from './types';
import { PendingFile, type AssembledFile } from './uploads';

/** Largest v1 body (the whole file in one request); SCB publishes no limit. */
export const V1_MAX_BODY_BYTES = 2 * 1024 ** 3;

/** The page an F5 APM shows instead of the API (logon / session ended). */
export const F5_LOGON_PAGE =
  '<!DOCTYPE html>\n<html><head><title>Access Policy Manager</title></head><body>' +
  '<p>Your session could not be established.</p><a href="/">Click here to start a new session.</a></body></html>\n';

/** F5: a request without a session goes to the access policy, with a pending session's cookies that open nothing. */
const accessPolicy = (): Answer => ({
  status: 302,
  headers: { location: SESSION_POLICY_PATH, 'set-cookie': sessionCookies(newSessionId()) },
  body: '',
});

export interface ServerState {
  /** Client certificates by normalised serial. */
  clients: Map<string, SimulatorCertificate>;
  revokedSerials: Set<string>;
  sessions: SessionStore;
  faults: FaultQueue;
  deliveries: DeliveryStore;
  stats: SimulatorStats;
  maxSegmentBytes: number;
  uploadsDir: string;
  /** Undefined when files are not kept. */
  deliveriesDir: string | undefined;
  /** How the client certificate is asked for (SimulatorOptions.clientCert). */
  clientCert: NonNullable<SimulatorOptions['clientCert']>;
  /** The pending v2 files of a session: its own, or its certificate's when segments survive a renewal. */
  uploadsOf(session: Session): Map<string, PendingFile>;
  /** A wait that stop() can cut short. */
  wait(ms: number): Promise<void>;
  log?: (line: string) => void;
}

interface Answer {
  status: number;
  type?: string;
  body?: string;
  headers?: Record<string, string | string[]>;
  /** Close the connection after answering (the body was not read). */
  close?: boolean;
}

/** The connection was dropped on purpose (reset fault) or by the client: nothing to answer. */
class Dropped extends Error {}

class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the request body is larger than ${limit} bytes`);
  }
}

const text = (status: number, body: string): Answer => ({ status, type: 'text/plain; charset=utf-8', body });
const json = (status: number, value: unknown, type = 'application/json; charset=utf-8'): Answer => ({
  status,
  type,
  body: JSON.stringify(value),
});

/** 400 in the shape of an ASP.NET ProblemDetails, naming the field and the rule. */
function problem(field: string, message: string): Answer {
  return json(
    400,
    {
      type: 'https://tools.ietf.org/html/rfc9110#section-15.5.1',
      title: 'One or more validation errors occurred.',
      status: 400,
      errors: { [field]: [message] },
    },
    'application/problem+json; charset=utf-8',
  );
}

function faultAnswer(fault: Fault): Answer | undefined {
  switch (fault.type) {
    case 'fail': {
      const body = fault.body ?? `${fault.status} ${STATUS_CODES[fault.status] ?? 'Error'}`;
      let isJson = true;
      try {
        JSON.parse(body);
      } catch {
        isJson = false;
      }
      return isJson
        ? { status: fault.status, type: 'application/json; charset=utf-8', body }
        : text(fault.status, body);
    }
    case 'html':
      return { status: 200, type: 'text/html; charset=utf-8', body: F5_LOGON_PAGE };
    case 'invalidJson':
      return { status: 200, type: 'application/json; charset=utf-8', body: '{"deliveryId": "3f2504e0-4f89-11d3-9a0c' };
    default:
      return undefined;
  }
}

type CertificateCheck = { client: SimulatorCertificate; serial: string } | { refused: string };

/** What SCB checks of the client certificate: issuer, validity dates, revocation, registration. */
function checkCertificate(state: ServerState, socket: TLSSocket): CertificateCheck {
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw) return { refused: 'no client certificate was presented; configure the .pfx SCB issued' };
  if (!socket.authorized) {
    const code = String(socket.authorizationError);
    if (code === 'CERT_HAS_EXPIRED')
      return { refused: `the client certificate expired on ${peer.valid_to}; ask SCB for a new one` };
    if (code === 'CERT_NOT_YET_VALID')
      return { refused: `the client certificate is not valid before ${peer.valid_from}` };
    return { refused: `the client certificate is not issued by a CA this server trusts (${code})` };
  }
  const serial = normaliseSerial(peer.serialNumber);
  if (state.revokedSerials.has(serial)) return { refused: `the client certificate (serial ${serial}) is revoked` };
  const client = state.clients.get(serial);
  if (!client) return { refused: `the client certificate (serial ${serial}) is not registered for M2M delivery` };
  return { client, serial };
}

/**
 * A counter for the request body: refuses more than `limit` bytes, and with a reset fault
 * destroys the connection after `resetAfter` bytes (or at the end of a shorter body).
 */
function bodyCounter(req: IncomingMessage, limit: number, resetAfter: number | undefined): Transform {
  let seen = 0;
  const drop = (callback: TransformCallback): void => {
    req.socket.destroy();
    callback(new Dropped('reset fault'));
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (resetAfter !== undefined && seen >= resetAfter) return drop(callback);
      if (seen > limit) return callback(new BodyTooLarge(limit));
      callback(null, chunk);
    },
    flush(callback) {
      if (resetAfter !== undefined) return drop(callback);
      callback();
    },
  });
}

const sink = (): Writable => new Writable({ write: (_chunk, _encoding, callback) => callback() });

/** One API request in flight: what every route needs. */
interface Call {
  state: ServerState;
  req: IncomingMessage;
  client: SimulatorCertificate;
  /** Normalised serial of the client certificate. */
  serial: string;
  resetAfter: number | undefined;
}

/** Reads and drops the body, so the answer comes after it as the client expects. */
async function drain(call: Pick<Call, 'req' | 'resetAfter'>, limit = V1_MAX_BODY_BYTES): Promise<void> {
  await pipeline(call.req, bodyCounter(call.req, limit, call.resetAfter), sink());
}

/** Percent-decoded path parts; undefined when one is malformed. */
function decodeParts(parts: string[]): string[] | undefined {
  try {
    return parts.map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
}

function fieldOf(err: unknown): { field: string; message: string } | undefined {
  return err instanceof ValidationError
    ? { field: err.field ?? 'path', message: `${err.message} ${err.hint ?? ''}`.trim() }
    : undefined;
}

/** The same path parts the client builds its URLs from. */
type UploadTarget = UploadPathParts;

/** Path values checked by the same rules the client applies; a 400 names the field. */
function validateTarget(raw: UploadTarget): UploadTarget | Answer {
  try {
    if (!/^\d{10}$/.test(raw.organisationsnummer)) {
      return problem(
        'organisationsnummer',
        `organisationsnummer "${raw.organisationsnummer}" must be 10 digits without a dash, e.g. 9990000045.`,
      );
    }
    return {
      organisationsnummer: validateOrganisationsnummer(raw.organisationsnummer),
      undersokning: validatePathValue('undersokning', raw.undersokning),
      filformat: validatePathValue('filformat', raw.filformat),
      ...(raw.referensperiod !== undefined ? { referensperiod: validateReferensperiod(raw.referensperiod) } : {}),
      ...(raw.filnamn !== undefined ? { filnamn: validatePathValue('filnamn', raw.filnamn) } : {}),
      ...(raw.version ? { version: validatePathValue('version', raw.version) } : {}),
    };
  } catch (err) {
    const f = fieldOf(err);
    if (f) return problem(f.field, f.message);
    throw err;
  }
}

/** 401 unless the certificate may deliver this organisationsnummer, undersokning and filformat. */
function authorise(client: SimulatorCertificate, t: UploadTarget): Answer | undefined {
  const refusals: string[] = [];
  if (client.organisationsnummer !== t.organisationsnummer)
    refusals.push(`organisationsnummer ${t.organisationsnummer}`);
  if (!client.undersokningar.some((u) => u.toUpperCase() === t.undersokning.toUpperCase()))
    refusals.push(`undersokning ${t.undersokning}`);
  if (
    client.filformat &&
    client.filformat.length > 0 &&
    !client.filformat.some((f) => f.toUpperCase() === t.filformat.toUpperCase())
  ) {
    refusals.push(`filformat ${t.filformat}`);
  }
  if (refusals.length === 0) return undefined;
  return text(
    401,
    `Unauthorized: the certificate (${client.organisationsnummer}, ${client.undersokningar.join('+')}` +
      `${client.filformat?.length ? `, ${client.filformat.join('+')}` : ''}) may not deliver for ${refusals.join(', ')}.`,
  );
}

function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
}

/** Records a finished file as a delivery and answers the receipt. */
function deliver(
  call: Call,
  apiVersion: ApiVersion,
  t: UploadTarget,
  filnamn: string,
  file: AssembledFile,
  deliveryId: string,
  receivedAt: string,
): void {
  call.state.stats.uploads++;
  call.state.deliveries.add(
    {
      deliveryId,
      apiVersion,
      organisationsnummer: t.organisationsnummer,
      undersokning: t.undersokning,
      ...(t.referensperiod ? { referensperiod: t.referensperiod } : {}),
      filformat: t.filformat,
      ...(t.version ? { version: t.version } : {}),
      filnamn,
      size: file.size,
      sha256: file.sha256,
      ...(file.path ? { path: file.path } : {}),
      segments: file.segments,
      receivedAt,
    },
    file.meddelanden,
  );
}

function finalPath(state: ServerState, deliveryId: string, filnamn: string): string | undefined {
  return state.deliveriesDir ? path.join(state.deliveriesDir, `${deliveryId}-${safeFileName(filnamn)}`) : undefined;
}

function partPath(state: ServerState): string | undefined {
  return state.deliveriesDir ? path.join(state.uploadsDir, `${newSessionId()}.part`) : undefined;
}

/** The multipart reader for this request, or the answer that refuses its body. */
function fileReader(call: Call, apiVersion: ApiVersion, limit: number): FilePartReader | Answer {
  const boundary = multipartBoundary(call.req.headers['content-type']);
  if (!boundary) {
    return text(
      415,
      `Unsupported Media Type: send multipart/form-data with a boundary and one part named "${FILE_FIELD[apiVersion]}".`,
    );
  }
  const declared = Number(call.req.headers['content-length']);
  // Refused before reading: the connection closes, since the body stays unread.
  if (declared > limit) return { ...text(413, `Payload Too Large: at most ${limit} bytes per request.`), close: true };
  return new FilePartReader(boundary, FILE_FIELD[apiVersion]);
}

const isAnswer = (v: unknown): v is Answer => typeof v === 'object' && v !== null && 'status' in v;

/** `file/{segment}/{org}/{survey}/{referensperiod}/{filformat}/{filnamn}/{version?}` */
async function v2Upload(call: Call, session: Session, rest: string[]): Promise<Answer> {
  const parts = decodeParts(rest);
  if (!parts || parts.length < 7 || parts.length > 8) {
    await drain(call);
    return text(
      404,
      'Not Found: POST file/{segment}/{organisationsnummer}/{undersokning}/{referensperiod}/{filformat}/{filnamn}/{version?}',
    );
  }
  const [, segmentText, organisationsnummer, undersokning, referensperiod, filformat, filnamn, version] = parts;
  const segment = Number(segmentText);
  const target = validateTarget({ organisationsnummer, undersokning, referensperiod, filformat, filnamn, version });
  const refusal = !/^(-1|0|[1-9]\d{0,5})$/.test(segmentText)
    ? problem('segment', `segment "${segmentText}" must be 0, 1, 2, ... or ${CLOSING_SEGMENT} (the closing POST).`)
    : isAnswer(target)
      ? target
      : authorise(call.client, target);
  if (refusal) {
    if (refusal.status === 401) call.state.stats.refused++;
    await drain(call, call.state.maxSegmentBytes);
    return refusal;
  }
  const t = target as UploadTarget & { referensperiod: string; filnamn: string };
  const reader = fileReader(call, 'v2', call.state.maxSegmentBytes);
  if (isAnswer(reader)) return reader;
  const key = [t.organisationsnummer, t.undersokning, t.referensperiod, t.filformat, t.filnamn, t.version ?? ''].join(
    '\u0000',
  );
  const uploads = call.state.uploadsOf(session);
  let file = uploads.get(key);
  if (segment === CLOSING_SEGMENT) {
    const closing = file ?? new PendingFile(partPath(call.state));
    return closing.serialise(async () => {
      let bytes = 0;
      const counter = new Writable({ write: (chunk: Buffer, _e, cb) => ((bytes += chunk.length), cb()) });
      await pipeline(call.req, bodyCounter(call.req, call.state.maxSegmentBytes, call.resetAfter), reader, counter);
      if (bytes > 0)
        return problem(
          'File',
          `the closing segment (${CLOSING_SEGMENT}) must carry an empty File part, it carried ${bytes} bytes.`,
        );
      if (uploads.get(key) === closing) uploads.delete(key);
      const deliveryId = randomUUID();
      const timeStamp = localIso();
      deliver(
        call,
        'v2',
        t,
        t.filnamn,
        await closing.assemble(finalPath(call.state, deliveryId, t.filnamn)),
        deliveryId,
        timeStamp,
      );
      return json(200, { deliveryId, timeStamp });
    });
  }
  if (!file) {
    if (segment !== 0) {
      await drain(call, call.state.maxSegmentBytes);
      return json(SEGMENT_OUT_OF_ORDER_STATUS, { error: SEGMENT_OUT_OF_ORDER_ERROR, expectedSegment: 0 });
    }
    file = new PendingFile(partPath(call.state));
    uploads.set(key, file);
  }
  const pending = file;
  return pending.serialise(async () => {
    const n = pending.segmentCount;
    // n - 1 again: a resend after a reset whose answer the client did not see.
    if (segment !== 0 && segment !== n && segment !== n - 1) {
      await drain(call, call.state.maxSegmentBytes);
      return json(SEGMENT_OUT_OF_ORDER_STATUS, { error: SEGMENT_OUT_OF_ORDER_ERROR, expectedSegment: n });
    }
    await pending.receive(segment, call.req, [
      bodyCounter(call.req, call.state.maxSegmentBytes, call.resetAfter),
      reader,
    ]);
    return { status: 200, body: '' };
  });
}

/** `{org}/{survey}/{filformat}/{version?}`: the whole file in one request. */
async function v1Upload(call: Call, rest: string[]): Promise<Answer> {
  const parts = decodeParts(rest);
  if (!parts || parts.length < 3 || parts.length > 4) {
    await drain(call);
    return text(404, 'Not Found: POST {organisationsnummer}/{undersokning}/{filformat}/{version?}');
  }
  const [organisationsnummer, undersokning, filformat, version] = parts;
  const target = validateTarget({ organisationsnummer, undersokning, filformat, version });
  const refusal = isAnswer(target) ? target : authorise(call.client, target);
  if (refusal) {
    if (refusal.status === 401) call.state.stats.refused++;
    await drain(call);
    return refusal;
  }
  const t = target as UploadTarget;
  const reader = fileReader(call, 'v1', V1_MAX_BODY_BYTES);
  if (isAnswer(reader)) return reader;
  const file = new PendingFile(partPath(call.state));
  try {
    await file.receive(0, call.req, [bodyCounter(call.req, V1_MAX_BODY_BYTES, call.resetAfter), reader]);
  } catch (err) {
    await file.discard();
    throw err;
  }
  const deliveryId = randomUUID();
  const filnamn = reader.filename || `${t.filformat}.xml`;
  deliver(
    call,
    'v1',
    t,
    filnamn,
    await file.assemble(finalPath(call.state, deliveryId, filnamn)),
    deliveryId,
    localIso(),
  );
  return text(200, deliveryId);
}

async function history(call: Call, rest: string[]): Promise<Answer> {
  call.state.stats.historyRequests++;
  await drain(call);
  const reader = { organisationsnummer: call.client.organisationsnummer, undersokningar: call.client.undersokningar };
  if (rest.length === 1) return json(200, call.state.deliveries.records(reader));
  const id = decodeParts(rest.slice(1, 2))?.[0] ?? '';
  const record = rest.length === 2 ? call.state.deliveries.record(id, reader) : undefined;
  return record
    ? json(200, record)
    : json(404, {
        error: 'NotFound',
        message: `No delivery ${id} for organisationsnummer ${reader.organisationsnummer}.`,
      });
}

function heartbeat(call: Call, session: Session | undefined): Answer {
  call.state.stats.heartbeats++;
  const headers: Record<string, string[]> = {};
  // A live session is kept; only a request without one gets a new session.
  if (!session) headers['set-cookie'] = sessionCookies(call.state.sessions.create(call.serial).id);
  return { ...json(200, localIso()), headers };
}

/** Everything under /m2m/: the F5 session layer, then the API. */
async function api(call: Call, pathname: string): Promise<Answer> {
  const { state, req } = call;
  const [version, ...rest] = pathname.slice('/m2m/'.length).split('/');
  // A trailing slash is optional everywhere (the reference client adds one when version is empty).
  if (rest.length > 1 && rest[rest.length - 1] === '') rest.pop();
  const session = state.sessions.find(req.headers.cookie, call.serial);
  if (version !== 'v1' && version !== 'v2') {
    await drain(call);
    return text(404, `Not Found: the API roots are /m2m/v2/ and /m2m/v1/.`);
  }
  if (rest[0] === HEARTBEAT_PATH && rest.length === 1) {
    await drain(call);
    return req.method === 'GET' ? heartbeat(call, session) : text(405, 'Method Not Allowed: GET heartbeat');
  }
  if (!session) {
    await drain(call);
    // F5: a pending session the access policy has not approved; it opens nothing.
    return accessPolicy();
  }
  if (rest[0] === 'history') {
    if (req.method !== 'GET') {
      await drain(call);
      return text(405, 'Method Not Allowed: GET history');
    }
    return history(call, rest);
  }
  if (version === 'v1' && req.method === 'POST') return v1Upload(call, rest);
  if (rest[0] === 'file' && req.method === 'POST') return v2Upload(call, session, rest);
  await drain(call);
  return rest[0] === 'file' || version === 'v1'
    ? text(405, 'Method Not Allowed: uploads are POST')
    : text(404, 'Not Found');
}

/** The F5 pages outside the API: never an API answer. */
function f5Page(pathname: string): Answer {
  if (pathname === SESSION_POLICY_PATH)
    return { status: 302, headers: { location: '/my.logout.php3?errorcode=19' }, body: '' };
  if (pathname === '/my.logout.php3') return { status: 200, type: 'text/html; charset=utf-8', body: F5_LOGON_PAGE };
  return text(404, 'Not Found');
}

/** Whose request it is, once known (also by session, on a connection that showed no certificate), for the log. */
const senders = new WeakMap<IncomingMessage, string>();

/** Renegotiations in progress, so two requests on one connection share one. */
const renegotiating = new WeakMap<TLSSocket, Promise<boolean>>();

/**
 * Asks for the client certificate by a TLS 1.2 renegotiation (a full handshake), requiring
 * one that verifies: Node closes the connection on one that does not. True once it is shown.
 */
function askForCertificate(state: ServerState, socket: TLSSocket): Promise<boolean> {
  let asked = renegotiating.get(socket);
  if (!asked) {
    state.stats.renegotiations++;
    asked = new Promise<boolean>((resolve) => {
      const onClose = (): void => resolve(false);
      socket.once('close', onClose);
      const started = socket.renegotiate({ requestCert: true, rejectUnauthorized: true }, (err) => {
        socket.off('close', onClose);
        resolve(!err && !socket.destroyed);
      });
      if (!started) resolve(false);
    });
    renegotiating.set(socket, asked);
  }
  return asked;
}

/**
 * Who sends the request on a connection that has shown no certificate ('renegotiate' mode),
 * as an F5 with on-demand certificate authentication knows it: by its session's certificate;
 * without a session, a GET (the heartbeat's access policy) renegotiates for the certificate,
 * anything else is sent to the access policy first.
 */
async function certificateOnDemand(
  state: ServerState,
  req: IncomingMessage,
): Promise<CertificateCheck | Answer | undefined> {
  const socket = req.socket as TLSSocket;
  const holder = state.sessions.holder(req.headers.cookie);
  const client = holder ? state.clients.get(holder) : undefined;
  if (holder && client) return { client, serial: holder };
  if (req.method !== 'GET') {
    await drain({ req, resetAfter: undefined });
    return accessPolicy();
  }
  if (await askForCertificate(state, socket)) return checkCertificate(state, socket);
  state.stats.refused++;
  state.log?.(`${localIso()} TLS renegotiation: the client certificate was refused or not shown`);
  return undefined;
}

async function route(state: ServerState, req: IncomingMessage): Promise<Answer | undefined> {
  const pathname = (req.url ?? '/').split('?')[0];
  const socket = req.socket as TLSSocket;
  const onDemand = state.clientCert === 'renegotiate' && !socket.getPeerCertificate()?.raw;
  const check = onDemand ? await certificateOnDemand(state, req) : checkCertificate(state, socket);
  if (!check || isAnswer(check)) return check;
  if ('client' in check) senders.set(req, check.client.name);
  if ('refused' in check) {
    state.stats.refused++;
    await drain({ req, resetAfter: undefined });
    return text(401, `Unauthorized: ${check.refused}.`);
  }
  const fault = state.faults.take(req.url ?? '/');
  const call: Call = {
    state,
    req,
    client: check.client,
    serial: check.serial,
    resetAfter: fault?.type === 'reset' ? fault.afterBytes : undefined,
  };
  const faulty = fault && faultAnswer(fault);
  let answer: Answer;
  if (faulty) {
    await drain(call);
    answer = faulty;
  } else if (pathname.startsWith('/m2m/')) {
    answer = await api(call, pathname);
  } else {
    await drain(call);
    answer = f5Page(pathname);
  }
  if (fault?.type === 'slow') await state.wait(fault.ms);
  return answer;
}

function write(res: ServerResponse, answer: Answer): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(answer.body ?? '');
  const headers: Record<string, string | string[] | number> = { ...answer.headers, 'content-length': body.length };
  if (answer.type) headers['content-type'] = answer.type;
  if (answer.close) headers.connection = 'close';
  res.writeHead(answer.status, headers);
  res.end(body);
}

/** The request listener: never throws, never leaves a promise unhandled. */
export function requestHandler(state: ServerState): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const { stats } = state;
    stats.requests++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    // 'close' comes once the answer is sent or the connection is gone, whichever way the request ends.
    res.once('close', () => stats.inFlight--);
    const started = Date.now();
    if (state.log) {
      const log = state.log;
      res.on('close', () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate?.();
        const who =
          senders.get(req) ??
          (peer?.serialNumber
            ? (state.clients.get(normaliseSerial(peer.serialNumber))?.name ?? 'unknown-cert')
            : 'no-cert');
        const outcome = res.writableFinished ? String(res.statusCode) : 'connection dropped';
        log(`${localIso()} ${who} ${req.method} ${req.url} -> ${outcome} (${Date.now() - started} ms)`);
      });
    }
    route(state, req).then(
      (answer) => {
        if (answer) write(res, answer);
      },
      (err: unknown) => {
        if (err instanceof Dropped || req.socket.destroyed) {
          req.socket.destroy();
          return;
        }
        if (err instanceof BodyTooLarge)
          return write(res, { ...text(413, `Payload Too Large: ${err.message}.`), close: true });
        if (err instanceof MultipartError)
          return write(res, { ...text(400, `Bad Request: ${err.message}.`), close: true });
        state.log?.(`${localIso()} internal error: ${err instanceof Error ? err.message : String(err)}`);
        write(res, { ...text(500, 'Internal Server Error'), close: true });
      },
    );
  };
}
