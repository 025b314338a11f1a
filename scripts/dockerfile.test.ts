import { describe, expect, it } from "vitest";
import { entrypointFlags, parseFinalStage } from "./dockerfile.ts";

const stage = (entrypoint: string) => parseFinalStage(`FROM scratch\nENTRYPOINT ${entrypoint}\n`);

describe("entrypointFlags", () => {
  it("returns the words between the ENTRYPOINT's program and the script", () => {
    expect(entrypointFlags(stage(`["/usr/local/bin/node", "--max-semi-space-size=4", "--x", "dist/main.js"]`), "dist/main.js")).toEqual([
      "--max-semi-space-size=4",
      "--x",
    ]);
    expect(entrypointFlags(stage(`["/usr/local/bin/node", "dist/main.js"]`), "dist/main.js")).toEqual([]);
  });

  it("refuses an ENTRYPOINT that does not run the script", () => {
    expect(() => entrypointFlags(stage(`["/usr/local/bin/node", "other.js"]`), "dist/main.js")).toThrow(/does not run dist\/main.js/);
    expect(() => entrypointFlags(stage(`["dist/main.js"]`), "dist/main.js")).toThrow(/does not run/);
    expect(() => entrypointFlags(parseFinalStage("FROM scratch\n"), "dist/main.js")).toThrow(/does not run/);
  });
});
