// Rotation mode for issued secrets: each issuance is kept alive on its own schedule, independent of
// the KUSTODIA_ROTATION_INTERVAL re-reads of stored secrets. When the margin before its expiry is
// reached (KUSTODIA_ROTATION_MARGIN: a duration, or a share of its lifetime):
// - a renewable lease is renewed by its original duration, as long as that moves its end past the
//   margin again (a lease stops growing at its max TTL);
// - otherwise — a certificate, a lease that cannot be renewed (further), a failed renewal, a lease
//   whose Vault token was replaced (Vault revokes leases with their token) — the secret is issued
//   anew, and the app restarted or signalled with the new values (`onReissued`);
// - a failed re-issue is retried with backoff until the old secret expires; then the app is stopped
//   (`onExpired`) rather than left running on dead credentials.
// Loaded only when a rotating pod has issued references.
import type { RotationMargin } from "./config.ts";
import type { Log } from "./log.ts";
import type { Problem, Resolution, ResolvedGroup } from "./resolve.ts";
import type { Lease } from "./sources/source.ts";

/** No refresh is scheduled sooner than this after the previous one. */
const MIN_DELAY_MS = 1000;
/** Retries of a failed re-issue: doubling from the first delay up to the last. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

export interface LeaseKeeperOptions {
  /** Issued secrets from the start, with the references each one serves. */
  groups: readonly ResolvedGroup[];
  margin: RotationMargin;
  /** Extends the lease by `incrementS`; resolves with its new expiry (epoch ms). */
  renew(lease: Lease, incrementS: number): Promise<number>;
  /** Issues the group's secret anew. */
  reissue(group: ResolvedGroup): Promise<Resolution>;
  /** The group was issued anew: `fresh` holds its new values and its new group. */
  onReissued(old: ResolvedGroup, fresh: Resolution): void;
  /** The group's secret expired and could not be issued anew. */
  onExpired(group: ResolvedGroup, problems: readonly Problem[], reason: string): void;
  log: Log;
}

export interface LeaseKeeper {
  /** The credential that holds the leases is being replaced; leases issued under it end at `at`. */
  retire(at: number): void;
  stop(): void;
}

interface Kept {
  group: ResolvedGroup;
  /** When the secret stops working (epoch ms). */
  expiresAt: number;
  marginMs: number;
  /** Issued under a Vault token that has been replaced: renewing cannot outlive it. */
  retired: boolean;
  timer?: NodeJS.Timeout;
  retryMs: number;
}

const names = (group: ResolvedGroup) => group.refs.map((ref) => ref.name).join(", ");
const iso = (at: number) => new Date(at).toISOString();

/** The margin in ms for a secret living `lifetimeMs`; never more than half of it. */
export function marginFor(margin: RotationMargin, lifetimeMs: number): number {
  const wanted = "ms" in margin ? margin.ms : margin.fraction * lifetimeMs;
  return Math.max(0, Math.min(wanted, lifetimeMs / 2));
}

export function keepLeases(options: LeaseKeeperOptions): LeaseKeeper {
  const { log } = options;
  const kept = new Set<Kept>();
  let stopped = false;

  const schedule = (entry: Kept, at: number, action: (entry: Kept) => Promise<void>) => {
    clearTimeout(entry.timer);
    if (stopped) return;
    entry.timer = setTimeout(() => void action(entry), Math.max(at - Date.now(), MIN_DELAY_MS));
  };

  const track = (group: ResolvedGroup): void => {
    const { expiresAt, at } = group.info;
    if (expiresAt === undefined) return;
    const lifetime = expiresAt - at;
    const marginMs = marginFor(options.margin, lifetime);
    const wanted = "ms" in options.margin ? options.margin.ms : options.margin.fraction * lifetime;
    if (wanted > marginMs)
      log.warn(`${names(group)}: lives only ${Math.round(lifetime / 1000)} s; refreshing at half its lifetime, not by the margin`);
    const entry: Kept = { group, expiresAt, marginMs, retired: false, retryMs: RETRY_FIRST_MS };
    kept.add(entry);
    schedule(entry, expiresAt - marginMs, refresh);
  };

  async function refresh(entry: Kept): Promise<void> {
    const lease = entry.group.info.lease;
    if (lease?.renewable && !entry.retired) {
      try {
        const until = await options.renew(lease, lease.durationS);
        if (stopped) return;
        if (until - Date.now() > entry.marginMs) {
          entry.expiresAt = until;
          entry.group.info.expiresAt = until;
          log.debug(`lease ${lease.id} renewed until ${iso(until)}`);
          schedule(entry, until - entry.marginMs, refresh);
          return;
        }
        log.info(`lease ${lease.id} cannot be renewed past ${iso(until)} (its max TTL); issuing ${names(entry.group)} anew`);
      } catch (error) {
        if (stopped) return;
        log.warn(`renewing lease ${lease.id} failed: ${(error as Error).message}; issuing ${names(entry.group)} anew`);
      }
    }
    await reissue(entry);
  }

  async function reissue(entry: Kept): Promise<void> {
    let fresh: Resolution;
    try {
      fresh = await options.reissue(entry.group);
    } catch (error) {
      return retry(entry, [], (error as Error).message);
    }
    if (stopped) return;
    const group = fresh.groups[0];
    if (fresh.problems.length > 0 || fresh.ignored.length > 0 || !group) {
      const problems = [...fresh.problems, ...fresh.ignored];
      return retry(entry, problems, [...new Set(problems.map((problem) => problem.reason))].join("; ") || "no answer");
    }
    kept.delete(entry);
    clearTimeout(entry.timer);
    options.onReissued(entry.group, fresh);
    track(group);
  }

  function retry(entry: Kept, problems: readonly Problem[], reason: string): void {
    if (stopped) return;
    const left = entry.expiresAt - Date.now();
    if (left <= 0) {
      kept.delete(entry);
      options.onExpired(entry.group, problems, reason);
      return;
    }
    const delay = Math.min(entry.retryMs, left);
    entry.retryMs = Math.min(entry.retryMs * 2, RETRY_MAX_MS);
    log.warn(
      `issuing ${names(entry.group)} anew failed: ${reason}; retrying in ${(delay / 1000).toFixed(1)} s (the current one expires at ${iso(entry.expiresAt)})`,
    );
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void reissue(entry), delay);
  }

  for (const group of options.groups) track(group);

  return {
    retire(at) {
      for (const entry of kept) {
        if (!entry.group.info.lease || entry.retired) continue;
        entry.retired = true;
        if (at < entry.expiresAt) {
          entry.expiresAt = at;
          entry.group.info.expiresAt = at;
        }
        log.info(
          `${names(entry.group)}: the vault token holding lease ${entry.group.info.lease.id} was replaced; it ends by ${iso(entry.expiresAt)}`,
        );
        schedule(entry, entry.expiresAt - entry.marginMs, refresh);
      }
    },
    stop() {
      stopped = true;
      for (const entry of kept) clearTimeout(entry.timer);
      kept.clear();
    },
  };
}
