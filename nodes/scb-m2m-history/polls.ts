/**
 * The uploads a history node is polling right now, by poll. Each poll is its own chain of
 * timers; this registry knows which uploadIds are in progress (the node's status) and keeps them
 * in the node's context, so that a restart or a redeploy resumes them: with a persistent context
 * store (localfilesystem) they survive a restart of Node-RED, with the memory store a
 * redeploy only, and only when settings.js configures it (`contextStorage`): without that setting
 * Node-RED deletes a node's context whenever the node stops, redeploys included.
 */
import type { NodeMessage } from '../shared/red';

/** What a poll needs to resume: the upload, when to give up, and the msg to answer with. */
export interface SavedPoll {
  uploadId: string;
  /** Epoch milliseconds. */
  deadline: number;
  msg: NodeMessage;
}

/** The part of a node's context the registry uses (Node-RED's async form, any store). */
export interface PollStore {
  get(key: string, callback: (err: Error | null, value: unknown) => void): void;
  set(key: string, value: unknown, callback: (err?: Error | null) => void): void;
}

const STORE_KEY = 'scbM2mPolls';

function isSavedPoll(value: unknown): value is SavedPoll {
  const p = value as SavedPoll;
  return !!p && typeof p === 'object' && typeof p.uploadId === 'string' && typeof p.deadline === 'number' && !!p.msg && typeof p.msg === 'object';
}

/** A copy of msg that a context store can write as JSON: http req/res and cycles are left out. */
function storable(msg: NodeMessage): NodeMessage {
  try {
    return JSON.parse(JSON.stringify(msg, (key, value: unknown) => (key === 'req' || key === 'res' ? undefined : value))) as NodeMessage;
  } catch {
    return { _msgid: msg._msgid, uploadId: msg.uploadId };
  }
}

export class PollRegistry {
  private readonly polls = new Map<number, SavedPoll>();
  private nextKey = 0;
  /** Until the saved polls are read, writing would overwrite them. */
  private loaded = false;
  /** Closing: polls that stop now are not finished and stay saved for the next node. */
  private frozen = false;

  constructor(
    private readonly onChange: (count: number) => void,
    private readonly store: PollStore,
    private readonly onError: (err: Error) => void,
  ) {}

  get size(): number {
    return this.polls.size;
  }

  /** Reads the polls a previous node (before a restart or redeploy) left unfinished; each goes to `resume`. */
  restore(resume: (poll: SavedPoll) => void): void {
    this.store.get(STORE_KEY, (err, value) => {
      if (err) this.onError(err);
      this.loaded = true;
      const saved = Array.isArray(value) ? value.filter(isSavedPoll) : [];
      for (const poll of saved) resume(poll);
      this.save();
    });
  }

  add(uploadId: string, deadline: number, msg: NodeMessage): number {
    const key = this.nextKey++;
    this.polls.set(key, { uploadId, deadline, msg: storable(msg) });
    this.onChange(this.polls.size);
    this.save();
    return key;
  }

  delete(key: number): void {
    if (!this.polls.delete(key)) return;
    this.onChange(this.polls.size);
    this.save();
  }

  /** Closing: stops writing, so the unfinished polls stay saved; answers their upload ids. */
  freeze(): string[] {
    this.frozen = true;
    return [...this.polls.values()].map((p) => p.uploadId);
  }

  private save(): void {
    if (!this.loaded || this.frozen) return;
    this.store.set(STORE_KEY, [...this.polls.values()], (err) => {
      if (err) this.onError(err);
    });
  }
}
