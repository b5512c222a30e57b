/** Limits on running tasks: a FIFO limit on how many run at once (a queued task whose signal aborts leaves the queue), and one at a time per key. */

interface Waiter {
  start: () => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly limit: number) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `task` when a place is free. */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.limit) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { start: resolve, signal };
      if (signal) {
        waiter.onAbort = () => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiting.push(waiter);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (!next) {
      this.running--;
      return;
    }
    // The place passes straight to the next waiter.
    if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
    next.start();
  }
}

/** Waits for `promise` but gives up as soon as `signal` aborts (the promise itself runs on). */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Runs tasks of the same key one after the other, each after every earlier one has settled;
 * tasks of different keys run side by side.
 */
export class OneAtATime {
  /** The last task in flight or waiting for each key. */
  private readonly last = new Map<string, Promise<void>>();

  async run<T>(key: string, signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    const earlier = this.last.get(key);
    const mine = (earlier ? untilAborted(earlier, signal) : Promise.resolve()).then(task);
    // The next one waits for this one and for every one before it, even if this one was aborted while waiting.
    const done = Promise.allSettled([earlier, mine]).then(() => undefined);
    this.last.set(key, done);
    try {
      return await mine;
    } finally {
      if (this.last.get(key) === done) this.last.delete(key);
    }
  }
}
