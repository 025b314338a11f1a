// What the test node does to the host, and how all of it is undone: the machine-wide lock (one node
// per machine: the kubelet and containerd hard-code host paths), the network namespace holding every
// node and pod address, the cgroup holding every node process (daemons, shims, containers), the kernel
// settings the kubelet changes, and the host paths it and containerd create.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NODE_CGROUP } from "./node-config.ts";
import { type Daemon, isAlive, startDaemon } from "./proc.ts";

/** The node's runtime state: fixed, so that a later run can find and remove what a crashed one left. */
export const NODE_ROOT = process.env.KUSTODIA_NODE_ROOT ?? "/var/lib/kustodia-node";
/** The network namespace, bound to a file (no /run/netns entry). */
export const NETNS_FILE = join(NODE_ROOT, "netns");
const LOCK_FILE = "/run/lock/kustodia-node.lock";
const OWNER_FILE = "/run/lock/kustodia-node.owner";
const KERNEL_TUNABLES_FILE = join(NODE_ROOT, "kernel-tunables.json");
/** Set by the kubelet (it has no setting to leave them alone); restored at teardown. */
const KERNEL_TUNABLES = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
];
/** Paths the kubelet, containerd and CNI use whatever they are configured with. */
const HARD_CODED_PATHS = ["/var/lib/kubelet/device-plugins", "/var/log/containers", "/var/lib/cni/results", "/run/containerd/s"];

/** Runs a program inside the node's network namespace (and nothing else: same mounts, same cgroup). */
export const IN_NETNS = ["nsenter", `--net=${NETNS_FILE}`, "--"];

interface LockOwner {
  pid: number;
  cwd: string;
  runDir: string;
  since: string;
}

/**
 * Takes the machine-wide node lock for as long as the returned daemon lives (a `flock` holding it);
 * fails at once, naming the holder, when another run has the node.
 */
export async function acquireNodeLock(runDir: string): Promise<Daemon> {
  const marker = join(runDir, "node-lock-held");
  const holder = startDaemon({
    name: "node-lock",
    command: "flock",
    args: ["--nonblock", "--conflict-exit-code", "75", LOCK_FILE, "sh", "-c", `echo held > '${marker}' && exec sleep infinity`],
    logFile: join(runDir, "node-lock.log"),
  });
  const deadline = Date.now() + 10_000;
  while (!existsSync(marker)) {
    if (!isAlive(holder.pid)) {
      const owner = readOwner();
      const who = owner
        ? `run ${owner.runDir} (checkout ${owner.cwd}, node-lock pid ${owner.pid}, since ${owner.since})`
        : `another process holding ${LOCK_FILE}`;
      throw new Error(
        `the test node is in use by ${who}: one node per machine, because the kubelet and containerd use fixed host paths. ` +
          "Stop that run (`npm run infra -- down` in its checkout), or leave `node` out with KUSTODIA_INFRA_ONLY.",
      );
    }
    if (Date.now() > deadline) throw new Error(`node-lock: flock on ${LOCK_FILE} neither held nor refused after 10 s`);
    await sleep(50);
  }
  const owner: LockOwner = { pid: holder.pid, cwd: process.cwd(), runDir, since: new Date().toISOString() };
  writeFileSync(OWNER_FILE, JSON.stringify(owner));
  return holder;
}

function readOwner(): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(OWNER_FILE, "utf8")) as LockOwner;
  } catch {
    return undefined;
  }
}

/** The node's network namespace with `lo` up and the node IP on it. */
export function createNetns(nodeIp: string): void {
  mkdirSync(NODE_ROOT, { recursive: true });
  writeFileSync(NETNS_FILE, "");
  execFileSync("unshare", [`--net=${NETNS_FILE}`, "true"]);
  execFileSync(IN_NETNS[0] as string, [...IN_NETNS.slice(1), "ip", "link", "set", "lo", "up"]);
  execFileSync(IN_NETNS[0] as string, [...IN_NETNS.slice(1), "ip", "addr", "add", `${nodeIp}/32`, "dev", "lo"]);
}

/** Runs `command args` inside the namespace; returns its stdout. */
export function inNetns(command: string, args: string[]): string {
  return execFileSync(IN_NETNS[0] as string, [...IN_NETNS.slice(1), command, ...args], { encoding: "utf8" });
}

/** The mount points of the cgroup v1 hierarchies (cpu, memory, pids, name=systemd, ...). */
function cgroupV1Hierarchies(): string[] {
  return mountinfo()
    .filter((mount) => mount.fstype === "cgroup")
    .map((mount) => mount.mountPoint);
}

/** Every cgroup hierarchy: the v1 ones and, on a hybrid host, the v2 one where runc mirrors its groups too. */
function allCgroupHierarchies(): string[] {
  return mountinfo()
    .filter((mount) => mount.fstype === "cgroup" || mount.fstype === "cgroup2")
    .map((mount) => mount.mountPoint);
}

/**
 * The node's cgroup in every v1 hierarchy (the kubelet's cgroupRoot must exist in each), with a
 * `daemons` child for the node's processes. cpuset groups need their cpus and mems before tasks join.
 */
