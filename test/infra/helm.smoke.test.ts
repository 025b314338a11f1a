import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";

const execFileAsync = promisify(execFile);

describe.skipIf(skipWithout("helm"))("helm", () => {
  it("is a real helm v3 binary", async () => {
    const helm = service("helm");
    const { stdout } = await execFileAsync(helm.binary, ["version", "--template", "{{ .Version }}"]);
    expect(stdout.trim()).toMatch(/^v3\.\d+\.\d+$/);
    expect(helm.version).toContain(stdout.trim());
  });
});
