import assert from 'node:assert/strict';
import { ProtocolError, ValidationError, classifyHistory, historyMessages } from '../../lib';
import { DEFAULT_CLIENTS } from '../../simulator';
import type { SimulatorHistoryShape } from '../../simulator/types';
import { REQUEST, clientFor, simulatorSuite } from '../helpers/client';

describe('client: history against the simulator', function () {
  this.timeout(30_000);
  const ctx = simulatorSuite('scb-client-history-', {
    // A long delay: uploads stay pending until the test settles them.
    historyDelayMs: 600_000,
  });

  const deliver = async (name: string) =>
    (await ctx.client.upload({ ...REQUEST, filnamn: name, source: { buffer: Buffer.from(`<vinn name="${name}"/>`) } }))
      .uploadId;

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
    await assert.rejects(
      ctx.client.history(),
      (err: unknown) => err instanceof ProtocolError && err.code === 'NOT_JSON',
    );
  });

  it('refuses an empty upload id before sending anything', async () => {
    await assert.rejects(
      ctx.client.history('  '),
      (err: unknown) => err instanceof ValidationError && err.field === 'uploadId',
    );
  });
});

for (const shape of ['camel', 'pascal', 'rapporthuvud'] as SimulatorHistoryShape[]) {
  describe(`client: history records in the ${shape} shape`, function () {
    this.timeout(30_000);
    const ctx = simulatorSuite(`scb-client-history-${shape}-`, {
      historyShape: shape,
      historyDelayMs: 600_000,
      clients: DEFAULT_CLIENTS.filter((c) => c.name === 'valid'),
    });

    it('the default rule classifies pending, accepted and rejected, and historyMessages finds the reasons first', async () => {
      const deliver = async (name: string, content: string) =>
        (await ctx.client.upload({ ...REQUEST, filnamn: name, source: { buffer: Buffer.from(content) } })).uploadId;
      const good = await deliver('good.xml', '<vinn/>');
      const bad = await deliver('bad.xml', '<vinn>SIMULATE-REJECT</vinn>');
      const pending = await ctx.client.history(good);
      assert.equal(pending.status, 'pending');
      assert.ok(
        historyMessages(pending.body).some((m) => /mottagen/i.test(m)),
        historyMessages(pending.body).join(' | '),
      );
      ctx.sim.settleHistory();
      const accepted = await ctx.client.history(good);
      assert.equal(accepted.status, 'accepted');
      assert.ok(
        historyMessages(accepted.body).includes('Filen är godkänd.'),
        historyMessages(accepted.body).join(' | '),
      );
      const rejected = await ctx.client.history(bad);
      assert.equal(rejected.status, 'rejected');
      const reasons = historyMessages(rejected.body);
      assert.match(reasons[0], /SIMULATE-REJECT/);
      // The rows' other messages follow the reasons.
      if (shape === 'rapporthuvud') assert.deepEqual(reasons.slice(1), ['Filen är mottagen.']);
      else assert.equal(reasons.length, 1);
      const list = await ctx.client.history();
      assert.deepEqual(list.items?.map((i) => i.status).sort(), ['accepted', 'rejected']);
      const byStatus = Object.fromEntries(list.items?.map((i) => [i.status, historyMessages(i.record)]) ?? []);
      assert.deepEqual(byStatus, { accepted: historyMessages(accepted.body), rejected: reasons });
    });
  });
}

describe('history records: the default rule and the messages, shape by shape', () => {
  it("classifies by progressStatus as a number, digits or the enum name of SCB's client, in any casing", () => {
    assert.equal(classifyHistory({ ProgressStatus: 3 }), 'accepted');
    assert.equal(classifyHistory({ progressstatus: '2' }), 'rejected');
    assert.equal(classifyHistory({ ProgressStatus: 'AvslutadOk' }), 'accepted');
    assert.equal(classifyHistory({ ProgressStatus: 'avslutadFel' }), 'rejected');
    assert.equal(classifyHistory({ ProgressStatus: 'Pagar', Status: 'Godkänd' }), 'pending');
    assert.equal(classifyHistory({ ProgressStatus: 'EjPaborjad' }), 'pending');
    // An unknown name falls back to the status text.
    assert.equal(classifyHistory({ ProgressStatus: 'Klar', Status: 'Godkänd' }), 'accepted');
    assert.equal(classifyHistory({ STATUS: 'Fel' }), 'rejected');
  });

  it('a Rapporthuvud is classified by its head, not its rows', () => {
    const head = { Status: 'Pågår', ProgressStatus: 1, Rapportrader: [{ Status: 'Fel', ProgressStatus: 2 }] };
    assert.equal(classifyHistory(head), 'pending');
  });

  it('finds messages as a text, a list of texts or of objects, under Meddelanden, Felmeddelanden or Meddelande, each once', () => {
    assert.deepEqual(historyMessages({ meddelanden: ['a', ' b ', '', 3] }), ['a', 'b']);
    assert.deepEqual(historyMessages({ Meddelanden: 'only one' }), ['only one']);
    assert.deepEqual(
      historyMessages({ Felmeddelanden: [{ Text: 'Rad 3: fel' }, { meddelande: 'Rad 9: fel' }, { kod: 17 }] }),
      ['Rad 3: fel', 'Rad 9: fel'],
    );
    assert.deepEqual(historyMessages({ Meddelande: 'x', meddelanden: ['x', 'y'] }), ['x', 'y']);
    assert.deepEqual(historyMessages(null), []);
    assert.deepEqual(historyMessages('text'), []);
    assert.deepEqual(historyMessages({ status: 'OK' }), []);
  });

  it("a rejected Rapporthuvud gives the rejected rows' reasons first, then the head's, then the other rows'", () => {
    const record = {
      Id: 'h',
      Status: 'Fel',
      ProgressStatus: 'AvslutadFel',
      Meddelanden: ['Inskickningen har fel.'],
      Rapportrader: [
        { Id: 'r1', Status: 'Mottagen', ProgressStatus: 3, Meddelanden: ['Filen är mottagen.'] },
        {
          Id: 'r2',
          Status: 'Fel',
          ProgressStatus: 2,
          Meddelanden: ['Rad 12: organisationsnummer saknas.', 'Rad 40: belopp saknas.'],
        },
      ],
    };
    assert.deepEqual(historyMessages(record), [
      'Rad 12: organisationsnummer saknas.',
      'Rad 40: belopp saknas.',
      'Inskickningen har fel.',
      'Filen är mottagen.',
    ]);
    // Not rejected: the head's, then the rows' in order.
    assert.deepEqual(historyMessages({ ...record, Status: 'OK', ProgressStatus: 3 }), [
      'Inskickningen har fel.',
      'Filen är mottagen.',
      'Rad 12: organisationsnummer saknas.',
      'Rad 40: belopp saknas.',
    ]);
  });
});
