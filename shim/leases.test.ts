import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { keepLeases, type LeaseKeeperOptions, marginFor } from "./leases.ts";
import { createLog } from "./log.ts";
import type { Problem, Resolution, ResolvedGroup } from "./resolve.ts";
import type { SecretInfo } from "./sources/source.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const ref = { name: "SECRET_PGPASSWORD", raw: "issue:database/creds/app#password", target: "PGPASSWORD" };
const issuedRef = {
  ...ref,
  reference: { kind: "issued" as const, backend: "vault" as const, path: "database/creds/app", field: "password" },
};

function group(info: Partial<SecretInfo> & { lifetimeS: number; lease?: SecretInfo["lease"] }): ResolvedGroup {
  const at = Date.now();
  const { lifetimeS, ...rest } = info;
  return { refs: [issuedRef], info: { at, expiresAt: at + lifetimeS * 1000, ...rest } };
}

const fresh = (lifetimeS: number, lease?: SecretInfo["lease"]): Resolution => {
  const next = group({ lifetimeS, ...(lease ? { lease } : {}) });
  return { values: new Map([["PGPASSWORD", `v-${Date.now()}`]]), groups: [next], problems: [], ignored: [] };
};
const failed = (kind: Problem["kind"]): Resolution => ({
  values: new Map(),
  groups: [],
  problems: [{ name: ref.name, raw: ref.raw, kind, reason: `${kind} now` }],
  ignored: [],
});

function harness(overrides: Partial<LeaseKeeperOptions> & { groups: ResolvedGroup[] }) {
  const lines: string[] = [];
  const events: string[] = [];
  const options: LeaseKeeperOptions = {
    margin: { fraction: 1 / 3 },
    log: createLog("debug", (line) => lines.push(line)),
    renew: vi.fn(async () => Date.now() + 60_000),
    reissue: vi.fn(async () => fresh(60)),
    onReissued: (_, next) => events.push(`reissued at ${(Date.now() - T0) / 1000}s: ${next.values.size} value(s)`),
    onExpired: (_, problems, reason) =>
      events.push(`expired at ${(Date.now() - T0) / 1000}s: ${problems.map((p) => p.kind).join()} ${reason}`),
    ...overrides,
  };
  return { keeper: keepLeases(options), options, lines, events };
}

describe("marginFor", () => {
  it.each([
    [{ fraction: 1 / 3 }, 90_000, 30_000],
    [{ ms: 10_000 }, 90_000, 10_000],
    [{ ms: 600_000 }, 90_000, 45_000],
  ])("%j of %d ms → %d ms", (margin, lifetime, expected) => {
    expect(marginFor(margin, lifetime)).toBe(expected);
  });
});

describe("keepLeases", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("issues a certificate anew when a third of its lifetime is left", async () => {
    const { keeper, events, options } = harness({ groups: [group({ lifetimeS: 90 })] });
    await vi.advanceTimersByTimeAsync(59_000);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(events).toEqual(["reissued at 60s: 1 value(s)"]);
    expect(options.renew).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(40_000); // the new one lives 60 s: anew again 40 s later
    expect(events).toHaveLength(2);
    keeper.stop();
  });

  it("renews a renewable lease while that moves its end past the margin, then issues anew", async () => {
    const lease = { id: "database/creds/app/1", durationS: 60, renewable: true };
    let renewals = 0;
    const { keeper, events, options } = harness({
      groups: [group({ lifetimeS: 60, lease })],
      // The max TTL is 100 s after the start: renewals stop growing there.
      renew: vi.fn(async () => {
        renewals++;
        return Math.min(Date.now() + 60_000, T0 + 100_000);
      }),
    });
    await vi.advanceTimersByTimeAsync(40_000);
    expect(renewals).toBe(1);
    expect(options.renew).toHaveBeenCalledWith(lease, 60);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(40_000); // at 80 s the lease can only reach 100 s: 20 s left, not past the 20 s margin
    expect(renewals).toBe(2);
    expect(events).toEqual(["reissued at 80s: 1 value(s)"]);
    keeper.stop();
  });

  it("issues anew when renewing fails", async () => {
    const lease = { id: "database/creds/app/1", durationS: 30, renewable: true };
    const { keeper, events, lines } = harness({
      groups: [group({ lifetimeS: 30, lease })],
      renew: vi.fn(async () => {
        throw new Error("lease not found or lease is not renewable");
      }),
    });
    await vi.advanceTimersByTimeAsync(20_000);
    expect(events).toEqual(["reissued at 20s: 1 value(s)"]);
    expect(lines.join("")).toContain(
      "renewing lease database/creds/app/1 failed: lease not found or lease is not renewable; issuing SECRET_PGPASSWORD anew",
    );
    keeper.stop();
  });

  it("retries a failed re-issue until the secret expires, then reports it expired", async () => {
    const { keeper, events, lines } = harness({ groups: [group({ lifetimeS: 30 })], reissue: vi.fn(async () => failed("denied")) });
    await vi.advanceTimersByTimeAsync(29_999);
    expect(events).toEqual([]);
    expect(lines.filter((line) => line.includes("issuing SECRET_PGPASSWORD anew failed: denied now; retrying"))).not.toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(["expired at 30s: denied denied now"]);
    keeper.stop();
  });

  it("recovers when a retried re-issue succeeds before the expiry", async () => {
    let attempts = 0;
    const { keeper, events } = harness({
      groups: [group({ lifetimeS: 30 })],
      reissue: vi.fn(async () => (++attempts < 3 ? failed("unavailable") : fresh(30))),
    });
    await vi.advanceTimersByTimeAsync(20_000 + 1000 + 2000);
    expect(events).toEqual(["reissued at 23s: 1 value(s)"]);
    keeper.stop();
  });

  it("issues leases anew at once, without renewing, when the token that holds them is replaced", async () => {
    const lease = { id: "database/creds/app/1", durationS: 3600, renewable: true };
    const { keeper, events, options, lines } = harness({ groups: [group({ lifetimeS: 3600, lease })] });
    await vi.advanceTimersByTimeAsync(10_000);
    keeper.retire(T0 + 70_000); // the old token ends 70 s in, and the lease with it
    expect(lines.join("")).toContain(
      "the vault token holding lease database/creds/app/1 was replaced; it ends by 2026-01-01T00:01:10.000Z",
    );
    await vi.advanceTimersByTimeAsync(1000);
    expect(events).toEqual(["reissued at 11s: 1 value(s)"]);
    expect(options.renew).not.toHaveBeenCalled();
    keeper.stop();
  });

  it("refreshes at half the lifetime when the margin is longer than the secret lives", async () => {
    const { keeper, events, lines } = harness({ groups: [group({ lifetimeS: 10 })], margin: { ms: 600_000 } });
    expect(lines.join("")).toContain("SECRET_PGPASSWORD: lives only 10 s; refreshing at half its lifetime");
    await vi.advanceTimersByTimeAsync(5000);
    expect(events).toEqual(["reissued at 5s: 1 value(s)"]);
    keeper.stop();
  });

  it("does nothing for secrets without an expiry, and nothing after stop", async () => {
    const { keeper, events, options } = harness({ groups: [{ refs: [issuedRef], info: { at: Date.now() } }, group({ lifetimeS: 3 })] });
    keeper.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(events).toEqual([]);
    expect(options.reissue).not.toHaveBeenCalled();
  });
});
