/**
 * The simulator's timing, restricted formats, stop and memory (plain node:https, real TLS).
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs, createReadStream } from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { SEGMENT_SIZE } from '../../lib/api';
import { startSimulator } from '../../simulator';
import { runNode } from '../../scripts/process';
import {
  send,
  heartbeat,
  multipart,
  multipartFromFile,
  TARGET,
  segmentPath,
  postSegment,
  deliveryOf,
  eventually,
  XML,
} from '../helpers/simulator-requests';

describe('simulator: timing, restricted formats, stop and memory', function () {
  this.timeout(60_000);
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-sim-test-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('decides history after historyDelayMs, ends idle sessions, refuses bodies over maxSegmentBytes, checks filformat when the certificate lists formats', async () => {
    const sim = await startSimulator({
      dir: path.join(dir, 'timing'),
      historyDelayMs: 150,
      sessionIdleMs: 300,
      maxSegmentBytes: 4096,
      clients: [
        {
          name: 'v40-only',
          organisationsnummer: '9990000045',
          undersokningar: ['VINN'],
          filformat: ['V40'],
          passphrase: 'another secret',
        },
      ],
    });
    try {
      assert.deepEqual(Object.keys(sim.certificates), ['v40-only']);
      const cookie = await heartbeat(sim, 'v40-only');
      const refused = await postSegment(
        sim,
        cookie,
        0,
        Buffer.from('<a/>'),
        { ...TARGET, filformat: 'V10' },
        {},
        'v40-only',
      );
      assert.equal(refused.status, 401);
      assert.match(refused.body, /filformat V10/);
      // A chunked body (no content-length) over maxSegmentBytes is refused while it streams.
      const big = multipart(Buffer.alloc(8192, 0x41));
      const chunked = await send(sim, {
        method: 'POST',
        path: segmentPath(0),
        cookie,
        credentials: 'v40-only',
        headers: { 'content-type': String(big.headers['content-type']) },
        body: Readable.from([big.body]),
      });
      assert.equal(chunked.status, 413);
      assert.equal((await postSegment(sim, cookie, 0, Buffer.from('<a/>'), TARGET, {}, 'v40-only')).status, 200);
      const done = await postSegment(sim, cookie, -1, Buffer.alloc(0), TARGET, {}, 'v40-only');
      const id = (JSON.parse(done.body) as { deliveryId: string }).deliveryId;
      assert.equal(deliveryOf(sim, id).status, 'pending');
      await eventually(() => deliveryOf(sim, id).status === 'accepted', 5000, 'the delivery to be decided');
      // Idle expiry: a request within sessionIdleMs keeps the session; after it, the session is gone.
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie, credentials: 'v40-only' })).status, 200);
      const lastRequest = Date.now();
      await eventually(() => Date.now() - lastRequest > 350, 5000, 'sessionIdleMs to pass');
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie, credentials: 'v40-only' })).status, 302);
    } finally {
      await sim.stop();
    }
  });

  it('the scb-m2m-simulator command prints URL, CA and certificates, logs requests and stops on SIGTERM', async () => {
    const { child, exited, output, waitFor } = runNode(path.join(__dirname, '..', '..', 'simulator', 'cli.js'), [
      '--port',
      '0',
      '--dir',
      path.join(dir, 'cli'),
      '--history-delay',
      '10',
    ]);
    try {
      await waitFor(/Press Ctrl-C to stop\./, 10_000, 'the banner');
      const url = /listening on (https:\/\/127\.0\.0\.1:\d+\/)/.exec(output())?.[1];
      assert.ok(url, output());
      assert.match(
        output(),
        /API roots: +https:\/\/127\.0\.0\.1:\d+\/m2m\/v2\/ +and +https:\/\/127\.0\.0\.1:\d+\/m2m\/v1\//,
      );
      const caPath = /CA file: +(\S+)/.exec(output())?.[1] ?? '';
      const valid =
        /valid +(\S+\.pfx)\s+passphrase "([^"]+)", organisationsnummer (\d{10}), undersokningar VINN, KRITA/.exec(
          output(),
        );
      assert.ok(valid, output());
      // The printed paths and passphrase are enough to talk to it.
      const tlsFiles = { ca: await fs.readFile(caPath), pfx: await fs.readFile(valid[1]), passphrase: valid[2] };
      const reply = await new Promise<number>((resolve, reject) => {
        https
          .get(`${url}m2m/v2/heartbeat`, { agent: false, ...tlsFiles }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject);
      });
      assert.equal(reply, 200);
      await waitFor(/valid GET \/m2m\/v2\/heartbeat -> 200/, 5000, 'the request log line');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, output());
  });

  it('stop() closes the server and every connection, cuts slow answers short, and leaves no handles', async () => {
    const resources = (): Record<string, number> => {
      const counts: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
      return counts;
    };
    // Mocha arms this test's timeout timer once the function returns its promise: count after that.
    await new Promise((r) => setImmediate(r));
    const before = resources();
    const sim = await startSimulator({ dir: path.join(dir, 'stop') });
    const cookie = await heartbeat(sim);
    sim.faults.slowNext(1, 20_000, { match: /history/ });
    const slow = send(sim, { path: '/m2m/v2/history', cookie }).catch((err: Error) => err);
    await eventually(() => sim.stats().historyRequests === 1, 5000, 'the slow request to arrive');
    const started = Date.now();
    await sim.stop();
    assert.ok(Date.now() - started < 2000, `stop took ${Date.now() - started} ms`);
    assert.ok((await slow) instanceof Error, 'the slow request lost its connection');
    await assert.rejects(send(sim, { path: '/m2m/v2/heartbeat' }), /ECONNREFUSED/);
    // Polled with setImmediate, not a timer, so the poll itself does not show as a Timeout.
    const closed = (): boolean => {
      const after = resources();
      return ['TCPServerWrap', 'TCPSocketWrap', 'TLSWrap', 'Timeout'].every((k) => (after[k] ?? 0) <= (before[k] ?? 0));
    };
    const deadline = Date.now() + 5000;
    while (!closed() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.ok(closed(), `handles left: before ${JSON.stringify(before)}, now ${JSON.stringify(resources())}`);
    await sim.stop(); // a second stop is harmless
  });

  it('streams a ~100 MB upload in 12 segments to disk with flat memory (RSS growth reported)', async () => {
    const sim = await startSimulator({ dir: path.join(dir, 'memory'), historyDelayMs: 0 });
    try {
      const file = path.join(dir, 'big.xml');
      const block = crypto.randomBytes(1024 * 1024);
      const handle = await fs.open(file, 'w');
      await handle.write(XML(''));
      for (let i = 0; i < 100; i++) await handle.write(block);
      await handle.close();
      const size = (await fs.stat(file)).size;
      const hash = crypto.createHash('sha256');
      for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
      const expected = hash.digest('hex');

      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'big.xml' };
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      const started = Date.now();
      let segment = 0;
      for (let start = 0; start < size; start += SEGMENT_SIZE, segment++) {
        const { body, headers } = multipartFromFile(file, start, Math.min(size, start + SEGMENT_SIZE));
        const reply = await send(sim, { method: 'POST', path: segmentPath(segment, target), cookie, headers, body });
        assert.equal(reply.status, 200, reply.body);
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      }
      const closing = await postSegment(sim, cookie, -1, Buffer.alloc(0), target);
      const seconds = (Date.now() - started) / 1000;
      const d = deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId);
      assert.equal(d.segments, Math.ceil(size / SEGMENT_SIZE));
      assert.equal(d.size, size);
      assert.equal(d.sha256, expected);
      const growthMb = (rssPeak - rssBefore) / 1024 / 1024;
      console.log(
        `      ${(size / 1024 / 1024).toFixed(0)} MB in ${segment} segments: ${(size / 1024 / 1024 / seconds).toFixed(0)} MB/s, RSS growth ${growthMb.toFixed(1)} MB`,
      );
      // Client and simulator share this process; a buffered file would add its own size.
      assert.ok(growthMb < size / 1024 / 1024 / 2, `RSS grew ${growthMb.toFixed(1)} MB for a ${size} byte file`);
    } finally {
      await sim.stop();
    }
  });
});
