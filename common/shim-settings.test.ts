// The table of shim settings agrees with itself: a default the docs write as a literal is, read by
// the setting's own parser, the value the shim falls back to (issue #14: a default in one place).
import { describe, expect, it } from "vitest";
import { type ShimSettingKey, ShimSettings } from "./shim-settings.ts";

type AnySetting = { parse(raw: string): unknown; fallback: unknown; defaultText: string };
const settings = Object.entries(ShimSettings) as [ShimSettingKey, AnySetting][];
const literalDefaults = settings.flatMap(([key, spec]) => {
  const literal = /^`([^`]+)`$/.exec(spec.defaultText)?.[1];
  return literal === undefined ? [] : [{ key, literal, spec }];
});

describe("the shim settings' documented defaults", () => {
  it.each(literalDefaults)("$key: `$literal` is what the shim falls back to", ({ literal, spec }) => {
    expect(spec.parse(literal)).toEqual(spec.fallback);
  });

  it("name a literal for every setting with a plain fallback", () => {
    const plain = settings.filter(([, spec]) => ["string", "number", "boolean"].includes(typeof spec.fallback)).map(([key]) => key);
    expect(literalDefaults.map(({ key }) => key)).toEqual(plain);
  });
});
