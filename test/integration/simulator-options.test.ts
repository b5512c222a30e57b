/**
 * The simulator's options for what SCB may do otherwise than we assume (plain node:https and the
 * client, real TLS): client certificates by renegotiation, segments across session renewal,
 * history shapes, uploads history does not know yet, the command's flags.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import { runNode } from '../../scripts/process';
import { sha256 } from '../helpers/util';
import {
  Reply,
  tlsOptions,
  send,
  cookieOf,
  heartbeat,
  TARGET,
  postSegment,
  uploadV2,
  deliveryOf,
  eventually,
  XML,
} from '../helpers/simulator-requests';

describe('simulator: options for what SCB may do otherwise', function () {
  this.timeout(60_000);
  let dir: string;
  const VALID_ONLY = [{ name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN', 'KRITA'] }];

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'scb-sim-edges-'));
  });

  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A simulator with these options for one test, stopped after it. */
  async function withSimulator(
    name: string,
    options: Parameters<typeof startSimulator>[0],
    run: (sim: Simulator) => Promise<void>,
  ): Promise<void> {
    const sim = await startSimulator({ dir: path.join(dir, name), clients: VALID_ONLY, ...options });
    try {
      await run(sim);
    } finally {
      await sim.stop();
    }
  }

  async function deliverOne(sim: Simulator, cookie: string, content: Buffer, filnamn: string): Promise<string> {
    const closing = await uploadV2(sim, cookie, [content], { ...TARGET, filnamn });
    assert.equal(closing.status, 200, closing.body);
    return (JSON.parse(closing.body) as { deliveryId: string }).deliveryId;
  }

  it("historyShape 'pascal' sends the record with .NET property names", async () => {
    await withSimulator('pascal', { historyShape: 'pascal' }, async (sim) => {
      const cookie = await heartbeat(sim);
      const id = await deliverOne(sim, cookie, Buffer.from('<a>SIMULATE-REJECT</a>'), 'p.xml');
      sim.settleHistory();
      const record = JSON.parse((await send(sim, { path: `/m2m/v2/history/${id}`, cookie })).body) as Record<
        string,
        unknown
      >;
      assert.equal(record.Id, id);
      assert.equal(record.Status, 'Fel');
      assert.equal(record.ProgressStatus, 2);
      assert.match(String(record.InskickatDatum), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
      assert.ok((record.Meddelanden as string[]).some((m) => m.includes('SIMULATE-REJECT')));
      assert.ok(!('id' in record) && !('status' in record), Object.keys(record).join(', '));
      const list = JSON.parse((await send(sim, { path: '/m2m/v2/history', cookie })).body) as Record<string, unknown>[];
      assert.deepEqual(
        list.map((r) => r.Id),
        [id],
      );
    });
  });

  it("historyShape 'rapporthuvud' sends a head (LatestInskickningsId the upload id) with rows carrying status, progress and messages", async () => {
    await withSimulator('rapporthuvud', { historyShape: 'rapporthuvud', historyDelayMs: 600_000 }, async (sim) => {
      const cookie = await heartbeat(sim);
      const id = await deliverOne(sim, cookie, Buffer.from('<a>SIMULATE-REJECT</a>'), 'r.xml');
      type Row = { Id: string; ParentId: string; Status: string; ProgressStatus: number; Meddelanden: string[] };
      type Head = {
        Id: string;
        Status: string;
        ProgressStatus: number;
        LatestInskickningsId: string;
        HasChildren: boolean;
        Rapportrader: Row[];
        BlankettNamn: string;
      };
      const get = async () => JSON.parse((await send(sim, { path: `/m2m/v2/history/${id}`, cookie })).body) as Head;
      const pending = await get();
      assert.equal(pending.LatestInskickningsId, id);
      assert.notEqual(pending.Id, id);
      assert.deepEqual(
        [pending.Status, pending.ProgressStatus, pending.BlankettNamn, pending.HasChildren],
        ['Pågår', 1, 'V40', true],
      );
      assert.deepEqual(
        pending.Rapportrader.map((r) => [r.Status, r.ProgressStatus, r.ParentId]),
        [['Mottagen', 3, pending.Id]],
      );
      sim.settleHistory();
      const decided = await get();
      assert.equal(decided.Id, pending.Id, 'the head keeps its id');
      assert.deepEqual([decided.Status, decided.ProgressStatus], ['Fel', 2]);
      assert.deepEqual(
        decided.Rapportrader.map((r) => [r.Status, r.ProgressStatus]),
        [
          ['Mottagen', 3],
          ['Fel', 2],
        ],
      );
      assert.ok(decided.Rapportrader[1].Meddelanden.some((m) => m.includes('SIMULATE-REJECT')));
      assert.ok(!('Meddelanden' in decided), 'the head carries no messages');
    });
  });

  it('unknownForMs: history answers 404 for an upload until that long after it closed (or settleHistory)', async () => {
    await withSimulator('unknown', { unknownForMs: 400 }, async (sim) => {
      const cookie = await heartbeat(sim);
      const closedAt = Date.now();
      const id = await deliverOne(sim, cookie, XML('late'), 'late.xml');
      const status = async () => (await send(sim, { path: `/m2m/v2/history/${id}`, cookie })).status;
      assert.equal(await status(), 404);
      assert.deepEqual(
        JSON.parse((await send(sim, { path: '/m2m/v2/history', cookie })).body),
        [],
        'the list does not know it either',
      );
      await eventually(async () => (await status()) === 200, 5000, 'history to know the upload');
      assert.ok(Date.now() - closedAt >= 400, `known after ${Date.now() - closedAt} ms`);
    });
    await withSimulator('unknown-settled', { unknownForMs: 600_000 }, async (sim) => {
      const cookie = await heartbeat(sim);
      const id = await deliverOne(sim, cookie, XML('late'), 'late.xml');
      assert.equal((await send(sim, { path: `/m2m/v2/history/${id}`, cookie })).status, 404);
      sim.settleHistory();
      assert.equal((await send(sim, { path: `/m2m/v2/history/${id}`, cookie })).status, 200);
    });
  });

  it('segmentsSurviveSessionRenewal: a file goes on in the session that replaced the one it started in', async () => {
    await withSimulator('survive', { segmentsSurviveSessionRenewal: true }, async (sim) => {
      const target = { ...TARGET, filnamn: 'survive.xml' };
      const first = await heartbeat(sim);
      assert.equal((await postSegment(sim, first, 0, Buffer.from('<a>'), target)).status, 200);
      sim.faults.expireSessions();
      assert.equal((await postSegment(sim, first, 1, Buffer.from('<b/>'), target)).status, 302);
      const second = await heartbeat(sim);
      assert.equal((await postSegment(sim, second, 1, Buffer.from('<b/>'), target)).status, 200);
      assert.equal((await postSegment(sim, second, 2, Buffer.from('</a>'), target)).status, 200);
      const closing = await postSegment(sim, second, -1, Buffer.alloc(0), target);
      assert.equal(closing.status, 200, closing.body);
      const delivery = deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId);
      assert.equal(delivery.sha256, sha256(Buffer.from('<a><b/></a>')));
      assert.equal(delivery.segments, 3);
    });
  });

  it("clientCert 'renegotiate': no certificate in the first handshake (TLS 1.2), asked for by renegotiation once per connection", async () => {
    await withSimulator('renegotiate', { clientCert: 'renegotiate' }, async (sim) => {
      // The first handshake completes without a certificate, at TLS 1.2 at most.
      const bare = tls.connect({
        host: '127.0.0.1',
        port: sim.port,
        ca: sim.caPem,
        checkServerIdentity: () => undefined,
      });
      const outcome = await new Promise<{ protocol: string | null; error?: string }>((resolve) => {
        let protocol: string | null = null;
        bare.on('secureConnect', () => {
          protocol = bare.getProtocol();
          bare.write('GET /m2m/v2/heartbeat HTTP/1.1\r\nHost: sim\r\n\r\n');
        });
        bare.on('error', (err: NodeJS.ErrnoException) => resolve({ protocol, error: err.code }));
        bare.on('close', () => resolve({ protocol }));
      });
      // Asked for a certificate it does not have, the client gets a TLS alert.
      // OpenSSL 3.0 (Node 20) says SSLV3_ALERT_..., 3.5 (Node 22) SSL/TLS_ALERT_...: the same alert.
      assert.equal(outcome.protocol, 'TLSv1.2');
      assert.match(String(outcome.error), /^ERR_SSL_SSL(V3|\/TLS)_ALERT_HANDSHAKE_FAILURE$/);
      assert.equal(sim.stats().renegotiations, 1);
      assert.equal(sim.stats().refused, 1);

      // With a certificate, over one kept-alive connection: one renegotiation, then requests as usual.
      const { ca, pfx, passphrase } = await tlsOptions(sim, 'valid');
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, pfx, passphrase });
      const request = (o: { method?: string; path: string; cookie?: string }) =>
        new Promise<Reply>((resolve, reject) => {
          const req = https.request(
            new URL(o.path.slice(1), sim.url),
            { agent, method: o.method ?? 'GET', headers: o.cookie ? { cookie: o.cookie } : {} },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
              );
            },
          );
          req.on('error', reject);
          req.end();
        });
      try {
        const beat = await request({ path: '/m2m/v2/heartbeat' });
        assert.equal(beat.status, 200);
        const cookie = cookieOf(beat);
        assert.equal((await request({ path: '/m2m/v2/history', cookie })).status, 200);
        assert.equal((await request({ path: '/m2m/v2/heartbeat', cookie })).status, 200);
        assert.equal(sim.stats().renegotiations, 2);
        assert.equal(sim.stats().connections, 2);
        // A request with a body on a connection that has shown no certificate is known by its session.
        const upload = await uploadV2(sim, cookie, [XML('on demand')], { ...TARGET, filnamn: 'od.xml' });
        assert.equal(upload.status, 200, upload.body);
        // Without a session it is sent to the access policy first.
        assert.equal((await postSegment(sim, 'MRHSession=0123', 0, XML('x'))).status, 302);
        assert.equal(sim.stats().renegotiations, 2, 'POSTs are never renegotiated');
      } finally {
        agent.destroy();
      }
    });
  });

  it('the command takes the options as flags: --client-cert renegotiate and the others; a bad value is refused naming the flag', async () => {
    const cli = path.join(__dirname, '..', '..', 'simulator', 'cli.js');
    const run = (args: string[]) => runNode(cli, ['--port', '0', '--dir', path.join(dir, 'cli'), ...args]);
    const bad = run(['--history-shape', 'snake']);
    assert.equal(await bad.exited, 2);
    assert.match(bad.output(), /--history-shape must be one of camel, pascal, rapporthuvud, got "snake"/);

    const { child, exited, output, waitFor } = run([
      '--client-cert',
      'renegotiate',
      '--history-shape',
      'pascal',
      '--history-unknown-for',
      '0',
      '--segments-survive-session-renewal',
    ]);
    try {
      await waitFor(/Press Ctrl-C to stop\./, 10_000, 'the banner');
      const url = /listening on (https:\/\/127\.0\.0\.1:\d+\/)/.exec(output())?.[1];
      const valid = /valid +(\S+\.pfx)\s+passphrase "([^"]+)"/.exec(output());
      assert.ok(url && valid, output());
      const tlsFiles = {
        ca: await fs.readFile(path.join(dir, 'cli', 'ca.pem')),
        pfx: await fs.readFile(valid[1]),
        passphrase: valid[2],
      };
      const reply = await new Promise<{ status: number; protocol: string | null }>((resolve, reject) => {
        https
          .get(`${url}m2m/v2/heartbeat`, { agent: false, ...tlsFiles }, (res) => {
            res.resume();
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, protocol: (res.socket as tls.TLSSocket).getProtocol() }),
            );
          })
          .on('error', reject);
      });
      assert.deepEqual(reply, { status: 200, protocol: 'TLSv1.2' });
      // The log names the certificate shown in the renegotiation.
      await waitFor(/valid GET \/m2m\/v2\/heartbeat -> 200/, 5000, 'the request log line');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, output());
  });

  it('refuses unknown values of the new options', async () => {
    await assert.rejects(
      startSimulator({ dir: path.join(dir, 'bad1'), historyShape: 'snake' as 'camel' }),
      /historyShape/,
    );
    await assert.rejects(
      startSimulator({ dir: path.join(dir, 'bad2'), clientCert: 'later' as 'handshake' }),
      /clientCert/,
    );
    await assert.rejects(startSimulator({ dir: path.join(dir, 'bad3'), unknownForMs: -1 }), /unknownForMs/);
  });
});
