// Builds the shim's portable runtime for each platform, dist/shim-runtime/<os>-<arch>/ (layout:
// shim/runtime/layout.ts), from the bundled shim that scripts/build.ts wrote to dist/shim/main.js.
// `npm run build` calls it; alone: `node scripts/build-runtime.ts [--platform linux/arm64]...
// [--shim <bundle.js>] [--out <dir>] [--no-code-cache]`.
//
// 1. The pinned Node (the npm `node` package, or node-linux-<arch> at its version for another
//    platform) is stripped and becomes a single executable application: the shim's prelude
//    (shim/runtime/prelude.ts) + the bundle, with a V8 code cache made by that very Node.
// 2. patchelf points its ELF interpreter and RPATH at /kustodia/lib, and glibc's loader plus the
//    libraries the loader lists are copied there: the result needs nothing from the image it runs in.
// 3. The static launcher (shim/runtime/launcher.c) becomes /kustodia/kustodia-shim; Debian's
//    tini-static, the licenses and runtime.json (platform, every file with mode, size, sha256)
//    complete it.
//
// This machine's platform is built with its own tools: Linux with glibc, patchelf, strip, gcc with a
// static libc and tini-static (the Debian group `build` of scripts/system/debian-packages.txt).
// Another platform is built from that platform's own parts, never this machine's: its Node from the
// npm registry, glibc and the libraries Node needs from Debian's multiarch packages, tini-static
// from its Debian package, the launcher by Debian's cross compiler; the Node runs under QEMU's
// user-mode emulator to make the SEA and its code cache (Debian group `cross-<arch>`). Each
// platform's build is checked at the end: its Node starts on its own loader and libraries.
// scripts/system/install-debian.sh installs the groups; scripts/system/fetch-package.sh fetches the
// npm and Debian packages into the cache.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import packageJson from "../package.json" with { type: "json" };
import { STASH_PREFIX } from "../shim/runtime/env-stash.ts";
import {
  MANIFEST_NAME,
  RUNTIME_DIR,
  RuntimeFile,
  type RuntimeFileEntry,
  type RuntimeManifest,
  type RuntimePlatform,
  runtimePlatformDir,
} from "../shim/runtime/layout.ts";
import { hostPlatform, PLATFORMS, type TargetPlatform, targetPlatform } from "./platforms.ts";
import { debianPackages, ensureDebianGroups } from "./system/debian.ts";
import { debianPackageFiles, npmPackageFile } from "./system/package-cache.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_SHIM_BUNDLE = join(repo, "dist/shim/main.js");
/** Where the runtimes go, one directory per platform. */
export const RUNTIMES_DIR = join(repo, "dist/shim-runtime");

/** The directory of `platform`'s runtime: dist/shim-runtime/linux-arm64. */
export function runtimeDir(platform: RuntimePlatform): string {
  return join(RUNTIMES_DIR, runtimePlatformDir(platform));
}

/** The runtime this machine runs natively (linux/amd64 where the platform is not one that is built). */
export const DEFAULT_RUNTIME_DIR = runtimeDir(hostPlatform()?.key ?? "linux/amd64");
/** What the runtime is built from: when one is newer than runtime.json, the runtime is stale. */
const RUNTIME_INPUTS = ["shim", "common", "scripts/build.ts", "scripts/build-runtime.ts", "scripts/platforms.ts", "package-lock.json"];
const TINI_STATIC = "/usr/bin/tini-static";

export interface BuildRuntimeOptions {
  /** The bundled shim (default dist/shim/main.js). */
  shimBundle?: string;
  /** The platform (default this machine's). */
  platform?: RuntimePlatform;
  /** Where the runtime goes (default the platform's directory in dist/shim-runtime); replaced as a whole. */
  outDir?: string;
  /** Give the SEA a V8 code cache (default true; false only to measure what it saves). */
  codeCache?: boolean;
  log?: (line: string) => void;
}

