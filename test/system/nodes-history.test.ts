import * as assert from 'node:assert/strict';
import { openJournal } from '../../lib/journal';
import type { NodeMessage } from 'node-red';
import {
  CONFIG,
  activeResources,
  baseFlow,
  credentialsOf,
  helper,
  nodeSuite,
  lastStatus,
  load,
  messages,
  nextMessage,
  statuses,
  waitUntil,
  within,
  type FlowNode,
  HISTORY_OUTPUTS,
  historyNode,
  historyOutputs,
  uploadNode,
} from '../helpers/node-red';

describe('scb-m2m-history node', function () {
  this.timeout(30_000);
  // History stays pending until a test settles it.
  const ctx = nodeSuite({ simulator: { historyDelayMs: 600_000 } });

  /** upload `up` → history `hist` → helpers `accepted`, `rejected`, `pending`; catch → `caught`. */
  function historyFlow(history: Record<string, unknown> = {}): FlowNode[] {
    return [
      ...baseFlow(ctx.simulator, { organisationsnummer: '9990000045', undersokning: 'VINN' }),
      uploadNode([['hist']]),
      historyNode(history),
      ...historyOutputs(),
    ];
  }

  /** Uploads a file through `up` and resolves with the upload id once the history node got it. */
  async function uploadId(content = '<vinn/>'): Promise<string> {
    const id = new Promise<string>((resolve) =>
      helper.getNode('hist').on('input', (msg: NodeMessage) => resolve(msg.uploadId as string)),
    );
    helper.getNode('up').receive({ payload: Buffer.from(content), filnamn: 'h.xml' });
    return within(id, 10_000, 'the upload');
  }

  /** Records what reaches these helper nodes (a throw there would be swallowed by Node-RED); the test asserts it stays empty. */
  function unexpected(...ids: string[]): string[] {
    const seen: string[] = [];
    for (const id of ids)
      helper
        .getNode(id)
        .on('input', (msg: NodeMessage) => seen.push(`${id}: ${JSON.stringify(msg.error ?? msg.payload)}`));
    return seen;
  }

  it('once: a new upload is pending (output 3), then accepted (output 1) after SCB decides', async () => {
    await load(historyFlow(), credentialsOf(ctx.simulator));
    const pending = nextMessage('pending');
    const id = await uploadId();
    const first = await pending;
    assert.equal(first.scbStatus, 'pending');
    assert.equal(first.uploadId, id);
    assert.equal((first.payload as { id: string }).id, id);
    assert.equal(lastStatus(helper.getNode('hist'))?.text, 'scb-m2m-history.status.pending');

    ctx.simulator.settleHistory();
    const accepted = nextMessage('accepted');
    helper.getNode('hist').receive({ uploadId: id, topic: 'again' });
    const second = await accepted;
    assert.equal(second.scbStatus, 'accepted');
    assert.equal(second.topic, 'again');
    assert.equal((second.payload as { progressStatus: number }).progressStatus, 3);
    assert.deepEqual(lastStatus(helper.getNode('hist')), {
      fill: 'green',
      shape: 'dot',
      text: 'scb-m2m-history.status.accepted',
    });
  });

  it('once: a file with the SIMULATE-REJECT marker comes out rejected (output 2), also via msg.payload.deliveryId', async () => {
    await load(historyFlow(), credentialsOf(ctx.simulator));
    const id = await uploadId('<vinn>SIMULATE-REJECT</vinn>');
    ctx.simulator.settleHistory();
    const rejected = nextMessage('rejected');
    helper.getNode('hist').receive({ payload: { deliveryId: id } });
    const msg = await rejected;
    assert.equal(msg.scbStatus, 'rejected');
    assert.ok(Array.isArray((msg.payload as { meddelanden: unknown }).meddelanden));
    assert.equal(lastStatus(helper.getNode('hist'))?.fill, 'red');
  });

  it('without an upload id: the list on output 1', async () => {
    await load(historyFlow(), credentialsOf(ctx.simulator));
    const id = await uploadId();
    const accepted = nextMessage('accepted');
    helper.getNode('hist').receive({ payload: 1700000000000 });
    const msg = await accepted;
    assert.equal(msg.scbStatus, 'accepted');
    assert.ok(Array.isArray(msg.payload));
    assert.ok(
      (msg.payload as Array<{ id: string }>).some((r) => r.id === id),
      'the list holds the new upload',
    );
    assert.equal(lastStatus(helper.getNode('hist'))?.text, 'scb-m2m-history.status.list');
  });

  it('poll: asks again until SCB decides, showing the polls in progress; each poll logged at debug, the decision at info', async () => {
    await load(historyFlow({ mode: 'poll', interval: '0.05', timeout: '30' }), credentialsOf(ctx.simulator));
    const stray = unexpected('pending', 'caught');
    const accepted = nextMessage('accepted');
    const before = ctx.simulator.stats().historyRequests;
    await uploadId();
    await waitUntil(() => ctx.simulator.stats().historyRequests >= before + 2, 'two polls');
    assert.equal(lastStatus(helper.getNode('hist'))?.text, 'scb-m2m-history.status.polling');
    ctx.simulator.settleHistory();
    const msg = await within(accepted, 5000, 'the accepted msg');
    assert.equal(msg.scbStatus, 'accepted');
    assert.equal(lastStatus(helper.getNode('hist'))?.text, 'scb-m2m-history.status.accepted');
    assert.deepEqual(stray, []);
    const hist = helper.getNode('hist');
    // The spies are shared by every node: keep the calls made on this one.
    const lines = (level: 'log' | 'debug') =>
      hist[level]
        .getCalls()
        .filter((c) => c.thisValue === hist)
        .map((c) => String(c.args[0]));
    assert.deepEqual(lines('log'), [`Upload ${String(msg.uploadId)}: accepted by SCB`]);
    const polls = lines('debug');
    assert.ok(
      polls.length >= 2 && polls.every((line) => line === `Upload ${String(msg.uploadId)}: still pending at SCB`),
      polls.join('\n'),
    );
  });

  it('poll: still pending at the timeout goes to output 3', async () => {
    await load(historyFlow({ mode: 'poll', interval: '0.05', timeout: '0.3' }), credentialsOf(ctx.simulator));
    const stray = unexpected('accepted', 'rejected', 'caught');
    const pending = nextMessage('pending');
    const before = ctx.simulator.stats().historyRequests;
    const started = Date.now();
    await uploadId();
    const msg = await within(pending, 5000, 'the pending msg');
    assert.equal(msg.scbStatus, 'pending');
    assert.ok(Date.now() - started >= 300, 'not before the timeout');
    assert.ok(ctx.simulator.stats().historyRequests - before >= 3, 'asked several times');
    assert.deepEqual(lastStatus(helper.getNode('hist')), {
      fill: 'yellow',
      shape: 'ring',
      text: 'scb-m2m-history.status.pending',
    });
    assert.deepEqual(stray, []);
  });

  it('poll: many uploads at once, without holding up other messages', async () => {
    await load(historyFlow({ mode: 'poll', interval: '0.05', timeout: '30' }), credentialsOf(ctx.simulator));
    const stray = unexpected('rejected', 'pending', 'caught');
    const count = 20;
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(await uploadId(`<vinn n="${i}"/>`));
    // While all are polled, a list request passes straight through.
    const list = nextMessage('accepted');
    helper.getNode('hist').receive({ topic: 'list' });
    assert.ok(Array.isArray((await within(list, 5000, 'the list')).payload));

    const decided = messages('accepted', count);
    ctx.simulator.settleHistory();
    const got = await within(decided, 10_000, `${count} accepted msgs`);
    assert.deepEqual(got.map((m) => m.uploadId).sort(), [...ids].sort());
    assert.deepEqual(stray, []);
  });

  it('a JSONata rule replaces the classification', async () => {
    // The upload is pending by SCB's progressStatus 1; the rule calls that accepted.
    await load(historyFlow({ rule: 'progressStatus = 1 ? "accepted" : "rejected"' }), credentialsOf(ctx.simulator));
    const accepted = nextMessage('accepted');
    await uploadId();
    const msg = await accepted;
    assert.equal(msg.scbStatus, 'accepted');
    assert.equal((msg.payload as { progressStatus: number }).progressStatus, 1);
  });

  describe('errors reach a Catch node with the original msg', () => {
    const errorOf = (msg: NodeMessage) => msg.error as { message: string; code?: string };

    it('an invalid JSONata rule: reported at deploy and for each msg, no request sent', async () => {
      await load(historyFlow({ rule: 'status = (' }), credentialsOf(ctx.simulator));
      const node = helper.getNode('hist');
      assert.ok(statuses(node).some((s) => s.text === 'scb-m2m-history.status.bad-rule'));
      assert.ok(
        node.error.getCalls().some((c) => c.thisValue === node && c.args[0] === 'scb-m2m-history.errors.bad-rule'),
      );
      const before = ctx.simulator.stats().requests;
      const caught = nextMessage('caught');
      node.receive({ uploadId: 'abc', topic: 'kept' });
      const msg = await caught;
      assert.equal(errorOf(msg).code, 'INVALID_RULE');
      assert.equal(msg.topic, 'kept');
      assert.equal(ctx.simulator.stats().requests, before);
    });

    it('a rule that does not give accepted, rejected or pending', async () => {
      await load(historyFlow({ rule: '"maybe"' }), credentialsOf(ctx.simulator));
      const caught = nextMessage('caught');
      await uploadId();
      assert.equal(errorOf(await caught).code, 'INVALID_RULE_RESULT');
    });

    it('msg.uploadId that is not text: no request sent', async () => {
      await load(historyFlow(), credentialsOf(ctx.simulator));
      const before = ctx.simulator.stats().requests;
      const caught = nextMessage('caught');
      helper.getNode('hist').receive({ uploadId: 42 });
      const msg = await caught;
      assert.equal(errorOf(msg).code, 'INVALID_UPLOAD_ID');
      assert.equal(errorOf(msg).message, 'scb-m2m-history.errors.bad-upload-id');
      assert.equal(msg.uploadId, 42);
      assert.equal(ctx.simulator.stats().requests, before);
    });

    it('an unknown upload id: msg.statusCode 404', async () => {
      await load(historyFlow(), credentialsOf(ctx.simulator));
      const caught = nextMessage('caught');
      helper.getNode('hist').receive({ uploadId: '00000000-0000-0000-0000-000000000000' });
      const msg = await caught;
      assert.equal(msg.statusCode, 404);
      assert.equal(lastStatus(helper.getNode('hist'))?.fill, 'red');
    });
  });

  it('close during polling stops every poll at once and clears their timers', async () => {
    await load(historyFlow({ mode: 'poll', interval: '20', timeout: '3600' }), credentialsOf(ctx.simulator));
    let after = 0;
    for (const id of [...HISTORY_OUTPUTS, 'caught']) helper.getNode(id).on('input', () => after++);
    const before = ctx.simulator.stats().historyRequests;
    for (let i = 0; i < 3; i++) await uploadId(`<vinn n="${i}"/>`);
    await waitUntil(() => ctx.simulator.stats().historyRequests >= before + 3, 'the first poll of each upload');
    await waitUntil(() => (activeResources().Timeout ?? 0) >= 3, 'three poll timers');
    const timersWhilePolling = activeResources().Timeout ?? 0;
    const started = Date.now();
    await helper.unload();
    assert.ok(Date.now() - started < 1000, 'unloaded at once');
    await waitUntil(
      () => (activeResources().Timeout ?? 0) <= timersWhilePolling - 3,
      'the poll timers to be cleared',
      2000,
    );
    assert.equal(after, 0, 'no msg after close');
    // Stopped, not finished: the three polls stay in the delivery journal for the node that starts next.
    const journal = await openJournal(ctx.journalDir, CONFIG);
    assert.equal(
      journal.list().filter((r) => r.poll?.nodeId === 'hist').length,
      3,
      'the unfinished polls are kept in the journal',
    );
  });
});
