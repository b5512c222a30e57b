import assert from 'node:assert/strict';
import { ProtocolError, ValidationError } from '../lib';
import { REQUEST, clientFor, simulatorSuite } from './helpers/client';

describe('client: history against the simulator', function () {
  this.timeout(30_000);
  const ctx = simulatorSuite('scb-client-history-', {
    // A long delay: uploads stay pending until the test settles them.
    historyDelayMs: 600_000,
  });

  const deliver = async (name: string) =>
    (await ctx.client.upload({ ...REQUEST, filnamn: name, source: { buffer: Buffer.from(`<vinn name="${name}"/>`) } })).uploadId;

  it('classifies one upload with the default rule: pending, then what the simulator decided', async () => {
    const id = await deliver('h1.xml');
    const pending = await ctx.client.history(id);
    assert.equal(pending.statusCode, 200);
    assert.equal(pending.status, 'pending');
    assert.ok(pending.body && typeof pending.body === 'object');
    ctx.sim.settleHistory();
    const decided = await ctx.client.history(id);
    const expected = ctx.sim.deliveries().find((d) => d.deliveryId === id)?.status;
    assert.ok(expected === 'accepted' || expected === 'rejected', `simulator decided ${expected}`);
    assert.equal(decided.status, expected);
  });

  it('asks about many uploads at once over a bounded number of connections', async () => {
    const id = await deliver('many.xml');
    const before = ctx.sim.stats().connections;
    const answers = await Promise.all(Array.from({ length: 300 }, () => ctx.client.history(id)));
    assert.ok(answers.every((a) => a.status === 'pending'));
    const opened = ctx.sim.stats().connections - before;
    // One per possible upload plus the extra ones for heartbeats and history (4 + 4), not one per request.
    assert.ok(opened <= 8, `${opened} connections opened for 300 requests`);
    assert.ok(ctx.client.stats().connections <= 8, `client counted ${ctx.client.stats().connections}`);
  });

  it('lists every upload, each record classified', async () => {
    const ids = [await deliver('h2.xml'), await deliver('h3.xml')];
    const list = await ctx.client.history();
    assert.equal(list.status, 'accepted');
    assert.ok(Array.isArray(list.body));
    assert.ok(list.items && list.items.length >= 2);
    for (const item of list.items) assert.ok(['accepted', 'rejected', 'pending'].includes(item.status));
    const listed = JSON.stringify(list.body);
    for (const id of ids) assert.ok(listed.includes(id), `the list has ${id}`);
  });

  it('uses a replaced classification rule for one upload and for the list', async () => {
    const id = await deliver('h4.xml');
    const seen: unknown[] = [];
    const custom = await clientFor(ctx.sim, {
      classify: (record) => {
        seen.push(record);
        return 'rejected';
      },
    });
    try {
      assert.equal((await custom.history(id)).status, 'rejected');
      const list = await custom.history();
      assert.ok(list.items?.every((i) => i.status === 'rejected'));
      assert.equal(seen.length, 1 + (list.items?.length ?? 0));
    } finally {
      await custom.close();
    }
  });

  it('answers an unknown upload id with ValidationError UNKNOWN_UPLOAD_ID (404), not retried', async () => {
    await ctx.client.heartbeat();
    const before = ctx.sim.stats().requests;
    const err = await ctx.client.history('00000000-0000-0000-0000-000000000000').then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ValidationError, String(err));
    assert.equal(err.code, 'UNKNOWN_UPLOAD_ID');
    assert.equal(err.statusCode, 404);
    assert.equal(err.field, 'uploadId');
    assert.equal(ctx.sim.stats().requests - before, 1);
  });

  it('refuses an answer that is not JSON with a ProtocolError quoting it', async () => {
    await ctx.client.heartbeat();
    ctx.sim.faults.invalidJsonNext(1, { match: /history/ });
    await assert.rejects(ctx.client.history(), (err: unknown) => err instanceof ProtocolError && err.code === 'NOT_JSON');
  });

  it('refuses an empty upload id before sending anything', async () => {
    await assert.rejects(ctx.client.history('  '), (err: unknown) => err instanceof ValidationError && err.field === 'uploadId');
  });
});