class BuildError extends Error {
  override name = "BuildError";
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

function run(command: string, args: readonly string[], options: RunOptions = {}): Run {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) return { status: null, stdout: "", stderr: result.error.message };
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function mustRun(command: string, args: readonly string[], options: RunOptions = {}): string {
  const result = run(command, args, options);
  if (result.status !== 0) {
    throw new BuildError(`${command} ${args.join(" ")} failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim()}`);
  }
  return result.stdout;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, command)));
}

/** The Debian packages of the build tools (group `build` of scripts/system/debian-packages.txt). */
export function runtimeBuildPackages(): string[] {
  return debianPackages("build");
}

/** The Debian group that builds `platform` on this machine, when it is another one. */
function crossGroup(platform: TargetPlatform): string {
  return `cross-${platform.debian}`;
}

/** The platforms this machine builds runtimes for: its own, and those it has cross tools for. */
export function buildablePlatforms(): RuntimePlatform[] {
  const host = hostPlatform();
  return PLATFORMS.filter((platform) => {
    if (platform === host) return true;
    try {
      return host !== undefined && debianPackages(crossGroup(platform)).length > 0;
    } catch {
      return false;
    }
  }).map((platform) => platform.key);
}

/**
 * The tools and parts for one platform. `run` starts one of the platform's programs: directly on
 * its own machine, under QEMU's user-mode emulator on another.
 */
interface Toolchain {
  platform: TargetPlatform;
  run(command: string, args: readonly string[], options?: RunOptions): Run;
  gcc: string;
  strip: string;
  node: { binary: string; version: string; license: string };
  tini: { binary: string; copyright: string | undefined };
}

function isElf(file: string): boolean {
  try {
    return readFileSync(file)
      .subarray(0, 4)
      .equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } catch {
    return false;
  }
}

/** The pinned Node's version: package.json's `node` devDependency, as npm installed it. */
function pinnedNodeVersion(): { version: string; packageDir: string } {
  const packageFile = createRequire(import.meta.url).resolve("node/package.json");
  const version = (JSON.parse(readFileSync(packageFile, "utf8")) as { version: string }).version;
  return { version, packageDir: dirname(packageFile) };
}

/** `package/<member>` of the cached npm package node-linux-<arch> at `version`, extracted into `work`. */
function fromNodePackage(platform: TargetPlatform, version: string, members: string[], work: string): string[] {
  const tarball = npmPackageFile(`node-linux-${platform.node}`, version);
  const into = join(work, `node-linux-${platform.node}`);
  mkdirSync(into, { recursive: true });
  mustRun("tar", ["-xzf", tarball, "-C", into, ...members.map((member) => `package/${member}`)]);
  return members.map((member) => join(into, "package", member));
}

/**
 * This machine's pinned Node (node_modules) and its LICENSE, which comes from the npm package
 * node-linux-<arch> when npm pruned that package (a later `npm install` does: it is installed by
 * the `node` package's preinstall script, outside the lockfile).
 */
function installedNode(platform: TargetPlatform, work: string): Toolchain["node"] {
  const { version, packageDir } = pinnedNodeVersion();
  const archPackages = [join(packageDir, "node_modules"), dirname(packageDir)]
    .filter((dir) => existsSync(dir))
    .flatMap((dir) =>
      readdirSync(dir)
        .filter((name) => name === `node-linux-${platform.node}`)
        .map((name) => join(dir, name)),
    );
  const binary = [join(packageDir, "bin/node"), ...archPackages.map((dir) => join(dir, "bin/node"))].find(isElf);
  if (!binary) throw new BuildError(`no Node ELF binary in ${packageDir} (is the npm package "node" installed? run npm ci)`);
  const license =
    archPackages.map((dir) => join(dir, "LICENSE")).find((file) => existsSync(file)) ??
    (fromNodePackage(platform, version, ["LICENSE"], work)[0] as string);
  return { binary: realpathSync(binary), version, license };
}

/** Another platform's Node: the npm package node-linux-<arch> at the pinned version. */
function packagedNode(platform: TargetPlatform, work: string): Toolchain["node"] {
  const { version } = pinnedNodeVersion();
  const [binary = "", license = ""] = fromNodePackage(platform, version, ["bin/node", "LICENSE"], work);
  return { binary, version, license };
}

