import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  AuthorisationError,
  CertificateError,
  M2MClient,
  NetworkError,
  ProtocolError,
  SEGMENT_SIZE,
  ServerError,
  SessionError,
  isM2MError,
  readCertificate,
} from '../../lib';
import { REQUEST, allLogLines, certificateOf, clientFor, simulatorSuite } from '../helpers/client';
import { sha256 } from '../helpers/util';

const OUT_OF_ORDER = JSON.stringify({ error: 'SegmentOutOfOrder', expectedSegment: 0 });

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => assert.fail(`expected a failure, got ${JSON.stringify(value)}`),
    (err: unknown) => err,
  );
}

describe('client: sessions, retries, failures against the simulator', function () {
  this.timeout(30_000);
  const ctx = simulatorSuite('scb-client-resilience-');
  let data: Buffer;
  let file: string;
  /** Every error the tests saw, for the "no secrets" scan at the end. */
  const seen: unknown[] = [];

  before(async () => {
    // Three data segments.
    data = crypto.randomBytes(2 * SEGMENT_SIZE + 4096);
    file = path.join(ctx.dir, 'V40_2026.xml');
    await fs.writeFile(file, data);
  });

  const upload = (c: M2MClient = ctx.client, signal?: AbortSignal) =>
    c.upload({ ...REQUEST, filnamn: 'V40_2026.xml', source: { path: file } }, { signal });

  function assertDelivered(uploadId: string): void {
    const d = ctx.sim.deliveries().find((x) => x.deliveryId === uploadId);
    assert.ok(d, `delivery ${uploadId}`);
    assert.equal(d.sha256, sha256(data));
  }

  it('renews a session lost between segments (one heartbeat) and the file arrives whole', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.expireSessionBeforeNext({ match: /\/file\/1\// });
    const result = await upload();
    assertDelivered(result.uploadId);
    assert.equal(ctx.client.stats().sessionRenewals, 1);
    assert.equal(ctx.client.stats().heartbeats, 2);
    assert.ok(result.retries >= 1);
  });

  it('renews the session when an API call is answered with an HTML logon page', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.htmlNext(1, { match: /\/file\/0\// });
    const result = await upload();
    assertDelivered(result.uploadId);
    assert.equal(ctx.client.stats().sessionRenewals, 1);
  });

  it('gives up with SessionError when the session is refused again right after a new heartbeat', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.htmlNext(2, { match: /\/file\/0\// });
    const err = await failure(upload());
    seen.push(err);
    assert.ok(err instanceof SessionError, String(err));
    assert.match(err.message, /F5/);
    assert.match(err.message, /segment 1 of 3/);
  });

  it('restarts the file from segment 0, once, when a segment is refused as out of order', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.failNext(1, { status: 409, match: /\/file\/1\//, body: OUT_OF_ORDER });
    const before = ctx.sim.stats().requests;
    const result = await upload();
    assertDelivered(result.uploadId);
    assert.equal(result.retries, 1);
    // 0, 1 (refused), 0, 1, 2, close
    assert.equal(ctx.sim.stats().requests - before, 6);
  });

  it('fails with ProtocolError SEGMENT_OUT_OF_ORDER when it happens again after the restart', async () => {
    ctx.sim.faults.failNext(2, { status: 409, match: /\/file\/1\//, body: OUT_OF_ORDER });
    const err = await failure(upload());
    seen.push(err);
    assert.ok(err instanceof ProtocolError, String(err));
    assert.equal(err.code, 'SEGMENT_OUT_OF_ORDER');
  });

  it('a heartbeat that keeps the live session does not make an upload in flight start over', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.slowNext(1, 500, { match: /\/file\/1\// });
    const before = ctx.sim.stats().requests;
    const outcome = upload();
    // Two heartbeats while the upload runs (a heartbeat node keeping the session alive).
    while (ctx.sim.stats().requests < before + 2) await new Promise((r) => setTimeout(r, 5));
    await ctx.client.heartbeat();
    await ctx.client.heartbeat();
    const result = await outcome;
    assertDelivered(result.uploadId);
    assert.equal(result.retries, 0);
    // 0, 1, 2, close and the two heartbeats: no restart from segment 0.
    assert.equal(ctx.sim.stats().requests - before, 6);
  });

  it("an answer of the lost session arriving after the renewal does not overwrite the new session's cookies", async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.expireSessions();
    // Refused with a 302 (with fresh cookies, as the F5 does) but answered only after the other call renewed the session.
    ctx.sim.faults.slowNext(1, 400, { match: /history/ });
    const slow = ctx.client.history();
    await new Promise((r) => setTimeout(r, 50));
    await ctx.client.history();
    await slow;
    await ctx.client.history();
    assert.equal(ctx.client.stats().sessionRenewals, 1);
    assert.equal(ctx.client.stats().heartbeats, 2);
  });

  it('resends only the failed segment after a 500', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.failNext(1, { status: 500, match: /\/file\/2\// });
    const before = ctx.sim.stats().requests;
    const result = await upload();
    assertDelivered(result.uploadId);
    assert.equal(result.retries, 1);
    // 0, 1, 2 (500), 2, close
    assert.equal(ctx.sim.stats().requests - before, 5);
  });

  it('resends a segment whose connection was reset mid-body', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.resetNext(1, { match: /\/file\/1\//, afterBytes: 64 * 1024 });
    const result = await upload();
    assertDelivered(result.uploadId);
    assert.equal(result.retries, 1);
  });

  it("takes the file's SHA-256 from the bytes sent, once each, through a segment reset mid-body and a restart from segment 0", async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.resetNext(1, { match: /\/file\/1\//, afterBytes: 64 * 1024 });
    // Segments do not outlive the session (assumed): the file starts again from segment 0.
    ctx.sim.faults.expireSessionBeforeNext({ match: /\/file\/2\// });
    const atClosing: Array<string | undefined> = [];
    const result = await ctx.client.upload(
      { ...REQUEST, filnamn: 'V40_2026.xml', source: { path: file } },
      { sha256: true, beforeClosing: ({ sha256: digest }) => void atClosing.push(digest) },
    );
    assertDelivered(result.uploadId);
    assert.ok(result.retries >= 2, `retries ${result.retries}`);
    assert.equal(result.sha256, sha256(data));
    assert.deepEqual(atClosing, [sha256(data)], 'known before the closing request, and the same');
  });

  it('does not retry a 401: one request, an AuthorisationError naming organisation, survey and format', async () => {
    const other = await clientFor(ctx.sim, { certificateName: 'other-org' });
    try {
      await other.heartbeat();
      const before = ctx.sim.stats().requests;
      const err = await failure(upload(other));
      seen.push(err);
      assert.ok(err instanceof AuthorisationError, String(err));
      assert.equal(err.statusCode, 401);
      for (const part of ['9990000045', 'VINN', 'V40']) assert.ok(err.message.includes(part), err.message);
      assert.equal(ctx.sim.stats().requests - before, 1);
    } finally {
      await other.close();
    }
  });

  it('gives up after maxRetries on 5xx with a ServerError carrying the status and the body', async () => {
    ctx.sim.faults.failNext(10, { status: 503, match: /history/, body: 'Service Unavailable: maintenance' });
    await ctx.client.heartbeat();
    const before = ctx.sim.stats().requests;
    const err = await failure(ctx.client.history());
    seen.push(err);
    assert.ok(err instanceof ServerError, String(err));
    assert.equal(err.statusCode, 503);
    assert.match(err.message, /maintenance/);
    // first attempt + 3 retries (FAST_RETRY)
    assert.equal(ctx.sim.stats().requests - before, 4);
  });

  it('turns a request that outlives its timeout into a NetworkError TIMEOUT', async () => {
    const impatient = await clientFor(ctx.sim, { timeouts: { shortRequestMs: 300 }, retry: { maxRetries: 0 } });
    try {
      await impatient.heartbeat();
      ctx.sim.faults.slowNext(1, 3000, { match: /history/ });
      const started = Date.now();
      const err = await failure(impatient.history());
      seen.push(err);
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, 'TIMEOUT');
      assert.ok(Date.now() - started < 2000);
    } finally {
      await impatient.close();
    }
  });

  it('refuses a server certificate from an unknown CA and says to set the CA file', async () => {
    const trusting = await clientFor(ctx.sim, { ca: undefined });
    try {
      const err = await failure(trusting.heartbeat());
      seen.push(err);
      assert.ok(err instanceof CertificateError, String(err));
      assert.equal(err.code, 'SERVER_CERTIFICATE_UNTRUSTED');
      assert.match(err.message, /CA file/);
    } finally {
      await trusting.close();
    }
  });

  it('reports a client certificate the server refuses as a certificate or authorisation error, not retried', async () => {
    const untrusted = await clientFor(ctx.sim, { certificateName: 'untrusted' });
    try {
      const err = await failure(untrusted.heartbeat());
      seen.push(err);
      assert.ok(err instanceof CertificateError || err instanceof AuthorisationError, String(err));
      assert.equal(untrusted.stats().retries, 0);
    } finally {
      await untrusted.close();
    }
  });

  it('close() stops an upload in flight with CLIENT_CLOSED and later calls fail the same way', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.slowNext(1, 5000, { match: /\/file\/1\// });
    const requestsAtStart = ctx.sim.stats().requests;
    const outcome = failure(upload());
    // Wait until segment 1 is at the server, then close.
    const deadline = Date.now() + 5000;
    while (ctx.sim.stats().requests < requestsAtStart + 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    await ctx.client.close();
    const err = await outcome;
    seen.push(err);
    assert.ok(err instanceof NetworkError, String(err));
    assert.equal(err.code, 'CLIENT_CLOSED');
    assert.ok(Date.now() - started < 1000);
    const later = await failure(ctx.client.heartbeat());
    assert.ok(isM2MError(later) && later.code === 'CLIENT_CLOSED');
  });

  it('stops at once when the caller aborts, and sends nothing more', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.slowNext(1, 5000, { match: /\/file\/0\// });
    const controller = new AbortController();
    const before = ctx.sim.stats().requests;
    const outcome = failure(upload(ctx.client, controller.signal));
    const deadline = Date.now() + 5000;
    while (ctx.sim.stats().requests < before + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const err = await outcome;
    seen.push(err);
    assert.ok(isM2MError(err) && err.code === 'ABORTED', String(err));
    assert.equal(ctx.sim.stats().requests - before, 1);
  });

  it('never shows the passphrase, the key or a cookie value in errors or log lines', async () => {
    const c = ctx.sim.certificates.valid;
    seen.push(await failure(readCertificate({ path: c.path, passphrase: `${c.passphrase}-wrong` })));
    const key = (await certificateOf(ctx.sim)).key;
    const keyLine = key.split('\n')[1];
    const texts = [
      ...seen.map((e) => (e instanceof Error ? `${e.message} ${JSON.stringify(e)} ${e.stack ?? ''}` : String(e))),
      ...allLogLines.map((l) => l.message),
    ];
    assert.ok(
      seen.length >= 10 && allLogLines.length > 20,
      `scanned ${seen.length} errors and ${allLogLines.length} log lines`,
    );
    for (const text of texts) {
      assert.ok(!text.includes(c.passphrase), `passphrase in: ${text}`);
      assert.ok(!text.includes(keyLine) && !text.includes('PRIVATE KEY'), `key in: ${text}`);
      assert.ok(!/MRHSession=|LastMRH_Session=/.test(text), `cookie in: ${text}`);
    }
  });
});
