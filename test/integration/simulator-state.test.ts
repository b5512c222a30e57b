/**
 * The simulator keeps its state in its directory across real restarts (stop, then a new
 * startSimulator on the same dir), as SCB keeps history: certificates, port, deliveries.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startSimulator } from '../../simulator';
import type { Simulator, SimulatorOptions } from '../../simulator/types';
import { REQUEST, clientFor } from '../helpers/client';

describe('simulator: state kept across restarts', function () {
  this.timeout(30_000);
  let dir: string;
  const running = new Set<Simulator>();

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-sim-state-'));
  });
  afterEach(async () => {
    for (const sim of running) await sim.stop();
    running.clear();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function start(options: SimulatorOptions = {}): Promise<Simulator> {
    const sim = await startSimulator({ dir, ...options });
    running.add(sim);
    return sim;
  }
  async function stop(sim: Simulator): Promise<void> {
    await sim.stop();
    running.delete(sim);
  }
  const pfxOf = (sim: Simulator, name: string) => fs.readFile(sim.certificates[name].path);

  /** An upload by the `valid` certificate; its uploadId. */
  async function deliver(sim: Simulator, filnamn: string, content: string): Promise<string> {
    const client = await clientFor(sim);
    try {
      return (await client.upload({ ...REQUEST, filnamn, source: { buffer: Buffer.from(content) } })).uploadId;
    } finally {
      await client.close();
    }
  }

  it('keeps the CA, the client certificates, the port and the history of earlier deliveries', async () => {
    const first = await start({ historyDelayMs: 600_000 });
    const accepted = await deliver(first, 'V40_kept.xml', '<Report/>');
    const rejected = await deliver(first, 'V40_kept_rejected.xml', '<Report><!-- SIMULATE-REJECT --></Report>');
    first.settleHistory();
    const before = {
      url: first.url,
      caPem: first.caPem,
      valid: await pfxOf(first, 'valid'),
      revoked: await pfxOf(first, 'revoked'),
    };
    await stop(first);

    const second = await start({ historyDelayMs: 600_000 });
    assert.equal(second.url, before.url, 'the same port');
    assert.equal(second.caPem, before.caPem, 'the same CA');
    assert.equal(await fs.readFile(second.caPath, 'utf8'), before.caPem, 'ca.pem on disk is the same');
    assert.deepEqual(await pfxOf(second, 'valid'), before.valid, 'the same client certificate');
    assert.deepEqual(await pfxOf(second, 'revoked'), before.revoked, 'the same revoked certificate');

    // A client made before the restart would hold exactly these files: it asks about its uploads.
    const client = await clientFor(second);
    try {
      assert.equal((await client.heartbeat()).ok, true, 'the kept certificate is accepted');
      assert.equal((await client.history(accepted)).status, 'accepted', 'decided before the restart, still decided');
      assert.equal((await client.history(rejected)).status, 'rejected');
      const revoked = await clientFor(second, { certificateName: 'revoked' });
      await assert.rejects(
        revoked.heartbeat(),
        (err: Error & { statusCode?: number }) => err.statusCode === 401,
        'still revoked',
      );
      await revoked.close();
    } finally {
      await client.close();
    }
    assert.deepEqual(
      second.deliveries().map((d) => [d.deliveryId, d.filnamn, d.status]),
      [
        [accepted, 'V40_kept.xml', 'accepted'],
        [rejected, 'V40_kept_rejected.xml', 'rejected'],
      ],
    );
    const kept = second.deliveries()[0].path as string;
    assert.equal(await fs.readFile(kept, 'utf8'), '<Report/>', 'the delivered file is still there');

    // A third run appends to the same history.
    const third = await deliver(second, 'V40_after.xml', '<Report/>');
    await stop(second);
    const last = await start({ historyDelayMs: 600_000 });
    assert.deepEqual(
      last.deliveries().map((d) => [d.deliveryId, d.status]),
      [
        [accepted, 'accepted'],
        [rejected, 'rejected'],
        [third, 'pending'],
      ],
    );
  });

  it('takes another free port when its last one is taken, keeping its certificates', async () => {
    const first = await start();
    const { port, caPem } = first;
    await stop(first);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    let secondPort: number;
    try {
      const second = await start();
      secondPort = second.port;
      assert.notEqual(secondPort, port);
      assert.equal(second.caPem, caPem);
      await stop(second);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    assert.equal((await start()).port, secondPort, 'the port of the last run');
  });

  it('refuses a port the caller asked for when it is taken, and makes new certificates for other clients', async () => {
    const first = await start();
    const { caPem } = first;
    await stop(first);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startSimulator({ dir, port: taken }), /EADDRINUSE/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const other = await start({
      clients: [{ name: 'valid', organisationsnummer: '5560160680', undersokningar: ['KRITA'] }],
    });
    assert.notEqual(other.caPem, caPem, 'other clients: new certificates');
    assert.deepEqual(Object.keys(other.certificates), ['valid']);
  });
});