/** The Debian package that installed `file` (usrmerge: tries the /usr and non-/usr spellings), without its architecture. */
function debianPackageOf(file: string): string | undefined {
  const real = realpathSync(file);
  const spellings = [file, real].flatMap((path) => [path, path.startsWith("/usr/") ? path.slice(4) : `/usr${path}`]);
  for (const path of spellings) {
    const found = run("dpkg-query", ["-S", path]);
    if (found.status === 0) return found.stdout.split(":")[0]?.trim();
  }
  return undefined;
}

/** The tools for building this machine's own runtime; installs the group `build` when one is missing. */
function nativeToolchain(platform: TargetPlatform, work: string, log: (line: string) => void): Toolchain {
  const staticLibc = () => {
    const found = run("gcc", ["-print-file-name=libc.a"]).stdout.trim();
    return found !== "libc.a" && existsSync(found);
  };
  const tools: { ok: () => boolean; debian: string }[] = [
    { ok: () => onPath("patchelf"), debian: "patchelf" },
    { ok: () => onPath("strip"), debian: "binutils" },
    { ok: () => onPath("gcc"), debian: "gcc" },
    { ok: () => onPath("gcc") && staticLibc(), debian: "libc6-dev" },
    { ok: () => existsSync(TINI_STATIC), debian: "tini" },
    { ok: () => onPath("dpkg-query"), debian: "dpkg" },
  ];
  const missing = tools.filter((tool) => !tool.ok()).map((tool) => tool.debian);
  if (missing.length > 0) {
    log(`[build-runtime] missing build tools from the Debian packages ${missing.join(", ")}: installing group build`);
    ensureGroup("build", log);
  }
  const still = tools.filter((tool) => !tool.ok()).map((tool) => tool.debian);
  if (still.length > 0) throw new BuildError(`building the shim runtime needs what the Debian packages ${still.join(", ")} provide`);
  const tiniPackage = debianPackageOf(TINI_STATIC);
  return {
    platform,
    run,
    gcc: "gcc",
    strip: "strip",
    node: installedNode(platform, work),
    tini: { binary: TINI_STATIC, copyright: tiniPackage && `/usr/share/doc/${tiniPackage}/copyright` },
  };
}

/** The tools and parts for another platform's runtime (Debian group cross-<arch>, installed when missing). */
function crossToolchain(platform: TargetPlatform, work: string, log: (line: string) => void): Toolchain {
  const group = crossGroup(platform);
  try {
    debianPackages(group);
  } catch {
    throw new BuildError(
      `this ${hostPlatform()?.key ?? process.platform} machine cannot build the ${platform.key} runtime: scripts/system/debian-packages.txt has no group ${group}`,
    );
  }
  ensureGroup(group, log);
  const gcc = `${platform.triplet}-gcc`;
  const strip = `${platform.triplet}-strip`;
  for (const tool of [gcc, strip, platform.qemu, "patchelf"])
    if (!onPath(tool)) throw new BuildError(`${tool} is missing after installing the Debian group ${group}`);
  const [tiniDeb = ""] = debianPackageFiles([`tini:${platform.debian}`]);
  const tiniDir = join(work, "tini");
  mustRun("dpkg-deb", ["-x", tiniDeb, tiniDir]);
  const copyright = join(tiniDir, "usr/share/doc/tini/copyright");
  return {
    platform,
    run: (command, args, options) => run(platform.qemu, [command, ...args], options),
    gcc,
    strip,
    node: packagedNode(platform, work),
    tini: { binary: join(tiniDir, TINI_STATIC), copyright: existsSync(copyright) ? copyright : undefined },
  };
}

function ensureGroup(group: string, log: (line: string) => void): void {
  try {
    ensureDebianGroups([group], "building the shim runtime", log);
  } catch (error) {
    throw new BuildError((error as Error).message);
  }
}

