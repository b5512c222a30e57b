import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SimulatorDelivery } from '../../simulator/types';
import type { NodeMessage } from 'node-red';
import {
  CONFIG,
  TAB,
  activeResources,
  baseFlow,
  credentialsOf,
  helper,
  nodeSuite,
  lastStatus,
  load,
  nextMessage,
  statuses,
  waitUntil,
  within,
  type FlowNode,
} from '../helpers/node-red';
import { sha256 } from '../helpers/util';

const NODE_PROPERTIES = {
  organisationsnummer: '9990000045',
  undersokning: 'VINN',
  referensperiod: '2026-06-30',
  filformat: 'V40',
  version: '',
};

describe('scb-m2m-upload node', function () {
  this.timeout(30_000);
  const ctx = nodeSuite({ simulator: { historyDelayMs: 60_000 }, tmpDir: 'scb-upload-test-' });

  /** A flow: upload node `up` → helper `out`, plus catch → `caught`. Properties are str-typed unless given. */
  function uploadFlow(properties: Record<string, unknown> = {}, config: Record<string, unknown> = {}): FlowNode[] {
    const props: Record<string, unknown> = { ...NODE_PROPERTIES, ...properties };
    for (const field of Object.keys(NODE_PROPERTIES)) props[`${field}Type`] ??= 'str';
    return [
      ...baseFlow(ctx.simulator, config),
      { id: 'up', type: 'scb-m2m-upload', z: TAB, name: '', config: CONFIG, ...props, wires: [['out']] },
      { id: 'out', type: 'helper', z: TAB },
    ];
  }

  /** Where a delivery went: organisationsnummer, undersokning, referensperiod, filformat, version, filnamn. */
  const targetOf = (d: SimulatorDelivery) => [
    d.organisationsnummer,
    d.undersokning,
    d.referensperiod,
    d.filformat,
    d.version,
    d.filnamn,
  ];

  async function deliveryOf(uploadId: unknown): Promise<SimulatorDelivery> {
    const found = ctx.simulator.deliveries().find((d) => d.deliveryId === uploadId);
    assert.ok(found, `the simulator has delivery ${String(uploadId)}`);
    return found;
  }

  /** Sends msg to the upload node and returns what reached the Catch node; fails if there was an output too. */
  async function caughtFor(msg: NodeMessage): Promise<NodeMessage> {
    let outputs = 0;
    helper.getNode('out').on('input', () => outputs++);
    const caught = nextMessage('caught');
    helper.getNode('up').receive(msg);
    const got = await within(caught, 20_000, 'a Catch message');
    assert.equal(outputs, 0, 'no output');
    return got;
  }

  it('sends each node property and answers with uploadId, statusCode and the parsed answer', async () => {
    await load(uploadFlow({ version: '2' }), credentialsOf(ctx.simulator));
    const out = nextMessage('out');
    helper.getNode('up').receive({ payload: Buffer.from('<vinn/>'), filnamn: 'v40.xml', topic: 'kept' });
    const msg = await out;
    assert.equal(typeof msg.uploadId, 'string');
    assert.equal(msg.statusCode, 200);
    assert.equal((msg.payload as { deliveryId: string }).deliveryId, msg.uploadId);
    assert.equal(msg.topic, 'kept');
    const delivery = await deliveryOf(msg.uploadId);
    assert.deepEqual(targetOf(delivery), ['9990000045', 'VINN', '2026-06-30', 'V40', '2', 'v40.xml']);
    assert.equal(delivery.sha256, sha256('<vinn/>'));
    assert.equal(lastStatus(helper.getNode('up'))?.fill, 'green');
    assert.equal(lastStatus(helper.getNode('up'))?.text, 'scb-m2m-upload.status.sent');
  });

  it('lets every msg field override the node property', async () => {
    await load(
      uploadFlow({
        organisationsnummer: '5560160680',
        undersokning: 'KRITA',
        referensperiod: '2026-05-31',
        filformat: 'V10',
        version: '1',
      }),
      credentialsOf(ctx.simulator),
    );
    const out = nextMessage('out');
    helper.getNode('up').receive({
      payload: Buffer.from('<x/>'),
      filename: '/somewhere/else/ignored-name.xml',
      filnamn: 'override.xml',
      organisationsnummer: '999000-0045',
      undersokning: 'VINN',
      referensperiod: '2026-06-30',
      filformat: 'V40',
      version: 3,
    });
    const delivery = await deliveryOf((await out).uploadId);
    assert.deepEqual(targetOf(delivery), ['9990000045', 'VINN', '2026-06-30', 'V40', '3', 'override.xml']);
  });

  it("falls back to the config node's organisationsnummer and undersokning", async () => {
    await load(
      uploadFlow(
        { organisationsnummer: '', undersokning: '' },
        { organisationsnummer: '999000-0045', undersokning: 'KRITA' },
      ),
      credentialsOf(ctx.simulator),
    );
    const out = nextMessage('out');
    helper.getNode('up').receive({ payload: Buffer.from('<k/>'), filnamn: 'k.xml' });
    const delivery = await deliveryOf((await out).uploadId);
    assert.equal(delivery.organisationsnummer, '9990000045');
    assert.equal(delivery.undersokning, 'KRITA');
  });

  it('reads TypedInput properties from msg, env, flow and global context', async () => {
    process.env.SCB_TEST_SURVEY = 'VINN';
    try {
      await load(
        uploadFlow({
          organisationsnummer: 'meta.org',
          organisationsnummerType: 'msg',
          undersokning: 'SCB_TEST_SURVEY',
          undersokningType: 'env',
          referensperiod: 'period',
          referensperiodType: 'flow',
          filformat: 'format',
          filformatType: 'global',
        }),
        credentialsOf(ctx.simulator),
      );
      const node = helper.getNode('up');
      node.context().flow.set('period', '2026-03-31');
      node.context().global.set('format', 'V10');
      const out = nextMessage('out');
      node.receive({ payload: Buffer.from('<t/>'), filnamn: 't.xml', meta: { org: '9990000045' } });
      const delivery = await deliveryOf((await out).uploadId);
      assert.deepEqual(
        [delivery.organisationsnummer, delivery.undersokning, delivery.referensperiod, delivery.filformat],
        ['9990000045', 'VINN', '2026-03-31', 'V10'],
      );
    } finally {
      delete process.env.SCB_TEST_SURVEY;
    }
  });

  it('streams the file at msg.filename, names it after the file and keeps msg.filename', async () => {
    const file = path.join(ctx.dir, 'VINN_2026-06.xml');
    const content = Buffer.from(`<vinn>${'x'.repeat(5000)}</vinn>`);
    fs.writeFileSync(file, content);
    await load(uploadFlow(), credentialsOf(ctx.simulator));
    const out = nextMessage('out');
    // What the core watch node sends: the path in payload and filename.
    helper.getNode('up').receive({ payload: file, filename: file, file: path.basename(file) });
    const msg = await out;
    assert.equal(msg.filename, file);
    const delivery = await deliveryOf(msg.uploadId);
    assert.equal(delivery.filnamn, 'VINN_2026-06.xml');
    assert.equal(delivery.size, content.length);
    assert.equal(delivery.sha256, sha256(content));
  });

  it('sends a string payload as UTF-8 when there is no filename', async () => {
    await load(uploadFlow(), credentialsOf(ctx.simulator));
    const out = nextMessage('out');
    const text = '<vinn namn="Åsa Öberg"/>';
    helper.getNode('up').receive({ payload: text, filnamn: 'text.xml' });
    const delivery = await deliveryOf((await out).uploadId);
    assert.equal(delivery.sha256, sha256(Buffer.from(text, 'utf8')));
  });

  it('prefers a Buffer payload over the file at msg.filename (file in, single Buffer)', async () => {
    await load(uploadFlow(), credentialsOf(ctx.simulator));
    const out = nextMessage('out');
    helper
      .getNode('up')
      .receive({ payload: Buffer.from('<from-buffer/>'), filename: path.join(ctx.dir, 'does-not-exist.xml') });
    const delivery = await deliveryOf((await out).uploadId);
    assert.equal(delivery.filnamn, 'does-not-exist.xml');
    assert.equal(delivery.sha256, sha256('<from-buffer/>'));
  });

  it('shows "segment k of n" while a large file travels, then the upload id; logs the upload at info, each segment at debug', async () => {
    const big = crypto.randomBytes(20_000_000);
    await load(uploadFlow(), credentialsOf(ctx.simulator));
    const out = nextMessage('out');
    helper.getNode('up').receive({ payload: big, filnamn: 'big.xml' });
    const msg = await out;
    const texts = statuses(helper.getNode('up')).map((s) => s.text);
    assert.equal(texts.filter((t) => t === 'scb-m2m-upload.status.segment').length, 3, texts.join(', '));
    assert.equal(texts.at(-1), 'scb-m2m-upload.status.sent');
    const delivery = await deliveryOf(msg.uploadId);
    assert.equal(delivery.segments, 3);
    assert.equal(delivery.sha256, sha256(big));

    // The spies are shared by every node: keep the calls made on this one.
    const lines = (level: 'log' | 'debug', id: string) => {
      const node = helper.getNode(id);
      return node[level]
        .getCalls()
        .filter((c) => c.thisValue === node)
        .map((c) => String(c.args[0]));
    };
    assert.deepEqual(lines('log', 'up'), [
      `Uploaded big.xml (9990000045 VINN 2026-06-30 V40; 20000000 bytes in 3 segments): uploadId ${String(msg.uploadId)}`,
    ]);
    assert.deepEqual(
      lines('debug', 'up').map((line) => line.replace(/ \(.*/, '')),
      ['big.xml: segment 1 of 3 sent', 'big.xml: segment 2 of 3 sent', 'big.xml: segment 3 of 3 sent'],
    );
    // The client's line per request is debug detail of the config node, not info.
    assert.ok(
      lines('debug', CONFIG).filter((line) => /^POST \S+ 200/.test(line)).length >= 4,
      'each segment and the close at debug',
    );
    assert.deepEqual(
      lines('log', CONFIG).filter((line) => /^(POST|GET) /.test(line)),
      [],
      'no request line at info',
    );
  });

  describe('errors reach a Catch node with the original msg', () => {
    async function refusedBeforeAnyRequest(msg: NodeMessage, properties: Record<string, unknown> = {}) {
      await load(uploadFlow(properties), credentialsOf(ctx.simulator));
      const before = ctx.simulator.stats().requests;
      const caught = await caughtFor(msg);
      assert.equal(ctx.simulator.stats().requests, before, 'no request reached the simulator');
      assert.equal(caught._msgid, msg._msgid, 'the same msg');
      assert.equal(caught.uploadId, undefined);
      assert.equal(lastStatus(helper.getNode('up'))?.fill, 'red');
      return caught;
    }
    const errorOf = (msg: NodeMessage) => msg.error as { message: string; code?: string; source: { id: string } };

    it('an invalid organisationsnummer: the error names the field, nothing is sent', async () => {
      const caught = await refusedBeforeAnyRequest({
        payload: Buffer.from('<a/>'),
        filnamn: 'a.xml',
        organisationsnummer: '9990000046',
        topic: 't',
      });
      assert.equal(caught.topic, 't');
      assert.equal(caught.organisationsnummer, '9990000046');
      assert.match(errorOf(caught).message, /organisationsnummer/);
      assert.equal(errorOf(caught).source.id, 'up');
    });

    it('a referensperiod that is not the last day of its month', async () => {
      const caught = await refusedBeforeAnyRequest({
        payload: Buffer.from('<a/>'),
        filnamn: 'a.xml',
        referensperiod: '2026-06-15',
      });
      assert.match(errorOf(caught).message, /referensperiod/);
    });

    it('a missing filformat names the three places to set it', async () => {
      const caught = await refusedBeforeAnyRequest(
        { payload: Buffer.from('<a/>'), filnamn: 'a.xml' },
        { filformat: '' },
      );
      assert.equal(errorOf(caught).message, 'scb-m2m-upload.errors.missing');
      assert.equal(errorOf(caught).code, 'MISSING');
    });

    it('a msg field that is not text', async () => {
      const caught = await refusedBeforeAnyRequest({
        payload: Buffer.from('<a/>'),
        filnamn: 'a.xml',
        version: { v: 1 },
      });
      assert.equal(errorOf(caught).message, 'scb-m2m-upload.errors.not-text');
    });

    it('nothing to send', async () => {
      const caught = await refusedBeforeAnyRequest({ payload: { not: 'a file' }, filnamn: 'a.xml' });
      assert.equal(errorOf(caught).code, 'NO_FILE');
      assert.deepEqual(caught.payload, { not: 'a file' });
    });

    it('no filnamn for a Buffer', async () => {
      const caught = await refusedBeforeAnyRequest({ payload: Buffer.from('<a/>') });
      assert.equal(errorOf(caught).code, 'FILNAMN_MISSING');
    });

    it('msg.filename that does not exist is reported before anything is sent', async () => {
      const missing = path.join(ctx.dir, 'missing.xml');
      const caught = await refusedBeforeAnyRequest({ payload: missing, filename: missing });
      assert.equal(errorOf(caught).code, 'FILE_NOT_FOUND');
      assert.equal(caught.filename, missing);
    });

    it('no config node selected', async () => {
      await load(uploadFlow({ config: '' }), credentialsOf(ctx.simulator));
      assert.equal(lastStatus(helper.getNode('up'))?.text, 'scb-m2m-upload.status.no-config');
      const caught = await caughtFor({ payload: Buffer.from('<a/>'), filnamn: 'a.xml' });
      assert.equal(errorOf(caught).message, 'scb-m2m-upload.errors.no-config');
    });

    it('401: msg.statusCode 401 and the text names org, survey and format', async () => {
      await load(uploadFlow({ organisationsnummer: '5560160680' }), credentialsOf(ctx.simulator));
      const refusedBefore = ctx.simulator.stats().refused;
      const caught = await caughtFor({ payload: Buffer.from('<a/>'), filnamn: 'a.xml' });
      assert.equal(caught.statusCode, 401);
      const message = errorOf(caught).message;
      for (const part of ['5560160680', 'VINN', 'V40']) assert.ok(message.includes(part), `"${message}" names ${part}`);
      assert.match(message, /certificate/i);
      assert.equal(ctx.simulator.stats().refused, refusedBefore + 1, 'a 401 is not retried');
      assert.equal(lastStatus(helper.getNode('up'))?.text, 'scb-m2m-config.status.unauthorised');
    });

    it('5xx until the retries are exhausted: done(err) with msg intact and msg.statusCode', async () => {
      await load(uploadFlow(), credentialsOf(ctx.simulator));
      ctx.simulator.faults.failNext(100, { status: 503, match: /\/file\// });
      const caught = await caughtFor({ payload: Buffer.from('<a/>'), filnamn: 'exhausted.xml', topic: 'kept' });
      assert.equal(caught.statusCode, 503);
      assert.equal(caught.topic, 'kept');
      assert.ok(Buffer.isBuffer(caught.payload));
      assert.equal(lastStatus(helper.getNode('up'))?.text, 'scb-m2m-config.status.server');
      assert.equal(ctx.simulator.deliveries().filter((d) => d.filnamn === 'exhausted.xml').length, 0);
    });

    it('takes its retry bounds from the Node-RED setting scbM2mConfigRetry: no retries, one attempt', async () => {
      ctx.useSettings({ scbM2mConfigRetry: { maxRetries: 0 } });
      try {
        await load(uploadFlow(), credentialsOf(ctx.simulator));
        const before = ctx.simulator.stats().requests;
        ctx.simulator.faults.failNext(100, { status: 503, match: /\/file\// });
        const caught = await caughtFor({ payload: Buffer.from('<a/>'), filnamn: 'no-retry.xml' });
        assert.equal(caught.statusCode, 503);
        assert.equal(ctx.simulator.stats().requests - before, 2, 'the heartbeat and one attempt at the segment');
      } finally {
        ctx.useSettings();
      }
    });
  });

  it('close during an upload aborts it: the flow unloads at once, nothing is delivered, no sockets stay open', async () => {
    const baseline = activeResources().TCPSocketWrap ?? 0;
    await load(uploadFlow(), credentialsOf(ctx.simulator));
    // Hold the second segment's answer so the upload is surely in flight when the flow stops.
    ctx.simulator.faults.slowNext(1, 20_000, { match: /\/file\/1\// });
    const deliveriesBefore = ctx.simulator.deliveries().length;
    let outputs = 0;
    helper.getNode('out').on('input', () => outputs++);
    helper.getNode('caught').on('input', () => outputs++);
    const node = helper.getNode('up');
    node.receive({ payload: crypto.randomBytes(20_000_000), filnamn: 'closing.xml' });
    await waitUntil(
      () => statuses(node).some((s) => s.text === 'scb-m2m-upload.status.segment'),
      'the first segment to be sent',
      10_000,
    );
    const started = Date.now();
    await helper.unload();
    const unloadMs = Date.now() - started;
    assert.ok(unloadMs < 2000, `unload took ${unloadMs} ms`);
    assert.equal(outputs, 0, 'neither an output nor a Catch: the flow was stopped');
    assert.equal(ctx.simulator.deliveries().length, deliveriesBefore);
    await waitUntil(() => (activeResources().TCPSocketWrap ?? 0) <= baseline, 'the client sockets to close', 3000);
  });
});
