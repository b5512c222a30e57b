/**
 * What SCB's servers may do otherwise than we assume (issue 11), each way against the simulator:
 * the client certificate asked for in the first handshake or by TLS renegotiation, and a file's
 * segments lost or kept when the session is renewed in the middle of it.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CertificateError,
  M2MClient,
  NetworkError,
  SEGMENT_SIZE,
  SEGMENTS_SURVIVE_SESSION_RENEWAL,
  ValidationError,
} from '../../lib';
import { DEFAULT_CLIENTS, startSimulator } from '../../simulator';
import type { Simulator, SimulatorOptions } from '../../simulator/types';
import { REQUEST, certificateOf, clientFor } from '../helpers/client';
import { sha256 } from '../helpers/util';

const CLIENTS = DEFAULT_CLIENTS.filter((c) => c.name === 'valid' || c.name === 'untrusted');

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => assert.fail(`expected a failure, got ${JSON.stringify(value)}`),
    (err: unknown) => err,
  );
}

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
          else
            assert.ok(
              renegotiations >= 1 && renegotiations <= connections,
              `${renegotiations} renegotiations on ${connections} connections`,
            );
        });
      });

      if (clientCert === 'renegotiate') {
        it('a certificate refused in the renegotiation (TLS alert) is CLIENT_CERTIFICATE_REFUSED in plain words, not retried', async () => {
          const valid = await certificateOf(sim);
          // A client with nothing to show when asked: the simulator answers with a TLS alert, as an F5 does.
          const client = new M2MClient({
            environment: 'custom',
            baseUrl: sim.url,
            ca: sim.caPem,
            proxy: false,
            certificate: { ...valid, cert: '', key: '' },
          });
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

  describe('session renewed in the middle of a file', () => {
    let data: Buffer;
    let file: string;
    const sims: Partial<Record<'lost' | 'kept', Simulator>> = {};

    before(async () => {
      // Four data segments.
      data = Buffer.concat([Buffer.from('<a>'), crypto.randomBytes(3 * SEGMENT_SIZE + 1000)]);
      file = path.join(dir, 'four.xml');
      await fs.writeFile(file, data);
      sims.lost = await simulator('lost', {});
      sims.kept = await simulator('kept', { segmentsSurviveSessionRenewal: true });
    });

    it('assumes by default that segments do not survive a renewal', () => {
      assert.equal(SEGMENTS_SURVIVE_SESSION_RENEWAL, false);
    });

    /**
     * Uploads the file with the session ending just before the request matching `at`;
     * returns the data segments sent, counting those refused.
     */
    async function uploadWithRenewal(
      server: 'lost' | 'kept',
      survive: boolean | undefined,
      at: RegExp,
    ): Promise<{ dataSegments: number; retries: number }> {
      const sim = sims[server]!;
      return withClient(
        await clientFor(sim, survive === undefined ? {} : { segmentsSurviveSessionRenewal: survive }),
        async (client) => {
          await client.heartbeat();
          const before = sim.stats();
          sim.faults.expireSessionBeforeNext({ match: at });
          const result = await client.upload({ ...REQUEST, filnamn: 'four.xml', source: { path: file } });
          const after = sim.stats();
          const delivered = sim.deliveries().find((d) => d.deliveryId === result.uploadId);
          assert.equal(delivered?.sha256, sha256(data), 'the whole file arrived');
          assert.equal(delivered?.segments, 4);
          assert.equal(client.stats().sessionRenewals, 1);
          assert.equal(after.heartbeats - before.heartbeats, 1);
          assert.equal(after.uploads - before.uploads, 1, 'one delivery, no empty one');
          // Every request but the one heartbeat and the one closing POST that was answered 200.
          const closings = 1 + (at.test('/file/-1/') ? 1 : 0);
          return { dataSegments: after.requests - before.requests - 1 - closings, retries: result.retries };
        },
      );
    }

    const AT_SEGMENT_3 = /\/file\/2\//;

    it('rule false (default): after a renewal at segment 3 of 4 it starts again from segment 0 at once: 7 data segments sent', async () => {
      // 1, 2, 3 (302), then 1, 2, 3, 4.
      assert.deepEqual(await uploadWithRenewal('lost', undefined, AT_SEGMENT_3), { dataSegments: 7, retries: 2 });
    });

    it('rule false against a server that keeps the segments: also 7, the restart replaces the file', async () => {
      assert.deepEqual(await uploadWithRenewal('kept', false, AT_SEGMENT_3), { dataSegments: 7, retries: 2 });
    });

    it('rule true against a server that keeps the segments: carries on and closes in the new session: 5 data segments sent', async () => {
      // 1, 2, 3 (302), then 3, 4.
      assert.deepEqual(await uploadWithRenewal('kept', true, AT_SEGMENT_3), { dataSegments: 5, retries: 1 });
    });

    it('rule true against a server that lost them: segment 3 is refused as out of order and the file starts over: 8', async () => {
      // 1, 2, 3 (302), 3 (409), then 1, 2, 3, 4.
      assert.deepEqual(await uploadWithRenewal('lost', true, AT_SEGMENT_3), { dataSegments: 8, retries: 2 });
    });

    it('rule true, renewal just before closing: the closing POST is not sent in a session that accepted no segment; the file starts over', async () => {
      // 1, 2, 3, 4, closing (302), then 1, 2, 3, 4, closing.
      assert.deepEqual(await uploadWithRenewal('lost', true, /\/file\/-1\//), { dataSegments: 8, retries: 2 });
    });

    it('refuses a segmentsSurviveSessionRenewal that is not true or false, naming the option', async () => {
      const err = await failure(clientFor(sims.lost!, { segmentsSurviveSessionRenewal: 'yes' as unknown as boolean }));
      assert.ok(err instanceof ValidationError, String(err));
      assert.equal(err.field, 'segmentsSurviveSessionRenewal');
    });
  });
});
