/**
 * The delivery journal: what was sent to SCB, when, with which uploadId, and SCB's answer.
 * One journal per config node, one instance of it per process, shared by every node that
 * writes to it (and kept across redeploys, so a node that stops and the one that starts after
 * it see the same records).
 */
import * as path from 'node:path';
import { Journal, type JournalOptions } from './journal';

export {
  Journal,
  journalEvents,
  isJournalId,
  DEFAULT_RETENTION_DAYS,
  type JournalOptions,
  type NewDelivery,
} from './journal';
export * from './types';
export { sha256Of, sha256File } from '../digest';
export { DuplicateGuard, type GuardedContent, type Verdict } from './duplicates';

const open = new Map<string, Promise<Journal>>();

/** The journal of `configId` in `dir`, opened once per process; the options of the first opening hold. */
export function openJournal(dir: string, configId: string, options: JournalOptions = {}): Promise<Journal> {
  const key = `${path.resolve(dir)}\0${configId}`;
  let journal = open.get(key);
  if (!journal) {
    journal = Journal.open(dir, configId, options);
    open.set(key, journal);
    // A journal that could not be read is tried again next time, not remembered as broken.
    journal.catch(() => open.delete(key));
  }
  return journal;
}

/** The journals in `dir` this process has opened (for a search across config nodes). */
export async function openJournals(dir: string): Promise<Journal[]> {
  const prefix = `${path.resolve(dir)}\0`;
  const settled = await Promise.allSettled(
    [...open].filter(([key]) => key.startsWith(prefix)).map(([, journal]) => journal),
  );
  return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
}
