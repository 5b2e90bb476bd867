/** How the client retries a 503 (and a request that could not connect): exponential backoff with jitter. */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 turns retries off. Default 4. */
  readonly attempts?: number;
  /** The first wait; doubled each time. Default 200 ms. */
  readonly baseDelayMs?: number;
  /** The longest wait. Default 3 s. */
  readonly maxDelayMs?: number;
}

export const DEFAULT_RETRY: Required<RetryPolicy> = { attempts: 4, baseDelayMs: 200, maxDelayMs: 3_000 };

/** The wait before attempt `attempt + 1` (attempt counts from 1): full jitter, so clients do not retry in step. */
export function backoffMs(policy: Required<RetryPolicy>, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
