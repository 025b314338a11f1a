// Bounded caches for registry answers: an LRU (a Map keeps insertion order, so the first key is the
// least recently used), and on top of it entries that expire.

export interface Lru<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  delete(key: string): void;
  readonly size: number;
}

export function createLru<V>(capacity: number): Lru<V> {
  const entries = new Map<string, V>();
  return {
    get(key) {
      const value = entries.get(key);
      if (value === undefined) return undefined;
      entries.delete(key);
      entries.set(key, value);
      return value;
    },
    set(key, value) {
      entries.delete(key);
      entries.set(key, value);
      if (entries.size > capacity) entries.delete(entries.keys().next().value as string);
    },
    delete(key) {
      entries.delete(key);
    },
    get size() {
      return entries.size;
    },
  };
}

/** An LRU whose entries expire `ttlMs` after they were set (or at the `expiresAt` given). */
export function createTtlLru<V>(
  capacity: number,
  ttlMs: number,
  now: () => number = Date.now,
): Lru<V> & { setUntil(key: string, value: V, expiresAt: number): void } {
  const lru = createLru<{ value: V; expiresAt: number }>(capacity);
  return {
    get(key) {
      const entry = lru.get(key);
      if (entry === undefined) return undefined;
      if (entry.expiresAt > now()) return entry.value;
      lru.delete(key);
      return undefined;
    },
    set(key, value) {
      lru.set(key, { value, expiresAt: now() + ttlMs });
    },
    setUntil(key, value, expiresAt) {
      lru.set(key, { value, expiresAt });
    },
    delete: (key) => lru.delete(key),
    get size() {
      return lru.size;
    },
  };
}
