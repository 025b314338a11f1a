import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InstallError, installRuntime } from "./install.ts";
import { MANIFEST_NAME, RuntimeFile, type RuntimeManifest } from "./runtime/layout.ts";

let dir: string;
let runtime: string;

/** A small stand-in runtime: the files and the manifest, with modes the install must not copy. */
function makeRuntime(files: Record<string, { content: string; mode: number }>): void {
  const entries = Object.entries(files).map(([path, { content, mode }]) => {
    mkdirSync(join(runtime, path, ".."), { recursive: true });
    writeFileSync(join(runtime, path), content);
    chmodSync(join(runtime, path), 0o700);
    utimesSync(join(runtime, path), 1_700_000_000, 1_700_000_000);
    return { path, mode, size: Buffer.byteLength(content), sha256: "" };
  });
  const manifest: Partial<RuntimeManifest> = { name: MANIFEST_NAME, version: "0.0.0", files: entries };
  writeFileSync(join(runtime, RuntimeFile.manifest), JSON.stringify(manifest));
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kustodia-install-"));
  runtime = join(dir, "runtime");
  makeRuntime({ "kustodia-shim": { content: "launcher", mode: 0o755 }, "lib/libc.so.6": { content: "libc", mode: 0o644 } });
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("installRuntime", () => {
  it("copies every file with its manifest mode, mtime and the manifest, into a new directory", async () => {
    const target = join(dir, "volume/kustodia");
    await installRuntime(target, { from: runtime });
    expect(readFileSync(join(target, "kustodia-shim"), "utf8")).toBe("launcher");
    expect(statSync(join(target, "kustodia-shim")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(target, "lib/libc.so.6")).mode & 0o7777).toBe(0o644);
    expect(statSync(join(target, "lib")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(target, RuntimeFile.manifest)).mode & 0o7777).toBe(0o644);
    expect(statSync(join(target, "kustodia-shim")).mtimeMs).toBe(1_700_000_000_000);
    expect(readFileSync(join(target, RuntimeFile.manifest), "utf8")).toBe(readFileSync(join(runtime, RuntimeFile.manifest), "utf8"));
  });

  it("is idempotent: files in place are kept, changed ones replaced", async () => {
    const target = join(dir, "target");
    await installRuntime(target, { from: runtime });
    const inode = statSync(join(target, "lib/libc.so.6")).ino;
    writeFileSync(join(target, "kustodia-shim"), "half a lau");
    await installRuntime(target, { from: runtime });
    expect(statSync(join(target, "lib/libc.so.6")).ino).toBe(inode);
    expect(readFileSync(join(target, "kustodia-shim"), "utf8")).toBe("launcher");
  });

  it("opens up a target directory only its owner could read", async () => {
    const target = join(dir, "private");
    mkdirSync(target, { mode: 0o700 });
    await installRuntime(target, { from: runtime });
    expect(statSync(target).mode & 0o777).toBe(0o755);
  });

  it("does nothing when asked to install the runtime onto itself", async () => {
    await installRuntime(runtime, { from: runtime });
    expect(statSync(join(runtime, "kustodia-shim")).mode & 0o777).toBe(0o700);
  });

  it.each([
    ["no runtime there", () => rmSync(join(runtime, RuntimeFile.manifest)), /no kustodia runtime to copy .*runtime\.json: ENOENT/],
    [
      "a damaged runtime",
      () => writeFileSync(join(runtime, "lib/libc.so.6"), "truncated libc"),
      /is damaged: lib\/libc\.so\.6 has 14 bytes, not 4/,
    ],
    ["an incomplete runtime", () => rmSync(join(runtime, "kustodia-shim")), /is incomplete: kustodia-shim \(ENOENT\)/],
  ])("fails with a clear message for %s", async (_, breakIt, message) => {
    breakIt();
    const failure = installRuntime(join(dir, "target"), { from: runtime });
    await expect(failure).rejects.toBeInstanceOf(InstallError);
    await expect(failure).rejects.toThrow(message);
  });

  it("fails with a clear message when the target is not a directory", async () => {
    writeFileSync(join(dir, "file"), "");
    await expect(installRuntime(join(dir, "file"), { from: runtime })).rejects.toThrow(/\/file is not a directory$/);
  });
});
