/**
 * Polls survive a restart: a real Node-RED (child process, localfilesystem as the default context
 * store) uploads a file and polls its history; it is stopped while SCB has not decided, started
 * again on the same user dir, and the upload, polled again, comes out of output 1 with its msg.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startSimulator } from '../simulator';
import type { Simulator } from '../simulator/types';
import { deploy } from './helpers/faults';
import { waitUntil } from './helpers/node-red';
import { makeUserDir, removeDir, startNodeRed, type NodeRedProcess } from './helpers/node-red-process';

const OUTPUTS = ['accepted', 'rejected', 'pending'] as const;

describe('restart: uploads being polled when Node-RED stops are polled again after it starts', function () {
  this.timeout(60_000);
  let simulator: Simulator;
  let dir: string;
  let nr: NodeRedProcess | undefined;
  const marker = crypto.randomUUID();
  const settings = {
    credentialSecret: 'restart-test',
    contextStorage: { default: { module: 'localfilesystem' } },
    logging: { console: { level: 'info' } },
  };
  const recordFile = () => path.join(dir, 'records.jsonl');
  const records = () =>
    fs.existsSync(recordFile())
      ? fs
          .readFileSync(recordFile(), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  /** What the history node keeps in its context file (localfilesystem: context/<flow>/<node>.json). */
  const savedPolls = () => {
    const file = path.join(dir, 'context', 'tab', 'hist.json');
    return fs.existsSync(file) ? ((JSON.parse(fs.readFileSync(file, 'utf8')) as { scbM2mPolls?: Array<{ uploadId: string }> }).scbM2mPolls ?? []) : undefined;
  };

  before(async () => {
    // SCB decides only when the test says so.
    simulator = await startSimulator({ clients: [{ name: 'valid', organisationsnummer: '9990000045', undersokningar: ['VINN'] }], historyDelayMs: 600_000 });
    dir = makeUserDir('scb-restart-');
  });
  after(async () => {
    await nr?.stop();
    await simulator?.stop();
    removeDir(dir);
    removeDir(simulator?.dir);
  });

  /** upload → history (poll) → one recorder per output and for Catch, each appending the msg as a JSON line. */
  function pollFlow(mark: string, rule = ''): unknown[] {
    // Each output and the Catch node write the msg as one JSON line, with where it came out.
    const recorder = (name: string) => ({
      id: `rec-${name}`,
      type: 'function',
      z: 'tab',
      func: `msg.output = ${JSON.stringify(name)}; return { payload: JSON.stringify(msg) };`,
      outputs: 1,
      wires: [['to-file']],
    });
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
        props: [
          { p: 'payload', v: '<vinn>restart</vinn>', vt: 'str' },
          { p: 'filnamn', v: 'restart.xml', vt: 'str' },
          { p: 'marker', v: mark, vt: 'str' },
        ],
        repeat: '',
        once: false,
        wires: [['up']],
      },
      { id: 'up', type: 'scb-m2m-upload', z: 'tab', config: 'cfg', referensperiod: '2026-06-30', referensperiodType: 'str', filformat: 'V40', filformatType: 'str', wires: [['hist']] },
      { id: 'hist', type: 'scb-m2m-history', z: 'tab', config: 'cfg', mode: 'poll', interval: 0.2, timeout: 3600, rule, wires: OUTPUTS.map((o) => [`rec-${o}`]) },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['rec-caught']] },
      ...[...OUTPUTS, 'caught'].map(recorder),
      { id: 'to-file', type: 'file', z: 'tab', filename: recordFile(), filenameType: 'str', appendNewline: true, createDir: true, overwriteFile: 'false', encoding: 'utf8', wires: [] },
    ];
  }

  it('stops while a poll is pending, starts again, and the upload comes out of output 1 once', async () => {
    nr = await startNodeRed(dir, { settings });
    const port = nr.port;
    await deploy(nr, pollFlow(marker));
    assert.equal((await fetch(`${nr.base}/inject/inject-go`, { method: 'POST' })).status, 200);

    // Polling: the file is at SCB and its history has been asked more than once.
    await waitUntil(() => simulator.deliveries().length === 1 && simulator.stats().historyRequests >= 2, 'the upload and two history polls', 15_000);
    const [delivery] = simulator.deliveries();
    assert.equal(delivery.status, 'pending');

    await nr.stop();
    assert.deepEqual(records(), [], 'nothing came out before the restart');
    assert.deepEqual(
      savedPolls()?.map((p) => p.uploadId),
      [delivery.deliveryId],
      'the pending poll is kept in the node context file',
    );
    const polledBefore = simulator.stats().historyRequests;

    nr = await startNodeRed(dir, { settings, port });
    await waitUntil(() => simulator.stats().historyRequests > polledBefore, 'a history poll after the restart', 15_000);
    simulator.settleHistory();
    await waitUntil(() => records().length > 0, 'the upload on an output after the restart', 15_000);
    await nr.stop();

    const out = records();
    assert.equal(out.length, 1, `one msg out: ${JSON.stringify(out)}`);
    assert.equal(out[0].output, 'accepted');
    assert.equal(out[0].scbStatus, 'accepted');
    assert.equal(out[0].uploadId, delivery.deliveryId);
    assert.equal(out[0].marker, marker, 'the msg is the one that was sent');
    assert.equal(out[0].filnamn, 'restart.xml');
    assert.equal((out[0].payload as { id?: string }).id, delivery.deliveryId);
    assert.equal(simulator.deliveries().length, 1, 'the file was not sent again');
    assert.deepEqual(savedPolls(), [], 'a decided poll is no longer kept');
  });
  it('a poll resumed after a redeploy with a broken rule: the Catch node gets its msg, no output classifies it', async () => {
    nr = await startNodeRed(dir, { settings });
    const second = crypto.randomUUID();
    const mine = () => records().filter((r) => r.marker === second);
    const delivered = simulator.deliveries().length;
    await deploy(nr, pollFlow(second));
    assert.equal((await fetch(`${nr.base}/inject/inject-go`, { method: 'POST' })).status, 200);
    const polled = simulator.stats().historyRequests;
    await waitUntil(() => simulator.deliveries().length === delivered + 1 && simulator.stats().historyRequests >= polled + 2, 'the upload and two polls', 15_000);

    await deploy(nr, pollFlow(second, 'status = ('));
    await waitUntil(() => mine().length > 0, 'the resumed poll at the Catch node', 15_000);
    simulator.settleHistory();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await nr.stop();
    const out = mine();
    assert.equal(out.length, 1, `one msg out: ${JSON.stringify(out)}`);
    assert.equal(out[0].output, 'caught');
    assert.equal((out[0].error as { code?: string }).code, 'INVALID_RULE');
    assert.equal(out[0].filnamn, 'restart.xml');
  });
});