function mustRunOn(toolchain: Toolchain, command: string, args: readonly string[], options: RunOptions = {}): string {
  const result = toolchain.run(command, args, options);
  if (result.status !== 0) {
    throw new BuildError(
      `${command} ${args.join(" ")} (${toolchain.platform.key}) failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim()}`,
    );
  }
  return result.stdout;
}

/** The shared libraries the platform's own loader resolves for `binary` (what ldd prints), and the loader. */
function sharedLibraries(toolchain: Toolchain, binary: string): { interpreter: string; libraries: string[] } {
  const interpreter = mustRun("patchelf", ["--print-interpreter", binary]).trim();
  const libraries = new Set<string>([interpreter]);
  for (const line of mustRunOn(toolchain, interpreter, ["--list", binary]).split("\n")) {
    if (line.includes("not found")) throw new BuildError(`${interpreter} --list ${binary}: ${line.trim()}`);
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (path) libraries.add(path);
  }
  return { interpreter, libraries: [...libraries] };
}

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

function listFiles(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
      return entry.isDirectory() ? listFiles(dir, path) : [path];
    })
    .sort();
}

/** The SEA's main script: the prelude that restores the launcher's stashed env, then the bundle. */
async function seaMain(shimBundle: string, nodeMajor: string): Promise<string> {
  const prelude = await build({
    entryPoints: [join(repo, "shim/runtime/prelude.ts")],
    bundle: true,
    platform: "node",
    // An IIFE declares no top-level names that could clash with the bundle's.
    format: "iife",
    target: `node${nodeMajor}`,
    write: false,
    legalComments: "none",
    logLevel: "warning",
  });
  const preludeText = prelude.outputFiles[0]?.text ?? "";
  // The bundle's imports are hoisted, so the prelude runs first. No hashbang mid-file, and the
  // source map is not shipped.
  const bundle = readFileSync(shimBundle, "utf8")
    .replace(/^#!.*\n/, "")
    .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
  return `${preludeText}${bundle}`;
}

/** Node's license, the bundle's legal notes, and one file per distinct copyright text (gcc's libraries share one), named after its packages. */
function writeLicenses(licenses: string, toolchain: Toolchain, libraries: string[], shimBundle: string): void {
  copyFileSync(toolchain.node.license, join(licenses, "node.LICENSE"));
  const legal = `${shimBundle}.LEGAL.txt`;
  if (existsSync(legal)) copyFileSync(legal, join(licenses, "kustodia-shim-bundle.LEGAL.txt"));
  const copyrights = [
    ...[...new Set(libraries.map(debianPackageOf))].map((debian) => ({ debian, file: `/usr/share/doc/${debian}/copyright` })),
    { debian: "tini", file: toolchain.tini.copyright },
  ];
  const packagesByText = new Map<string, { copyright: string; debians: string[] }>();
  for (const { debian, file } of copyrights) {
    if (!debian || !file || !existsSync(file)) continue;
    const hash = sha256(file);
    const entry = packagesByText.get(hash) ?? { copyright: file, debians: [] };
    entry.debians.push(debian);
    packagesByText.set(hash, entry);
  }
  for (const { copyright, debians } of packagesByText.values())
    copyFileSync(copyright, join(licenses, `${debians.sort().join("+")}.copyright`));
}

/** Builds one platform's runtime into its directory (replacing it) and returns its manifest. */
export async function buildRuntime(options: BuildRuntimeOptions = {}): Promise<RuntimeManifest> {
  const log = options.log ?? console.log;
  if (process.platform !== "linux") throw new BuildError(`the shim runtime is built on Linux (this is ${process.platform})`);
  const host = hostPlatform();
  const platform = targetPlatform(options.platform ?? host?.key ?? "linux/amd64");
  const shimBundle = resolve(options.shimBundle ?? DEFAULT_SHIM_BUNDLE);
  const outDir = resolve(options.outDir ?? runtimeDir(platform.key));
  if (!existsSync(shimBundle)) throw new BuildError(`no bundled shim at ${shimBundle}: run \`npm run build\``);
  const began = Date.now();
  const work = mkdtempSync(join(tmpdir(), "kustodia-runtime-"));
  const staging = `${outDir}.tmp-${process.pid}`;
  try {
    const toolchain = platform === host ? nativeToolchain(platform, work, log) : crossToolchain(platform, work, log);
    const { node } = toolchain;
    const reported = mustRunOn(toolchain, node.binary, ["--version"]).trim();
    if (reported !== `v${node.version}`) throw new BuildError(`${node.binary} reports ${reported}, the pinned version is v${node.version}`);
    const nodeMajor = node.version.split(".")[0] ?? "";
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(join(staging, RuntimeFile.lib), { recursive: true });
    mkdirSync(join(staging, RuntimeFile.licenses), { recursive: true });
    const { interpreter, libraries } = sharedLibraries(toolchain, node.binary);
    const runtimeInterpreter = `${RUNTIME_DIR}/${RuntimeFile.lib}/${basename(interpreter)}`;

    // 1. Stripped Node → single executable application with the shim and its code cache. The
    // stripped binary builds it, so the blob goes into the stripped copy (strip after would drop it).
    const strippedNode = join(work, "node");
    mustRun(toolchain.strip, ["--strip-all", "-o", strippedNode, node.binary]);
    writeFileSync(join(work, "main.mjs"), await seaMain(shimBundle, nodeMajor));
    const seaConfig = {
      main: "main.mjs",
      mainFormat: "module",
      output: RuntimeFile.node,
      disableExperimentalSEAWarning: true,
      useCodeCache: options.codeCache ?? true,
      useSnapshot: false,
      // NODE_OPTIONS is the app's: never let it reach the shim's Node (the launcher stashes it too).
      execArgvExtension: "none",
    };
    writeFileSync(join(work, "sea-config.json"), JSON.stringify(seaConfig, null, 2));
    mustRunOn(toolchain, strippedNode, ["--build-sea", "sea-config.json"], {
      cwd: work,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });

    // 2. Interpreter and RPATH (DT_RPATH, not RUNPATH: searched before LD_LIBRARY_PATH and for
    // every library, dlopen'ed ones included), and exactly the libraries the loader lists.
    const seaNode = join(staging, RuntimeFile.node);
    mustRun("patchelf", [
      "--set-interpreter",
      runtimeInterpreter,
      "--force-rpath",
      "--set-rpath",
      `${RUNTIME_DIR}/${RuntimeFile.lib}`,
      "--output",
      seaNode,
      join(work, RuntimeFile.node),
    ]);
    for (const library of libraries) copyFileSync(realpathSync(library), join(staging, RuntimeFile.lib, basename(library)));

    // 3. Launcher, tini, licenses.
    mustRun(toolchain.gcc, [
      "-static",
      "-Os",
      "-s",
      "-Wall",
      "-Wextra",
      "-Werror",
      `-DKUSTODIA_NODE="${RUNTIME_DIR}/${RuntimeFile.node}"`,
      `-DKUSTODIA_STASH_PREFIX="${STASH_PREFIX}"`,
      "-o",
      join(staging, RuntimeFile.launcher),
      join(repo, "shim/runtime/launcher.c"),
    ]);
    copyFileSync(toolchain.tini.binary, join(staging, RuntimeFile.tini));
    const licenses = join(staging, RuntimeFile.licenses);
    writeLicenses(licenses, toolchain, libraries, shimBundle);

    // Modes for any uid: the app runs as whoever its image says.
    const executables = new Set<string>([
      RuntimeFile.launcher,
      RuntimeFile.node,
      RuntimeFile.tini,
      `${RuntimeFile.lib}/${basename(interpreter)}`,
    ]);
    const files: RuntimeFileEntry[] = listFiles(staging).map((path) => {
      const mode = executables.has(path) ? 0o755 : 0o644;
      chmodSync(join(staging, path), mode);
      return { path, mode, size: statSync(join(staging, path)).size, sha256: sha256(join(staging, path)) };
    });
    for (const dir of [staging, join(staging, RuntimeFile.lib), licenses]) chmodSync(dir, 0o755);
    const stagedLoader = join(staging, RuntimeFile.lib, basename(interpreter));
    const manifest: RuntimeManifest = {
      name: MANIFEST_NAME,
      version: packageJson.version,
      platform: platform.key,
      arch: platform.node,
      node: node.version,
      interpreter: runtimeInterpreter,
      glibc: /release version (\d+(?:\.\d+)*)/.exec(mustRunOn(toolchain, stagedLoader, ["--version"]))?.[1] ?? "",
      tini: mustRunOn(toolchain, toolchain.tini.binary, ["--version"])
        .trim()
        .replace(/^tini version\s+/, ""),
      files,
    };
    writeFileSync(join(staging, RuntimeFile.manifest), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });

    // The Node with the copied libraries must start the shim (the launcher needs /kustodia: tested).
    const smoke = toolchain.run(stagedLoader, ["--library-path", join(staging, RuntimeFile.lib), seaNode, "--version"], {
      env: { PATH: "/usr/bin:/bin" },
    });
    if (smoke.status !== 0)
      throw new BuildError(`the built ${RuntimeFile.node} does not start (exit ${smoke.status}):\n${smoke.stderr.trim()}`);

    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(dirname(outDir), { recursive: true });
    renameSync(staging, outDir);
    const total = files.reduce((sum, file) => sum + file.size, 0);
    log(
      `built ${relative(process.cwd(), outDir) || outDir} (${platform.key}${platform === host ? "" : ` on ${host?.key}, ${platform.qemu} for its Node`}, ${(total / 2 ** 20).toFixed(1)} MiB, Node ${node.version}, glibc ${manifest.glibc}) in ${((Date.now() - began) / 1000).toFixed(1)} s`,
    );
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Builds the runtime of each of `platforms` (default: every one this machine can build), one after the other. */
export async function buildRuntimes(
  platforms: readonly RuntimePlatform[] = buildablePlatforms(),
  options: Omit<BuildRuntimeOptions, "platform" | "outDir"> = {},
): Promise<RuntimeManifest[]> {
  const manifests: RuntimeManifest[] = [];
  for (const platform of platforms) manifests.push(await buildRuntime({ ...options, platform }));
  return manifests;
}

/** The newest mtime of `path` and everything under it. */
export function newestMtime(path: string): number {
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  return readdirSync(path).reduce((newest, name) => Math.max(newest, newestMtime(join(path, name))), stats.mtimeMs);
}

/**
 * Why a runtime must be rebuilt, or undefined when it is up to date: the one in `outDir`, or by
 * default every platform's this machine builds.
 */
export function runtimeStaleness(outDir?: string): string | undefined {
  const dirs = outDir === undefined ? buildablePlatforms().map(runtimeDir) : [outDir];
  for (const dir of dirs) {
    const manifest = join(dir, RuntimeFile.manifest);
    if (!existsSync(manifest)) return `${manifest} does not exist`;
    const built = statSync(manifest).mtimeMs;
    const newer = RUNTIME_INPUTS.map((input) => join(repo, input)).find((input) => existsSync(input) && newestMtime(input) > built);
    if (newer !== undefined) return `${relative(repo, newer)} changed since ${relative(repo, dir)} was built`;
  }
  return undefined;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      shim: { type: "string" },
      out: { type: "string" },
      platform: { type: "string", multiple: true },
      "no-code-cache": { type: "boolean" },
    },
  });
  try {
    const platforms = (values.platform ?? buildablePlatforms()).map((key) => targetPlatform(key).key);
    if (values.out !== undefined && platforms.length !== 1) throw new BuildError("--out needs exactly one --platform");
    for (const platform of platforms)
      await buildRuntime({ shimBundle: values.shim, outDir: values.out, platform, codeCache: !values["no-code-cache"] });
  } catch (error) {
    console.error(error instanceof BuildError ? `build-runtime: ${error.message}` : error);
    process.exitCode = 1;
  }
}
