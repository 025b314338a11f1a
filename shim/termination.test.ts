import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeTerminationMessage } from "./termination.ts";

describe("writeTerminationMessage", () => {
  const dir = mkdtempSync(join(tmpdir(), "kustodia-termination-"));
  afterEach(() => rmSync(join(dir, "log"), { force: true }));

  it("writes the lines into the file the kubelet mounted", () => {
    writeFileSync(join(dir, "log"), "");
    writeTerminationMessage(["kustodia-shim: a", "kustodia-shim: b"], join(dir, "log"));
    expect(readFileSync(join(dir, "log"), "utf8")).toBe("kustodia-shim: a\nkustodia-shim: b\n");
  });

  it("creates nothing where there is no such file (outside Kubernetes)", () => {
    writeTerminationMessage(["x"], join(dir, "log"));
    expect(existsSync(join(dir, "log"))).toBe(false);
  });

  it("keeps to the 4096 bytes the kubelet reads", () => {
    writeFileSync(join(dir, "log"), "");
    writeTerminationMessage(["y".repeat(10_000)], join(dir, "log"));
    expect(readFileSync(join(dir, "log")).length).toBe(4096);
  });
});
