// scripts/system/fetch-package.sh (through scripts/system/package-cache.ts): the npm and Debian
// packages the images and the arm64 runtime are made from, fetched from the real npm registry and
// Debian mirror into a cache of their own here, once, complete, checked, and serialised.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../infra/repo-root.ts";

const fetcher = join(repoRoot, "scripts/system/fetch-package.sh");
let cache: string;

function fetchPackage(...args: string[]): { status: number | null; files: string[]; stderr: string } {
  const run = spawnSync("bash", [fetcher, ...args], { encoding: "utf8", env: { ...process.env, KUSTODIA_CACHE: cache } });
  return { status: run.status, files: run.stdout.split("\n").filter(Boolean), stderr: run.stderr };
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), "kustodia-package-cache-"));
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe("scripts/system/fetch-package.sh", () => {
  it("fetches Debian packages of another architecture once, as apt's lists give them, and replaces a damaged copy", () => {
    const specs = ["tini:arm64", "libatomic1:arm64"];
    const printed = spawnSync("apt-get", ["download", "--print-uris", ...specs], { encoding: "utf8" }).stdout;
    const expected = new Map([...printed.matchAll(/^'\S+' (\S+) \d+ SHA256:([0-9a-f]{64})$/gm)].map(([, name, sha]) => [name, sha]));
    const first = fetchPackage("debian", ...specs);
    expect(first.status, first.stderr).toBe(0);
    expect(first.files.map((file) => basename(file))).toEqual([
      expect.stringMatching(/^tini_.*_arm64\.deb$/),
      expect.stringMatching(/^libatomic1_.*_arm64\.deb$/),
    ]);
    for (const file of first.files) expect(sha256(file)).toBe(expected.get(basename(file)));

    const [tini = "", libatomic = ""] = first.files;
    const fetchedAt = statSync(libatomic).mtimeMs;
    writeFileSync(tini, "not a package");
    const again = fetchPackage("debian", ...specs);
    expect(again.files).toEqual(first.files);
    expect(sha256(tini)).toBe(expected.get(basename(tini)));
    expect(statSync(libatomic).mtimeMs).toBe(fetchedAt);
  });

  it("lets two fetches of one npm package at once leave one complete tarball, and nothing half-written", async () => {
    const fetchAtOnce = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn("bash", [fetcher, "npm", "tar-stream", "3.1.7"], { env: { ...process.env, KUSTODIA_CACHE: cache } });
        let stdout = "";
        child.stdout.on("data", (chunk: Buffer) => {
          stdout += chunk.toString();
        });
        child.on("close", (code) => (code === 0 ? resolve(stdout.trim()) : reject(new Error(`exit ${code}`))));
      });
    const [one, two] = await Promise.all([fetchAtOnce(), fetchAtOnce()]);
    expect(one).toBe(join(cache, "packages/npm/tar-stream-3.1.7.tgz"));
    expect(two).toBe(one);
    expect(spawnSync("tar", ["-tzf", one], { encoding: "utf8" }).stdout).toContain("package/package.json");
    expect(readdirSync(join(cache, "packages/npm"))).toEqual(["tar-stream-3.1.7.tgz"]);
  });

  it("says what failed for a package that does not exist", () => {
    const missing = fetchPackage("npm", "tar-stream", "0.0.0-no-such-version");
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("npm pack --loglevel=error tar-stream@0.0.0-no-such-version failed");
    expect(readdirSync(join(cache, "packages/npm"))).toEqual(["tar-stream-3.1.7.tgz"]);
  });
});
