/**
 * What SCB's servers may do otherwise than we assume (issue 11), each way against the simulator:
 * the client certificate asked for in the first handshake or by TLS renegotiation.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CertificateError, M2MClient, NetworkError, SEGMENT_SIZE } from '../lib';
import { DEFAULT_CLIENTS, startSimulator } from '../simulator';
import type { Simulator, SimulatorOptions } from '../simulator/types';
import { REQUEST, certificateOf, clientFor } from './helpers/client';

const CLIENTS = DEFAULT_CLIENTS.filter((c) => c.name === 'valid' || c.name === 'untrusted');

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => assert.fail(`expected a failure, got ${JSON.stringify(value)}`),
    (err: unknown) => err,
  );
}

const sha256 = (data: Buffer): string => crypto.createHash('sha256').update(data).digest('hex');

describe('client: edges of the real service', function () {
  this.timeout(120_000);
  let dir: string;
  const simulators: Simulator[] = [];

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-client-edges-'));
  });

  after(async () => {
    await Promise.all(simulators.map((s) => s.stop()));
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function simulator(name: string, options: SimulatorOptions): Promise<Simulator> {
    const sim = await startSimulator({ dir: path.join(dir, name), clients: CLIENTS, ...options });
    simulators.push(sim);
    return sim;
  }

  /** Runs `test` with a client, closed after it. */
  async function withClient<T>(client: M2MClient, test: (c: M2MClient) => Promise<T>): Promise<T> {
    try {
      return await test(client);
    } finally {
      await client.close();
    }
  }

  for (const clientCert of ['handshake', 'renegotiate'] as const) {
    describe(`client certificate asked for ${clientCert === 'handshake' ? 'in the first handshake' : 'by TLS 1.2 renegotiation (F5 on-demand)'}`, () => {
      let sim: Simulator;
      let data: Buffer;
      let file: string;

      before(async () => {
        sim = await simulator(clientCert, { clientCert, historyDelayMs: 600_000 });
        // Three data segments.
        data = Buffer.concat([Buffer.from('<a>'), crypto.randomBytes(2 * SEGMENT_SIZE + 4096)]);
        file = path.join(dir, `${clientCert}.xml`);
        await fs.writeFile(file, data);
      });

      it('heartbeat, a v2 upload in three segments and history work over kept-alive connections', async () => {
        await withClient(await clientFor(sim), async (client) => {
          const before = sim.stats();
          await client.heartbeat();
          const result = await client.upload({ ...REQUEST, filnamn: 'three.xml', source: { path: file } });
          assert.equal(result.segments, 3);
          assert.equal(sim.deliveries().find((d) => d.deliveryId === result.uploadId)?.sha256, sha256(data));
          assert.equal((await client.history(result.uploadId)).status, 'pending');
          assert.equal((await client.history()).items?.length, 1);
          await client.heartbeat();
          const after = sim.stats();
          const requests = after.requests - before.requests;
          const connections = after.connections - before.connections;
          const renegotiations = after.renegotiations - before.renegotiations;
          // heartbeat, 3 segments, closing, 2 history, heartbeat; nothing repeated.
          assert.equal(requests, 8);
          assert.equal(result.retries, 0);
          assert.equal(client.stats().sessionRenewals, 0);
          assert.ok(connections <= 3, `${connections} connections for ${requests} requests`);
          if (clientCert === 'handshake') assert.equal(renegotiations, 0);
          // At most once per connection; at least for the one that opened the session.
          else assert.ok(renegotiations >= 1 && renegotiations <= connections, `${renegotiations} renegotiations on ${connections} connections`);
        });
      });

      if (clientCert === 'renegotiate') {
        it('a certificate refused in the renegotiation (TLS alert) is CLIENT_CERTIFICATE_REFUSED in plain words, not retried', async () => {
          const valid = await certificateOf(sim);
          // A client with nothing to show when asked: the simulator answers with a TLS alert, as an F5 does.
          const client = new M2MClient({ environment: 'custom', baseUrl: sim.url, ca: sim.caPem, proxy: false, certificate: { ...valid, cert: '', key: '' } });
          await withClient(client, async (c) => {
            const refusedBefore = sim.stats().refused;
            const err = await failure(c.heartbeat());
            assert.ok(err instanceof CertificateError, String(err));
            assert.equal(err.code, 'CLIENT_CERTIFICATE_REFUSED');
            assert.match(err.message, /refused the client certificate/);
            assert.equal(c.stats().retries, 0);
            assert.equal(sim.stats().refused - refusedBefore, 1);
          });
        });

        it('an untrusted certificate, refused by closing the connection, is reported as a possible certificate refusal', async () => {
          await withClient(await clientFor(sim, { certificateName: 'untrusted' }), async (client) => {
            const refusedBefore = sim.stats().refused;
            const err = await failure(client.heartbeat());
            assert.ok(err instanceof NetworkError, String(err));
            assert.match(err.message, /closed the connection without answering.*refusing the client certificate/);
            // Node's TLS server sends no alert here; each attempt is refused in the renegotiation.
            assert.equal(sim.stats().refused - refusedBefore, client.stats().retries + 1);
          });
        });
      }
    });
  }
});
