import { describe, expect, it } from "vitest";
import { ANNOTATION_PREFIX, Annotations, ExitCode, SHIM_ENV_PREFIX, SHIM_PATH, ShimEnv } from "./contract.ts";

// The names are a user-facing contract (DESIGN.md §2, §5): a rename must be a deliberate change here.
describe("contract", () => {
  it("keeps every annotation under the kustodia.io/ prefix", () => {
    for (const key of Object.values(Annotations)) expect(key.startsWith(ANNOTATION_PREFIX)).toBe(true);
  });

  it.each([
    ["inject", "kustodia.io/inject"],
    ["containers", "kustodia.io/containers"],
    ["passthrough", "kustodia.io/passthrough"],
    ["entrypointPrefix", "kustodia.io/entrypoint."],
    ["status", "kustodia.io/status"],
    ["wrapExec", "kustodia.io/wrap-exec"],
    ["wrapExecAudit", "kustodia.io/wrap-exec-audit"],
  ] as const)("annotation %s is %s", (name, key) => {
    expect(Annotations[name]).toBe(key);
  });

  it("keeps every shim setting under KUSTODIA_", () => {
    for (const name of Object.values(ShimEnv)) expect(name.startsWith(SHIM_ENV_PREFIX)).toBe(true);
    expect(Object.keys(ShimEnv)).toHaveLength(30);
  });

  it("uses the sysexits codes of DESIGN.md §5 and the shim path of §4", () => {
    expect(ExitCode).toEqual({ config: 78, unavailable: 69 });
    expect(SHIM_PATH).toBe("/kustodia/kustodia-shim");
  });
});
