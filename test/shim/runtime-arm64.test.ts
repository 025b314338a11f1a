// The linux/arm64 runtime (dist/shim-runtime/linux-arm64, built on this amd64 machine by
// `npm run build`) where it has to run, under QEMU user-mode emulation: chrooted into a root with
// nothing but busybox-static (no libc; busybox is this machine's, so the app runs natively after
// the shim's execve), the runtime read-only at /kustodia, against the real OpenBao. QEMU is
// registered with binfmt_misc inside a user namespace of each run's own (./minimal-root.ts), so
// the launcher's execve of kustodia-node is emulated too; an explicit `qemu-aarch64-static
// kustodia-shim` would not do (the launcher's exec would meet an aarch64 binary the kernel cannot
// run). Runs are few and each is bounded: an emulated start of the shim takes about two seconds.
import { spawnSync } from "node:child_process";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MOUNT_PATH, SHIM_PATH } from "../../common/contract.ts";
import { runtimeDir, runtimeStaleness } from "../../scripts/build-runtime.ts";
import { hostPlatform, targetPlatform } from "../../scripts/platforms.ts";
import { ensureDebianGroups } from "../../scripts/system/debian.ts";
import { RuntimeFile } from "../../shim/runtime/layout.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { freePort } from "../infra/proc.ts";
import { auditRecords, bao, readPolicy, repoRoot, shimLines, suffix, tokenFile, withoutAudit } from "./harness.ts";
import { busyboxRoot, type Mount, machineBinfmtRules, probeBindMounts, type RunOptions, removeRoots, runInRoot } from "./minimal-root.ts";

const inCI = process.env.CI === "true" || process.env.CI === "1";
const isRoot = process.getuid?.() === 0;
const arm64 = targetPlatform("linux/arm64");
const onArm64 = hostPlatform()?.key === arm64.key;
if (!isRoot && !inCI) console.warn("skipping the arm64 runtime tests: chroot, mount and binfmt_misc need root");

const dir = runtimeDir(arm64.key);
const emulated: RunOptions = onArm64 ? {} : { emulate: arm64 };
let rulesBefore: string[];
const runtimeMount = (): Mount[] => [{ source: dir, target: MOUNT_PATH, readOnly: true }];

afterAll(removeRoots);

