/**
 * Moving a decided file out of the outbox (lib/move-file): on the same file system and to
 * another one (tmpfs at /dev/shm, where the machine has it), never over another file.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { moveFile } from '../../lib/move-file';

describe('moveFile: a decided file leaves the outbox', () => {
  const dirs: string[] = [];
  const tmp = (base = os.tmpdir()) => {
    const dir = fs.mkdtempSync(path.join(base, 'scb-move-'));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  function file(dir: string, name: string, bytes = 1024): { path: string; content: Buffer } {
    const content = crypto.randomBytes(bytes);
    const full = path.join(dir, name);
    fs.writeFileSync(full, content);
    return { path: full, content };
  }

  it('moves a file into a folder it creates, the content intact', async () => {
    const outbox = tmp();
    const done = path.join(tmp(), 'a', 'done');
    const f = file(outbox, 'V40.xml');
    const to = await moveFile(f.path, done);
    assert.equal(to, path.join(done, 'V40.xml'));
    assert.deepEqual(fs.readFileSync(to), f.content);
    assert.ok(!fs.existsSync(f.path));
  });

  it('never overwrites: a taken name gets (1), (2), ...', async () => {
    const outbox = tmp();
    const done = tmp();
    fs.writeFileSync(path.join(done, 'V40.xml'), 'older');
    fs.writeFileSync(path.join(done, 'V40 (1).xml'), 'older too');
    const f = file(outbox, 'V40.xml');
    const to = await moveFile(f.path, done);
    assert.equal(to, path.join(done, 'V40 (2).xml'));
    assert.equal(fs.readFileSync(path.join(done, 'V40.xml'), 'utf8'), 'older');
    assert.equal(fs.readFileSync(path.join(done, 'V40 (1).xml'), 'utf8'), 'older too');
    assert.deepEqual(fs.readFileSync(to), f.content);
  });

  it('moves across file systems by a copy, then removes the original', async function () {
    if (!fs.existsSync('/dev/shm') || fs.statSync('/dev/shm').dev === fs.statSync(os.tmpdir()).dev) {
      // Where there is no second file system the first test covers the move.
      this.skip();
    }
    const outbox = tmp('/dev/shm');
    const done = tmp();
    fs.writeFileSync(path.join(done, 'big.xml'), 'taken');
    const f = file(outbox, 'big.xml', 20 * 1024 * 1024 + 3);
    const to = await moveFile(f.path, done);
    assert.equal(to, path.join(done, 'big (1).xml'));
    assert.deepEqual(fs.readFileSync(to), f.content);
    assert.ok(!fs.existsSync(f.path));
    assert.equal(fs.readFileSync(path.join(done, 'big.xml'), 'utf8'), 'taken');
  });

  it('fails naming the cause when the source is gone, leaving nothing behind', async () => {
    const done = tmp();
    await assert.rejects(moveFile(path.join(tmp(), 'missing.xml'), done), { code: 'ENOENT' });
    assert.deepEqual(fs.readdirSync(done), []);
  });
});
