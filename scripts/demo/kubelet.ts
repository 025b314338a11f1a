// Runs one container of a stored pod the way a kubelet would — its command, args and env exactly as
// stored — with two stand-ins, because no kubelet or container image runs here:
// - `/kustodia/kustodia-shim`: the portable runtime (dist/shim-runtime, what the kustodia-install
//   init container copies) when it is built and up to date and this process may chroot (root): the
//   container then gets a root of its own holding this machine's /usr, /etc and /dev (like a Debian
//   image) and the runtime read-only at /kustodia, in a private mount namespace. Otherwise the shim
//   from source: `<the pinned node> shim/main.ts`.
// - the ServiceAccount token the kubelet would mount: a file, named by KUSTODIA_SA_TOKEN_FILE.
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MOUNT_PATH, SHIM_PATH, ShimEnv } from "../../common/contract.ts";
import type { JsonObject } from "../../webhook/pod.ts";
import { DEFAULT_RUNTIME_DIR, runtimeStaleness } from "../build-runtime.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SOURCE_SHIM = join(repoRoot, "shim", "main.ts");
/** The image's PATH, for the demo's containers. */
const IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export type ShimKind = "runtime" | "source";

export interface ShimChoice {
  kind: ShimKind;
  /** One line: what stands in for /kustodia/kustodia-shim. */
  description: string;
}

function hostTool(name: string): string | undefined {
  return ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map((dir) => join(dir, name)).find((path) => existsSync(path));
}

/** Why the portable runtime cannot run here, or undefined when it can. */
function runtimeUnavailable(): string | undefined {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "it runs at /kustodia in a root of its own, which needs root (chroot, mount)";
  const stale = runtimeStaleness();
  if (stale) return `dist/shim-runtime is not up to date (${stale}; \`npm run build\` makes it)`;
  if (!hostTool("unshare") || !hostTool("chroot") || !hostTool("mount")) return "unshare, chroot or mount is missing";
  const probe = spawnSync(hostTool("unshare") as string, ["--mount", "--propagation", "private", "true"]);
  return probe.status === 0 ? undefined : "this machine does not allow private mount namespaces";
}

/** `KUSTODIA_DEMO_SHIM=runtime|source` forces a choice; by default the runtime when it can run. */
export function chooseShim(wanted = process.env.KUSTODIA_DEMO_SHIM): ShimChoice {
  if (wanted !== undefined && wanted !== "runtime" && wanted !== "source")
    throw new Error(`KUSTODIA_DEMO_SHIM must be "runtime" or "source", not ${JSON.stringify(wanted)}`);
  const unavailable = wanted === "source" ? "KUSTODIA_DEMO_SHIM=source" : runtimeUnavailable();
  if (unavailable === undefined) {
    return {
      kind: "runtime",
      description: `the portable runtime dist/shim-runtime, mounted read-only at ${MOUNT_PATH} in the container's root`,
    };
  }
  if (wanted === "runtime") throw new Error(`KUSTODIA_DEMO_SHIM=runtime, but the portable runtime cannot run here: ${unavailable}`);
  return { kind: "source", description: `\`node shim/main.ts\`, the shim from source (not the portable runtime: ${unavailable})` };
}

export interface ContainerRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/**
 * A private mount namespace and a root for the container: /usr, /etc, /dev and `scratchDir` from this
 * machine, the runtime at /kustodia (read-only), bin/lib/sbin as this machine has them. The script
 * mounts, then `exec chroot`s into the root with the container's argv.
 */
function inContainerRoot(scratchDir: string, argv: string[]): string[] {
  const root = mkdtempSync(join(scratchDir, "root-"));
  const mounts: [string, string, boolean][] = [
    ["/usr", "/usr", true],
    ["/etc", "/etc", true],
    ["/dev", "/dev", false],
    [scratchDir, scratchDir, false],
    [DEFAULT_RUNTIME_DIR, MOUNT_PATH, true],
  ];
  for (const link of ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]) {
    const host = `/${link}`;
    if (!existsSync(host)) continue;
    if (lstatSync(host).isSymbolicLink()) symlinkSync(readlinkSync(host), join(root, link));
    else mounts.push([host, host, true]);
  }
  const mount = hostTool("mount") as string;
  const script = ["set -e"];
  for (const [source, target, readOnly] of mounts) {
    mkdirSync(join(root, target), { recursive: true });
    script.push(`${mount} --bind ${quote(source)} ${quote(join(root, target))}`);
    if (readOnly) script.push(`${mount} -o remount,bind,ro ${quote(join(root, target))}`);
  }
  script.push(`cd /; exec ${hostTool("chroot")} ${quote(root)} "$@"`);
  return [hostTool("unshare") as string, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script.join("\n"), "sh", ...argv];
}

/**
 * The kubelet's expansion of a container's command and args: `$(VAR)` becomes VAR's value when the
 * container's env defines it (else it stays as written), `$$` becomes `$`.
 */
export function expandForKubelet(word: string, env: Readonly<Record<string, string>>): string {
  let result = "";
  for (let index = 0; index < word.length; index++) {
    const char = word[index];
    const next = word[index + 1];
    if (char === "$" && next === "$") {
      result += "$";
      index++;
    } else if (char === "$" && next === "(") {
      const close = word.indexOf(")", index + 2);
      const name = close < 0 ? undefined : word.slice(index + 2, close);
      if (name === undefined || !Object.hasOwn(env, name)) {
        result += char;
        continue;
      }
      result += env[name];
      index = close;
    } else {
      result += char;
    }
  }
  return result;
}

/** Runs container `name` of the stored `pod`; `tokenFile` holds the pod's ServiceAccount token. */
export function runContainer(pod: JsonObject, name: string, shim: ShimChoice, tokenFile: string): ContainerRun {
  const containers = ((pod.spec as JsonObject).containers ?? []) as JsonObject[];
  const container = containers.find((item) => item.name === name);
  if (!container) throw new Error(`the stored pod has no container "${name}"`);
  const env: Record<string, string> = { PATH: IMAGE_PATH, HOSTNAME: String((pod.metadata as JsonObject).name) };
  for (const item of (container.env ?? []) as JsonObject[]) if (typeof item.value === "string") env[String(item.name)] = item.value;
  const words = [...((container.command as string[] | undefined) ?? []), ...((container.args as string[] | undefined) ?? [])];
  const command = words.map((word) => expandForKubelet(word, env));
  if (command[0] !== SHIM_PATH) throw new Error(`container "${name}" does not start with ${SHIM_PATH}: ${JSON.stringify(command)}`);
  env[ShimEnv.saTokenFile] = tokenFile;

  const scratchDir = dirname(tokenFile);
  const argv = shim.kind === "runtime" ? inContainerRoot(scratchDir, command) : [process.execPath, SOURCE_SHIM, ...command.slice(1)];
  const result = spawnSync(argv[0] as string, argv.slice(1), { env, encoding: "utf8", timeout: 60_000, cwd: tmpdir() });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Removes `scratchDir`. The container roots in it held bind mounts of /usr, /etc and /dev, which
 * lived in the runs' private namespaces and are gone with them; if one were still visible here the
 * directory is left alone rather than recursed into.
 */
export function removeScratch(scratchDir: string): void {
  const mountinfo = existsSync("/proc/self/mountinfo") ? readFileSync("/proc/self/mountinfo", "utf8") : "";
  const mounted = mountinfo.split("\n").some((line) => line.split(" ")[4]?.startsWith(`${scratchDir}/`));
  if (mounted) throw new Error(`${scratchDir} still holds mounts; not removing it`);
  rmSync(scratchDir, { recursive: true, force: true });
}
