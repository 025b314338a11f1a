import { describe, expect, it } from "vitest";
import { isAtOrUnder, normaliseMountPath } from "./mount-path.ts";

describe("normaliseMountPath", () => {
  it.each([
    ["/kustodia", "/kustodia"],
    ["/kustodia/", "/kustodia"],
    ["//kustodia/kustodia-shim", "/kustodia/kustodia-shim"],
    ["/kustodia/./x", "/kustodia/x"],
    ["/./kustodia//lib/", "/kustodia/lib"],
    ["/opt/../kustodia/kustodia-shim", "/kustodia/kustodia-shim"],
    ["/../../kustodia", "/kustodia"],
    ["/", "/"],
    ["", "/"],
  ])("%j is %j", (path, normal) => {
    expect(normaliseMountPath(path)).toBe(normal);
  });
});

describe("isAtOrUnder", () => {
  it.each(["/kustodia", "/kustodia/", "//kustodia/kustodia-shim", "/kustodia/./x", "/opt/../kustodia/lib"])(
    "%j is at or under /kustodia",
    (path) => {
      expect(isAtOrUnder(path, "/kustodia")).toBe(true);
    },
  );
  it.each(["/kustodia-data", "/opt/kustodia", "/kustodia/../data", "/"])("%j is not", (path) => {
    expect(isAtOrUnder(path, "/kustodia")).toBe(false);
  });
});