export function createNodeCgroup(): string[] {
  const procs: string[] = [];
  for (const hierarchy of cgroupV1Hierarchies()) {
    for (const dir of [join(hierarchy, NODE_CGROUP), join(hierarchy, NODE_CGROUP, "daemons")]) {
      mkdirSync(dir, { recursive: true });
      for (const file of ["cpuset.cpus", "cpuset.mems"]) {
        const parent = join(dirname(dir), file);
        if (existsSync(parent)) writeFileSync(join(dir, file), readFileSync(parent));
      }
    }
    procs.push(join(hierarchy, NODE_CGROUP, "daemons", "cgroup.procs"));
  }
  return procs;
}

export interface NodeDaemonOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  /** Enter the node's network namespace (default true). */
  netns?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Starts a daemon in the node's cgroup (so that teardown finds it and all it forks), by default in its namespace. */
export function startNodeDaemon(cgroupProcs: string[], options: NodeDaemonOptions): Daemon {
  const join = cgroupProcs.map((file) => `echo $$ > '${file}'`).join(" && ");
  const enter = options.netns === false ? [] : IN_NETNS;
  return startDaemon({
    name: options.name,
    command: "sh",
    args: ["-c", `${join} && exec "$@"`, "sh", ...enter, options.command, ...options.args],
    logFile: options.logFile,
    env: options.env,
  });
}

/** Records the kernel settings the kubelet is about to change, for teardown to put back. */
export function saveKernelTunables(): void {
  const saved = Object.fromEntries(KERNEL_TUNABLES.map((name) => [name, readFileSync(`/proc/sys/${name}`, "utf8").trim()]));
  writeFileSync(KERNEL_TUNABLES_FILE, JSON.stringify(saved));
}

function restoreKernelTunables(): void {
  if (!existsSync(KERNEL_TUNABLES_FILE)) return;
  const saved = JSON.parse(readFileSync(KERNEL_TUNABLES_FILE, "utf8")) as Record<string, string>;
  for (const [name, value] of Object.entries(saved)) {
    if (readFileSync(`/proc/sys/${name}`, "utf8").trim() !== value) writeFileSync(`/proc/sys/${name}`, value);
  }
}

/**
 * Removes every trace of a node from the host: kills every process in its cgroup (frozen first, so
 * nothing forks meanwhile), unmounts what it mounted (pod volumes, rootfs overlays, pod and node
 * network namespaces), puts the kernel settings back, removes its paths and cgroups. Idempotent;
 * run at teardown and before a start (a crashed run may have left a node behind).
 */
export async function teardownNodeHost(): Promise<void> {
  await killCgroup();
  for (const mountPoint of mountsUnder([NODE_ROOT, "/run/containerd", "/var/lib/kubelet"])) {
    // A lazy unmount of a parent may have taken this one with it already.
    if (mountsUnder([mountPoint]).includes(mountPoint)) execFileSync("umount", ["--lazy", mountPoint]);
  }
  restoreKernelTunables();
  for (const path of [NODE_ROOT, ...HARD_CODED_PATHS]) {
    rmSync(path, { recursive: true, force: true });
    removeIfEmpty(dirname(path));
  }
  removeIfEmpty("/var/lib/kubelet");
  for (const hierarchy of allCgroupHierarchies()) removeCgroupTree(join(hierarchy, NODE_CGROUP));
}

/** Forgets who holds the lock; the lock itself goes with its holder daemon. */
export function forgetNodeLockOwner(): void {
  rmSync(OWNER_FILE, { force: true });
}

async function killCgroup(): Promise<void> {
  const freezer = cgroupV1Hierarchies().find((hierarchy) => hierarchy.endsWith("/freezer"));
  const frozen = freezer ? join(freezer, NODE_CGROUP, "freezer.state") : undefined;
  const roots = allCgroupHierarchies()
    .map((hierarchy) => join(hierarchy, NODE_CGROUP))
    .filter((root) => existsSync(root));
  if (roots.length === 0) return;
  const setFreezer = (state: "FROZEN" | "THAWED") => {
    if (frozen && existsSync(frozen)) writeFileSync(frozen, state);
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    setFreezer("FROZEN");
    const pids = [...new Set(roots.flatMap(cgroupPids))];
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    setFreezer("THAWED"); // a frozen process dies of SIGKILL only once thawed
    if (Date.now() > deadline) throw new Error(`node teardown: processes ${pids.join(", ")} in cgroup ${NODE_CGROUP} survive SIGKILL`);
    await sleep(100);
  }
  setFreezer("THAWED");
}

function cgroupPids(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const own = readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  const children = readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory());
  return [...own, ...children.flatMap((child) => cgroupPids(join(dir, child.name)))];
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) removeCgroupTree(join(dir, child.name));
  rmdirSync(dir);
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* not empty, or absent */
  }
}

interface Mount {
  mountPoint: string;
  fstype: string;
}

function mountinfo(): Mount[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(" ");
      const separator = fields.indexOf("-");
      return { mountPoint: unescapeMountPath(fields[4] ?? ""), fstype: fields[separator + 1] ?? "" };
    });
}

/** Mount points at or below any of `roots`, deepest first. */
function mountsUnder(roots: string[]): string[] {
  return mountinfo()
    .map((mount) => mount.mountPoint)
    .filter((path) => roots.some((root) => path === root || path.startsWith(`${root}/`)))
    .sort((a, b) => b.length - a.length);
}

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
