/**
 * The duplicate guard: would this content, sent to this target, double a delivery that is (or
 * may be) at SCB? Content that matches has the same size, so a file is hashed only when an
 * earlier delivery of the same size is on record; otherwise the answer is known at once and the
 * file's SHA-256 is taken while it is sent (lib/digest.ts), never in a pass of its own.
 */
import { promises as fs } from 'node:fs';
import { sha256File } from '../digest';
import { isOfFile, type Journal } from './journal';
import type { DeliveryRecord, DeliveryTarget } from './types';

export interface GuardedContent {
  size: number;
  /** Known already (an in-memory payload). */
  sha256?: string;
  /** A file on disk, as stated before it is sent. */
  file?: { path: string; mtimeMs: number };
}

export interface Verdict {
  /** The newest earlier delivery the content would double. */
  earlier?: DeliveryRecord;
  /** The content's SHA-256 if it had to be computed (or was known). */
  sha256?: string;
}

/** null: that record's content cannot be told any more (its file changed or is gone), so it cannot be this. */
type Known = string | null;

export class DuplicateGuard {
  private ours?: string;
  /** Hashes of earlier deliveries' files, taken now, for records whose upload has not hashed them yet. */
  private readonly theirs = new Map<string, Known>();

  constructor(
    private readonly journals: readonly Journal[],
    private readonly server: string,
    private readonly target: DeliveryTarget,
    private readonly content: GuardedContent,
    private readonly hashFile: (path: string) => Promise<{ sha256: string }> = sha256File,
  ) {
    this.ours = content.sha256;
  }

  /**
   * Decides, then calls `commit` with the verdict in the same synchronous step: with no await
   * between the two, a second upload of the same content finds what `commit` recorded.
   */
  async run<T>(commit: (verdict: Verdict) => T): Promise<T> {
    for (;;) {
      const verdict = this.decide();
      if (verdict) return commit(verdict);
      await this.prepare();
    }
  }

  /** Earlier deliveries of the same size to the same target on the same server, newest first. */
  private candidates(): DeliveryRecord[] {
    return this.journals
      .flatMap((j) => j.atScb(this.server, this.target, this.content.size))
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  }

  /** The same file, unchanged since that delivery stated it: the same bytes without reading them. */
  private sameFile(r: DeliveryRecord): boolean {
    const file = this.content.file;
    return file !== undefined && isOfFile(r, { ...file, size: this.content.size });
  }

  /** The verdict, or undefined while a hash it needs is not known yet. */
  private decide(): Verdict | undefined {
    for (const r of this.candidates()) {
      if (this.sameFile(r)) return { earlier: r, sha256: this.ours };
      const theirs = r.sha256 ?? this.theirs.get(r.id);
      if (theirs === undefined || (theirs !== null && this.ours === undefined)) return undefined;
      if (theirs === this.ours) return { earlier: r, sha256: this.ours };
    }
    return { sha256: this.ours };
  }

  /** Computes the hashes decide() is missing. */
  private async prepare(): Promise<void> {
    for (const r of this.candidates()) {
      if (this.sameFile(r)) return;
      if (r.sha256 === undefined && !this.theirs.has(r.id)) this.theirs.set(r.id, await this.hashOf(r));
      if ((r.sha256 ?? this.theirs.get(r.id)) !== null && this.ours === undefined) {
        this.ours = (await this.hashFile((this.content.file as { path: string }).path)).sha256;
      }
    }
  }

  /**
   * The hash of an earlier delivery's file that its upload has not taken yet (it is on its way):
   * from the file itself if it is as that delivery stated it. Changed or gone, its upload stops
   * (lib/source-file.ts) or is not resumed, so it cannot be this content at SCB.
   */
  private async hashOf(r: DeliveryRecord): Promise<Known> {
    if (r.source?.kind !== 'path') return null;
    const { path, size, mtimeMs } = r.source;
    const stat = await fs.stat(path).catch(() => undefined);
    if (!stat?.isFile() || stat.size !== size || stat.mtimeMs !== mtimeMs) return null;
    return (await this.hashFile(path)).sha256;
  }
}
