/**
 * Exactly once across redeploys, restarts and crashes, with Node-RED's default settings (no
 * contextStorage): a real Node-RED in its own process, the simulator over real TLS, real full
 * deploys, SIGTERM and SIGKILL. What comes out of each output and the Catch node is written to a
 * file by the flow itself, so a msg that comes out twice, or never, shows.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SEGMENT_SIZE } from '../../lib';
import type { DeliveryRecord } from '../../lib/journal';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import { deploy } from '../helpers/faults';
import { uploadNode, waitUntil } from '../helpers/node-red';
import { fileRecorder, makeUserDir, removeDir, startNodeRed, type NodeRedProcess } from '../helpers/node-red-process';
import { jsonLines, sha256 } from '../helpers/util';

const OUTPUTS = ['accepted', 'rejected', 'pending'] as const;
const SEGMENT_2 = /\/file\/1\//;
const CLOSING = /\/file\/-1\//;

describe('restart: exactly once across redeploys, restarts and crashes (default settings)', function () {
  this.timeout(90_000);
  let simulator: Simulator;
  let dir: string;
  let nr: NodeRedProcess | undefined;
  const settings = { credentialSecret: 'restart-test', logging: { console: { level: 'info' } } };

  const recordFile = () => path.join(dir, 'records.jsonl');
  /** What came out, in order: each output's and the Catch node's msgs. */
  const records = () => jsonLines(recordFile());
  /** The journal as Node-RED wrote it (the last line of an id is its state); read only, never rewritten here. */
  const journal = (): DeliveryRecord[] => {
    const byId = new Map<string, DeliveryRecord>();
    for (const r of jsonLines(path.join(dir, 'scb-m2m-journal', 'cfg.jsonl')) as unknown as DeliveryRecord[])
      byId.set(r.id, r);
    return [...byId.values()];
  };

  before(async () => {
    // SCB decides only when the test says so.
    simulator = await startSimulator({
      clients: [{ name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN'] }],
      historyDelayMs: 600_000,
      keepFiles: false,
    });
  });
  beforeEach(() => {
    dir = makeUserDir('scb-restart-');
  });
  afterEach(async () => {
    await nr?.stop();
    nr = undefined;
    simulator.faults.clear();
    removeDir(dir);
  });
  after(async () => {
    await simulator?.stop();
    removeDir(simulator?.dir);
  });

  /**
   * Waits for the upload's outcome (its output or the Catch node), lets SCB decide, waits for
   * the decision from output 1, then stops Node-RED.
   */
  async function outcomeThenDecision(running: NodeRedProcess, what: string, timeoutMs: number): Promise<void> {
    await waitUntil(() => out('uploaded').length > 0 || out('caught').length > 0, what, timeoutMs);
    simulator.settleHistory();
    await waitUntil(() => out('accepted').length > 0, 'the decision', 15_000);
    await running.stop();
  }

  /** inject (msg.filename, or a string payload) → upload → history (poll) → recorders; Catch → recorder. */
  function flow(options: { filename?: string; rule?: string; filnamn?: string } = {}): unknown[] {
    const recorder = (name: string) => ({
      id: `rec-${name}`,
      type: 'function',
      z: 'tab',
      func: `msg.output = ${JSON.stringify(name)}; return { payload: JSON.stringify(msg) };`,
      outputs: 1,
      wires: [['to-file']],
    });
    const source = options.filename
      ? [{ p: 'filename', v: options.filename, vt: 'str' }]
      : [
          { p: 'payload', v: '<vinn>restart</vinn>', vt: 'str' },
          { p: 'filnamn', v: options.filnamn ?? 'restart.xml', vt: 'str' },
        ];
    return [
      { id: 'tab', type: 'tab', label: 'restart' },
      {
        id: 'cfg',
        type: 'scb-m2m-config',
        environment: 'custom',
        baseUrl: simulator.url,
        apiVersion: 'v2',
        certPath: simulator.certificates.valid.path,
        caPath: simulator.caPath,
        organisationsnummer: '9990000045',
        undersokning: 'VINN',
        expiryWarningDays: 30,
        credentials: { passphrase: simulator.certificates.valid.passphrase },
      },
      {
        id: 'inject-go',
        type: 'inject',
        z: 'tab',
        props: [...source, { p: 'marker', v: 'm', vt: 'str' }],
        repeat: '',
        once: false,
        wires: [['up']],
      },
      uploadNode([['hist', 'rec-uploaded']]),
      {
        id: 'hist',
        type: 'scb-m2m-history',
        z: 'tab',
        config: 'cfg',
        mode: 'poll',
        interval: 0.2,
        timeout: 3600,
        rule: options.rule ?? '',
        wires: OUTPUTS.map((o) => [`rec-${o}`]),
      },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['rec-caught']] },
      ...[...OUTPUTS, 'caught', 'uploaded'].map(recorder),
      fileRecorder(recordFile()),
    ];
  }

  async function inject(): Promise<void> {
    assert.equal((await fetch(`${nr!.base}/inject/inject-go`, { method: 'POST' })).status, 200);
  }

  /** A file of three segments, its content its own. */
  function bigFile(): { file: string; sha256: string; size: number } {
    const file = path.join(dir, 'outbox', `V40_${crypto.randomUUID().slice(0, 8)}.xml`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // XML (SCB accepts it), three segments, content of its own.
    const data = Buffer.from(
      `<vinn>${crypto.randomBytes(Math.ceil((2 * SEGMENT_SIZE + 1000) * 0.75)).toString('base64')}</vinn>`,
    );
    fs.writeFileSync(file, data);
    return { file, sha256: sha256(data), size: data.length };
  }

  /**
   * Starts Node-RED with a three-segment file's upload and holds its second segment at SCB (the
   * simulator's answer waits): the upload is cut off in the middle by whatever the test does next.
   */
  async function uploadHeldAtSegmentTwo(): Promise<{ big: ReturnType<typeof bigFile>; running: NodeRedProcess }> {
    const big = bigFile();
    const running = await startNodeRed(dir, { settings });
    nr = running;
    await deploy(running, flow({ filename: big.file }));
    simulator.faults.slowNext(1, 60_000, { match: SEGMENT_2 });
    await inject();
    await waitUntil(
      () => journal().some((r) => r.state === 'sending' && r.segment === 1) && simulator.faults.pending() === 0,
      'segment 2 of 3 held at SCB',
      20_000,
    );
    return { big, running };
  }

  const deliveriesOf = (sha256: string) => simulator.deliveries().filter((d) => d.sha256 === sha256);
  const out = (output: string) => records().filter((r) => r.output === output);

  it('restart while a poll is pending: the decision comes out of output 1 once, carried by the journal', async () => {
    nr = await startNodeRed(dir, { settings });
    const port = nr.port;
    await deploy(nr, flow());
    await inject();
    // The upload's own output written too: a stop drops msgs still passing between nodes.
    await waitUntil(
      () => journal().some((r) => r.poll && r.uploadId) && out('uploaded').length === 1,
      'the poll on record',
      15_000,
    );
    const [record] = journal();
    const polledBefore = simulator.stats().historyRequests;
    await nr.stop();
    assert.deepEqual(out('accepted'), [], 'nothing decided before the restart');
    assert.ok(journal()[0].poll, 'the unfinished poll stays on record after a clean stop');

    nr = await startNodeRed(dir, { settings, port });
    await waitUntil(() => simulator.stats().historyRequests > polledBefore, 'a history poll after the restart', 15_000);
    simulator.settleHistory();
    await waitUntil(() => out('accepted').length > 0, 'the decision after the restart', 15_000);
    await nr.stop();

    const accepted = out('accepted');
    assert.equal(accepted.length, 1, `one decision: ${JSON.stringify(records())}`);
    assert.equal(accepted[0].uploadId, record.uploadId);
    assert.equal(accepted[0].marker, 'm', 'the msg that was sent');
    assert.equal(out('uploaded').length, 1, 'the file was sent once');
    assert.equal(simulator.deliveries().filter((d) => d.deliveryId === record.uploadId).length, 1);
    const after = journal()[0];
    assert.equal(after.state, 'accepted');
    assert.equal(after.poll, undefined, 'a decided poll is no longer kept');
  });

  it('SIGKILL in the middle of an upload: resumed once at start, one complete delivery, one output with msg.resumed', async () => {
    const { big, running } = await uploadHeldAtSegmentTwo();
    const port = running.port;
    await running.kill();
    assert.equal(deliveriesOf(big.sha256).length, 0, 'nothing closed before the crash');

    nr = await startNodeRed(dir, { settings, port });
    await outcomeThenDecision(nr, 'the resumed upload', 30_000);

    assert.deepEqual(out('caught'), []);
    const uploaded = out('uploaded');
    assert.equal(uploaded.length, 1);
    assert.equal(uploaded[0].resumed, true);
    assert.equal(uploaded[0].marker, 'm');
    assert.equal(uploaded[0].filename, big.file);
    const delivered = deliveriesOf(big.sha256);
    assert.equal(delivered.length, 1, 'one complete delivery, identical content');
    assert.equal(delivered[0].size, big.size);
    assert.equal(out('accepted').length, 1);
    const [record] = journal();
    assert.deepEqual(
      record.changes.map((c) => c.state).filter((s, i, all) => s !== all[i - 1]),
      ['queued', 'sending', 'queued', 'sending', 'closing', 'sent', 'accepted'],
    );
  });

  it('a redeploy in the middle of an upload: one complete delivery and one output', async () => {
    const { big, running } = await uploadHeldAtSegmentTwo();
    await deploy(running, flow({ filename: big.file }));
    await outcomeThenDecision(running, 'the resumed upload', 30_000);

    assert.deepEqual(out('caught'), []);
    assert.equal(out('uploaded').length, 1);
    assert.equal(out('uploaded')[0].resumed, true);
    assert.equal(deliveriesOf(big.sha256).length, 1);
    assert.equal(out('accepted').length, 1);
    const states = journal()[0].changes.map((c) => c.state);
    assert.ok(states.includes('interrupted'), `the redeploy is on record: ${states.join(' → ')}`);
  });

  it('a file changed while its upload was cut off: not sent, the Catch node gets the stored msg, the journal says why', async () => {
    const { big, running } = await uploadHeldAtSegmentTwo();
    const port = running.port;
    await running.kill();
    fs.appendFileSync(big.file, 'changed by hand');
    const requests = simulator.stats().requests;

    nr = await startNodeRed(dir, { settings, port });
    await waitUntil(() => out('caught').length > 0, 'the Catch node', 20_000);
    await nr.stop();
    const [caught] = out('caught');
    assert.equal((caught.scbError as { code: string }).code, 'SOURCE_CHANGED');
    assert.equal(caught.marker, 'm');
    assert.match(String((caught.error as { message: string }).message), new RegExp(path.basename(big.file)));
    assert.equal(out('uploaded').length, 0);
    assert.equal(simulator.stats().requests - requests <= 1, true, 'nothing sent (at most the heartbeat)');
    assert.equal(journal()[0].state, 'failed');
    assert.match(nr.output(), /was not resumed/);
  });

  it("SIGKILL while the closing request waits for its answer: never sent again, settled from SCB's history", async () => {
    nr = await startNodeRed(dir, { settings });
    const port = nr.port;
    // A name of its own: another delivery of the same name in the same minute would make the history ambiguous.
    await deploy(nr, flow({ filnamn: `closing-${crypto.randomUUID().slice(0, 8)}.xml` }));
    simulator.faults.slowNext(1, 60_000, { match: CLOSING });
    const delivered = simulator.deliveries().length;
    await inject();
    await waitUntil(
      () =>
        journal().some((r) => r.state === 'closing') &&
        simulator.deliveries().length === delivered + 1 &&
        simulator.faults.pending() === 0,
      'the close at SCB, its answer pending',
      20_000,
    );
    await nr.kill();
    const atScb = simulator.deliveries().at(-1)!;

    nr = await startNodeRed(dir, { settings, port });
    await outcomeThenDecision(nr, 'the settled upload', 20_000);
    assert.deepEqual(out('caught'), []);
    assert.equal(out('uploaded').length, 1);
    assert.equal(out('uploaded')[0].uploadId, atScb.deliveryId, 'found in the history: the delivery SCB holds');
    assert.equal(simulator.deliveries().length, delivered + 1, 'not sent again');
    const [record] = journal();
    assert.equal(record.uploadId, atScb.deliveryId);
    assert.ok(record.changes.some((c) => c.state === 'uncertain' || /history/.test(c.note ?? '')));
  });

  it('a poll resumed after a redeploy with a broken rule: the Catch node gets its msg, no output classifies it', async () => {
    nr = await startNodeRed(dir, { settings });
    await deploy(nr, flow());
    await inject();
    await waitUntil(() => journal().some((r) => r.poll && r.uploadId), 'the poll on record', 15_000);
    await deploy(nr, flow({ rule: 'status = (' }));
    await waitUntil(() => out('caught').length > 0, 'the resumed poll at the Catch node', 15_000);
    await nr.stop();
    assert.equal(out('caught').length, 1);
    assert.equal((out('caught')[0].error as { code?: string }).code, 'INVALID_RULE');
    assert.equal(out('caught')[0].filnamn, 'restart.xml');
    for (const o of OUTPUTS) assert.deepEqual(out(o), [], o);
  });
});
