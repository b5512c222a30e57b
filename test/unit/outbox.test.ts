/** The files waiting in an outbox (lib/outbox.ts), and which of them the journal knows as they are. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError } from '../../lib';
import { Journal } from '../../lib/journal';
import { filesIn } from '../../lib/outbox';
import { SERVER, TARGET } from '../helpers/journal';

describe('outbox: the files waiting in a folder', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scb-outbox-unit-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A file in the outbox with the given modification time (seconds since 1970). */
  function save(name: string, content: string, mtime: number): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    fs.utimesSync(file, mtime, mtime);
    return file;
  }

  it('lists the regular files, oldest first, without hidden, unfinished ones and subfolders', async () => {
    save('V40_b.xml', 'bb', 2_000_000_000);
    save('V40_a.xml', 'a', 1_000_000_000);
    for (const name of ['.hidden.xml', '~lock.xml', 'V40_c.xml~', 'x.tmp', 'y.PART', 'z.partial', 'w.crdownload'])
      save(name, 'not a report', 1_500_000_000);
    fs.mkdirSync(path.join(dir, 'sub.xml'));
    const files = await filesIn(dir);
    assert.deepEqual(
      files.map((f) => [f.name, f.size, f.mtimeMs]),
      [
        ['V40_a.xml', 1, 1_000_000_000_000],
        ['V40_b.xml', 2, 2_000_000_000_000],
      ],
    );
    assert.equal(files[0].path, path.join(dir, 'V40_a.xml'));
  });

  it('with recursive, lists the files in subfolders too, but none in a hidden folder', async () => {
    save('V40_top.xml', 'top', 1_000_000_000);
    fs.mkdirSync(path.join(dir, '9990000045', 'VINN', '2026-10-31', 'V40'), { recursive: true });
    save(path.join('9990000045', 'VINN', '2026-10-31', 'V40', 'V40_deep.xml'), 'deep', 1_100_000_000);
    save(path.join('9990000045', 'VINN', 'x.tmp'), 'unfinished', 1_200_000_000);
    fs.mkdirSync(path.join(dir, '.git'));
    save(path.join('.git', 'HEAD'), 'ref', 1_300_000_000);
    assert.deepEqual(
      (await filesIn(dir, { recursive: true })).map((f) => [path.relative(dir, f.path), f.name]),
      [
        ['V40_top.xml', 'V40_top.xml'],
        [path.join('9990000045', 'VINN', '2026-10-31', 'V40', 'V40_deep.xml'), 'V40_deep.xml'],
      ],
    );
    assert.deepEqual(
      (await filesIn(dir)).map((f) => f.name),
      ['V40_top.xml'],
      'without recursive: the folder only',
    );
  });

  it('names the folder and says what to do when it cannot be read', async () => {
    const missing = path.join(dir, 'missing');
    await assert.rejects(filesIn(missing), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.code, 'FOLDER_UNREADABLE');
      assert.equal(err.field, 'folder');
      assert.match(err.message, new RegExp(`${missing}.*ENOENT.*Create the folder`));
      return true;
    });
  });

  it('knows a file the journal has as it is, in any state, and not once it is saved again', async () => {
    const file = save('V40_2026-10.xml', '<a/>', 1_700_000_000);
    const journal = await Journal.open(path.join(dir, 'journal'), 'cfg');
    const [waiting] = await filesIn(dir);
    assert.equal(journal.knows(waiting), undefined);
    const record = await journal.create({
      target: TARGET,
      server: SERVER,
      environment: 'custom',
      source: { kind: 'path', path: file, size: waiting.size, mtimeMs: waiting.mtimeMs },
      size: waiting.size,
      msg: { _msgid: 'm1' },
      node: { id: 'up', type: 'scb-m2m-upload' },
    });
    await journal.update(record.id, { state: 'rejected' });
    assert.equal(journal.knows(waiting)?.id, record.id, 'rejected, unchanged since: known');
    fs.utimesSync(file, 1_700_000_100, 1_700_000_100);
    const [saved] = await filesIn(dir);
    assert.equal(journal.knows(saved), undefined, 'saved again (a new time): not known');
    assert.equal(journal.knows({ ...waiting, path: path.join(dir, 'other.xml') }), undefined, 'another path');
  });
});
