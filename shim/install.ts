// `kustodia-shim install <dir>`: the install init container's only job. Copies the runtime that the
// running shim belongs to (shim/runtime/layout.ts) into <dir>, the volume that app containers mount
// read-only at /kustodia. Files get modes 0755/0644 whatever the umask, so the app can run them as
// any uid. Idempotent: files already in place (same size, mtime and mode) are kept, others are
// copied next to their place and renamed over it, and runtime.json comes last, so a runtime with
// its manifest is complete.
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  parseManifest,
  RuntimeFile,
  type RuntimeFileEntry,
  type RuntimeManifest,
  runtimePlatformDir,
  runtimePlatformOf,
} from "./runtime/layout.ts";

// Loaded on use, not imported: the bundle hoists static imports of builtins, and every shim start
// would pay for node:fs/promises although only the init container installs.
const fs = () => process.getBuiltinModule("node:fs/promises");
function writableAndSearchable(): number {
  const { constants } = process.getBuiltinModule("node:fs");
  return constants.W_OK | constants.X_OK;
}

export class InstallError extends Error {
  override name = "InstallError";
}

interface Runtime {
  dir: string;
  manifest: RuntimeManifest;
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/**
 * Where the running shim's runtime can be: beside the executable (the runtime's kustodia-node; the
 * launcher when /proc is missing), else, for a plain Node running the bundle (dist/shim/main.js) or
 * the sources, this platform's runtime in dist/shim-runtime.
 */
export function runtimeCandidates(): string[] {
  const candidates = [dirname(process.execPath)];
  const platform = runtimePlatformOf();
  try {
    const moduleDir = dirname(fileURLToPath(import.meta.url));
    if (platform) {
      const dir = runtimePlatformDir(platform);
      candidates.push(join(moduleDir, "..", "shim-runtime", dir), join(moduleDir, "..", "dist", "shim-runtime", dir));
    }
  } catch {
    // Not a file: URL (a single executable application's main): only the executable's directory counts.
  }
  return [...new Set(candidates)];
}

async function readRuntime(dir: string): Promise<Runtime | Error> {
  let text: string;
  try {
    text = await fs().readFile(join(dir, RuntimeFile.manifest), "utf8");
  } catch (error) {
    return new Error(`${join(dir, RuntimeFile.manifest)}: ${errorCode(error)}`);
  }
  const manifest = parseManifest(text);
  return manifest instanceof Error ? new Error(`${join(dir, RuntimeFile.manifest)}: ${manifest.message}`) : { dir, manifest };
}

async function findRuntime(candidates: readonly string[]): Promise<Runtime> {
  const reasons: string[] = [];
  for (const dir of candidates) {
    const found = await readRuntime(dir);
    if (!(found instanceof Error)) return found;
    reasons.push(found.message);
  }
  throw new InstallError(
    `no kustodia runtime to copy (${reasons.join("; ")}): run the runtime's own kustodia-shim, or build one with \`npm run build\``,
  );
}

/** Creates `target` if needed and checks that this uid can write into it. */
async function prepareTarget(target: string): Promise<void> {
  try {
    await fs().mkdir(target, { recursive: true, mode: 0o755 });
  } catch (error) {
    const code = errorCode(error);
    if (code === "EEXIST" || code === "ENOTDIR") throw new InstallError(`${target} is not a directory`);
    throw new InstallError(`cannot create ${target} (${code}): mount a writable volume there, e.g. an emptyDir`);
  }
  const stats = await fs().stat(target);
  if (!stats.isDirectory()) throw new InstallError(`${target} is not a directory`);
  try {
    await fs().access(target, writableAndSearchable());
  } catch (error) {
    throw new InstallError(
      `${target} is not writable by uid ${process.getuid?.() ?? "?"} (${errorCode(error)}): mount a writable volume there, e.g. an emptyDir`,
    );
  }
  // Any uid must reach the files: add r-x for all when this uid may change the mode, else keep it.
  if ((stats.mode & 0o555) !== 0o555)
    await fs()
      .chmod(target, (stats.mode | 0o555) & 0o7777)
      .catch(() => undefined);
}

async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    return (await fs().realpath(a)) === (await fs().realpath(b));
  } catch {
    return false;
  }
}

async function installFile(source: Runtime, target: string, file: RuntimeFileEntry, neededBytes: number): Promise<void> {
  const from = join(source.dir, file.path);
  const to = join(target, file.path);
  const original = await fs()
    .stat(from)
    .catch((error: unknown) => {
      throw new InstallError(`the runtime in ${source.dir} is incomplete: ${file.path} (${errorCode(error)})`);
    });
  if (original.size !== file.size)
    throw new InstallError(`the runtime in ${source.dir} is damaged: ${file.path} has ${original.size} bytes, not ${file.size}`);
  const present = await fs()
    .stat(to)
    .catch(() => undefined);
  const current =
    present?.isFile() &&
    present.size === original.size &&
    Math.abs(present.mtimeMs - original.mtimeMs) < 1 &&
    (present.mode & 0o7777) === file.mode;
  if (current) return;
  const temporary = join(dirname(to), `.${basename(to)}.install-${process.pid}`);
  try {
    await fs().copyFile(from, temporary);
    await fs().chmod(temporary, file.mode);
    await fs().utimes(temporary, original.atime, original.mtime);
    await fs().rename(temporary, to);
  } catch (error) {
    await fs()
      .rm(temporary, { force: true })
      .catch(() => undefined);
    const code = errorCode(error);
    const hint =
      code === "ENOSPC" || code === "EDQUOT"
        ? `: the runtime needs ${Math.ceil(neededBytes / 2 ** 20)} MiB (raise the volume's sizeLimit)`
        : "";
    throw new InstallError(`cannot write ${to} (${code})${hint}`);
  }
}

/**
 * Copies the runtime the running shim belongs to (or the one in `options.from`) into `targetDir`.
 * Rejects with an InstallError whose message names the fix.
 */
export async function installRuntime(targetDir: string, options: { from?: string } = {}): Promise<void> {
  const runtime = options.from === undefined ? await findRuntime(runtimeCandidates()) : await findRuntime([resolve(options.from)]);
  const target = resolve(targetDir);
  await prepareTarget(target);
  if (await sameFile(runtime.dir, target)) return;
  const manifestFile: RuntimeFileEntry = {
    path: RuntimeFile.manifest,
    mode: 0o644,
    size: (await fs().stat(join(runtime.dir, RuntimeFile.manifest))).size,
    sha256: "",
  };
  const neededBytes = runtime.manifest.files.reduce((sum, file) => sum + file.size, manifestFile.size);
  const subdirectories = new Set(runtime.manifest.files.map((file) => dirname(file.path)).filter((dir) => dir !== "."));
  for (const dir of [...subdirectories].sort()) {
    try {
      await fs().mkdir(join(target, dir), { recursive: true, mode: 0o755 });
      await fs().chmod(join(target, dir), 0o755);
    } catch (error) {
      throw new InstallError(`cannot create ${join(target, dir)} (${errorCode(error)})`);
    }
  }
  for (const file of [...runtime.manifest.files, manifestFile]) await installFile(runtime, target, file, neededBytes);
}
