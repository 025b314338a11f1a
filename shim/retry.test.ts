import { describe, expect, it } from "vitest";
import { backoffDelay, DEFAULT_RETRY, retryUntil } from "./retry.ts";

describe("backoffDelay", () => {
  it.each([
    { retry: 0, random: 0, want: 25 },
    { retry: 0, random: 0.999, want: 50 },
    { retry: 3, random: 0.5, want: 300 },
    { retry: 10, random: 0, want: 1000 },
    { retry: 10, random: 0.999, want: 1999 },
  ])("retry $retry with random $random waits $want ms (half fixed, half jitter, capped)", ({ retry, random, want }) => {
    expect(backoffDelay(retry, DEFAULT_RETRY, random)).toBe(want);
  });
});

describe("retryUntil", () => {
  const clock = () => {
    let now = 0;
    return {
      now: () => now,
      random: () => 0,
      sleep: async (ms: number) => {
        now += ms;
      },
    };
  };

  it("hands each attempt the time it may take: the rest of the deadline, at most maxAttemptMs", async () => {
    const given: number[] = [];
    const c = clock();
    await expect(
      retryUntil(
        async (timeoutMs) => {
          given.push(timeoutMs);
          throw new Error("transient");
        },
        () => true,
        { ...DEFAULT_RETRY, maxAttemptMs: 500, deadline: 700 },
        c,
      ),
    ).rejects.toThrow("transient");
    expect(given[0]).toBe(500);
    expect(given.at(-1)).toBeLessThanOrEqual(700 - 25);
    expect(c.now()).toBe(700);
  });

  it("rethrows a non-transient error at once", async () => {
    let attempts = 0;
    await expect(
      retryUntil(
        async () => {
          attempts++;
          throw new Error("final");
        },
        () => false,
        { ...DEFAULT_RETRY, deadline: 10_000 },
        clock(),
      ),
    ).rejects.toThrow("final");
    expect(attempts).toBe(1);
  });
});
