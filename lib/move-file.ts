/**
 * Moves a decided file out of the outbox without ever overwriting one: a hard link then unlink
 * on the same file system (atomic, refuses an existing name), else a streamed copy to a new name
 * then unlink. Memory stays flat whatever the file's size.
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** `name.xml`, then `name (1).xml`, `name (2).xml`, ... */
function candidate(dir: string, base: string, n: number): string {
  if (n === 0) return path.join(dir, base);
  const ext = path.extname(base);
  return path.join(dir, `${base.slice(0, base.length - ext.length)} (${n})${ext}`);
}

/** Where `from` ends up: a free name in `dir`. Creates `dir` when missing. */
export async function moveFile(from: string, dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const base = path.basename(from);
  for (let n = 0; n < 1000; n++) {
    const to = candidate(dir, base, n);
    if (path.resolve(to) === path.resolve(from)) return to;
    try {
      await fs.link(from, to);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      // Another file system, or one without hard links: copy.
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      try {
        await pipeline(createReadStream(from), createWriteStream(to, { flags: 'wx' }));
      } catch (copyErr) {
        if ((copyErr as NodeJS.ErrnoException).code === 'EEXIST') continue;
        await fs.rm(to, { force: true });
        throw copyErr;
      }
    }
    await fs.unlink(from);
    return to;
  }
  throw new Error(`No free name for ${base} in ${dir}.`);
}
