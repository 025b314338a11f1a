// Retries an attempt while it fails transiently, with jittered exponential backoff, until a deadline.
// Time and randomness come in as parameters so the schedule is unit-testable.

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** In [0, 1). */
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

export interface RetryPolicy {
  /** Epoch milliseconds after which no attempt starts and a running one times out. */
  deadline: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Longest single attempt (a hung connection must leave time for another try). */
  maxAttemptMs: number;
  /**
   * No retry starts with less time than this before the deadline: an attempt cut to a few
   * milliseconds can only time out, and its timeout would hide the real reason of the one before.
   */
  minAttemptMs?: number;
}

export const DEFAULT_RETRY: Omit<RetryPolicy, "deadline"> = {
  initialDelayMs: 50,
  maxDelayMs: 2000,
  maxAttemptMs: 10_000,
  minAttemptMs: 100,
};

/** Delay before retry number `retry` (0-based): exponential, capped, with "equal jitter" (half fixed, half random). */
export function backoffDelay(retry: number, policy: Omit<RetryPolicy, "deadline">, random: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** retry);
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

/**
 * Runs `attempt(timeoutMs)` until it succeeds, fails with a non-transient error (rethrown at once), or
 * the deadline leaves no room for another try (the last transient error is rethrown).
 */
export async function retryUntil<T>(
  attempt: (timeoutMs: number) => Promise<T>,
  isTransient: (error: unknown) => boolean,
  policy: RetryPolicy,
  clock: Clock = systemClock,
  onRetry: (error: unknown, delayMs: number) => void = () => undefined,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    const remaining = policy.deadline - clock.now();
    try {
      return await attempt(Math.max(1, Math.min(remaining, policy.maxAttemptMs)));
    } catch (error) {
      if (!isTransient(error)) throw error;
      const delay = backoffDelay(retry, policy, clock.random());
      const left = policy.deadline - clock.now();
      if (left <= 0) throw error;
      onRetry(error, Math.min(delay, left));
      await clock.sleep(Math.min(delay, left));
      const after = policy.deadline - clock.now();
      if (after <= 0) throw error;
      if (after <= (policy.minAttemptMs ?? 0)) {
        // Too little time for a useful try: wait out the deadline and report the real reason.
        await clock.sleep(after);
        throw error;
      }
    }
  }
}
