/**
 * The uploads a history node is polling right now, by poll. Each poll is its own chain of
 * timers; this registry only knows which uploadIds are in progress, which is what the node's
 * status shows and what a restart would need to resume them.
 */
export class PollRegistry {
  private readonly polls = new Map<number, string>();
  private nextKey = 0;

  constructor(private readonly onChange: (count: number) => void) {}

  get size(): number {
    return this.polls.size;
  }

  add(uploadId: string): number {
    const key = this.nextKey++;
    this.polls.set(key, uploadId);
    this.onChange(this.polls.size);
    return key;
  }

  delete(key: number): void {
    if (this.polls.delete(key)) this.onChange(this.polls.size);
  }
}
