import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs, appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { SEGMENT_SIZE, ValidationError, type UploadProgress } from '../../lib';
import { REQUEST, clientFor, simulatorSuite } from '../helpers/client';
import { sha256 } from '../helpers/util';

/** How many of this process's file descriptors are open on `file` (Linux: /proc/self/fd). */
async function descriptorsOf(file: string): Promise<number> {
  const fds = await fs.readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target === file).length;
}

describe('client: heartbeat and uploads against the simulator', function () {
  this.timeout(30_000);
  const ctx = simulatorSuite('scb-client-upload-');

  function delivery(id: string) {
    const found = ctx.sim.deliveries().find((d) => d.deliveryId === id);
    assert.ok(found, `the simulator has delivery ${id}`);
    return found;
  }

  it('heartbeat answers the server time over mutual TLS and opens the session', async () => {
    const before = ctx.sim.stats().heartbeats;
    const beat = await ctx.client.heartbeat();
    assert.equal(beat.ok, true);
    assert.equal(beat.statusCode, 200);
    assert.ok(beat.serverTime.length > 0 && !beat.serverTime.startsWith('"'), `serverTime ${beat.serverTime}`);
    assert.equal(ctx.sim.stats().heartbeats - before, 1);
    assert.equal(ctx.client.stats().heartbeats, 1);
    assert.equal(ctx.client.apiRoot, `${ctx.sim.url}m2m/v2/`);
    assert.equal(ctx.client.certificate.commonName !== undefined, true);
  });

  it('uploads a 30 MB file from disk in 4 segments + close; it arrives identical', async () => {
    const data = crypto.randomBytes(30 * 1024 * 1024);
    const file = path.join(ctx.dir, 'V40_2026.xml');
    await fs.writeFile(file, data);
    const progress: UploadProgress[] = [];
    const requestsBefore = ctx.sim.stats().requests;

    const result = await ctx.client.upload(
      { ...REQUEST, filnamn: 'V40_2026.xml', source: { path: file } },
      { onProgress: (p) => progress.push(p) },
    );

    assert.equal(result.segments, 4);
    assert.equal(result.bytes, data.length);
    assert.equal(result.apiVersion, 'v2');
    assert.equal(result.retries, 0);
    assert.ok(result.timeStamp, 'the receipt has a timeStamp');
    const d = delivery(result.uploadId);
    assert.equal(d.sha256, sha256(data));
    assert.equal(d.size, data.length);
    assert.equal(d.segments, 4);
    assert.equal(d.organisationsnummer, '9990000045');
    assert.equal(d.filnamn, 'V40_2026.xml');
    assert.deepEqual(
      progress.map((p) => [p.segment, p.segments, p.bytesSent]),
      [
        [1, 4, SEGMENT_SIZE],
        [2, 4, 2 * SEGMENT_SIZE],
        [3, 4, 3 * SEGMENT_SIZE],
        [4, 4, data.length],
      ],
    );
    // heartbeat + 4 segments + close
    assert.equal(ctx.sim.stats().requests - requestsBefore, 6);
  });

  it('uploads a 0-byte file with the closing POST alone', async () => {
    const file = path.join(ctx.dir, 'empty.xml');
    await fs.writeFile(file, '');
    await ctx.client.heartbeat();
    const before = ctx.sim.stats().requests;
    const result = await ctx.client.upload(
      { ...REQUEST, filnamn: 'empty.xml', source: { path: file } },
      { sha256: true },
    );
    assert.equal(result.segments, 0);
    assert.equal(result.sha256, sha256(Buffer.alloc(0)));
    assert.equal(ctx.sim.stats().requests - before, 1);
    const d = delivery(result.uploadId);
    assert.equal(d.size, 0);
    assert.equal(d.sha256, sha256(Buffer.alloc(0)));
  });

  it('uploads a Buffer source, sliced into segments, with a version and an odd file name', async () => {
    const data = crypto.randomBytes(SEGMENT_SIZE + 1234);
    const result = await ctx.client.upload({
      ...REQUEST,
      filnamn: 'V40 räkenskaper (1).xml',
      version: '3',
      source: { buffer: data },
    });
    assert.equal(result.segments, 2);
    const d = delivery(result.uploadId);
    assert.equal(d.sha256, sha256(data));
    assert.equal(d.filnamn, 'V40 räkenskaper (1).xml');
    assert.equal(d.version, '3');
  });

  it('uploads through v1 in one POST and returns its upload id', async () => {
    const v1 = await clientFor(ctx.sim, { apiVersion: 'v1' });
    try {
      const data = Buffer.from('<?xml version="1.0"?><vinn/>');
      const result = await v1.upload({ ...REQUEST, filnamn: 'v1.xml', source: { buffer: data } });
      assert.equal(result.apiVersion, 'v1');
      assert.ok(result.uploadId.length > 0);
      const d = delivery(result.uploadId);
      assert.equal(d.apiVersion, 'v1');
      assert.equal(d.sha256, sha256(data));
    } finally {
      await v1.close();
    }
  });

  it("v1 from a file: the file's SHA-256 is known before its one POST, which is also its closing request", async () => {
    const v1 = await clientFor(ctx.sim, { apiVersion: 'v1' });
    try {
      const data = crypto.randomBytes(3 * 1024 * 1024 + 5);
      const file = path.join(ctx.dir, 'v1-file.xml');
      await fs.writeFile(file, data);
      const before: Array<string | undefined> = [];
      const result = await v1.upload(
        { ...REQUEST, filnamn: 'v1-file.xml', source: { path: file } },
        { sha256: true, beforeClosing: ({ sha256: digest }) => void before.push(digest) },
      );
      assert.deepEqual(before, [sha256(data)]);
      assert.equal(result.sha256, sha256(data));
      assert.equal(delivery(result.uploadId).sha256, sha256(data));
    } finally {
      await v1.close();
    }
  });

  it('shares one heartbeat among many concurrent uploads', async () => {
    const before = ctx.sim.stats().heartbeats;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        ctx.client.upload({ ...REQUEST, filnamn: `c${i}.xml`, source: { buffer: Buffer.from(`file ${i}`) } }),
      ),
    );
    assert.equal(new Set(results.map((r) => r.uploadId)).size, 8);
    assert.equal(ctx.client.stats().heartbeats, 1);
    assert.equal(ctx.sim.stats().heartbeats - before, 1);
  });

  it('sends two uploads of the same target one after the other, so both arrive whole', async () => {
    // Two segments each: at once they would interleave in the one file the server keeps per target.
    const first = crypto.randomBytes(SEGMENT_SIZE + 100);
    const second = crypto.randomBytes(SEGMENT_SIZE + 200);
    const same = { ...REQUEST, filnamn: 'same-target.xml' };
    const [a, b] = await Promise.all([
      ctx.client.upload({ ...same, source: { buffer: first } }),
      ctx.client.upload({ ...same, source: { buffer: second } }),
    ]);
    assert.equal(delivery(a.uploadId).sha256, sha256(first));
    assert.equal(delivery(b.uploadId).sha256, sha256(second));
    assert.equal(a.retries + b.retries, 0);
  });

  it('runs at most maxConcurrentUploads uploads at once; the others wait their turn', async () => {
    const bounded = await clientFor(ctx.sim, { maxConcurrentUploads: 2 });
    try {
      ctx.sim.faults.slowNext(6, 150, { match: /\/file\/0\// });
      let peak = 0;
      const sample = (): void => {
        peak = Math.max(peak, bounded.stats().uploadsInFlight);
      };
      const sampler = setInterval(sample, 5);
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          bounded.upload(
            { ...REQUEST, filnamn: `q${i}.xml`, source: { buffer: Buffer.from(`queued ${i}`) } },
            { onProgress: sample },
          ),
        ),
      ).finally(() => clearInterval(sampler));
      assert.equal(results.length, 6);
      assert.equal(peak, 2);
      assert.equal(bounded.stats().uploadsInFlight, 0);
    } finally {
      await bounded.close();
    }
  });

  it('stops with FILE_CHANGED when the file grows while it is sent', async () => {
    const file = path.join(ctx.dir, 'growing.xml');
    await fs.writeFile(file, crypto.randomBytes(SEGMENT_SIZE + 10));
    const upload = ctx.client.upload(
      { ...REQUEST, filnamn: 'growing.xml', source: { path: file } },
      { onProgress: (p) => p.segment === 1 && appendFileSync(file, 'more') },
    );
    await assert.rejects(upload, (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.code, 'FILE_CHANGED');
      assert.ok(err.message.includes(file), err.message);
      return true;
    });
    assert.equal(await descriptorsOf(file), 0, 'the upload left the file open');
  });

  it('keeps a file open while it is sent, and closes it once the upload is over', async () => {
    const file = path.join(ctx.dir, 'held.xml');
    await fs.writeFile(file, crypto.randomBytes(2 * SEGMENT_SIZE + 10));
    let whileSent: number | undefined;
    await ctx.client.upload(
      { ...REQUEST, filnamn: 'held.xml', source: { path: file } },
      // Awaited after the data segments, before the closing POST.
      { beforeClosing: async () => void (whileSent = await descriptorsOf(file)) },
    );
    assert.equal(whileSent, 1, 'one descriptor for all the data segments');
    assert.equal(await descriptorsOf(file), 0);
  });

  it('refuses an invalid request before any request is sent', async () => {
    const before = ctx.sim.stats().requests;
    await assert.rejects(
      ctx.client.upload({
        ...REQUEST,
        referensperiod: '2022-06-15',
        filnamn: 'x.xml',
        source: { buffer: Buffer.from('x') },
      }),
      ValidationError,
    );
    await assert.rejects(
      ctx.client.upload({ ...REQUEST, filnamn: 'missing.xml', source: { path: path.join(ctx.dir, 'missing.xml') } }),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError && err.code === 'FILE_UNREADABLE', String(err));
        return true;
      },
    );
    assert.equal(ctx.sim.stats().requests, before);
  });
});
