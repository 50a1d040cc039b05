/** Exponential backoff with jitter and a cap. */
export interface RetryPolicy {
  /** Attempts before a batch is dead-lettered. */
  maxAttempts: number;
  /** Delay after the first failure, in ms. */
  baseMs: number;
  /** Upper bound of any delay, in ms. */
  maxMs: number;
  /** Share of the delay drawn at random, 0..1, so a fleet does not retry in lockstep. */
  jitter: number;
}

/**
 * Delay before retry number `attempt` (1 = after the first failure): `base * 2^(attempt-1)`, capped
 * at `maxMs`, of which the share `jitter` is random ("equal jitter"). `random` is injectable so the
 * function stays pure for tests.
 */
export function retryDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^30 already exceeds any sane cap; clamping keeps the arithmetic finite.
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(n - 1, 30));
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(exp * (1 - jitter) + exp * jitter * random());
}
