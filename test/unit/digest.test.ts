/** The SHA-256 an upload takes from the chunks it reads (lib/digest.ts): each byte once, in order. */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { RunningDigest, sha256Of } from '../../lib/digest';

describe('digest: the SHA-256 of the bytes an upload reads', () => {
  const data = crypto.randomBytes(10_000);
  const chunk = (from: number, to: number) => data.subarray(from, to);

  it('is the SHA-256 of the whole once every byte came, whatever came twice or overlapped', async () => {
    const digest = new RunningDigest(data.length);
    digest.feed(0, chunk(0, 3000));
    digest.feed(0, chunk(0, 1000)); // a segment sent again
    digest.feed(2000, chunk(2000, 5000)); // overlaps what is hashed
    await digest.settle();
    assert.equal(digest.digest(), undefined, 'not every byte yet');
    digest.feed(0, chunk(0, 5000)); // a restart from segment 0
    digest.feed(5000, chunk(5000, 10_000));
    await digest.settle();
    assert.equal(digest.digest(), sha256Of(data));
    digest.feed(0, chunk(0, 10)); // after the end: changes nothing
    await digest.settle();
    assert.equal(digest.digest(), sha256Of(data));
  });

  it('skips bytes ahead of a gap until the gap is filled', async () => {
    const digest = new RunningDigest(data.length);
    digest.feed(4000, chunk(4000, 10_000));
    await digest.settle();
    assert.equal(digest.digest(), undefined);
    digest.feed(0, chunk(0, 4000));
    await digest.settle();
    assert.equal(digest.digest(), undefined, 'the part before the gap came first only now');
    digest.feed(4000, chunk(4000, 10_000));
    await digest.settle();
    assert.equal(digest.digest(), sha256Of(data));
  });

  it('hashes nothing until settled, then one chunk per turn of the event loop', async () => {
    const digest = new RunningDigest(data.length);
    for (let at = 0; at < data.length; at += 2500) digest.feed(at, chunk(at, at + 2500));
    assert.equal(digest.digest(), undefined, 'every byte was fed, none settled');
    // Each turn of the event loop runs one of these and one chunk of the hash, in turn.
    let turns = 0;
    const count = () => {
      turns++;
      if (turns < 10) setImmediate(count);
    };
    setImmediate(count);
    const settled = digest.settle();
    assert.equal(digest.settle(), settled, 'one drain however often it is asked for');
    await settled;
    assert.equal(turns, 4, 'four chunks took four turns, with other work between them');
    assert.equal(digest.digest(), sha256Of(data));
  });

  it('settles chunks fed while it drains, and again after it drained', async () => {
    const digest = new RunningDigest(data.length);
    digest.feed(0, chunk(0, 5000));
    const first = digest.settle();
    digest.feed(5000, chunk(5000, 8000));
    await first;
    assert.equal(digest.digest(), undefined);
    digest.feed(8000, chunk(8000, 10_000));
    await digest.settle();
    assert.equal(digest.digest(), sha256Of(data));
  });

  it('is the SHA-256 of nothing for an empty file', () => {
    assert.equal(new RunningDigest(0).digest(), sha256Of(Buffer.alloc(0)));
  });
});
