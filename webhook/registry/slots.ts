// Lookup slots shared fairly: at most `total` lookups run at once, at most `perHost` against one
// registry and at most `perAdmission` for one admission. Waiting admissions take turns (round
// robin), so a pod with forty containers on a slow registry cannot make a one-container pod wait
// behind all forty. Pure bookkeeping, no I/O.

export interface SlotLimits {
  total: number;
  perHost: number;
  perAdmission: number;
}

export interface Slots {
  /** Resolves with `release` once a slot is free for this admission and host; rejects when `signal` aborts first. */
  acquire(admission: unknown, host: string, signal: AbortSignal): Promise<() => void>;
}

interface Waiter {
  host: string;
  grant: () => void;
}

export function createSlots(limits: SlotLimits): Slots {
  let running = 0;
  const byHost = new Map<string, number>();
  const byAdmission = new Map<unknown, number>();
  /** Admissions with waiters, in turn order: the one served last moves to the back. */
  const queues = new Map<unknown, Waiter[]>();

  const hasRoom = (admission: unknown, host: string) =>
    running < limits.total && (byHost.get(host) ?? 0) < limits.perHost && (byAdmission.get(admission) ?? 0) < limits.perAdmission;

  const take = (admission: unknown, host: string): (() => void) => {
    running++;
    byHost.set(host, (byHost.get(host) ?? 0) + 1);
    byAdmission.set(admission, (byAdmission.get(admission) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      running--;
      decrement(byHost, host);
      decrement(byAdmission, admission);
      dispatch();
    };
  };

  /** Grants slots to waiters, one admission at a time in turn, until no waiter fits. */
  function dispatch(): void {
    let granted = true;
    while (granted && running < limits.total) {
      granted = false;
      for (const [admission, waiters] of queues) {
        const index = waiters.findIndex((waiter) => hasRoom(admission, waiter.host));
        if (index === -1) continue;
        const [waiter] = waiters.splice(index, 1);
        queues.delete(admission);
        if (waiters.length > 0) queues.set(admission, waiters); // to the back of the turn order
        waiter?.grant();
        granted = true;
        break;
      }
    }
  }

  return {
    acquire(admission, host, signal) {
      signal.throwIfAborted();
      if (!queues.has(admission) && hasRoom(admission, host)) return Promise.resolve(take(admission, host));
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          host,
          grant: () => {
            signal.removeEventListener("abort", aborted);
            resolve(take(admission, host));
          },
        };
        const aborted = () => {
          const waiters = queues.get(admission) ?? [];
          waiters.splice(waiters.indexOf(waiter), 1);
          if (waiters.length === 0) queues.delete(admission);
          reject(signal.reason);
        };
        const waiters = queues.get(admission);
        if (waiters) waiters.push(waiter);
        else queues.set(admission, [waiter]);
        signal.addEventListener("abort", aborted, { once: true });
      });
    },
  };
}

function decrement<K>(counts: Map<K, number>, key: K): void {
  const left = (counts.get(key) ?? 0) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
