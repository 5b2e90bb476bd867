/** The publish protocol's retry schedule, the reference's numbers. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** ±fraction of each delay, so colliding writers spread out. */
  readonly jitter: number;
  /** Total time a key may spend retrying before it is reported as exhausted. */
  readonly budgetMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 50,
  maxMs: 750,
  multiplier: 1.6,
  jitter: 0.2,
  budgetMs: 5_000,
};

/** Delay before retry number `attempt` (1-based); `random01` comes from the caller (the domain draws no randomness). */
export function backoffDelay(attempt: number, random01: number, p: BackoffPolicy = DEFAULT_BACKOFF): number {
  const base = Math.min(p.maxMs, p.initialMs * p.multiplier ** Math.max(0, attempt - 1));
  return Math.max(0, Math.round(base * (1 + p.jitter * (2 * random01 - 1))));
}
