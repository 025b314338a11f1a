// Runs the portable runtime where it has to run, as Kubernetes runs it (DESIGN §7): chrooted into a
// root filesystem with nothing but busybox-static (no libc), or into the shim image's own layout,
// with the runtime bind-mounted read-only at /kustodia. Each run happens in a private mount
// namespace (unshare), so no mount outlives it; where bind mounts do not work, the runtime is
// copied into the root instead. Needs root (chroot, mount).
//
// Another platform's runtime (linux/arm64 on an amd64 machine) runs under QEMU's user-mode
// emulator, registered with binfmt_misc, so that every exec of the platform's programs (launcher →
// kustodia-node) is emulated while the app (busybox, this machine's) runs natively. The
// registration is made inside a user namespace of the run's own (uids mapped one to one), whose
// binfmt_misc instance is private to it (Linux ≥ 6.7): the rest of the machine never sees it, and
// it ends with the run. The emulator is Debian's qemu-user-static (static, so it needs nothing from
// the root) with Debian's own rule; the kernel opens it when the rule is registered (flag F).
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { MOUNT_PATH } from "../../common/contract.ts";
import type { TargetPlatform } from "../../scripts/platforms.ts";
import { collectOutput } from "./harness.ts";

export const BUSYBOX_APPLETS = ["sh", "env", "id", "cat", "echo", "true", "ls", "printf"];
/** Files that would be a libc or a dynamic loader. */
export const LIBC_FILE = /^(libc\.so.*|libc\.musl.*|ld-linux.*|ld-musl.*)$/;

export interface Mount {
  source: string;
  /** Absolute path inside the root. */
  target: string;
  readOnly: boolean;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string>;
  user?: string;
  /** Show /proc inside the root, as in any container. */
  proc?: boolean;
  /** Run another platform's programs under QEMU (binfmt_misc in a user namespace of the run's own). */
  emulate?: TargetPlatform;
}

const temporary: string[] = [];
let bindMounts = false;

/** A fresh 0755 directory, removed by {@link removeRoots}. */
export function rootTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  temporary.push(dir);
  return dir;
}

/** Removes every directory made here (mounts lived in the runs' own namespaces: they are plain directories again). */
export function removeRoots(): void {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Absolute path of a host tool: the runs' env is the shim's, so the host side cannot rely on PATH. */
export function hostTool(name: string): string {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  const found = dirs
    .filter((dir) => dir !== "")
    .map((dir) => join(dir, name))
    .find((path) => existsSync(path));
  if (!found) throw new Error(`${name} is not installed`);
  return found;
}

function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Whether bind mounts work here (tried on `source` in a throwaway namespace); runs use them from
 * now on, else copies. RUNTIME_TEST_COPY=1 takes the copies even where bind mounts work.
 */
export function probeBindMounts(source: string): boolean {
  const probe = rootTempDir("kustodia-bind-probe-");
  mkdirSync(join(probe, "target"));
  const probeArgs = ["--mount", "--propagation", "private", "--", hostTool("mount"), "--bind", source, join(probe, "target")];
  bindMounts = process.env.RUNTIME_TEST_COPY !== "1" && spawnSync(hostTool("unshare"), probeArgs).status === 0;
  return bindMounts;
}

export function bindMountsWork(): boolean {
  return bindMounts;
}

/** Copies of the mounts' sources into the root, when bind mounts are not available. */
export function materialize(root: string, mounts: Mount[]): Mount[] {
  if (!bindMounts)
    for (const mount of mounts) cpSync(mount.source, join(root, mount.target), { recursive: true, preserveTimestamps: true });
  return mounts;
}

/** A root filesystem with busybox-static and nothing else (no libc, no loader). */
export function busyboxRoot(): string {
  const root = rootTempDir("kustodia-busybox-root-");
  for (const dir of ["bin", "tmp", "run/secrets", MOUNT_PATH.slice(1)]) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync("/bin/busybox", join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  for (const applet of BUSYBOX_APPLETS) symlinkSync("busybox", join(root, "bin", applet));
  return root;
}

/** The shim image: the runtime at its root and a `kustodia -> .` symlink (shim/Dockerfile). */
export function imageRoot(runtimeDir: string): string {
  const root = rootTempDir("kustodia-image-root-");
  cpSync(runtimeDir, root, { recursive: true, preserveTimestamps: true });
  symlinkSync(".", join(root, MOUNT_PATH.slice(1)));
  return root;
}

/** Every file under `dir` (not following symlinks), relative, `/`-separated. */
export function walk(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    return entry.isDirectory() ? walk(dir, path) : [path];
  });
}

