/**
 * The SCB sidebar plugin's runtime part (plugins/scb-m2m-deliveries): the comms messages and the
 * "check now" route. node-red-node-test-helper does not run plugins, so the plugin gets a stand-in
 * RED (its registration, comms and admin routes recorded here) whose nodes are the helper's real
 * ones: a real config node and its client against the real simulator. The journal is a stand-in
 * of the contract (lib/journal/types.ts) until the real one is merged.
 */
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { DeliveryRecord, DeliveryUpdate } from '../../lib/journal/types';
import type { M2MClient } from '../../lib';
import type { AdminHandler, AdminRequest, AdminResponse, NodeAPI } from '../../nodes/shared/red';
import type { ScbM2mConfigNode } from '../../nodes/scb-m2m-config/model';
import {
  CHECK_ROUTE,
  PLUGIN_ID,
  TOPIC,
  registerDeliveriesPlugin,
  type JournalAccess,
} from '../../plugins/scb-m2m-deliveries/deliveries';
import { CONFIG, baseFlow, credentialsOf, helper, load, nodeSuite } from '../helpers/node-red';

/** The journal's contract in memory: update sets the fields, appends the change and emits it. */
class StandInJournal implements JournalAccess {
  readonly records = new Map<string, DeliveryRecord>();
  constructor(private readonly events: EventEmitter) {}
  get(id: string) {
    return this.records.get(id);
  }
  add(record: DeliveryRecord) {
    this.records.set(record.id, record);
  }
  update(id: string, update: DeliveryUpdate) {
    const record = this.records.get(id);
    if (!record) throw new Error(`no record ${id}`);
    const { note, ...fields } = update;
    const at = new Date().toISOString();
    const next: DeliveryRecord = {
      ...record,
      ...fields,
      updatedAt: at,
      changes: [...record.changes, { state: fields.state ?? record.state, at, ...(note && { note }) }],
    };
    this.records.set(id, next);
    this.events.emit('change', next);
    return next;
  }
}

interface Answer {
  status: number;
  body: { ok: boolean; record?: DeliveryRecord; error?: { code: string; message: string } };
}

/** A stand-in RED: what the plugin registers, publishes and routes, with the helper's real nodes. */
function standInRed() {
  const published: Array<{ topic: string; data: unknown; retain?: boolean }> = [];
  const routes = new Map<string, AdminHandler[]>();
  const plugins: string[] = [];
  const RED = {
    plugins: {
      registerPlugin(id: string, definition: { onadd?: () => void }) {
        plugins.push(id);
        definition.onadd?.();
      },
    },
    comms: { publish: (topic: string, data: unknown, retain?: boolean) => published.push({ topic, data, retain }) },
    httpAdmin: {
      get: (path: string, ...handlers: AdminHandler[]) => routes.set(`GET ${path}`, handlers),
      post: (path: string, ...handlers: AdminHandler[]) => routes.set(`POST ${path}`, handlers),
    },
    auth: {
      needsPermission: (permission: string) =>
        Object.assign((_req: AdminRequest, _res: unknown, next: () => void) => next(), { permission }),
    },
    nodes: { getNode: (id: string) => helper.getNode(id) ?? null },
    _: (key: string, substitutions?: Record<string, unknown>) =>
      substitutions ? `${key} ${JSON.stringify(substitutions)}` : key,
    settings: {},
  } as unknown as NodeAPI;

  /** Runs a route's handlers as express would, until one answers. */
  function call(route: string, params: Record<string, string>): Promise<Answer> {
    const handlers = routes.get(route);
    assert.ok(handlers, `${route} is registered`);
    return new Promise((resolve) => {
      let status = 200;
      const res = {
        status(code: number) {
          status = code;
          return res;
        },
        json: (body: Answer['body']) => resolve({ status, body }),
        set: () => res,
        send: () => assert.fail('the check route answers JSON'),
      };
      const run = (i: number) =>
        handlers[i]({ params, query: {} } as unknown as AdminRequest, res as unknown as AdminResponse, () =>
          run(i + 1),
        );
      run(0);
    });
  }
  return { RED, published, routes, plugins, call };
}

const CHECK = `POST ${CHECK_ROUTE}`;

