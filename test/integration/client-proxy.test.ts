import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import { REQUEST, clientFor } from '../helpers/client';
import { startConnectProxy, type TestProxy } from '../helpers/proxy';

describe('client: through an HTTP CONNECT proxy', function () {
  this.timeout(30_000);
  let sim: Simulator;
  let proxy: TestProxy;
  let dir: string;
  const savedEnv = { ...process.env };

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-client-proxy-'));
    sim = await startSimulator({ dir: path.join(dir, 'sim') });
    proxy = await startConnectProxy();
  });

  afterEach(() => {
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
      if (savedEnv[name] === undefined) delete process.env[name];
      else process.env[name] = savedEnv[name];
    }
  });

  after(async () => {
    await proxy.stop();
    await sim.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const target = () => new URL(sim.url).host;

  it('tunnels every request through one CONNECT per connection; the target still gets the client certificate', async () => {
    const before = proxy.connects.length;
    const client = await clientFor(sim, { proxy: proxy.url });
    try {
      await client.heartbeat();
      const result = await client.upload({
        ...REQUEST,
        filnamn: 'proxied.xml',
        source: { buffer: Buffer.from('<vinn/>') },
      });
      // The simulator accepted the upload, which it only does for a known client certificate.
      assert.ok(sim.deliveries().some((d) => d.deliveryId === result.uploadId));
      const connects = proxy.connects.slice(before);
      assert.ok(connects.length >= 1);
      assert.ok(
        connects.every((c) => c === target()),
        connects.join(', '),
      );
      assert.equal(connects.length, client.stats().connections);
    } finally {
      await client.close();
    }
  });

  it('takes the proxy from HTTPS_PROXY when none is configured', async () => {
    process.env.HTTPS_PROXY = proxy.url;
    const before = proxy.connects.length;
    const client = await clientFor(sim, { proxy: undefined });
    try {
      await client.heartbeat();
      assert.equal(proxy.connects.length - before, 1);
    } finally {
      await client.close();
    }
  });

  it('goes direct when NO_PROXY names the host, or when proxy is false', async () => {
    process.env.HTTPS_PROXY = proxy.url;
    process.env.NO_PROXY = 'localhost,127.0.0.1';
    const before = proxy.connects.length;
    for (const proxyOption of [undefined, false] as const) {
      const client = await clientFor(sim, { proxy: proxyOption });
      try {
        await client.heartbeat();
      } finally {
        await client.close();
      }
    }
    assert.equal(proxy.connects.length, before);
  });
});