/** Debian's binfmt_misc rule for the platform's emulator (qemu-user-static's /usr/lib/binfmt.d/). */
export function binfmtRule(platform: TargetPlatform): string {
  return `/usr/lib/binfmt.d/${platform.qemu.replace(/-static$/, "")}.conf`;
}

/** The rules registered machine-wide (the initial user namespace's binfmt_misc), read from a throwaway mount namespace. */
export function machineBinfmtRules(): string[] {
  const script = `${quote(hostTool("mount"))} -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && ls /proc/sys/fs/binfmt_misc`;
  const listed = spawnSync(hostTool("unshare"), ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script], {
    encoding: "utf8",
  });
  if (listed.status !== 0) throw new Error(`cannot read binfmt_misc: ${listed.stderr.trim()}`);
  return listed.stdout.split("\n").filter((name) => name !== "" && name !== "register" && name !== "status");
}

/** The script's lines that mount what the run needs, then exec chroot with the argv. */
function rootScript(root: string, mounts: Mount[], options: RunOptions): string {
  const mountTool = quote(hostTool("mount"));
  const lines = ["set -e"];
  if (options.emulate) {
    // Mounted from a user namespace that owns no PID namespace: /proc can be bound, not mounted anew.
    lines.push(
      `${mountTool} -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`,
      `${quote(hostTool("cat"))} ${quote(binfmtRule(options.emulate))} > /proc/sys/fs/binfmt_misc/register`,
    );
    if (options.proc) lines.push(`${mountTool} --rbind /proc ${quote(join(root, "proc"))}`);
  } else if (bindMounts && options.proc) lines.push(`${mountTool} -t proc proc ${quote(join(root, "proc"))}`);
  if (bindMounts || options.emulate) {
    for (const mount of mounts) {
      const target = quote(join(root, mount.target));
      lines.push(`${mountTool} --bind ${quote(mount.source)} ${target}`);
      if (mount.readOnly) lines.push(`${mountTool} -o remount,bind,ro ${target}`);
    }
  }
  lines.push(`exec ${quote(hostTool("chroot"))} ${options.user ? `--userspec=${options.user} ` : ""}${quote(root)} "$@"`);
  return lines.join("\n");
}

/**
 * Runs `argv` chrooted into `root`, in a private mount namespace holding `mounts` (bind mounts, or
 * copies made beforehand when bind mounts do not work). The process keeps its PID from spawn to the
 * app: unshare, sh and chroot all exec.
 */
export function runInRoot(root: string, mounts: Mount[], argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const script = rootScript(root, mounts, options);
  const namespaces = ["--mount", "--propagation", "private"];
  // With a user namespace, the shell first waits on fd 3 until this process has mapped the uids and
  // gids one to one, then execs the script again: that exec gives it its capabilities in the namespace.
  const command = options.emulate
    ? ["--user", ...namespaces, "--", "/bin/sh", "-c", `echo >&3; read -r _ <&3; exec 3>&-; exec /bin/sh -c ${quote(script)} sh "$@"`]
    : [...namespaces, "--", "/bin/sh", "-c", script];
  const began = Date.now();
  const child = spawn(hostTool("unshare"), [...command, "sh", ...argv], {
    env: options.env ?? { PATH: "/bin" },
    stdio: ["ignore", "pipe", "pipe", ...(options.emulate ? (["pipe"] as const) : [])],
  });
  const output = collectOutput(child);
  if (options.emulate) {
    const control = child.stdio[3] as Duplex;
    control.once("data", () => {
      for (const map of ["uid_map", "gid_map"]) writeFileSync(`/proc/${child.pid}/${map}`, "0 0 4294967295\n");
      control.write("\n");
    });
  }
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout: output.stdout(), stderr: output.stderr(), pid: child.pid ?? -1, ms: Date.now() - began }),
    );
  });
}
