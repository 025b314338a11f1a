import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ShimEnv } from "../common/contract.ts";
import { ANNOTATED_SETTINGS, PodSettings } from "../common/shim-settings.ts";
import { CONFIGURATION_PAGE, generatedBlocks, withGeneratedBlocks } from "./config-docs.ts";

describe("docs/configuration.md", () => {
  const page = readFileSync(CONFIGURATION_PAGE, "utf8");

  it("holds the settings tables as scripts/config-docs.ts generates them from common/shim-settings.ts", () => {
    expect(withGeneratedBlocks(page), "run `npm run config-docs`").toBe(page);
  });

  it("lists exactly the shim's settings, each var once, and every annotation that sets one", () => {
    const blocks = generatedBlocks();
    const envRows = ["env-backend", "env-references", "env-rotation", "env-handlers"].flatMap((name) => (blocks[name] ?? []).slice(2));
    expect(envRows.map((row) => /^\| `([A-Z_]+)`/.exec(row)?.[1]).sort()).toEqual(Object.values(ShimEnv).sort());
    expect((blocks.annotations ?? []).slice(2).map((row) => /^\| `([^`]+)`/.exec(row)?.[1])).toEqual(
      ANNOTATED_SETTINGS.map(([, annotation]) => annotation),
    );
    expect((blocks["pod-settings"] ?? []).slice(2).map((row) => /^\| `([^`]+)`/.exec(row)?.[1])).toEqual(
      Object.values(PodSettings).map((setting) => setting.annotation),
    );
  });
});
