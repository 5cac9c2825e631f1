import { isRetryable } from "@spillway/errors";

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  shouldRetry?: (err: unknown) => boolean;
  sleep?: (ms: number) => Promise<void>;
  /** In [0, 1); injectable so tests see the delays. */
  random?: () => number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 4, baseDelayMs: 200, maxDelayMs: 5000 };

/** The delay before retry number `attempt` (1-based): exponential, capped, with full jitter. */
export function backoffDelay(attempt: number, options: Pick<RetryOptions, "baseDelayMs" | "maxDelayMs">, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  // Full jitter: retries of many runs that failed together do not come back together.
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** Runs `task`, retrying transient failures (UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED) with backoff. */
export async function withRetry<T>(task: (attempt: number) => Promise<T>, options: RetryOptions = DEFAULT_RETRY): Promise<T> {
  const shouldRetry = options.shouldRetry ?? isRetryable;
  const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await task(attempt);
    } catch (err) {
      if (attempt >= options.attempts || !shouldRetry(err)) throw err;
      const delay = backoffDelay(attempt, options, random);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
