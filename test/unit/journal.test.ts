/**
 * The delivery journal alone (lib/journal, no Node-RED): records and their changes, what survives
 * a reopen, a torn last line, compaction and retention, the duplicate rule, the spool.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DuplicateGuard,
  Journal,
  journalEvents,
  openJournal,
  sha256File,
  sha256Of,
  type DeliveryRecord,
  type DeliveryTarget,
  type NewDelivery,
} from '../../lib/journal';
import { SERVER, TARGET } from '../helpers/journal';

function delivery(content: string, extra: Partial<NewDelivery> = {}): NewDelivery {
  return {
    target: TARGET,
    server: SERVER,
    environment: 'custom',
    source: { kind: 'memory', encoding: 'utf8' },
    size: Buffer.byteLength(content),
    sha256: sha256Of(Buffer.from(content)),
    msg: { _msgid: 'm1', topic: 'monthly' },
    node: { id: 'up', type: 'scb-m2m-upload' },
    ...extra,
  };
}

describe('journal: the delivery record on disk', () => {
  let dir: string;
  const logged: string[] = [];
  const log = (level: string, message: string) => {
    if (level === 'warn') logged.push(message);
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-journal-unit-'));
    logged.length = 0;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const lines = (configId = 'cfg') =>
    fs
      .readFileSync(path.join(dir, `${configId}.jsonl`), 'utf8')
      .split('\n')
      .filter((l) => l !== '');

  it('keeps every change with its time, one JSON line per change, and reads it back the same after a reopen', async () => {
    const journal = await Journal.open(dir, 'cfg', { log });
    const created = await journal.create(delivery('<a/>'));
    await journal.update(created.id, { state: 'sending', segment: 1, segments: 2 });
    await journal.update(created.id, { state: 'sending', segment: 2, segments: 2 });
    await journal.update(created.id, { state: 'closing' });
    await journal.update(created.id, { state: 'sent', uploadId: 'd-1', timeStamp: '2026-11-30T10:00:00' });
    const last = journal.get(created.id) as DeliveryRecord;
    assert.deepEqual(
      last.changes.map((c) => c.state),
      ['queued', 'sending', 'closing', 'sent'],
      'a state change is recorded once; segment counts update the record',
    );
    assert.equal(last.changes[1].segment, 1);
    assert.equal(last.changes[3].uploadId, 'd-1');
    assert.ok(last.changes.every((c) => !Number.isNaN(Date.parse(c.at))));
    assert.equal(lines().length, 5, 'append-only: one line per change');
    for (const line of lines()) assert.equal((JSON.parse(line) as DeliveryRecord).id, created.id);

    const reopened = await Journal.open(dir, 'cfg', { log });
    assert.deepEqual(reopened.get(created.id), last);
    assert.equal(reopened.findByUploadId('d-1')?.id, created.id);
    assert.deepEqual(logged, []);
  });

  it('skips a torn last line (a crash while writing) with a log line, keeps the earlier state, and writes on cleanly', async () => {
    const journal = await Journal.open(dir, 'cfg');
    const created = await journal.create(delivery('<a/>'));
    await journal.update(created.id, { state: 'sending', segment: 1, segments: 3 });
    // What a crash in the middle of the next write leaves: part of a line, no newline.
    fs.appendFileSync(path.join(dir, 'cfg.jsonl'), JSON.stringify({ ...created, state: 'closing' }).slice(0, 40));

    const reopened = await Journal.open(dir, 'cfg', { log });
    assert.equal(reopened.get(created.id)?.state, 'sending', 'the state before the torn line');
    assert.equal(logged.length, 1);
    assert.match(logged[0], /last line was cut short.*skipped/);
    await reopened.update(created.id, { state: 'closing' });
    const again = await Journal.open(dir, 'cfg', { log });
    assert.equal(again.get(created.id)?.state, 'closing', 'the line after the torn one is read');
    for (const line of lines())
      assert.doesNotThrow(() => JSON.parse(line), 'every line is whole: none glued to a torn one');
    assert.equal(logged.length, 1, `the torn line was dropped by the rewrite: said once (${logged.join(' / ')})`);
  });

  it('skips a line in the middle that is not a record, and says which', async () => {
    const journal = await Journal.open(dir, 'cfg');
    await journal.create(delivery('<a/>'));
    fs.appendFileSync(path.join(dir, 'cfg.jsonl'), 'not json\n');
    const second = await (await Journal.open(dir, 'cfg', { log })).create(delivery('<b/>'));
    assert.match(logged.join('\n'), /line 2 is not a whole record/);
    const reopened = await Journal.open(dir, 'cfg');
    assert.equal(reopened.size, 2);
    assert.ok(reopened.get(second.id));
  });

  it('compacts to one line per record, dropping decided records past the retention period but never one in flight', async () => {
    const journal = await Journal.open(dir, 'cfg');
    const old = await journal.create(delivery('<old/>'));
    await journal.update(old.id, { state: 'accepted' });
    const oldInFlight = await journal.create(delivery('<in-flight/>'));
    const recent = await journal.create(delivery('<recent/>'));
    await journal.update(recent.id, { state: 'rejected' });
    // Age two of them by 500 days, as the file would hold them.
    const aged = lines().map((line) => {
      const r = JSON.parse(line) as DeliveryRecord;
      return JSON.stringify(
        r.id === recent.id ? r : { ...r, updatedAt: new Date(Date.now() - 500 * 86_400_000).toISOString() },
      );
    });
    fs.writeFileSync(path.join(dir, 'cfg.jsonl'), `${aged.join('\n')}\n`);

    const reopened = await Journal.open(dir, 'cfg', { retentionDays: 400 });
    assert.equal(reopened.get(old.id), undefined, 'decided and 500 days old: dropped');
    assert.ok(reopened.get(oldInFlight.id), 'in flight: kept whatever its age');
    assert.ok(reopened.get(recent.id));
    assert.equal(lines().length, 2, 'rewritten with one line per kept record');
    const longer = await Journal.open(dir, 'cfg', { retentionDays: 600 });
    assert.equal(longer.size, 2);
  });

  it('bounds its growth: superseded lines are compacted away as it is written', async () => {
    const journal = await Journal.open(dir, 'cfg', { sync: false });
    const r = await journal.create(delivery('<a/>'));
    for (let i = 1; i <= 2500; i++) await journal.update(r.id, { state: 'sending', segment: i, segments: 2500 });
    assert.ok(lines().length < 2100, `${lines().length} lines for one record`);
    assert.equal((await Journal.open(dir, 'cfg')).get(r.id)?.segment, 2500);
  });

  it('finds the earlier delivery of the same content to the same target on the same server, while it is or may be at SCB', async () => {
    const journal = await Journal.open(dir, 'cfg');
    const first = await journal.create(delivery('<a/>'));
    const earlier = (target: DeliveryTarget, content = '<a/>', server = SERVER) =>
      new DuplicateGuard([journal], server, target, {
        size: Buffer.byteLength(content),
        sha256: sha256Of(Buffer.from(content)),
      }).run((verdict) => verdict.earlier?.id);
    assert.equal(await earlier(TARGET), first.id, 'queued blocks');
    for (const state of ['sending', 'closing', 'sent', 'pending', 'accepted', 'uncertain'] as const) {
      await journal.update(first.id, { state });
      assert.equal(await earlier(TARGET), first.id, `${state} blocks`);
    }
    for (const state of ['rejected', 'failed', 'interrupted'] as const) {
      await journal.update(first.id, { state });
      assert.equal(await earlier(TARGET), undefined, `${state} does not block`);
    }
    await journal.update(first.id, { state: 'accepted' });
    assert.equal(await earlier({ ...TARGET, referensperiod: '2026-11-30' }), undefined, 'another period');
    assert.equal(await earlier({ ...TARGET, version: '2' }), undefined, 'another version');
    assert.equal(await earlier(TARGET, '<a/>', 'https://m2m.gdb.scb.se/m2m/v2/'), undefined, 'another server');
    assert.equal(await earlier(TARGET, '<b/>'), undefined, 'other content of the same size');
    assert.equal(await earlier(TARGET, '<ab/>'), undefined, 'other content');
    assert.equal(
      await earlier({ ...TARGET, undersokning: 'vinn', filnamn: 'renamed.xml' }),
      first.id,
      'the same file under another name',
    );
  });

  it('keeps an in-memory payload in its spool while in flight and deletes it on request', async () => {
    const journal = await Journal.open(dir, 'cfg');
    const r = await journal.create(delivery('<a/>'));
    await journal.spool(r.id, Buffer.from('<a/>'));
    assert.deepEqual(await journal.readSpool(r.id), Buffer.from('<a/>'));
    await journal.dropSpool(r.id);
    assert.equal(await journal.readSpool(r.id), undefined);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'cfg.spool')), []);
  });

  it('refuses a config id that could name a path outside its folder', async () => {
    for (const id of ['../x', 'a/b', '', '..']) await assert.rejects(Journal.open(dir, id), /Not a config node id/);
  });

  it('is one instance per folder and config node in a process, and tells every change to journalEvents', async () => {
    const a = await openJournal(dir, 'shared');
    assert.equal(await openJournal(dir, 'shared'), a);
    const seen: DeliveryRecord[] = [];
    const listener = (r: DeliveryRecord) => seen.push(r);
    journalEvents.on('change', listener);
    try {
      const r = await a.create(delivery('<a/>'));
      await a.update(r.id, { state: 'failed', error: { kind: 'server', code: 'HTTP_500', message: 'fault at SCB' } });
      assert.deepEqual(
        seen.map((s) => s.state),
        ['queued', 'failed'],
      );
      assert.equal(seen[1].changes.at(-1)?.error?.code, 'HTTP_500');
    } finally {
      journalEvents.removeListener('change', listener);
    }
  });

  it('hashes a file as a stream: the same SHA-256 as the bytes', async () => {
    const file = path.join(dir, 'f.xml');
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
    fs.writeFileSync(file, bytes);
    assert.deepEqual(await sha256File(file), { sha256: sha256Of(bytes), size: bytes.length });
  });
});