describe.skipIf(!isRoot && !inCI)(`the ${arm64.key} runtime${onArm64 ? "" : ` under ${arm64.qemu}`}`, () => {
  beforeAll(() => {
    ensureDebianGroups(["runtime-test", "runtime-test-arm64"], "the arm64 runtime test");
    const stale = runtimeStaleness(dir);
    if (stale) {
      console.log(`[runtime-arm64 test] npm run build: ${stale}`);
      const built = spawnSync("npm", ["run", "build", "--", "--if-stale"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
      if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status})`);
    }
    probeBindMounts(dir);
    rulesBefore = machineBinfmtRules();
  });

  it("starts in a root with no libc: same PID, argv exactly, the app's LD_* and NODE_* settings restored", async () => {
    const root = busyboxRoot();
    // What would break the shim's Node if it reached it, and must reach the app byte for byte, in order.
    const appSettings = [
      "LD_PRELOAD=/nonexistent/libpreload.so",
      "NODE_OPTIONS=--require /nonexistent/instrument.js",
      "LD_LIBRARY_PATH=/nonexistent/lib",
      "GLIBC_TUNABLES=glibc.malloc.check=3",
      "NODE_EXTRA_CA_CERTS=/nonexistent/ca.pem",
      "OPENSSL_CONF=/nonexistent/openssl.cnf",
    ];
    const shim = ["/bin/env", "-i", "PATH=/bin", ...appSettings, SHIM_PATH, "--"];
    const listed = await runInRoot(root, runtimeMount(), [...shim, "/bin/env"], emulated);
    expect(withoutAudit(listed.stderr)).toBe("");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toBe(["PATH=/bin", ...appSettings, ""].join("\n"));

    const args = ["two words", "", "--", "ünï"];
    const script = 'echo "pid=$$"; for arg in "$@"; do echo "arg=[$arg]"; done';
    const run = await runInRoot(root, runtimeMount(), [SHIM_PATH, "--", "/bin/sh", "-c", script, "sh", ...args], emulated);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe([`pid=${run.pid}`, ...args.map((arg) => `arg=[${arg}]`), ""].join("\n"));
    console.log(`[runtime-arm64 test] emulated start + exec of the app: ${run.ms} ms`);
  });

  it("loads the code cache its SEA was built with", async () => {
    // kustodia-node itself, not the launcher: the launcher hands NODE_* over to the app, not to Node.
    const run = await runInRoot(busyboxRoot(), runtimeMount(), [`${MOUNT_PATH}/${RuntimeFile.node}`, "--help"], {
      ...emulated,
      env: { PATH: "/bin", NODE_DEBUG_NATIVE: "SEA" },
    });
    expect(run.stderr).toContain("SEA module code cache accepted");
    expect(run.stdout).toMatch(/^usage: kustodia-shim/);
  });

  describe.skipIf(skipWithout("openbao"))("against the real OpenBao", () => {
    const id = suffix();
    const value = "p@ss w0rd=ünï\nline two";
    let env: Record<string, string>;
    let root: string;

    beforeAll(async () => {
      const { kvV2Mount, addr } = service("openbao");
      await bao("POST", `${kvV2Mount}/data/arm64-${id}/db`, { data: { password: value } });
      const policy = await readPolicy(`arm64-${id}`, [`${kvV2Mount}/data/arm64-${id}/*`]);
      root = busyboxRoot();
      const token = await tokenFile(join(root, "run/secrets"), [policy]);
      env = {
        PATH: "/bin",
        KUSTODIA_VAULT_ADDR: addr,
        KUSTODIA_VAULT_AUTH_METHOD: "token",
        KUSTODIA_VAULT_TOKEN_FILE: `/run/secrets/${basename(token)}`,
        KUSTODIA_VAULT_KV_MOUNT: kvV2Mount,
      };
    });

    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
    const app = ["/bin/sh", "-c", 'echo "pid=$$ [$DB_PASSWORD] [${SECRET_DB_PASSWORD-unset}] [${KUSTODIA_VAULT_TOKEN_FILE-unset}]"'];

    it("resolves the secret and execs the app with it, nothing else of the shim's", async () => {
      const run = await runInRoot(root, runtimeMount(), [SHIM_PATH, "--", ...app], {
        ...emulated,
        env: { ...env, SECRET_DB_PASSWORD: `arm64-${id}/db#password` },
      });
      expect(withoutAudit(run.stderr)).toBe("");
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`pid=${run.pid} [${value}] [unset] [unset]\n`);
      expect(auditRecords(run.stderr)).toEqual([expect.objectContaining({ event: "start", outcome: "ok" })]);
      console.log(`[runtime-arm64 test] emulated start + OpenBao read + exec: ${run.ms} ms`);
    });

    it("exits 78 for a reference that does not resolve, without starting the app", async () => {
      const run = await runInRoot(root, runtimeMount(), [SHIM_PATH, "--", ...app], {
        ...emulated,
        env: { ...env, SECRET_DB_PASSWORD: `arm64-${id}/nothing#password` },
      });
      expect(run.code).toBe(78);
      expect(run.stdout).toBe("");
      expect(shimLines(run.stderr)[0]).toContain(`SECRET_DB_PASSWORD (reference "arm64-${id}/nothing#password"): not found`);
    });

    it("exits 69 when the backend stays unreachable until KUSTODIA_TIMEOUT, without starting the app", async () => {
      const port = await freePort();
      const run = await runInRoot(root, runtimeMount(), [SHIM_PATH, "--", ...app], {
        ...emulated,
        env: {
          ...env,
          KUSTODIA_VAULT_ADDR: `http://127.0.0.1:${port}`,
          KUSTODIA_TIMEOUT: "1s",
          SECRET_DB_PASSWORD: `arm64-${id}/db#password`,
        },
      });
      expect(run.code).toBe(69);
      expect(run.stdout).toBe("");
      expect(run.ms).toBeGreaterThanOrEqual(1000);
      expect(shimLines(run.stderr)[0]).toMatch(/SECRET_DB_PASSWORD \(reference ".*"\): backend unreachable within .*ECONNREFUSED/);
    });
  });

  // Last: every emulated run registered QEMU in its own namespace, none on the machine.
  it("leaves the machine's binfmt_misc rules as they were", () => {
    expect(machineBinfmtRules()).toEqual(rulesBefore);
  });
});