describe('SCB sidebar plugin: runtime part', function () {
  this.timeout(20_000);
  const ctx = nodeSuite();
  let events: EventEmitter;
  let journal: StandInJournal;
  let red: ReturnType<typeof standInRed>;
  let journalsAsked: string[];

  beforeEach(async () => {
    await load(baseFlow(ctx.simulator), credentialsOf(ctx.simulator));
    events = new EventEmitter();
    journal = new StandInJournal(events);
    journalsAsked = [];
    red = standInRed();
    registerDeliveriesPlugin(red.RED, {
      journalEvents: events,
      journalFor: async (_RED, configId) => {
        journalsAsked.push(configId);
        return journal;
      },
    });
  });

  function record(fields: Partial<DeliveryRecord> = {}): DeliveryRecord {
    const at = new Date().toISOString();
    const filled: DeliveryRecord = {
      id: `rec-${journal.records.size + 1}`,
      configId: CONFIG,
      createdAt: at,
      updatedAt: at,
      target: {
        organisationsnummer: '9990000045',
        undersokning: 'VINN',
        referensperiod: '2026-06-30',
        filformat: 'V40',
        filnamn: 'V40_x.xml',
      },
      state: 'sent',
      changes: [{ state: 'sent', at }],
      ...fields,
    };
    journal.add(filled);
    return filled;
  }

  /** A real upload through the config node's own client: SCB's uploadId. */
  async function upload(content: string): Promise<string> {
    const client: M2MClient = await (helper.getNode(CONFIG) as unknown as ScbM2mConfigNode).acquireClient();
    const sent = await client.upload({
      organisationsnummer: '9990000045',
      undersokning: 'VINN',
      referensperiod: '2026-06-30',
      filformat: 'V40',
      filnamn: 'V40_x.xml',
      source: { buffer: Buffer.from(content) },
    });
    return sent.uploadId;
  }

  it(`registers as "${PLUGIN_ID}", with "check now" behind the scb-m2m-deliveries.write permission`, () => {
    assert.deepEqual(red.plugins, [PLUGIN_ID]);
    assert.deepEqual([...red.routes.keys()], [CHECK]);
    const [guard] = red.routes.get(CHECK) as Array<AdminHandler & { permission?: string }>;
    assert.equal(guard.permission, 'scb-m2m-deliveries.write');
  });

  it(`publishes every change of a journal on "${TOPIC}" as { configId, record }, without the stored msg or poll`, () => {
    const changed = record({
      state: 'sending',
      segment: 2,
      segments: 3,
      msg: { payload: 'flow data', topic: 't' },
      poll: { nodeId: 'h', deadline: 1, msg: {} },
    });
    events.emit('change', changed);
    assert.equal(red.published.length, 1);
    const [message] = red.published;
    assert.equal(message.topic, TOPIC);
    assert.equal(message.retain, false);
    const { configId, record: shown } = message.data as { configId: string; record: DeliveryRecord };
    assert.equal(configId, CONFIG);
    const { msg: _msg, poll: _poll, ...expected } = changed;
    assert.deepEqual(shown, expected);
    assert.equal(JSON.stringify(message.data).includes('flow data'), false);
  });

  it('check now: a pending delivery SCB has not decided stays pending; after SCB decides, accepted, one history request each', async () => {
    const uploadId = await upload('<Report/>');
    const delivery = record({ state: 'pending', uploadId });
    const before = ctx.simulator.stats().historyRequests;

    const first = await red.call(CHECK, { configId: CONFIG, id: delivery.id });
    assert.equal(first.status, 200);
    assert.equal(first.body.ok, true);
    assert.equal(first.body.record?.state, 'pending');
    assert.equal(ctx.simulator.stats().historyRequests, before + 1);

    ctx.simulator.settleHistory();
    const second = await red.call(CHECK, { configId: CONFIG, id: delivery.id });
    assert.equal(second.body.record?.state, 'accepted');
    assert.equal(ctx.simulator.stats().historyRequests, before + 2);
    const stored = journal.get(delivery.id) as DeliveryRecord;
    assert.equal(stored.state, 'accepted');
    assert.equal(stored.decision?.status, 'accepted');
    assert.ok(stored.decision?.body, "SCB's answer is kept");
    assert.deepEqual(
      stored.changes.map((c) => c.state),
      ['sent', 'pending', 'accepted'],
    );
    assert.equal(stored.changes.at(-1)?.note, 'scb-m2m-deliveries.note.checked');
    assert.deepEqual(journalsAsked, [CONFIG, CONFIG]);
    // Each decision went out to the editors too.
    assert.deepEqual(
      red.published.map((p) => (p.data as { record: DeliveryRecord }).record.state),
      ['pending', 'accepted'],
    );
  });

  it("check now: a rejected file keeps SCB's message text in the decision", async () => {
    const uploadId = await upload('<Report><!-- SIMULATE-REJECT --></Report>');
    ctx.simulator.settleHistory();
    const delivery = record({ state: 'sent', uploadId });
    const answer = await red.call(CHECK, { configId: CONFIG, id: delivery.id });
    assert.equal(answer.body.record?.state, 'rejected');
    const messages = journal.get(delivery.id)?.decision?.messages ?? [];
    assert.ok(
      messages.length > 0 && messages.every((m) => typeof m === 'string'),
      `messages: ${JSON.stringify(messages)}`,
    );
    assert.match(messages.join(' '), /SIMULATE-REJECT/);
  });

  it('check now refuses what it cannot check, without asking SCB: a config node not deployed, an unknown delivery, one decided or never sent', async () => {
    const before = ctx.simulator.stats().historyRequests;
    const decided = record({ state: 'accepted', uploadId: 'some-upload' });
    const unsent = record({ state: 'failed' });
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ configId: 'not-deployed', id: decided.id }, 404, 'NOT_DEPLOYED'],
      [{ configId: CONFIG, id: 'no-such-record' }, 404, 'NO_SUCH_DELIVERY'],
      [{ configId: CONFIG, id: decided.id }, 409, 'NOT_CHECKABLE'],
      [{ configId: CONFIG, id: unsent.id }, 409, 'NOT_CHECKABLE'],
    ];
    for (const [params, status, code] of cases) {
      const answer = await red.call(CHECK, params);
      assert.equal(answer.status, status, JSON.stringify(params));
      assert.equal(answer.body.ok, false);
      assert.equal(answer.body.error?.code, code);
      assert.match(
        String(answer.body.error?.message),
        /^scb-m2m-deliveries\.errors\./,
        "a message from the plugin's catalog",
      );
    }
    assert.equal(ctx.simulator.stats().historyRequests, before);
    assert.equal(journal.get(decided.id)?.state, 'accepted');
    assert.equal(red.published.length, 0);
  });

  it('check now when SCB fails: the error for the editor, the journal unchanged', async () => {
    const delivery = record({ state: 'pending', uploadId: 'upload-that-fails' });
    ctx.simulator.faults.failNext(5, { status: 401, match: /history/ });
    const answer = await red.call(CHECK, { configId: CONFIG, id: delivery.id });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.ok, false);
    assert.match(String(answer.body.error?.message), /\S/);
    assert.equal(journal.get(delivery.id)?.state, 'pending');
    assert.equal(red.published.length, 0);
  });
});
