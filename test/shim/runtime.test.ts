// This machine's portable runtime (dist/shim-runtime/linux-<arch>, DESIGN §5, §7) where it has to
// run, as Kubernetes runs it: a root filesystem with nothing but busybox-static (no libc) and the
// runtime bind-mounted read-only at /kustodia; the shim image's own layout (runtime at /,
// `kustodia -> .`) running `kustodia-shim install` as a non-root uid into an emptyDir-like
// directory; the host's Debian. The roots and runs: ./minimal-root.ts. Needs root (chroot, mount).
// The other platform's runtime under emulation: ./runtime-arm64.test.ts.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INSTALL_MOUNT_PATH, MOUNT_PATH, SHIM_IN_IMAGE, SHIM_PATH } from "../../common/contract.ts";
import {
  buildablePlatforms,
  DEFAULT_RUNTIME_DIR,
  runtimeBuildPackages,
  runtimeDir as runtimeDirOf,
  runtimeStaleness,
} from "../../scripts/build-runtime.ts";
import { hostPlatform } from "../../scripts/platforms.ts";
import { ensureDebianGroups } from "../../scripts/system/debian.ts";
import { parseManifest, RuntimeFile, type RuntimeManifest, type RuntimePlatform } from "../../shim/runtime/layout.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { firstStage, replayCopyLines } from "../infra/dockerfile.ts";
import { auditRecords, bao, readPolicy, repoRoot, suffix, tokenFile, withoutAudit } from "./harness.ts";
import {
  BUSYBOX_APPLETS,
  bindMountsWork,
  busyboxRoot,
  imageRoot,
  LIBC_FILE,
  type Mount,
  materialize,
  probeBindMounts,
  removeRoots,
  rootTempDir,
  runInRoot,
  walk,
} from "./minimal-root.ts";

const inCI = process.env.CI === "true" || process.env.CI === "1";
const isRoot = process.getuid?.() === 0;
if (!isRoot && !inCI) console.warn("skipping the runtime tests: chroot and mount need root");

const runtimeDir = DEFAULT_RUNTIME_DIR;
let manifest: RuntimeManifest;
/** What `readelf -h` names each platform's machine. */
const ELF_MACHINE: Record<RuntimePlatform, string> = { "linux/amd64": "Advanced Micro Devices X86-64", "linux/arm64": "AArch64" };

