/**
 * Retrying with exponential backoff and full jitter (delay = random × min(max, min × 2^n)),
 * bounded by a number of retries and by the time elapsed since the first attempt.
 * Only errors marked retryable (server faults, network) are retried.
 */
import { isM2MError, type M2MError } from './errors';
import type { RetryOptions } from './types';

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 4, minDelayMs: 500, maxDelayMs: 30_000, maxElapsedMs: 600_000 };

export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY };
  for (const key of Object.keys(DEFAULT_RETRY) as Array<keyof RetryPolicy>) {
    const value = options[key];
    if (value !== undefined) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new RangeError(`retry.${key} must be a number of 0 or more, not ${String(value)}.`);
      }
      policy[key] = value;
    }
  }
  return policy;
}

/** The delay before retry number `retry` (0-based). */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** retry);
  return Math.floor(random() * ceiling);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryHooks {
  signal?: AbortSignal;
  /** Called before each retry's wait. */
  onRetry?: (error: M2MError, retry: number, delayMs: number) => void;
  random?: () => number;
}

/** Runs `attempt` until it succeeds, fails with a non-retryable error, or the policy's bounds are reached. */
export async function withRetry<T>(attempt: () => Promise<T>, policy: RetryPolicy, hooks: RetryHooks = {}): Promise<T> {
  const started = Date.now();
  for (let retry = 0; ; retry++) {
    if (hooks.signal?.aborted) throw hooks.signal.reason;
    try {
      return await attempt();
    } catch (err) {
      if (hooks.signal?.aborted) throw hooks.signal.reason;
      if (!isM2MError(err) || !err.retryable || retry >= policy.maxRetries) throw err;
      const delay = backoffDelay(retry, policy, hooks.random);
      if (Date.now() - started + delay > policy.maxElapsedMs) throw err;
      hooks.onRetry?.(err, retry + 1, delay);
      await sleep(delay, hooks.signal);
    }
  }
}
