import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CookieJar } from '../../lib/cookies';
import { NetworkError, ProtocolError, ServerError } from '../../lib/errors';
import { noProxyMatches, proxyFor } from '../../lib/proxy';
import { RunningDigest, sha256Of } from '../../lib/digest';
import { FileSlices, READ_SIZE, ShortReadError, WRITE_SIZE } from '../../lib/multipart';
import { ConcurrencyLimit } from '../../lib/queue';
import { backoffDelay, retryPolicy, sleep, withRetry } from '../../lib/retry';

/** Resolves once `condition` holds, polling every few ms for at most `ms`. */
async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

describe('client parts', () => {
  describe('CookieJar', () => {
    it('keeps every cookie of name=value;path=/;secure and sends them back', () => {
      const jar = new CookieJar();
      jar.store([
        'LastMRH_Session=0a1b2c3d;path=/;secure',
        'MRHSession=00000000000000000000000a0a1b2c3d;path=/;secure',
        'F5_ST=1z1z1z;path=/;secure',
      ]);
      assert.equal(
        jar.header('/m2m/v2/heartbeat'),
        'LastMRH_Session=0a1b2c3d; MRHSession=00000000000000000000000a0a1b2c3d; F5_ST=1z1z1z',
      );
      assert.deepEqual(jar.names().sort(), ['F5_ST', 'LastMRH_Session', 'MRHSession']);
    });

    it('replaces a cookie of the same name and path', () => {
      const jar = new CookieJar();
      jar.store('MRHSession=old;path=/');
      jar.store('MRHSession=new;path=/');
      assert.equal(jar.header('/'), 'MRHSession=new');
    });

    it('deletes a cookie whose Expires is in the past or whose Max-Age is 0', () => {
      const jar = new CookieJar();
      jar.store(['a=1;path=/', 'b=2;path=/']);
      jar.store(['a=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/', 'b=x; Max-Age=0; path=/']);
      assert.equal(jar.header('/'), undefined);
    });

    it('drops a cookie once its Max-Age has passed; Max-Age wins over Expires', () => {
      const jar = new CookieJar();
      const now = 1_000_000;
      jar.store('s=1; Max-Age=10; Expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/', now);
      assert.equal(jar.header('/', now + 9_000), 's=1');
      assert.equal(jar.header('/', now + 10_000), undefined);
    });

    it('sends a cookie only under its path, longer paths first', () => {
      const jar = new CookieJar();
      jar.store(['root=1;path=/', 'api=2;path=/m2m', 'other=3;path=/other']);
      assert.equal(jar.header('/m2m/v2/file/0'), 'api=2; root=1');
      assert.equal(jar.header('/m2mx'), 'root=1');
      assert.equal(jar.header('/other'), 'other=3; root=1');
    });

    it('ignores malformed headers and forgets everything on clear()', () => {
      const jar = new CookieJar();
      jar.store(['novalue', '=x', 'ok=1']);
      assert.equal(jar.header('/'), 'ok=1');
      jar.clear();
      assert.equal(jar.header('/'), undefined);
    });
  });

  describe('proxy selection', () => {
    const target = new URL('https://m2m.gdb.scb.se/m2m/v2/');

    it('uses an explicit proxy, none for false, else HTTPS_PROXY / https_proxy', () => {
      assert.equal(proxyFor(target, 'http://proxy:3128', { HTTPS_PROXY: 'http://env:1' }), 'http://proxy:3128');
      assert.equal(proxyFor(target, false, { HTTPS_PROXY: 'http://env:1' }), undefined);
      assert.equal(proxyFor(target, undefined, { HTTPS_PROXY: 'http://env:1' }), 'http://env:1');
      assert.equal(proxyFor(target, undefined, { https_proxy: 'http://lower:1' }), 'http://lower:1');
      assert.equal(proxyFor(target, undefined, {}), undefined);
    });

    it('honours NO_PROXY / no_proxy: *, exact host, domain suffix, .domain, host:port', () => {
      const env = (noProxy: string) => ({ HTTPS_PROXY: 'http://env:1', NO_PROXY: noProxy });
      assert.equal(proxyFor(target, undefined, env('*')), undefined);
      assert.equal(proxyFor(target, undefined, env('localhost, m2m.gdb.scb.se')), undefined);
      assert.equal(proxyFor(target, undefined, env('scb.se')), undefined);
      assert.equal(proxyFor(target, undefined, { https_proxy: 'http://env:1', no_proxy: '.scb.se' }), undefined);
      assert.equal(proxyFor(target, undefined, env('m2m.gdb.scb.se:443')), undefined);
      assert.equal(proxyFor(target, undefined, env('m2m.gdb.scb.se:8443')), 'http://env:1');
      assert.equal(proxyFor(target, undefined, env('notscb.se,example.com')), 'http://env:1');
      assert.equal(noProxyMatches(new URL('https://127.0.0.1:9443/'), '127.0.0.1'), true);
    });
  });

  describe('retry', () => {
    const policy = retryPolicy({ maxRetries: 3, minDelayMs: 1, maxDelayMs: 4, maxElapsedMs: 10_000 });

    it('backs off exponentially with full jitter, capped at maxDelayMs', () => {
      const p = retryPolicy({ minDelayMs: 100, maxDelayMs: 1000 });
      assert.deepEqual(
        [0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, p, () => 0.999999)),
        [99, 199, 399, 799, 999, 999],
      );
      assert.equal(
        backoffDelay(3, p, () => 0),
        0,
      );
    });

    it('retries retryable errors up to maxRetries, then throws the last one', async () => {
      let attempts = 0;
      await assert.rejects(
        withRetry(async () => {
          attempts++;
          throw new ServerError(`fail ${attempts}`, { code: 'SERVER_ERROR', statusCode: 500 });
        }, policy),
        /fail 4/,
      );
      assert.equal(attempts, 4);
    });

    it('does not retry errors that are not retryable', async () => {
      let attempts = 0;
      await assert.rejects(
        withRetry(async () => {
          attempts++;
          throw new ProtocolError('bad', { code: 'HTTP_400' });
        }, policy),
        ProtocolError,
      );
      assert.equal(attempts, 1);
    });

    it('gives up when the next wait would pass maxElapsedMs', async () => {
      let attempts = 0;
      const tight = retryPolicy({ maxRetries: 10, minDelayMs: 1000, maxDelayMs: 1000, maxElapsedMs: 500 });
      await assert.rejects(
        withRetry(
          async () => {
            attempts++;
            throw new NetworkError('down', { code: 'ECONNREFUSED' });
          },
          tight,
          { random: () => 0.9 },
        ),
        /down/,
      );
      assert.equal(attempts, 1);
    });

    it('stops waiting at once when the signal aborts, with the signal reason', async () => {
      const controller = new AbortController();
      const long = retryPolicy({ maxRetries: 5, minDelayMs: 60_000, maxDelayMs: 60_000 });
      let attempts = 0;
      const pending = withRetry(
        async () => {
          attempts++;
          throw new NetworkError('down', { code: 'ECONNRESET' });
        },
        long,
        { signal: controller.signal, random: () => 1 },
      );
      await until(() => attempts === 1);
      const started = Date.now();
      controller.abort(new Error('stop now'));
      await assert.rejects(pending, /stop now/);
      assert.ok(Date.now() - started < 1000);
      assert.equal(attempts, 1);
    });

    it('sleep rejects at once on an already aborted signal', async () => {
      await assert.rejects(sleep(10, AbortSignal.abort(new Error('gone'))), /gone/);
    });

    it('refuses negative or non-number settings', () => {
      assert.throws(() => retryPolicy({ maxRetries: -1 }), /maxRetries/);
      assert.throws(() => retryPolicy({ minDelayMs: Number.NaN }), /minDelayMs/);
    });
  });

  describe('M2MError', () => {
    it('keeps the reason apart from the hint; the message users read is the two together', () => {
      const err = new ServerError('Upload of V40.xml failed: SCB answered 503.', {
        code: 'SERVER_ERROR',
        hint: 'Try again later.',
      });
      assert.equal(err.reason, 'Upload of V40.xml failed: SCB answered 503.');
      assert.equal(err.message, 'Upload of V40.xml failed: SCB answered 503. Try again later.');
      const bare = new NetworkError('down', { code: 'ECONNREFUSED' });
      assert.equal(bare.reason, bare.message);
    });
  });

  describe('ConcurrencyLimit', () => {
    it('runs at most `limit` tasks at once, the others in FIFO order', async () => {
      const limit = new ConcurrencyLimit(2);
      const started: number[] = [];
      const releases: Array<() => void> = [];
      let running = 0;
      let peak = 0;
      const tasks = [0, 1, 2, 3, 4].map((i) =>
        limit.run(async () => {
          started.push(i);
          running++;
          peak = Math.max(peak, running);
          await new Promise<void>((r) => releases.push(r));
          running--;
        }),
      );
      for (let done = 0; done < 5; done++) {
        await until(() => releases.length > done);
        assert.ok(limit.active <= 2);
        releases[done]();
      }
      await Promise.all(tasks);
      assert.equal(peak, 2);
      assert.deepEqual(started, [0, 1, 2, 3, 4]);
      assert.equal(limit.active, 0);
    });

    it('removes an aborted waiter from the queue without running it', async () => {
      const limit = new ConcurrencyLimit(1);
      let release!: () => void;
      const first = limit.run(() => new Promise<void>((r) => (release = r)));
      const controller = new AbortController();
      let ran = false;
      const second = limit.run(async () => {
        ran = true;
      }, controller.signal);
      const third = limit.run(async () => 'third');
      assert.equal(limit.queued, 2);
      controller.abort(new Error('aborted while queued'));
      await assert.rejects(second, /aborted while queued/);
      assert.equal(limit.queued, 1);
      release();
      await first;
      assert.equal(await third, 'third');
      assert.equal(ran, false);
    });
  });

  describe('FileSlices', () => {
    let dir: string;
    let file: string;
    const data = crypto.randomBytes(3 * READ_SIZE + 123);
    before(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-slices-'));
      file = path.join(dir, 'data.xml');
      await fs.writeFile(file, data);
    });
    after(() => fs.rm(dir, { recursive: true, force: true }));

    /** Slices of the test file through a handle of their own, closed after each test. */
    const opened: FileSlices[] = [];
    async function slicesOf(capacity: number, options?: ConstructorParameters<typeof FileSlices>[3]) {
      const slices = new FileSlices(await fs.open(file, 'r'), file, capacity, options);
      opened.push(slices);
      return slices;
    }
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((slices) => slices.close()));
    });

    /** Each chunk copied out as it arrives (a shared buffer is overwritten by later slices). */
    async function collect(chunks: AsyncIterable<Buffer>, memory?: Set<ArrayBufferLike>): Promise<Buffer> {
      const copies: Buffer[] = [];
      for await (const chunk of chunks) {
        memory?.add(chunk.buffer);
        copies.push(Buffer.from(chunk));
      }
      return Buffer.concat(copies);
    }

    it('reads each slice exactly, in chunks, every slice into the same buffer', async () => {
      const slices = await slicesOf(2 * READ_SIZE + 100);
      const memory = new Set<ArrayBufferLike>();
      const first = await collect(slices.slice(0, 2 * READ_SIZE + 100), memory);
      const second = await collect(slices.slice(2 * READ_SIZE + 100, data.length), memory);
      assert.ok(first.equals(data.subarray(0, 2 * READ_SIZE + 100)));
      assert.ok(second.equals(data.subarray(2 * READ_SIZE + 100)));
      assert.equal(memory.size, 1);
    });

    it('reads a slice longer than its buffer into fresh chunks', async () => {
      const memory = new Set<ArrayBufferLike>();
      const whole = await collect((await slicesOf(READ_SIZE)).slice(0, data.length), memory);
      assert.ok(whole.equals(data));
      assert.equal(memory.size, 4);
    });

    it('stops an earlier slice at its next chunk once a later one takes the buffer over', async () => {
      const slices = await slicesOf(data.length);
      const earlier = slices.slice(0, data.length);
      assert.ok((await earlier.next()).value?.equals(data.subarray(0, WRITE_SIZE)));
      const later = collect(slices.slice(0, data.length));
      await assert.rejects(earlier.next(), /the read buffer went to a later slice/);
      assert.ok((await later).equals(data));
    });

    it('gives its buffer to the next file once released; an abandoned slice then reads no more', async () => {
      const memory = new Set<ArrayBufferLike>();
      const first = await slicesOf(data.length);
      const abandoned = first.slice(0, data.length);
      memory.add((await abandoned.next()).value?.buffer as ArrayBufferLike);
      await first.release();
      await assert.rejects(abandoned.next(), /the read buffer went to a later slice or another file/);
      const next = await collect((await slicesOf(data.length)).slice(0, data.length), memory);
      assert.ok(next.equals(data));
      assert.equal(memory.size, 1);
    });

    it('fails with ShortReadError when the file is shorter than the slice', async () => {
      const slices = await slicesOf(data.length + 10);
      await assert.rejects(collect(slices.slice(0, data.length + 10)), (err: unknown) => {
        assert.ok(err instanceof ShortReadError);
        assert.equal(err.expected, data.length + 10);
        assert.equal(err.actual, data.length);
        return true;
      });
    });

    it('hands what it reads to TLS in writes of WRITE_SIZE', async () => {
      const slices = await slicesOf(data.length);
      const sizes: number[] = [];
      for await (const chunk of slices.slice(0, READ_SIZE + 10)) sizes.push(chunk.length);
      assert.deepEqual(sizes, [...Array<number>(READ_SIZE / WRITE_SIZE).fill(WRITE_SIZE), 10]);
    });

    it('checks the file while a slice is read, and yields its last chunk only once the check passed', async () => {
      let checks = 0;
      let pass!: () => void;
      let lastRead!: () => void;
      const lastFed = new Promise<void>((resolve) => (lastRead = resolve));
      // The digest is fed each chunk as it is read, before the slice yields it.
      class Fed extends RunningDigest {
        feed(offset: number, chunk: Buffer): void {
          super.feed(offset, chunk);
          if (offset === READ_SIZE) lastRead();
        }
      }
      const slices = await slicesOf(data.length, {
        digest: new Fed(2 * READ_SIZE),
        verify: () => {
          checks++;
          return new Promise<void>((resolve) => (pass = resolve));
        },
      });
      const chunks = slices.slice(0, 2 * READ_SIZE);
      const first: Buffer[] = [];
      while (first.length < READ_SIZE / WRITE_SIZE) first.push(Buffer.from((await chunks.next()).value as Buffer));
      assert.ok(Buffer.concat(first).equals(data.subarray(0, READ_SIZE)));
      assert.equal(checks, 1);
      let yielded = false;
      const last = chunks.next().finally(() => (yielded = true));
      await lastFed;
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(yielded, false, 'the last chunk came before the check passed');
      pass();
      assert.ok((await last).value?.equals(data.subarray(READ_SIZE, READ_SIZE + WRITE_SIZE)));
    });

    it('stops a slice before its last chunk when the check fails', async () => {
      const changed = new Error('changed');
      const slices = await slicesOf(data.length, { verify: () => Promise.reject(changed) });
      const seen: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const chunk of slices.slice(0, data.length)) seen.push(Buffer.from(chunk));
        })(),
        (err: unknown) => err === changed,
      );
      assert.ok(Buffer.concat(seen).equals(data.subarray(0, 3 * READ_SIZE)));
    });

    it('hashes the bytes a slice read before a later slice reads over them', async () => {
      const digest = new RunningDigest(2 * READ_SIZE);
      const slices = await slicesOf(READ_SIZE, { digest });
      const first = slices.slice(0, READ_SIZE);
      // Every write of the first slice taken, but not its end: its bytes are fed, not yet hashed.
      for (let i = 0; i < READ_SIZE / WRITE_SIZE; i++) await first.next();
      assert.equal(digest.digest(), undefined);
      // The next slice reads into the same buffer.
      await collect(slices.slice(READ_SIZE, 2 * READ_SIZE));
      await digest.settle();
      assert.equal(digest.digest(), sha256Of(data.subarray(0, 2 * READ_SIZE)));
    });

    it('reads every slice through the one handle it was given, until closed', async () => {
      const handle = await fs.open(file, 'r');
      const slices = new FileSlices(handle, file, data.length);
      assert.ok((await collect(slices.slice(0, 10))).equals(data.subarray(0, 10)));
      assert.ok((await collect(slices.slice(10, 20))).equals(data.subarray(10, 20)));
      await slices.close();
      assert.equal(handle.fd, -1);
      await assert.rejects(collect(slices.slice(0, 10)), /closed|EBADF/);
    });
  });
});
