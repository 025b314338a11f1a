import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SHIM_PATH } from "../../common/contract.ts";
import { STASH_PREFIX } from "./env-stash.ts";
import { MANIFEST_NAME, parseManifest, RUNTIME_DIR, RuntimeFile } from "./layout.ts";

const manifest = (files: unknown) => JSON.stringify({ name: MANIFEST_NAME, version: "0.1.0", files });

describe("runtime layout", () => {
  it("puts the launcher where the webhook points containers", () => {
    expect(`${RUNTIME_DIR}/${RuntimeFile.launcher}`).toBe(SHIM_PATH);
  });

  it("agrees with the launcher's compiled-in defaults", () => {
    const launcher = readFileSync(new URL("./launcher.c", import.meta.url), "utf8");
    expect(launcher).toContain(`#define KUSTODIA_NODE "${RUNTIME_DIR}/${RuntimeFile.node}"`);
    expect(launcher).toContain(`#define KUSTODIA_STASH_PREFIX "${STASH_PREFIX}"`);
  });
});

describe("parseManifest", () => {
  it("accepts a manifest with relative file paths", () => {
    const parsed = parseManifest(manifest([{ path: "lib/libc.so.6", mode: 0o644, size: 3, sha256: "x" }]));
    expect(parsed).not.toBeInstanceOf(Error);
  });

  it.each([
    ["not JSON", "{", /not JSON/],
    ["another file", JSON.stringify({ name: "package", files: [] }), /not a kustodia-shim-runtime manifest/],
    ["an absolute path", manifest([{ path: "/etc/passwd", mode: 0o644, size: 1 }]), /bad file entry/],
    ["a path out of the runtime", manifest([{ path: "lib/../../x", mode: 0o644, size: 1 }]), /bad file entry/],
    ["an entry without a mode", manifest([{ path: "tini", size: 1 }]), /bad file entry/],
  ])("rejects %s", (_, text, message) => {
    const parsed = parseManifest(text);
    expect(parsed).toBeInstanceOf(Error);
    expect((parsed as Error).message).toMatch(message);
  });
});
