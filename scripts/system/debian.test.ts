import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { debianPackages } from "./debian.ts";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..");
const installer = join(here, "install-debian.sh");

describe("scripts/system/install-debian.sh", () => {
  it("lists a group's packages from debian-packages.txt, each once", () => {
    expect(debianPackages("build")).toEqual(["binutils", "gcc", "libc6-dev", "patchelf", "tini"]);
    const all = execFileSync("bash", [installer, "--list", "--all"], { encoding: "utf8" }).trim().split("\n");
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expect.arrayContaining(["docker-registry", "etcd-server", "custodia", "postgresql"]));
  });

  it("names another architecture's packages with it (multiarch), in the list and in what the rehearsal purges", () => {
    expect(debianPackages("cross-arm64")).toEqual(expect.arrayContaining(["gcc-aarch64-linux-gnu", "libc6-dev:arm64", "qemu-user-static"]));
    const purge = execFileSync("bash", [installer, "--purge-list"], { encoding: "utf8" }).trim().split("\n");
    expect(purge).toEqual(expect.arrayContaining(["libc6-dev:arm64", "libstdc++6:arm64"]));
    expect(purge.filter((name) => /^lib(c6|stdc\+\+6|atomic1)(-dev)?$/.test(name))).toEqual([]);
  });

  it("purges by the named purge package and never one that ships with the machine", () => {
    const purge = execFileSync("bash", [installer, "--purge-list"], { encoding: "utf8" }).trim().split("\n");
    expect(purge).toContain("postgresql-common");
    expect(purge).not.toContain("postgresql");
    for (const base of ["gcc", "libc6-dev", "binutils", "openssl", "coreutils"]) expect(purge).not.toContain(base);
  });

  it("refuses an unknown group without installing anything", () => {
    const run = spawnSync("bash", [installer, "no-such-group"], { encoding: "utf8" });
    expect(run.status).toBe(64);
    expect(run.stderr).toContain("unknown group 'no-such-group'");
  });

  it("waits a bounded time for the lock another install holds, then fails saying so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kustodia-apt-lock-"));
    const list = join(dir, "packages.txt");
    writeFileSync(list, "kustodia-test-no-such-package   lonely\n");
    const lock = join(dir, "apt.lock");
    const holder = spawn("flock", [lock, "sleep", "30"], { stdio: "ignore" });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const run = spawnSync("bash", [installer, "lonely"], {
        encoding: "utf8",
        env: { ...process.env, KUSTODIA_DEBIAN_LIST: list, KUSTODIA_APT_LOCK: lock, KUSTODIA_APT_WAIT: "1" },
      });
      expect(run.status).toBe(75);
      expect(run.stderr).toContain(`waited 1s for ${lock}`);
    } finally {
      holder.kill();
    }
  });

  it("is the only place that runs apt-get (Dockerfiles aside, which build images, not this machine)", () => {
    const files = execFileSync("git", ["ls-files", "*.ts", "*.sh", "*.json"], { cwd: repoRoot, encoding: "utf8" }).trim().split("\n");
    const callers = files.filter((file) => /\bapt-get\b[^\n]*\b(install|update)\b/.test(readFileSync(join(repoRoot, file), "utf8")));
    // The two tests name apt-get in patterns they match, and run none.
    const allowed = ["scripts/system/install-debian.sh", "scripts/system/debian.test.ts", "test/shim/runtime.test.ts"];
    expect(callers.filter((file) => !allowed.includes(file))).toEqual([]);
  });
});