function elfNeeded(file: string): string[] {
  const dynamic = spawnSync("readelf", ["-d", file], { encoding: "utf8" }).stdout;
  return [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((match) => match[1] as string);
}

function printEnvScript(names: string[]): string {
  return names.map((name) => `printf '%s=[%s]\\n' ${name} "\${${name}-<unset>}"`).join("; ");
}

afterAll(removeRoots);

describe.skipIf(!isRoot && !inCI)("portable shim runtime", () => {
  beforeAll(() => {
    ensureDebianGroups(["runtime-test"], "the runtime test");
    const stale = runtimeStaleness();
    if (stale) {
      console.log(`[runtime test] npm run build: ${stale}`);
      const built = spawnSync("npm", ["run", "build", "--", "--if-stale"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
      if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status})`);
    }
    const parsed = parseManifest(readFileSync(join(runtimeDir, RuntimeFile.manifest), "utf8"));
    if (parsed instanceof Error) throw parsed;
    manifest = parsed;
    const bindMounts = probeBindMounts(runtimeDir);
    console.log(
      `[runtime test] runtime at /kustodia by ${bindMounts ? "read-only bind mount" : "copy (bind mounts are not available here)"}`,
    );
  });

  // Every platform's runtime this machine builds (no need to run it for that): none mixes in another's files.
  it.each(buildablePlatforms())("ships exactly the manifest's files, the libraries Node needs and modes for any uid: %s", (platform) => {
    const runtimeDir = runtimeDirOf(platform);
    const parsed = parseManifest(readFileSync(join(runtimeDir, RuntimeFile.manifest), "utf8"));
    if (parsed instanceof Error) throw parsed;
    const manifest = parsed;
    expect(manifest.platform).toBe(platform);
    const files = walk(runtimeDir).sort();
    expect(files).toEqual([...manifest.files.map((file) => file.path), RuntimeFile.manifest].sort());
    for (const file of manifest.files) {
      const stats = statSync(join(runtimeDir, file.path));
      expect({ path: file.path, mode: stats.mode & 0o7777, size: stats.size }).toEqual({
        path: file.path,
        mode: file.mode,
        size: file.size,
      });
      expect([0o755, 0o644]).toContain(file.mode);
      expect(
        createHash("sha256")
          .update(readFileSync(join(runtimeDir, file.path)))
          .digest("hex"),
      ).toBe(file.sha256);
    }
    expect(`${MOUNT_PATH}/${RuntimeFile.launcher}`).toBe(SHIM_PATH);

    const node = join(runtimeDir, RuntimeFile.node);
    const patchelf = (...args: string[]) => spawnSync("patchelf", [...args, node], { encoding: "utf8" }).stdout.trim();
    expect(patchelf("--print-interpreter")).toBe(manifest.interpreter);
    expect(manifest.interpreter).toBe(`${MOUNT_PATH}/lib/${basename(manifest.interpreter)}`);
    expect(patchelf("--print-rpath")).toBe(`${MOUNT_PATH}/lib`);
    expect(spawnSync("readelf", ["-d", node], { encoding: "utf8" }).stdout).toMatch(/\(RPATH\)/);
    expect(spawnSync("readelf", ["-S", node], { encoding: "utf8" }).stdout).not.toContain(".symtab");

    // lib/ holds the loader and exactly what kustodia-node needs, and their needs are met there.
    const libs = readdirSync(join(runtimeDir, RuntimeFile.lib)).sort();
    expect(libs).toEqual([...new Set([...elfNeeded(node), basename(manifest.interpreter)])].sort());
    for (const lib of libs) for (const needed of elfNeeded(join(runtimeDir, RuntimeFile.lib, lib))) expect(libs).toContain(needed);

    expect(readdirSync(join(runtimeDir, RuntimeFile.licenses))).toEqual(
      expect.arrayContaining(["node.LICENSE", "libc6.copyright", "tini.copyright"]),
    );
    // The launcher and tini need no loader at all.
    for (const file of [RuntimeFile.launcher, RuntimeFile.tini]) {
      expect(spawnSync("readelf", ["-l", join(runtimeDir, file)], { encoding: "utf8" }).stdout).not.toContain("INTERP");
    }
    // Every program and library is built for the platform.
    const elves = manifest.files.filter(
      (file) => readFileSync(join(runtimeDir, file.path)).subarray(0, 4).toString("latin1") === "\x7fELF",
    );
    expect(elves.map((file) => file.path)).toEqual(expect.arrayContaining([RuntimeFile.launcher, RuntimeFile.node, RuntimeFile.tini]));
    for (const file of elves) {
      const header = spawnSync("readelf", ["-h", join(runtimeDir, file.path)], { encoding: "utf8" }).stdout;
      expect([file.path, /Machine:\s+(.+)/.exec(header)?.[1]?.trim()]).toEqual([file.path, ELF_MACHINE[platform]]);
    }
  });

  it("starts in a root with no libc: same PID, argv exactly, the app's loader and Node settings untouched", async () => {
    const root = busyboxRoot();
    const outside = walk(root).filter((path) => !path.startsWith(`${MOUNT_PATH.slice(1)}/`));
    expect(outside.filter((path) => LIBC_FILE.test(basename(path)))).toEqual([]);
    expect(outside.filter((path) => !path.startsWith("bin/"))).toEqual([]);
    const mounts = materialize(root, [{ source: runtimeDir, target: MOUNT_PATH, readOnly: true }]);

    // These would break the shim's Node (or make its loader complain) if they reached it.
    const appSettings = [
      "LD_PRELOAD=/nonexistent/libpreload.so",
      "NODE_OPTIONS=--require /nonexistent/instrument.js",
      "BETWEEN=plain",
      "OPENSSL_CONF=/nonexistent/openssl.cnf",
      "NODE_EXTRA_CA_CERTS=/nonexistent/ca.pem",
      "LD_LIBRARY_PATH=/nonexistent/lib",
      "KUSTODIA_RUNTIME_ENV_X=settings-var",
    ];
    // busybox env -i sets exactly this environment, in this order (the host's sh would reorder it).
    const shim = ["/bin/env", "-i", "PATH=/bin", ...appSettings, SHIM_PATH, "--"];
    const args = ["two words", "", "--", "install", "$HOME", "ünï"];
    const run = await runInRoot(root, mounts, [
      ...shim,
      "/bin/sh",
      "-c",
      'echo "pid=$$"; for arg in "$@"; do echo "arg=[$arg]"; done',
      "sh",
      ...args,
    ]);
    // Nothing from a loader or Node; the shim's one warning is for the KUSTODIA_* var it strips, then its audit record.
    const stripped = [expect.stringMatching(/^kustodia-shim.*unknown setting KUSTODIA_RUNTIME_ENV_X\b/)];
    expect(withoutAudit(run.stderr).trim().split("\n")).toEqual(stripped);
    expect(auditRecords(run.stderr)).toEqual([expect.objectContaining({ event: "start", outcome: "ok", secrets: [] })]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe([`pid=${run.pid}`, ...args.map((arg) => `arg=[${arg}]`), ""].join("\n"));

    // The app's env, listed by env itself (a shell would add and reorder): byte for byte, in order.
    const listed = await runInRoot(root, mounts, [...shim, "/bin/env"]);
    expect(withoutAudit(listed.stderr).trim().split("\n")).toEqual(stripped);
    expect(listed.stdout).toBe(["PATH=/bin", ...appSettings.filter((setting) => !setting.startsWith("KUSTODIA_")), ""].join("\n"));
  });

  it.skipIf(skipWithout("openbao"))("resolves a secret from the real OpenBao in a root with no libc", async () => {
    const { kvV2Mount } = service("openbao");
    const id = suffix();
    const value = "p@ss w0rd=ünï\nline two";
    await bao("POST", `${kvV2Mount}/data/runtime-${id}/db`, { data: { password: value } });
    const policy = await readPolicy(`runtime-${id}`, [`${kvV2Mount}/data/runtime-${id}/*`]);
    const root = busyboxRoot();
    const token = await tokenFile(join(root, "run/secrets"), [policy]);
    const mounts = materialize(root, [{ source: runtimeDir, target: MOUNT_PATH, readOnly: true }]);
    const env = {
      PATH: "/bin",
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_AUTH_METHOD: "token",
      KUSTODIA_VAULT_TOKEN_FILE: `/run/secrets/${basename(token)}`,
      KUSTODIA_VAULT_KV_MOUNT: kvV2Mount,
      SECRET_DB_PASSWORD: `runtime-${id}/db#password`,
    };
    const run = await runInRoot(
      root,
      mounts,
      [
        SHIM_PATH,
        "--",
        "/bin/sh",
        "-c",
        `echo "pid=$$"; ${printEnvScript(["DB_PASSWORD", "SECRET_DB_PASSWORD", "KUSTODIA_VAULT_TOKEN_FILE"])}`,
      ],
      {
        env,
      },
    );
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`pid=${run.pid}\nDB_PASSWORD=[${value}]\nSECRET_DB_PASSWORD=[<unset>]\nKUSTODIA_VAULT_TOKEN_FILE=[<unset>]\n`);
    console.log(`[runtime test] chroot + shim + OpenBao read + exec: ${run.ms} ms`);
  });

  it("installs from the shim image as uid 65532 into an emptyDir, idempotently, and the copy runs as another uid", async () => {
    const image = imageRoot(runtimeDir);
    mkdirSync(join(image, INSTALL_MOUNT_PATH), { recursive: true });
    mkdirSync(join(image, "proc"));
    mkdirSync(join(image, "mnt/readonly"), { recursive: true, mode: 0o755 });
    // emptyDir: a fresh 0777 directory of the node's disk, mounted into the init container.
    const emptyDir = bindMountsWork() ? rootTempDir("kustodia-emptydir-") : join(image, INSTALL_MOUNT_PATH);
    chmodSync(emptyDir, 0o777);
    const volume: Mount[] = bindMountsWork() ? [{ source: emptyDir, target: INSTALL_MOUNT_PATH, readOnly: false }] : [];
    // The webhook's init container: [SHIM_IN_IMAGE, "install", INSTALL_MOUNT_PATH], run as 65532,
    // with /proc as in any container (the runtime is found beside /proc/self/exe, /kustodia-node).
    const install = () => runInRoot(image, volume, [SHIM_IN_IMAGE, "install", INSTALL_MOUNT_PATH], { user: "65532:65532", proc: true });

    const first = await install();
    expect(withoutAudit(first.stderr)).toBe("");
    expect(first.code).toBe(0);
    const installed = walk(emptyDir).sort();
    expect(installed).toEqual(walk(runtimeDir).sort());
    for (const file of manifest.files) {
      const stats = statSync(join(emptyDir, file.path));
      expect({ path: file.path, mode: stats.mode & 0o7777, size: stats.size, uid: stats.uid }).toEqual({
        path: file.path,
        mode: file.mode,
        size: file.size,
        uid: 65532,
      });
    }
    expect(statSync(join(emptyDir, RuntimeFile.lib)).mode & 0o777).toBe(0o755);

    const inode = statSync(join(emptyDir, RuntimeFile.node)).ino;
    const again = await install();
    expect(withoutAudit(again.stderr)).toBe("");
    expect(again.code).toBe(0);
    expect(statSync(join(emptyDir, RuntimeFile.node)).ino).toBe(inode);

    const denied = await runInRoot(image, [], [SHIM_PATH, "install", "/mnt/readonly"], { user: "65532:65532" });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/\/mnt\/readonly is not writable by uid 65532 \(EACCES\)/);
    expect(readdirSync(join(image, "mnt/readonly"))).toEqual([]);

    // The app container: the volume read-only at /kustodia, an unrelated uid.
    const app = busyboxRoot();
    const appMounts = materialize(app, [{ source: emptyDir, target: MOUNT_PATH, readOnly: true }]);
    const run = await runInRoot(app, appMounts, [SHIM_PATH, "--", "/bin/sh", "-c", 'echo "uid=$(id -u) pid=$$"'], { user: "1000:1000" });
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`uid=1000 pid=${run.pid}\n`);
  });

  it("runs on the host's Debian root, whose own glibc the app uses and the shim ignores", async ({ skip }) => {
    if (!bindMountsWork()) skip("needs bind mounts to show the host's root inside a chroot");
    const root = rootTempDir("kustodia-host-root-");
    const mounts: Mount[] = [{ source: runtimeDir, target: MOUNT_PATH, readOnly: true }];
    for (const entry of ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc"]) {
      const host = `/${entry}`;
      if (!existsSync(host)) continue;
      if (lstatSync(host).isSymbolicLink()) symlinkSync(readlinkSync(host), join(root, entry));
      else {
        mkdirSync(join(root, entry));
        mounts.push({ source: host, target: host, readOnly: true });
      }
    }
    mkdirSync(join(root, MOUNT_PATH.slice(1)));
    const hostLibs = readdirSync("/usr/lib").find((dir) => dir.endsWith("-linux-gnu")) ?? "x86_64-linux-gnu";
    const env = { PATH: "/usr/bin:/bin", LD_LIBRARY_PATH: `/usr/lib/${hostLibs}` };
    // dash is linked against the host's glibc: it and the shim's Node each get their own.
    const run = await runInRoot(
      root,
      mounts,
      [SHIM_PATH, "--", "sh", "-c", `echo "pid=$$"; ${printEnvScript(["LD_LIBRARY_PATH"])}; ldd /bin/sh | grep -c libc.so.6`],
      {
        env,
      },
    );
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`pid=${run.pid}\nLD_LIBRARY_PATH=[/usr/lib/${hostLibs}]\n1\n`);
  });
});

describe.skipIf(!isRoot && !inCI)("shim/Dockerfile", () => {
  const dockerfile = readFileSync(join(repoRoot, "shim", "Dockerfile"), "utf8");
  const buildStage = firstStage(dockerfile);

  it("builds the target platform's runtime on that platform with the build tools, and ships only it, as 65532", () => {
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual([expect.stringMatching(/^FROM \$\{BUILD_IMAGE\} AS build$/), "FROM scratch"]);
    for (const debian of runtimeBuildPackages()) expect(buildStage).toMatch(new RegExp(`apt-get install [^\\n]*\\b${debian}\\b`));
    expect(buildStage).toContain(`arch="\${TARGETARCH:-$(dpkg --print-architecture)}";`);
    expect(buildStage).toMatch(/^\s+npm run build -- --platform "linux\/\$\{arch\}";/m);
    // The image's root is the runtime, and /kustodia leads back to it (see imageRoot in ./minimal-root.ts).
    expect(buildStage).toContain(`cp -a "dist/shim-runtime/linux-\${arch}/." /rootfs/;`);
    expect(buildStage).toContain(`ln -s . /rootfs${MOUNT_PATH}`);
    expect(dockerfile).toMatch(/^COPY --from=build \/rootfs\/ \/$/m);
    expect(dockerfile).toMatch(/^USER 65532:65532$/m);
    expect(dockerfile).toContain(`ENTRYPOINT ["${SHIM_PATH}"]`);
  });

  it("produces this platform's runtime from the build stage's COPY lines alone, with the same npm script", () => {
    const context = rootTempDir("kustodia-shim-image-");
    replayCopyLines(buildStage, repoRoot, context);
    const platform = hostPlatform()?.key ?? "linux/amd64";
    const built = spawnSync("npm", ["run", "build", "--", "--platform", platform], { cwd: context, encoding: "utf8" });
    expect(built.stderr.replace(/^npm warn .*\n/gm, "")).toBe("");
    expect(built.status).toBe(0);
    expect(readdirSync(join(context, "dist/shim-runtime"))).toEqual([`linux-${platform.split("/")[1]}`]);
    const rebuilt = parseManifest(readFileSync(join(context, relative(repoRoot, runtimeDir), RuntimeFile.manifest), "utf8"));
    if (rebuilt instanceof Error) throw rebuilt;
    expect(rebuilt.platform).toBe(platform);
    const current = parseManifest(readFileSync(join(runtimeDir, RuntimeFile.manifest), "utf8"));
    if (current instanceof Error) throw current;
    expect(rebuilt.files.map((file) => [file.path, file.mode])).toEqual(current.files.map((file) => [file.path, file.mode]));
  });
});
