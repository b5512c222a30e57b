/**
 * The delivery journal through the nodes (node-red-node-test-helper, the real simulator over TLS):
 * what a delivery leaves on record, the duplicate guard and msg.resend, msg.scbError, a 404 for an
 * uploadId SCB gave, decided files leaving the outbox, and the admin endpoint.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SEGMENT_SIZE } from '../../lib';
import { openJournal, sha256Of, type DeliveryRecord } from '../../lib/journal';
import type { NodeMessage } from 'node-red';
import {
  CONFIG,
  TAB,
  baseFlow,
  credentialsOf,
  helper,
  load,
  nextMessage,
  nodeSuite,
  waitUntil,
  within,
  type FlowNode,
  historyNode,
  historyOutputs,
  uploadNode,
} from '../helpers/node-red';
import { jsonLines } from '../helpers/util';

describe('delivery journal through the nodes', function () {
  this.timeout(30_000);
  const ctx = nodeSuite({ simulator: { historyDelayMs: 600_000 }, tmpDir: 'scb-journal-nodes-' });

  /** upload `up` → `out` and history `hist` (its own input) → accepted / rejected / pending; catch → `caught`. */
  function flow(history: Record<string, unknown> = {}, config: Record<string, unknown> = {}): FlowNode[] {
    return [
      ...baseFlow(ctx.simulator, { organisationsnummer: '9990000045', undersokning: 'VINN', ...config }),
      uploadNode([['out']], { referensperiod: '2026-10-31' }),
      { id: 'out', type: 'helper', z: TAB },
      historyNode(history),
      ...historyOutputs(),
    ];
  }

  const journal = () => openJournal(ctx.journalDir, CONFIG);
  /** The journal file's lines, each a record as it stood after a change, oldest first. */
  const journalLines = () => jsonLines<DeliveryRecord>(path.join(ctx.journalDir, `${CONFIG}.jsonl`));

  async function upload(msg: NodeMessage): Promise<NodeMessage> {
    const out = nextMessage('out');
    helper.getNode('up').receive(msg);
    return within(out, 20_000, 'the upload');
  }

  async function caught(node: string, msg: NodeMessage): Promise<NodeMessage> {
    const got = nextMessage('caught');
    helper.getNode(node).receive(msg);
    return within(got, 20_000, 'a Catch message');
  }

  it('records a delivery: target, server, source, size, SHA-256, the msg without its content, the node, every state with its time', async () => {
    await load(flow(), credentialsOf(ctx.simulator));
    const out = await upload({ payload: Buffer.from('<vinn>1</vinn>'), filnamn: 'V40_2026-10.xml', topic: 'kept' });
    const [record] = (await journal()).list();
    assert.equal(record.uploadId, out.uploadId);
    assert.equal(record.state, 'sent');
    assert.deepEqual(record.target, {
      organisationsnummer: '9990000045',
      undersokning: 'VINN',
      referensperiod: '2026-10-31',
      filformat: 'V40',
      filnamn: 'V40_2026-10.xml',
    });
    assert.equal(record.server, `${ctx.simulator.url.replace(/\/$/, '')}/m2m/v2/`);
    assert.equal(record.environment, 'custom');
    assert.deepEqual(record.source, { kind: 'memory', encoding: 'buffer' });
    assert.equal(record.size, 14);
    assert.equal(record.sha256, sha256Of(Buffer.from('<vinn>1</vinn>')));
    assert.equal(record.msg?.topic, 'kept');
    assert.equal(record.msg?.payload, undefined, 'the content is not in the journal');
    assert.deepEqual(record.node, { id: 'up', type: 'scb-m2m-upload', z: TAB });
    assert.deepEqual(
      record.changes.map((c) => c.state),
      ['queued', 'sending', 'closing', 'sent'],
    );
    assert.ok(record.timeStamp, "SCB's timeStamp");
    // Sent: the spooled payload is gone.
    const spool = path.join(ctx.journalDir, `${CONFIG}.spool`);
    assert.deepEqual(fs.existsSync(spool) ? fs.readdirSync(spool) : [], []);
  });

  it('a file from disk: its SHA-256 comes from the bytes sent (no pass of its own) and is on record before the closing request', async () => {
    await load(flow(), credentialsOf(ctx.simulator));
    const file = path.join(ctx.dir, 'V40_2026-10.xml');
    const bytes = crypto.randomBytes(SEGMENT_SIZE + 4096);
    fs.writeFileSync(file, bytes);
    const out = await upload({ filename: file });
    const lines = journalLines();
    const closing = lines.find((r) => r.state === 'closing');
    assert.equal(lines[0].sha256, undefined, 'not known when queued: the file was not read before sending');
    assert.equal(closing?.sha256, sha256Of(bytes), 'on disk with the closing line');
    const [record] = (await journal()).list();
    assert.equal(record.uploadId, out.uploadId);
    assert.equal(record.sha256, sha256Of(bytes));
    assert.equal(ctx.simulator.deliveries().find((d) => d.deliveryId === out.uploadId)?.sha256, sha256Of(bytes));
  });

  it("API v1: a file's SHA-256 is on record before its one POST (which closes the delivery), and the same file is then refused", async () => {
    await load(flow({}, { apiVersion: 'v1' }), credentialsOf(ctx.simulator));
    const file = path.join(ctx.dir, 'V40_2026-10.xml');
    const bytes = Buffer.from('<vinn>one POST</vinn>');
    fs.writeFileSync(file, bytes);
    const out = await upload({ filename: file });
    const closing = journalLines().find((r) => r.state === 'closing');
    assert.equal(closing?.sha256, sha256Of(bytes));
    const delivered = ctx.simulator.deliveries().find((d) => d.deliveryId === out.uploadId);
    assert.equal(delivered?.apiVersion, 'v1');
    assert.equal(delivered?.sha256, sha256Of(bytes));
    const copy = path.join(ctx.dir, 'copy.xml');
    fs.copyFileSync(file, copy);
    const refused = await caught('up', { filename: copy });
    assert.equal((refused.scbError as { code: string }).code, 'ALREADY_DELIVERED');
  });

  it('refuses the same file to the same target before a byte is sent, naming the earlier uploadId; msg.resend sends it and the journal says so', async () => {
    await load(flow(), credentialsOf(ctx.simulator));
    const file = path.join(ctx.dir, 'V40_2026-10.xml');
    fs.writeFileSync(file, '<vinn>twice</vinn>');
    const delivered = ctx.simulator.deliveries().length;
    const first = await upload({ filename: file });
    const requests = ctx.simulator.stats().requests;
    const refused = await caught('up', { filename: file, topic: 'second drop' });
    const error = refused.error as { message: string };
    assert.match(error.message, new RegExp(`already-delivered`));
    assert.equal((refused.scbError as { code: string }).code, 'ALREADY_DELIVERED');
    assert.equal(refused.topic, 'second drop', 'the original msg reaches the Catch node');
    assert.equal(ctx.simulator.stats().requests, requests, 'nothing went to SCB');
    assert.equal(ctx.simulator.deliveries().length, delivered + 1);

    // The same content under another name is the same file.
    const copy = path.join(ctx.dir, 'copy.xml');
    fs.copyFileSync(file, copy);
    await caught('up', { filename: copy });

    const again = await upload({ filename: file, resend: true });
    assert.notEqual(again.uploadId, first.uploadId);
    assert.equal(ctx.simulator.deliveries().length, delivered + 2);
    const records = (await journal()).list();
    const resent = records.find((r) => r.uploadId === again.uploadId) as DeliveryRecord;
    assert.equal(resent.resendOf, records.find((r) => r.uploadId === first.uploadId)?.id);
    assert.match(resent.changes[0].note ?? '', /resend/);
  });

  it('the message of a refused duplicate names the earlier uploadId and when it was sent (real catalog text)', async () => {
    // The helper's RED._ answers keys; the catalog text is checked here against the runtime's own substitution.
    const catalog = JSON.parse(
      fs.readFileSync(
        path.join(__dirname, '..', '..', 'nodes', 'scb-m2m-upload', 'locales', 'en-US', 'scb-m2m-upload.json'),
        'utf8',
      ),
    );
    const text: string = catalog['scb-m2m-upload'].errors['already-delivered'];
    for (const placeholder of ['__uploadId__', '__at__', '__filnamn__', '__target__'])
      assert.ok(text.includes(placeholder), placeholder);
    assert.match(text, /msg\.resend/);
  });

  it('the same file arriving twice at once (a folder event fired twice): sent once, the other refused', async () => {
    await load(flow(), credentialsOf(ctx.simulator));
    const delivered = ctx.simulator.deliveries().length;
    const out = nextMessage('out');
    const refused = nextMessage('caught');
    helper.getNode('up').receive({ payload: Buffer.from('<vinn>at once</vinn>'), filnamn: 'once.xml', n: 1 });
    helper.getNode('up').receive({ payload: Buffer.from('<vinn>at once</vinn>'), filnamn: 'once.xml', n: 2 });
    const [sent, caught] = await within(Promise.all([out, refused]), 20_000, 'one output and one Catch');
    assert.notEqual(sent.n, caught.n);
    assert.equal((caught.scbError as { code: string }).code, 'ALREADY_DELIVERED');
    assert.equal(ctx.simulator.deliveries().length, delivered + 1);
  });

  it('does not let a rejected or failed earlier attempt block the same file', async () => {
    await load(flow(), credentialsOf(ctx.simulator));
    ctx.simulator.faults.failNext(1, { status: 401, match: /\/file\// });
    const failed = await caught('up', { payload: Buffer.from('<vinn>retry me</vinn>'), filnamn: 'f.xml' });
    assert.equal((failed.scbError as { kind: string; code: string }).kind, 'authorisation');
    assert.equal((await journal()).list()[0].state, 'failed');
    const sent = await upload({ payload: Buffer.from('<vinn>retry me</vinn>'), filnamn: 'f.xml' });
    assert.ok(sent.uploadId);
  });

  it('sets msg.scbError = { kind, code, message, hint, statusCode } on what reaches a Catch node', async () => {
    ctx.useSettings({ scbM2mConfigRetry: { maxRetries: 0 } });
    await load(flow(), credentialsOf(ctx.simulator));
    ctx.simulator.faults.failNext(50, { status: 500, match: /\/file\//, body: 'Internal error at SCB' });
    const got = await caught('up', { payload: Buffer.from('<vinn/>'), filnamn: 'e.xml' });
    const scbError = got.scbError as Record<string, unknown>;
    assert.equal(scbError.kind, 'server');
    assert.equal(scbError.statusCode, 500);
    assert.equal(typeof scbError.code, 'string');
    assert.match(String(scbError.message), /500/);
    assert.ok(!String(scbError.message).includes(String(scbError.hint)), 'the reason apart from the hint');
    const invalid = await caught('up', {
      payload: Buffer.from('<vinn/>'),
      filnamn: 'e.xml',
      referensperiod: '2026-10-15',
    });
    assert.deepEqual(
      [(invalid.scbError as { kind: string }).kind, (invalid.scbError as { code: string }).code.length > 0],
      ['validation', true],
    );
  });

  it('a history 404 for an uploadId SCB gave is pending, not "not delivered"; after the grace period it says not to send again', async () => {
    const j = await journal();
    const r = await j.create({
      target: { organisationsnummer: '9990000045', undersokning: 'VINN', filformat: 'V40', filnamn: 'lag.xml' },
      server: 'x',
      node: { id: 'up', type: 'scb-m2m-upload' },
    });
    await j.update(r.id, { state: 'sent', uploadId: 'd-not-in-history-yet' });
    await load(flow(), credentialsOf(ctx.simulator));
    const pending = nextMessage('pending');
    helper.getNode('hist').receive({ uploadId: 'd-not-in-history-yet' });
    const msg = await within(pending, 10_000, 'output 3');
    assert.equal(msg.scbStatus, 'pending');
    assert.equal(msg.statusCode, 404);

    await helper.unload();
    ctx.useSettings({ scbM2mUnknownUploadGraceMs: 0 });
    await load(flow(), credentialsOf(ctx.simulator));
    const late = await caught('hist', { uploadId: 'd-not-in-history-yet' });
    assert.equal((late.scbError as { code: string }).code, 'UNKNOWN_UPLOAD_ID');
    assert.match(String((late.scbError as { hint: string }).hint), /unknown-upload-hint/);
    // An id nobody here was given stays what it was: unknown at once.
    const unknown = await caught('hist', { uploadId: 'd-typed-by-hand' });
    assert.equal((unknown.scbError as { code: string }).code, 'UNKNOWN_UPLOAD_ID');
  });

  it('moves a decided file to its folder (never over another), sets msg.filename, msg.movedFrom, msg.scbMessages, and records the decision', async () => {
    const outbox = fs.mkdtempSync(path.join(ctx.dir, 'outbox-'));
    const done = path.join(ctx.dir, 'done');
    const rejectedDir = path.join(ctx.dir, 'rejected');
    fs.mkdirSync(done, { recursive: true });
    fs.writeFileSync(path.join(done, 'ok.xml'), 'an earlier file of the same name');
    await load(
      flow({ acceptedDir: done, acceptedDirType: 'str', rejectedDir: 'folder', rejectedDirType: 'msg' }),
      credentialsOf(ctx.simulator),
    );
    const ok = path.join(outbox, 'ok.xml');
    const bad = path.join(outbox, 'bad.xml');
    fs.writeFileSync(ok, '<vinn>fine</vinn>');
    fs.writeFileSync(bad, '<vinn>SIMULATE-REJECT</vinn>');
    const okSent = await upload({ filename: ok });
    const badSent = await upload({ filename: bad });
    ctx.simulator.settleHistory();

    const accepted = nextMessage('accepted');
    helper.getNode('hist').receive(okSent);
    const a = await within(accepted, 10_000, 'output 1');
    assert.equal(a.movedFrom, ok);
    assert.equal(a.filename, path.join(done, 'ok (1).xml'), 'a free name: the earlier file is kept');
    assert.equal(fs.readFileSync(path.join(done, 'ok.xml'), 'utf8'), 'an earlier file of the same name');
    assert.equal(fs.readFileSync(a.filename as string, 'utf8'), '<vinn>fine</vinn>');
    assert.ok(!fs.existsSync(ok), 'left the outbox');
    assert.ok(Array.isArray(a.scbMessages));

    const rejected = nextMessage('rejected');
    helper.getNode('hist').receive({ ...badSent, folder: rejectedDir });
    const b = await within(rejected, 10_000, 'output 2');
    assert.equal(b.filename, path.join(rejectedDir, 'bad.xml'));
    assert.ok((b.scbMessages as string[]).length > 0, "SCB's reasons");
    assert.ok((b.scbMessages as string[]).every((m) => typeof m === 'string'));

    const records = (await journal()).list();
    const okRecord = records.find((r) => r.uploadId === okSent.uploadId) as DeliveryRecord;
    const badRecord = records.find((r) => r.uploadId === badSent.uploadId) as DeliveryRecord;
    assert.equal(okRecord.state, 'accepted');
    assert.equal(badRecord.state, 'rejected');
    assert.deepEqual(badRecord.decision?.messages, b.scbMessages);
  });

  it('a failed move is a Catch naming both paths; the decision is in the journal all the same', async () => {
    const blocker = path.join(ctx.dir, 'not-a-folder');
    fs.writeFileSync(blocker, 'a file where the folder should be');
    await load(flow({ acceptedDir: blocker, acceptedDirType: 'str' }), credentialsOf(ctx.simulator));
    const file = path.join(ctx.dir, 'move-me.xml');
    fs.writeFileSync(file, '<vinn>move</vinn>');
    const sent = await upload({ filename: file });
    ctx.simulator.settleHistory();
    const got = await caught('hist', sent);
    assert.equal((got.scbError as { code: string }).code, 'MOVE_FAILED');
    assert.ok(fs.existsSync(file), 'the file stays where it was');
    const record = (await journal()).findByUploadId(sent.uploadId as string);
    assert.equal(record?.state, 'accepted');
  });

  it('at start, says what a removed node left unfinished and settles it in the journal: never silent', async () => {
    const j = await journal();
    const target = { organisationsnummer: '9990000045', undersokning: 'VINN', filformat: 'V40', filnamn: 'orphan.xml' };
    const cut = await j.create({
      target,
      server: 'x',
      source: { kind: 'memory', encoding: 'utf8' },
      node: { id: 'removed-upload', type: 'scb-m2m-upload' },
    });
    await j.update(cut.id, { state: 'interrupted' });
    const closing = await j.create({
      target: { ...target, filnamn: 'closing.xml' },
      server: 'x',
      node: { id: 'removed-upload', type: 'scb-m2m-upload' },
    });
    await j.update(closing.id, { state: 'closing' });
    const polled = await j.create({
      target: { ...target, filnamn: 'polled.xml' },
      server: 'x',
      node: { id: 'up', type: 'scb-m2m-upload' },
    });
    await j.update(polled.id, {
      state: 'sent',
      uploadId: 'd-polled',
      poll: { nodeId: 'removed-history', deadline: Date.now() + 60_000, msg: {} },
    });
    await load(flow(), credentialsOf(ctx.simulator));
    await waitUntil(
      () => j.get(cut.id)?.state === 'failed' && j.get(closing.id)?.state === 'uncertain' && !j.get(polled.id)?.poll,
      'the orphans settled',
    );
    assert.equal(j.get(cut.id)?.error?.code, 'NODE_REMOVED');
    assert.equal(j.get(closing.id)?.error?.code, 'DELIVERY_UNCERTAIN');
    const warnings = helper
      .getNode(CONFIG)
      .warn.getCalls()
      .map((c) => String(c.args[0]));
    assert.deepEqual(warnings.sort(), [
      'scb-m2m-config.journal.orphan-poll',
      'scb-m2m-config.journal.orphan-uncertain',
      'scb-m2m-config.journal.orphan-upload',
    ]);
  });

  describe('GET /scb-m2m/deliveries', () => {
    async function threeDeliveries(): Promise<NodeMessage[]> {
      await load(flow(), credentialsOf(ctx.simulator));
      const sent: NodeMessage[] = [];
      for (const n of [1, 2, 3])
        sent.push(await upload({ payload: Buffer.from(`<vinn>${n}</vinn>`), filnamn: `f${n}.xml` }));
      ctx.simulator.faults.failNext(1, { status: 401, match: /\/file\// });
      await caught('up', { payload: Buffer.from('<vinn>4</vinn>'), filnamn: 'f4.xml' });
      return sent;
    }

    it('lists the deliveries newest first, filtered by config, state, since and limit', async () => {
      const sent = await threeDeliveries();
      const all = await helper.request().get(`/scb-m2m/deliveries?config=${CONFIG}`);
      assert.equal(all.status, 200);
      const records = all.body as DeliveryRecord[];
      assert.deepEqual(
        records.map((r) => r.target?.filnamn),
        ['f4.xml', 'f3.xml', 'f2.xml', 'f1.xml'],
      );
      const sentOnly = (await helper.request().get(`/scb-m2m/deliveries?config=${CONFIG}&state=sent`))
        .body as DeliveryRecord[];
      assert.deepEqual(
        sentOnly.map((r) => r.uploadId),
        sent.map((m) => m.uploadId).reverse(),
      );
      const failed = (await helper.request().get(`/scb-m2m/deliveries?state=failed,rejected`)).body as DeliveryRecord[];
      assert.deepEqual(
        failed.map((r) => r.target?.filnamn),
        ['f4.xml'],
        'without config: every journal',
      );
      const limited = (await helper.request().get(`/scb-m2m/deliveries?config=${CONFIG}&limit=2`))
        .body as DeliveryRecord[];
      assert.equal(limited.length, 2);
      const future = new Date(Date.now() + 60_000).toISOString();
      assert.deepEqual((await helper.request().get(`/scb-m2m/deliveries?config=${CONFIG}&since=${future}`)).body, []);
      assert.deepEqual(
        (await helper.request().get(`/scb-m2m/deliveries?config=other-config`)).body,
        [],
        'another config node: its own (empty) journal',
      );
    });

    it('gives a CSV download with a header row and one row per delivery', async () => {
      const sent = await threeDeliveries();
      const res = await helper.request().get(`/scb-m2m/deliveries?config=${CONFIG}&format=csv`);
      assert.equal(res.status, 200);
      const lines = res.text.trim().split('\r\n');
      assert.equal(lines.length, 5);
      const header = lines[0].split(',');
      for (const column of [
        'createdAt',
        'state',
        'filnamn',
        'organisationsnummer',
        'undersokning',
        'referensperiod',
        'filformat',
        'uploadId',
        'sha256',
        'scbMessages',
      ]) {
        assert.ok(header.includes(column), column);
      }
      assert.ok(lines[1].includes('f4.xml') && lines[1].includes('failed'));
      assert.ok(lines[2].includes(String(sent[2].uploadId)));
    });

    it('answers 400 naming the parameter and the fix for a bad query', async () => {
      await load(flow(), credentialsOf(ctx.simulator));
      for (const [query, named] of [
        ['state=done', /state done is not known/],
        ['since=yesterday', /since .* ISO 8601/],
        ['limit=0', /limit .* whole number/],
        ['config=../etc', /config must be/],
        ['format=xml', /format .* json or csv/],
      ] as const) {
        const res = await helper.request().get(`/scb-m2m/deliveries?${query}`);
        assert.equal(res.status, 400, query);
        assert.match((res.body as { error: { message: string } }).error.message, named);
      }
    });
  });

  it('keeps no passphrase and no .pfx bytes in any journal file', async () => {
    const pfx = fs.readFileSync(ctx.simulator.certificates.valid.path);
    await load(flow({}, { certPath: '' }), credentialsOf(ctx.simulator, 'valid', pfx));
    await upload({ payload: Buffer.from('<vinn>secret?</vinn>'), filnamn: 's.xml' });
    ctx.simulator.faults.failNext(1, { status: 401, match: /\/file\// });
    await caught('up', { payload: Buffer.from('<vinn>401</vinn>'), filnamn: 's2.xml' });
    await waitUntil(() => fs.existsSync(path.join(ctx.journalDir, `${CONFIG}.jsonl`)), 'the journal file');
    const passphrase = ctx.simulator.certificates.valid.passphrase;
    for (const file of fs.readdirSync(ctx.journalDir, { recursive: true }) as string[]) {
      const full = path.join(ctx.journalDir, file);
      if (!fs.statSync(full).isFile()) continue;
      const text = fs.readFileSync(full, 'latin1');
      assert.ok(!text.includes(passphrase), `${file} holds the passphrase`);
      assert.ok(!text.includes(pfx.toString('base64').slice(0, 64)), `${file} holds the .pfx (base64)`);
      assert.ok(!fs.readFileSync(full).includes(pfx.subarray(0, 64)), `${file} holds the .pfx bytes`);
    }
  });
});
