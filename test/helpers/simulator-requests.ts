/**
 * Plain node:https requests to the simulator (not the project's client), shared by the
 * simulator's own tests: TLS credentials by certificate name, the F5 cookie, multipart bodies,
 * v2 segments and whole uploads.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs, createReadStream } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import * as https from 'node:https';
import { Readable } from 'node:stream';
import { v2SegmentPath, type UploadPathParts } from '../../lib/api';
import type { Simulator } from '../../simulator/types';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** TLS client credentials: a simulator certificate by name, PEM key + cert, or none at all. */
export type Credentials = string | { key: string; cert: string } | null;

export interface RequestOptions {
  method?: string;
  path: string;
  credentials?: Credentials;
  cookie?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | Readable;
}

const pfxCache = new Map<string, Buffer>();

export async function tlsOptions(sim: Simulator, credentials: Credentials): Promise<https.RequestOptions> {
  if (credentials === null) return { ca: sim.caPem };
  if (typeof credentials === 'object') return { ca: sim.caPem, ...credentials };
  const c = sim.certificates[credentials];
  let pfx = pfxCache.get(c.path);
  if (!pfx) {
    pfx = await fs.readFile(c.path);
    pfxCache.set(c.path, pfx);
  }
  return { ca: sim.caPem, pfx, passphrase: c.passphrase };
}

/** One request on its own connection (agent: false), so nothing stays open after a test. */
export async function send(sim: Simulator, o: RequestOptions): Promise<Reply> {
  const options: https.RequestOptions = {
    ...(await tlsOptions(sim, o.credentials === undefined ? 'valid' : o.credentials)),
    method: o.method ?? 'GET',
    agent: false,
    headers: { ...(o.cookie ? { cookie: o.cookie } : {}), ...o.headers },
  };
  return new Promise<Reply>((resolve, reject) => {
    const req = https.request(new URL(o.path.replace(/^\//, ''), sim.url), options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (o.body instanceof Readable) o.body.pipe(req);
    else req.end(o.body);
  });
}

/** The cookie header a browser would send back after these Set-Cookie headers. */
export function cookieOf(reply: Reply): string {
  return (reply.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
}

export async function heartbeat(sim: Simulator, credentials: Credentials = 'valid'): Promise<string> {
  const reply = await send(sim, { path: '/m2m/v2/heartbeat', credentials });
  assert.equal(reply.status, 200, reply.body);
  return cookieOf(reply);
}

export interface MultipartOptions {
  field?: string;
  filename?: string;
  /** Quote the boundary in the content type, as .NET does. */
  quotedBoundary?: boolean;
  /** Write name=File without quotes, as .NET does. */
  unquotedName?: boolean;
}

export function multipartParts(
  o: MultipartOptions,
  length: number,
): { head: Buffer; tail: Buffer; headers: Record<string, string | number> } {
  const boundary = `sim-test-${crypto.randomBytes(8).toString('hex')}`;
  const field = o.field ?? 'File';
  const name = o.unquotedName ? field : `"${field}"`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name=${name}; filename="${o.filename ?? 'f.xml'}"\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const type = `multipart/form-data; boundary=${o.quotedBoundary ? `"${boundary}"` : boundary}`;
  return { head, tail, headers: { 'content-type': type, 'content-length': head.length + length + tail.length } };
}

export function multipart(
  content: Buffer,
  o: MultipartOptions = {},
): { body: Buffer; headers: Record<string, string | number> } {
  const { head, tail, headers } = multipartParts(o, content.length);
  return { body: Buffer.concat([head, content, tail]), headers };
}

/** A multipart body streamed from bytes [start, end) of a file on disk. */
export function multipartFromFile(
  file: string,
  start: number,
  end: number,
): { body: Readable; headers: Record<string, string | number> } {
  const { head, tail, headers } = multipartParts({}, end - start);
  async function* parts(): AsyncGenerator<Buffer> {
    yield head;
    if (end > start) yield* createReadStream(file, { start, end: end - 1, highWaterMark: 256 * 1024 });
    yield tail;
  }
  return { body: Readable.from(parts(), { objectMode: false }), headers };
}

export const TARGET: UploadPathParts = {
  organisationsnummer: '9990000045',
  undersokning: 'VINN',
  referensperiod: '2022-06-30',
  filformat: 'V40',
  filnamn: 'V40 fil å.xml',
};

export function segmentPath(segment: number, target: UploadPathParts = TARGET, version: 'v1' | 'v2' = 'v2'): string {
  return `/m2m/${version}/${v2SegmentPath(segment, target)}`;
}

export async function postSegment(
  sim: Simulator,
  cookie: string,
  segment: number,
  content: Buffer,
  target: UploadPathParts = TARGET,
  o: MultipartOptions = {},
  credentials: Credentials = 'valid',
): Promise<Reply> {
  const { body, headers } = multipart(content, o);
  return send(sim, { method: 'POST', path: segmentPath(segment, target), cookie, headers, body, credentials });
}

/** Segments 0..n-1 then -1; returns the closing answer. */
export async function uploadV2(
  sim: Simulator,
  cookie: string,
  segments: Buffer[],
  target: UploadPathParts = TARGET,
): Promise<Reply> {
  for (const [i, s] of segments.entries()) {
    const reply = await postSegment(sim, cookie, i, s, target);
    assert.equal(reply.status, 200, `segment ${i}: ${reply.body}`);
    assert.equal(reply.body, '', 'a data segment is answered with an empty body');
  }
  return postSegment(sim, cookie, -1, Buffer.alloc(0), target);
}

export function deliveryOf(sim: Simulator, id: string) {
  const found = sim.deliveries().find((d) => d.deliveryId === id);
  assert.ok(found, `the simulator has delivery ${id}`);
  return found;
}

/** Polls `condition` every 10 ms until true or `ms` passed. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string | (() => string),
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const XML = (text: string): Buffer =>
  Buffer.from(
    `\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<Report xmlns="http://scb.se/gdb/vinn">${text}</Report>\n`,
  );
