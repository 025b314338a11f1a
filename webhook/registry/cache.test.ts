import { describe, expect, it } from "vitest";
import { createLru, createTtlLru } from "./cache.ts";

describe("createLru", () => {
  it("evicts the least recently used entry when full", () => {
    const lru = createLru<number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    lru.get("a");
    lru.set("c", 3);
    expect([lru.get("a"), lru.get("b"), lru.get("c"), lru.size]).toEqual([1, undefined, 3, 2]);
  });

  it("replaces a value without growing", () => {
    const lru = createLru<number>(2);
    lru.set("a", 1);
    lru.set("a", 2);
    expect([lru.get("a"), lru.size]).toEqual([2, 1]);
  });
});

describe("createTtlLru", () => {
  it("forgets an entry once its time is over", () => {
    let now = 1000;
    const cache = createTtlLru<string>(10, 100, () => now);
    cache.set("tag", "sha256:a");
    cache.setUntil("token", "t", 1050);
    now = 1049;
    expect([cache.get("tag"), cache.get("token")]).toEqual(["sha256:a", "t"]);
    now = 1050;
    expect([cache.get("tag"), cache.get("token"), cache.size]).toEqual(["sha256:a", undefined, 1]);
    now = 1100;
    expect(cache.get("tag")).toBeUndefined();
  });
});
