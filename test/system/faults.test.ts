/**
 * Nothing lost: each fault the simulator can inject, through the real upload node, ends EITHER in a
 * success after bounded retries with an identical file at the server, OR in exactly one done(err)
 * that brings the original msg to the Catch node. The config node exposes no timeout or retry
 * settings, so it runs with the client's defaults (4 retries, 0.5 s doubling backoff); the short
 * timeout case runs at client level.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { NetworkError, SEGMENT_SIZE, isM2MError } from '../../lib';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import type { NodeMessage } from 'node-red';
import { REQUEST, clientFor } from '../helpers/client';
import { Outcomes } from '../helpers/faults';
import { CONFIG, TAB, baseFlow, credentialsOf, helper, load, nodeSuite, type FlowNode } from '../helpers/node-red';
import { makeTestPki } from '../helpers/pki';
import { sha256 } from '../helpers/util';

const VALID_ONLY = [{ name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'] }];
const SEGMENT_1 = /\/file\/1\//;
const CLOSING = /\/file\/-1\//;

type Ending = { ended: 'output'; msg: NodeMessage } | { ended: 'caught'; msg: NodeMessage };

describe('faults: every msg through the upload node ends in one success or one Catch', function () {
  this.timeout(60_000);
  const ctx = nodeSuite({ simulator: { clients: VALID_ONLY, keepFiles: false }, tmpDir: 'scb-faults-' });
  /** Two data segments: the second starts after a full 9 216 000-byte one. */
  let file: string;
  let data: Buffer;

  before(async () => {
    data = crypto.randomBytes(SEGMENT_SIZE + 4096);
    file = path.join(ctx.dir, 'V40_2026-06.xml');
    fs.writeFileSync(file, data);
  });

  function uploadFlow(
    server: Pick<Simulator, 'url' | 'caPath' | 'certificates'> = ctx.simulator,
    config: Record<string, unknown> = {},
  ): FlowNode[] {
    return [
      ...baseFlow(server as Simulator, config),
      {
        id: 'up',
        type: 'scb-m2m-upload',
        z: TAB,
        config: CONFIG,
        ...Object.fromEntries(
          Object.entries(REQUEST).flatMap(([k, v]) => [
            [k, v],
            [`${k}Type`, 'str'],
          ]),
        ),
        wires: [['out']],
      },
      { id: 'out', type: 'helper', z: TAB },
    ];
  }

  /**
   * Sends one msg for the two-segment file and waits until it ends; then unloads the flow (which
   * waits for the node's work to finish) so that nothing more can come, and checks it ended once.
   */
  async function sendOne(flow: FlowNode[] = uploadFlow()): Promise<Ending & { sent: NodeMessage }> {
    await load(flow, credentialsOf(ctx.simulator));
    const outcomes = new Outcomes('marker');
    outcomes.listen(['out'], 'caught');
    const marker = crypto.randomUUID();
    const sent: NodeMessage = { _msgid: `msg-${marker}`, filename: file, marker, topic: 'VINN monthly' };
    helper.getNode('up').receive({ ...sent });
    await outcomes.settled([marker], 40_000);
    await helper.unload();
    outcomes.assertEachEndedOnce([marker]);
    const output = outcomes.outputs.get(marker)?.[0];
    return output
      ? { ended: 'output', msg: output, sent }
      : { ended: 'caught', msg: outcomes.caught.get(marker)![0], sent };
  }

  /** A success: the msg kept its own properties and the server holds exactly one identical copy. */
  function assertDeliveredOnce(ending: Ending & { sent: NodeMessage }, deliveriesBefore: number): void {
    assert.equal(ending.ended, 'output', `expected an output, got a Catch: ${JSON.stringify(ending.msg.error)}`);
    const { msg, sent } = ending;
    for (const key of ['_msgid', 'filename', 'marker', 'topic']) assert.equal(msg[key], sent[key], key);
    const added = ctx.simulator.deliveries().slice(deliveriesBefore);
    assert.equal(added.length, 1, `one delivery, got ${added.length}`);
    assert.equal(added[0].deliveryId, msg.uploadId);
    assert.equal(added[0].filnamn, path.basename(file));
    assert.equal(added[0].size, data.length);
    assert.equal(added[0].sha256, sha256(data));
  }

  /** A failure: the original msg reached the Catch node once, with an error that says what happened. */
  function assertCaughtOnce(ending: Ending & { sent: NodeMessage }, message: RegExp, deliveriesBefore: number): void {
    assert.equal(
      ending.ended,
      'caught',
      `expected a Catch, got an output with uploadId ${String(ending.msg.uploadId)}`,
    );
    const { msg, sent } = ending;
    for (const key of ['_msgid', 'filename', 'marker', 'topic']) assert.equal(msg[key], sent[key], key);
    assert.equal(msg.uploadId, undefined);
    const error = msg.error as { message: string; source: { id: string } };
    assert.equal(error.source.id, 'up');
    assert.match(error.message, message);
    assert.equal(ctx.simulator.deliveries().length, deliveriesBefore, 'nothing delivered');
  }

  it('a 5xx burst within the retries: success, one identical file', async () => {
    const before = ctx.simulator.deliveries().length;
    ctx.simulator.faults.failNext(3, { status: 503, match: /\/file\// });
    const ending = await sendOne();
    assertDeliveredOnce(ending, before);
  });

  it('5xx beyond the retries: one Catch with statusCode 500 and the server text', async () => {
    const before = ctx.simulator.deliveries().length;
    const requests = ctx.simulator.stats().requests;
    ctx.simulator.faults.failNext(50, { status: 500, match: SEGMENT_1, body: 'Internal error at SCB' });
    const ending = await sendOne();
    assertCaughtOnce(ending, /500.*Internal error at SCB/, before);
    assert.equal(ending.msg.statusCode, 500);
    // heartbeat, segment 0, then segment 1 tried 1 + 4 times (the client's default bound).
    assert.equal(ctx.simulator.stats().requests - requests, 7);
  });

  it('a reset in the middle of a segment: the segment is resent, one identical file', async () => {
    const before = ctx.simulator.deliveries().length;
    ctx.simulator.faults.resetNext(1, { match: SEGMENT_1, afterBytes: 2048 });
    assertDeliveredOnce(await sendOne(), before);
  });

  it('a reset in the middle of the first, full 9 MB segment: one identical file', async () => {
    const before = ctx.simulator.deliveries().length;
    ctx.simulator.faults.resetNext(1, { match: /\/file\/0\//, afterBytes: 4 * 1024 * 1024 });
    assertDeliveredOnce(await sendOne(), before);
  });

  it('the session expires between segments: renewed, restarted from segment 0, one identical file', async () => {
    const before = ctx.simulator.deliveries().length;
    const sessions = ctx.simulator.stats().sessionsCreated;
    ctx.simulator.faults.expireSessionBeforeNext({ match: SEGMENT_1 });
    assertDeliveredOnce(await sendOne(), before);
    assert.equal(ctx.simulator.stats().sessionsCreated - sessions, 2, 'the first session and its renewal');
  });

  it('a slow server (1.5 s on the closing segment) within the default timeout: waited for, not resent', async () => {
    const before = ctx.simulator.deliveries().length;
    const requests = ctx.simulator.stats().requests;
    ctx.simulator.faults.slowNext(1, 1500, { match: CLOSING });
    const started = Date.now();
    assertDeliveredOnce(await sendOne(), before);
    assert.ok(Date.now() - started >= 1500);
    // heartbeat, segments 0 and 1, closing: nothing twice.
    assert.equal(ctx.simulator.stats().requests - requests, 4);
  });

  it('the server down (connection refused): one Catch naming the connection failure, after bounded retries', async () => {
    const down = await startSimulator({ clients: VALID_ONLY });
    await down.stop();
    try {
      const ending = await sendOne(uploadFlow(down));
      assertCaughtOnce(ending, /ECONNREFUSED/, ctx.simulator.deliveries().length);
      assert.equal(ending.msg.statusCode, undefined, 'no server answered');
    } finally {
      fs.rmSync(down.dir, { recursive: true, force: true });
    }
  });

  it('an F5 HTML logon page instead of the closing answer: session renewed, closing resent, one identical file', async () => {
    const before = ctx.simulator.deliveries().length;
    ctx.simulator.faults.htmlNext(1, { match: CLOSING });
    assertDeliveredOnce(await sendOne(), before);
  });

  it('the F5 page again right after a new session: one Catch saying the F5 refuses the session', async () => {
    const before = ctx.simulator.deliveries().length;
    ctx.simulator.faults.htmlNext(2, { match: SEGMENT_1 });
    assertCaughtOnce(await sendOne(), /session.*F5|F5.*session/i, before);
  });

  it('invalid JSON in answer to the closing segment: one Catch saying the answer is not JSON', async () => {
    const before = ctx.simulator.deliveries().length;
    ctx.simulator.faults.invalidJsonNext(1, { match: CLOSING });
    const ending = await sendOne();
    assertCaughtOnce(ending, /not JSON/, before);
    assert.equal(ending.msg.statusCode, 200);
  });

  it('a TLS handshake the server aborts (client certificate from a CA it does not trust): one Catch after bounded retries', async () => {
    const pki = makeTestPki();
    const handshakes: Error[] = [];
    const server = tls.createServer({
      key: pki.server.keyPem,
      cert: pki.server.certPem,
      ca: [pki.ca.certPem],
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('tlsClientError', (err) => handshakes.push(err));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const caPath = path.join(ctx.dir, 'other-ca.pem');
    fs.writeFileSync(caPath, pki.ca.certPem);
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/`;
    try {
      const before = ctx.simulator.deliveries().length;
      const ending = await sendOne(uploadFlow({ url, caPath, certificates: ctx.simulator.certificates }));
      // Node's TLS server closes the socket without an alert, so the client sees a connection
      // closed during the handshake: a network failure, retried within its bound.
      assertCaughtOnce(ending, /connection to 127\.0\.0\.1:\d+ failed/, before);
      assert.equal(ending.msg.statusCode, undefined, 'no HTTP answer');
      assert.ok(
        handshakes.length >= 1 && handshakes.length <= 5,
        `1 + at most 4 retries, got ${handshakes.length} handshakes`,
      );
    } finally {
      server.close();
    }
  });

  describe('a slow server with a short per-request timeout (client level: the config node has no timeout setting)', () => {
    async function withShortTimeout<T>(run: (client: Awaited<ReturnType<typeof clientFor>>) => Promise<T>): Promise<T> {
      const client = await clientFor(ctx.simulator, { timeouts: { requestMs: 400, shortRequestMs: 400 } });
      try {
        return await run(client);
      } finally {
        await client.close();
      }
    }

    it('a data segment slower than the timeout is resent and the file arrives once, identical', async () => {
      const before = ctx.simulator.deliveries().length;
      const result = await withShortTimeout(async (client) => {
        await client.heartbeat();
        ctx.simulator.faults.slowNext(1, 2000, { match: SEGMENT_1 });
        return client.upload({ ...REQUEST, filnamn: 'slow-segment.xml', source: { path: file } });
      });
      assert.ok(result.retries >= 1);
      const added = ctx.simulator.deliveries().slice(before);
      assert.equal(added.length, 1);
      assert.equal(added[0].sha256, sha256(data));
    });

    it('a v1 upload slower than the timeout is not sent again (it is the whole delivery)', async () => {
      const before = ctx.simulator.deliveries().length;
      const client = await clientFor(ctx.simulator, { apiVersion: 'v1', timeouts: { requestMs: 400 } });
      try {
        await client.heartbeat();
        ctx.simulator.faults.slowNext(1, 1500, { match: /\/m2m\/v1\/9990000045\// });
        const err = await client
          .upload({ ...REQUEST, filnamn: 'slow-v1.xml', source: { buffer: data.subarray(0, 4096) } })
          .then(
            (r) => assert.fail(`expected DELIVERY_UNCERTAIN, got ${r.uploadId}`),
            (e: unknown) => e,
          );
        assert.ok(err instanceof NetworkError, String(err));
        assert.equal(err.code, 'DELIVERY_UNCERTAIN');
      } finally {
        await client.close();
      }
      assert.equal(ctx.simulator.deliveries().length - before, 1);
    });

    it('a closing segment slower than the timeout: the file is not delivered twice nor damaged', async () => {
      const before = ctx.simulator.deliveries().length;
      const outcome = await withShortTimeout(async (client) => {
        await client.heartbeat();
        ctx.simulator.faults.slowNext(1, 2000, { match: CLOSING });
        return client.upload({ ...REQUEST, filnamn: 'slow-closing.xml', source: { path: file } }).then(
          (r) => ({ ok: true as const, uploadId: r.uploadId }),
          (err: unknown) => ({ ok: false as const, err }),
        );
      });
      // The server joined the file before it was slow to answer; whatever the client concludes,
      // the server must hold one copy, whole.
      const added = ctx.simulator.deliveries().slice(before);
      assert.deepEqual(
        added.map((d) => ({ size: d.size, sha256: d.sha256 })),
        [{ size: data.length, sha256: sha256(data) }],
        `deliveries after a timed-out closing POST (client: ${outcome.ok ? `ok ${outcome.uploadId}` : String(outcome.err)})`,
      );
      if (outcome.ok) assert.equal(outcome.uploadId, added[0].deliveryId);
      else {
        // Not resent: the client cannot know whether the server joined the file, and says so.
        assert.ok(isM2MError(outcome.err) && outcome.err instanceof NetworkError, String(outcome.err));
        assert.equal(outcome.err.code, 'DELIVERY_UNCERTAIN');
        assert.match(outcome.err.message, /history/);
      }
    });
  });
});
