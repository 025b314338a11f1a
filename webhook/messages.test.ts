import { describe, expect, it } from "vitest";
import { boundedWarnings, MAX_WARNING_LENGTH, MAX_WARNINGS, safeText } from "./messages.ts";

describe("messages for kubectl users", () => {
  it.each([
    ["a newline", "a\nb", "a\\u000ab"],
    ["an escape sequence", "\u001b[31mred", "\\u001b[31mred"],
    ["a C1 control", "a\u009bb", "a\\u009bb"],
    ["a right-to-left override", "x\u202ey", "x\\u202ey"],
    ["a line separator", "x\u2028y", "x\\u2028y"],
    ["plain text", 'container "app" env SECRET_A', 'container "app" env SECRET_A'],
    ["an emoji", "key 🔑", "key 🔑"],
  ])("escapes %s", (_name, text, expected) => {
    expect(safeText(text, 100)).toBe(expected);
  });

  it("cuts the middle of a long text and keeps its end, where the reason is", () => {
    const text = `env SECRET_${"N".repeat(10_000)}-X: is not a valid environment variable name`;
    const cut = safeText(text, 400);
    expect(cut).toHaveLength(400);
    expect(cut.startsWith("env SECRET_NNN")).toBe(true);
    expect(cut.endsWith("-X: is not a valid environment variable name")).toBe(true);
    expect(cut).toContain("…");
  });

  it("never splits a surrogate pair", () => {
    for (let max = 10; max < 40; max++) {
      const cut = safeText("🔑".repeat(50), max);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(cut.isWellFormed()).toBe(true);
    }
  });

  it("keeps at most MAX_WARNINGS distinct warnings and says how many were left out", () => {
    const many = Array.from({ length: 100 }, (_, i) => `warning ${i % 50}`);
    const bounded = boundedWarnings(many);
    expect(bounded).toHaveLength(MAX_WARNINGS + 1);
    expect(bounded.at(-1)).toBe(`${50 - MAX_WARNINGS} more warning(s) not shown`);
    expect(boundedWarnings(["a", "a", "b"])).toEqual(["a", "b"]);
    expect(boundedWarnings(["x".repeat(5000)])[0]).toHaveLength(MAX_WARNING_LENGTH);
  });
});
