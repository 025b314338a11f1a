import { describe, expect, it } from "vitest";
import { restoreStashedEnv, STASH_PREFIX } from "./env-stash.ts";

describe("restoreStashedEnv", () => {
  it("gives stashed vars their names back, in place, keeping every other var as it was", () => {
    const env: Record<string, string> = {
      PATH: "/bin",
      [`${STASH_PREFIX}LD_PRELOAD`]: "/usr/lib/libjemalloc.so.2",
      HOME: "/",
      [`${STASH_PREFIX}NODE_OPTIONS`]: "--require ./otel.js",
      EMPTY: "",
      MULTI: "a=b\nc",
    };
    restoreStashedEnv(env);
    expect(Object.entries(env)).toEqual([
      ["PATH", "/bin"],
      ["LD_PRELOAD", "/usr/lib/libjemalloc.so.2"],
      ["HOME", "/"],
      ["NODE_OPTIONS", "--require ./otel.js"],
      ["EMPTY", ""],
      ["MULTI", "a=b\nc"],
    ]);
  });

  it("undoes exactly one level, so a var that already had the prefix keeps it", () => {
    const env = { [`${STASH_PREFIX}${STASH_PREFIX}X`]: "1", A: "2" };
    restoreStashedEnv(env);
    expect(Object.entries(env)).toEqual([
      [`${STASH_PREFIX}X`, "1"],
      ["A", "2"],
    ]);
  });

  it("keeps the order of process.env itself", () => {
    const saved = { ...process.env };
    try {
      for (const name of Object.keys(process.env)) delete process.env[name];
      Object.assign(process.env, { KUSTODIA_TEST_A: "a", [`${STASH_PREFIX}KUSTODIA_TEST_B`]: "b", KUSTODIA_TEST_C: "c" });
      restoreStashedEnv(process.env);
      expect(Object.entries(process.env)).toEqual([
        ["KUSTODIA_TEST_A", "a"],
        ["KUSTODIA_TEST_B", "b"],
        ["KUSTODIA_TEST_C", "c"],
      ]);
    } finally {
      for (const name of Object.keys(process.env)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  it("leaves an environment without stashed vars untouched", () => {
    const env = { B: "1", A: "2" };
    restoreStashedEnv(env);
    expect(Object.entries(env)).toEqual([
      ["B", "1"],
      ["A", "2"],
    ]);
  });
});
