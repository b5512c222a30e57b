/**
 * The files waiting in an outbox folder. A folder watch sees only files saved while it runs:
 * what was saved while Node-RED was stopped, or just before a deploy, is found by listing.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ValidationError } from './errors';

/** Hidden files, and the names writers give a file until it is complete: not reports. */
export const NOT_A_REPORT = /^[.~]|~$|\.(tmp|part|partial|crdownload)$/i;

export interface WaitingFile {
  path: string;
  /** The file's name (without its folders). */
  name: string;
  size: number;
  mtimeMs: number;
}

/**
 * The regular files in `dir` (`recursive`: and in its subfolders), oldest first, without hidden
 * and unfinished ones, nor any in a hidden folder.
 */
export async function filesIn(dir: string, { recursive = false } = {}): Promise<WaitingFile[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir, { recursive });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ValidationError(`The outbox folder ${dir} cannot be read (${reason}).`, {
      code: 'FOLDER_UNREADABLE',
      field: 'folder',
      value: dir,
      hint: 'Create the folder or choose the right one, and check that Node-RED may read it.',
      cause: err,
    });
  }
  const found = await Promise.all(
    names
      .filter((relative) => !relative.split(path.sep).some((part) => NOT_A_REPORT.test(part)))
      .map(async (relative): Promise<WaitingFile | undefined> => {
        const file = path.join(dir, relative);
        // Gone since it was listed (moved away, say): not waiting any more.
        const stat = await fs.stat(file).catch(() => undefined);
        return stat?.isFile()
          ? { path: file, name: path.basename(relative), size: stat.size, mtimeMs: stat.mtimeMs }
          : undefined;
      }),
  );
  return found.filter((f): f is WaitingFile => f !== undefined).sort((a, b) => a.mtimeMs - b.mtimeMs);
}
