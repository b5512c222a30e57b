/**
 * The duplicate guard (lib/journal/duplicates.ts) with files: it reads a file only when an
 * earlier delivery of the same size must be compared, and decides and records in one step.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DuplicateGuard,
  Journal,
  sha256File,
  sha256Of,
  type DeliveryRecord,
  type GuardedContent,
} from '../../lib/journal';
import { SERVER, TARGET } from '../helpers/journal';

describe('duplicate guard: files are hashed only when an earlier delivery of their size is on record', () => {
  let dir: string;
  let journal: Journal;
  /** The files the guard hashed. */
  let hashed: string[];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-duplicates-unit-'));
    journal = await Journal.open(dir, 'cfg', { sync: false });
    hashed = [];
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function file(name: string, bytes: Buffer): GuardedContent & { file: { path: string; mtimeMs: number } } {
    const at = path.join(dir, name);
    fs.writeFileSync(at, bytes);
    return { size: bytes.length, file: { path: at, mtimeMs: fs.statSync(at).mtimeMs } };
  }

  function guard(content: GuardedContent): DuplicateGuard {
    return new DuplicateGuard([journal], SERVER, TARGET, content, (p) => {
      hashed.push(path.basename(p));
      return sha256File(p);
    });
  }

  /** A delivery of a file on record, as the upload node makes it (no SHA-256 until its data segments are read). */
  function recorded(content: ReturnType<typeof file>, extra: Partial<DeliveryRecord> = {}) {
    return journal.create({
      target: TARGET,
      server: SERVER,
      source: { kind: 'path', path: content.file.path, size: content.size, mtimeMs: content.file.mtimeMs },
      size: content.size,
      ...extra,
    });
  }

  it('decides without reading the file when no earlier delivery has its size', async () => {
    await recorded(file('small.xml', Buffer.from('<a/>')), { sha256: sha256Of(Buffer.from('<a/>')) });
    const verdict = await guard(file('big.xml', crypto.randomBytes(4096))).run((v) => v);
    assert.deepEqual(verdict, { sha256: undefined });
    assert.deepEqual(hashed, []);
  });

  it('knows the same file dropped again (same path, size and time) without reading it', async () => {
    const content = file('report.xml', crypto.randomBytes(4096));
    const first = await recorded(content);
    assert.equal((await guard(content).run((v) => v.earlier))?.id, first.id);
    assert.deepEqual(hashed, []);
  });

  it('compares by SHA-256 when an earlier delivery has the size: the same bytes under another path are a duplicate', async () => {
    const bytes = crypto.randomBytes(4096);
    const first = await recorded(file('first.xml', bytes), { sha256: sha256Of(bytes), state: 'accepted' });
    assert.equal((await guard(file('copy.xml', bytes)).run((v) => v.earlier))?.id, first.id);
    assert.deepEqual(hashed, ['copy.xml']);
  });

  it('hashes an earlier delivery still on its way when its file is as it was: other bytes of the same size are not a duplicate', async () => {
    await recorded(file('first.xml', crypto.randomBytes(4096)));
    const other = file('other.xml', crypto.randomBytes(4096));
    const verdict = await guard(other).run((v) => v);
    assert.equal(verdict.earlier, undefined);
    assert.equal(verdict.sha256, sha256Of(fs.readFileSync(other.file.path)), 'the hash it took is kept for the record');
    assert.deepEqual(hashed.sort(), ['first.xml', 'other.xml']);
  });

  it('hashes an earlier delivery still on its way when its file is as it was: the same bytes under another path are a duplicate', async () => {
    const bytes = crypto.randomBytes(4096);
    const first = await recorded(file('first.xml', bytes));
    assert.equal((await guard(file('copy.xml', bytes)).run((v) => v.earlier))?.id, first.id);
    assert.deepEqual(hashed.sort(), ['copy.xml', 'first.xml']);
  });

  it('does not count an earlier delivery whose file changed since: its upload stops, so it cannot be at SCB', async () => {
    const changed = file('first.xml', crypto.randomBytes(4096));
    await recorded(changed);
    fs.utimesSync(changed.file.path, new Date(), new Date(Date.now() - 60_000));
    assert.equal(await guard(file('other.xml', crypto.randomBytes(4096))).run((v) => v.earlier), undefined);
    assert.deepEqual(hashed, [], 'nothing to compare, nothing read');
  });

  it('two uploads of one file at once: the one that records first is the earlier delivery of the other', async () => {
    // An earlier delivery of the same size makes both guards hash (and so wait) before deciding.
    await recorded(file('old.xml', crypto.randomBytes(4096)), { sha256: 'f'.repeat(64), state: 'accepted' });
    const content = file('report.xml', crypto.randomBytes(4096));
    const commit = (v: { earlier?: DeliveryRecord }) => (v.earlier ? v.earlier : recorded(content));
    const [a, b] = await Promise.all([guard(content).run(commit), guard(content).run(commit)]);
    const made = journal.list().filter((r) => r.source?.kind === 'path' && r.source.path === content.file.path);
    assert.equal(made.length, 1, 'one record');
    assert.deepEqual([a.id, b.id], [made[0].id, made[0].id]);
  });
});
