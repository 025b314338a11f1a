// Builds the shim's portable runtime, dist/shim-runtime/ (layout: shim/runtime/layout.ts), from the
// bundled shim that scripts/build.ts wrote to dist/shim/main.js. `npm run build` calls it; alone:
// `node scripts/build-runtime.ts [--shim <bundle.js>] [--out <dir>]`.
//
// 1. The pinned Node (the npm `node` package) is stripped and becomes a single executable
//    application: the shim's prelude (shim/runtime/prelude.ts) + the bundle, with a V8 code cache.
// 2. patchelf points its ELF interpreter and RPATH at /kustodia/lib, and glibc's loader plus the
//    libraries `ldd` lists are copied there: the result needs nothing from the image it runs in.
// 3. The static launcher (shim/runtime/launcher.c) becomes /kustodia/kustodia-shim; Debian's
//    tini-static, the licenses and runtime.json (every file with mode, size, sha256) complete it.
//
// Needs Linux with glibc, patchelf, strip, gcc with a static libc and tini-static: the Debian group
// `build` of scripts/system/debian-packages.txt, which scripts/system/install-debian.sh installs.
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
import { MANIFEST_NAME, RUNTIME_DIR, RuntimeFile, type RuntimeFileEntry, type RuntimeManifest } from "../shim/runtime/layout.ts";
import { debianPackages, ensureDebianGroups } from "./system/debian.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_SHIM_BUNDLE = join(repo, "dist/shim/main.js");
export const DEFAULT_RUNTIME_DIR = join(repo, "dist/shim-runtime");
/** What the runtime is built from: when one is newer than runtime.json, the runtime is stale. */
const RUNTIME_INPUTS = ["shim", "common", "scripts/build.ts", "scripts/build-runtime.ts", "package-lock.json"];
const TINI_STATIC = "/usr/bin/tini-static";

export interface BuildRuntimeOptions {
  /** The bundled shim (default dist/shim/main.js). */
  shimBundle?: string;
  /** Where the runtime goes (default dist/shim-runtime); replaced as a whole. */
  outDir?: string;
  log?: (line: string) => void;
  /** Experiments (bench/): another SEA main script or SEA settings than the shim's own. */
  sea?: SeaVariant;
}

export interface SeaVariant {
  /** The SEA's main script as a whole (replaces the prelude + bundle). */
  main?: string;
  useSnapshot?: boolean;
  useCodeCache?: boolean;
  execArgv?: string[];
}

class BuildError extends Error {
  override name = "BuildError";
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) return { status: null, stdout: "", stderr: result.error.message };
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function mustRun(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
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

/**
 * Makes sure the build tools are there. When one is missing, says which and has the project's one
 * installer (scripts/system/install-debian.sh) install the `build` group.
 */
function ensureTools(log: (line: string) => void): void {
  if (process.platform !== "linux") throw new BuildError(`the shim runtime is built on Linux (this is ${process.platform})`);
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
    { ok: () => onPath("ldd") && onPath("getconf"), debian: "libc-bin" },
  ];
  const missing = tools.filter((tool) => !tool.ok()).map((tool) => tool.debian);
  if (missing.length > 0) {
    log(`[build-runtime] missing build tools from the Debian packages ${missing.join(", ")}: installing group build`);
    try {
      ensureDebianGroups(["build"], "building the shim runtime", log);
    } catch (error) {
      throw new BuildError((error as Error).message);
    }
  }
  const still = tools.filter((tool) => !tool.ok()).map((tool) => tool.debian);
  if (still.length > 0) throw new BuildError(`building the shim runtime needs what the Debian packages ${still.join(", ")} provide`);
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

/** The pinned Node's ELF binary and its package directory (for its LICENSE). */
function pinnedNode(): { binary: string; version: string; license: string | undefined } {
  const packageFile = createRequire(import.meta.url).resolve("node/package.json");
  const version = (JSON.parse(readFileSync(packageFile, "utf8")) as { version: string }).version;
  const packageDir = dirname(packageFile);
  const archPackages = [join(packageDir, "node_modules"), dirname(packageDir)]
    .filter((dir) => existsSync(dir))
    .flatMap((dir) =>
      readdirSync(dir)
        .filter((name) => name.startsWith(`node-${process.platform}-`))
        .map((name) => join(dir, name)),
    );
  const binary = [join(packageDir, "bin/node"), ...archPackages.map((dir) => join(dir, "bin/node"))].find(isElf);
  if (!binary) throw new BuildError(`no Node ELF binary in ${packageDir} (is the npm package "node" installed? run npm ci)`);
  const reported = mustRun(binary, ["--version"]).trim();
  if (reported !== `v${version}`) throw new BuildError(`${binary} reports ${reported}, the pinned version is v${version}`);
  const license = archPackages.map((dir) => join(dir, "LICENSE")).find((file) => existsSync(file));
  return { binary: realpathSync(binary), version, license };
}

/**
 * Node's LICENSE when npm pruned the arch package it came in (a later `npm install` does: the
 * package is installed by the `node` package's preinstall script, outside the lockfile).
 */
function nodeLicenseFromRegistry(version: string, work: string): string {
  const name = `node-${process.platform}-${process.arch}`;
  const packed = run("npm", ["pack", "--silent", "--pack-destination", work, `${name}@${version}`], { cwd: work });
  const tarball = packed.stdout.trim().split("\n").pop() ?? "";
  if (packed.status !== 0 || tarball === "")
    throw new BuildError(`Node's LICENSE is not in node_modules and \`npm pack ${name}@${version}\` failed: ${packed.stderr.trim()}`);
  mustRun("tar", ["-xzf", join(work, tarball), "-C", work, "package/LICENSE"]);
  return join(work, "package/LICENSE");
}

/** The shared libraries `ldd` resolves for `binary`, and its ELF interpreter. */
function sharedLibraries(binary: string): { interpreter: string; libraries: string[] } {
  const interpreter = mustRun("patchelf", ["--print-interpreter", binary]).trim();
  const libraries = new Set<string>([interpreter]);
  for (const line of mustRun("ldd", [binary]).split("\n")) {
    if (line.includes("not found")) throw new BuildError(`ldd ${binary}: ${line.trim()}`);
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (path) libraries.add(path);
  }
  return { interpreter, libraries: [...libraries] };
}

/** The Debian package that installed `file` (usrmerge: tries the /usr and non-/usr spellings). */
function debianPackageOf(file: string): string | undefined {
  const real = realpathSync(file);
  const spellings = [file, real].flatMap((path) => [path, path.startsWith("/usr/") ? path.slice(4) : `/usr${path}`]);
  for (const path of spellings) {
    const found = run("dpkg-query", ["-S", path]);
    if (found.status === 0) return found.stdout.split(":")[0]?.trim();
  }
  return undefined;
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

/** The SEA configuration (`node --build-sea`) of the runtime's Node. */
function seaConfig(main: string, variant: SeaVariant = {}): Record<string, unknown> {
  const snapshot = variant.useSnapshot ?? false;
  return {
    main,
    // A snapshot's entry script is CommonJS-like (run by Node's snapshot builder).
    ...(snapshot ? {} : { mainFormat: "module" }),
    output: RuntimeFile.node,
    disableExperimentalSEAWarning: true,
    useCodeCache: variant.useCodeCache ?? !snapshot,
    useSnapshot: snapshot,
    ...(variant.execArgv ? { execArgv: variant.execArgv } : {}),
    // NODE_OPTIONS is the app's: never let it reach the shim's Node (the launcher stashes it too).
    execArgvExtension: "none",
  };
}

/** Builds the runtime into `outDir` (replacing it) and returns its manifest. */
export async function buildRuntime(options: BuildRuntimeOptions = {}): Promise<RuntimeManifest> {
  const log = options.log ?? console.log;
  const shimBundle = resolve(options.shimBundle ?? DEFAULT_SHIM_BUNDLE);
  const outDir = resolve(options.outDir ?? DEFAULT_RUNTIME_DIR);
  if (!existsSync(shimBundle)) throw new BuildError(`no bundled shim at ${shimBundle}: run \`npm run build\``);
  const began = Date.now();
  ensureTools(log);
  const node = pinnedNode();
  const nodeMajor = node.version.split(".")[0] ?? "";
  const work = mkdtempSync(join(tmpdir(), "kustodia-runtime-"));
  const staging = `${outDir}.tmp-${process.pid}`;
  try {
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(join(staging, RuntimeFile.lib), { recursive: true });
    mkdirSync(join(staging, RuntimeFile.licenses), { recursive: true });
    const { interpreter, libraries } = sharedLibraries(node.binary);
    const runtimeInterpreter = `${RUNTIME_DIR}/${RuntimeFile.lib}/${basename(interpreter)}`;

    // 1. Stripped Node → single executable application with the shim and its code cache. The
    // stripped binary builds it, so the blob goes into the stripped copy (strip after would drop it).
    const strippedNode = join(work, "node");
    mustRun("strip", ["--strip-all", "-o", strippedNode, node.binary]);
    writeFileSync(join(work, "main.mjs"), options.sea?.main ?? (await seaMain(shimBundle, nodeMajor)));
    writeFileSync(join(work, "sea-config.json"), JSON.stringify(seaConfig("main.mjs", options.sea), null, 2));
    mustRun(strippedNode, ["--build-sea", "sea-config.json"], { cwd: work, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });

    // 2. Interpreter and RPATH (DT_RPATH, not RUNPATH: searched before LD_LIBRARY_PATH and for
    // every library, dlopen'ed ones included), and exactly the libraries ldd lists.
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
    mustRun("gcc", [
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
    copyFileSync(TINI_STATIC, join(staging, RuntimeFile.tini));
    const licenses = join(staging, RuntimeFile.licenses);
    copyFileSync(node.license ?? nodeLicenseFromRegistry(node.version, work), join(licenses, "node.LICENSE"));
    const legal = `${shimBundle}.LEGAL.txt`;
    if (existsSync(legal)) copyFileSync(legal, join(licenses, "kustodia-shim-bundle.LEGAL.txt"));
    // One file per distinct copyright text (gcc's libraries share one), named after its packages.
    const packagesByText = new Map<string, { copyright: string; debians: string[] }>();
    for (const debian of new Set([...libraries, TINI_STATIC].map(debianPackageOf))) {
      const copyright = `/usr/share/doc/${debian}/copyright`;
      if (!debian || !existsSync(copyright)) continue;
      const hash = sha256(copyright);
      const entry = packagesByText.get(hash) ?? { copyright, debians: [] };
      entry.debians.push(debian);
      packagesByText.set(hash, entry);
    }
    for (const { copyright, debians } of packagesByText.values())
      copyFileSync(copyright, join(licenses, `${debians.sort().join("+")}.copyright`));

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
    const manifest: RuntimeManifest = {
      name: MANIFEST_NAME,
      version: packageJson.version,
      arch: process.arch,
      node: node.version,
      interpreter: runtimeInterpreter,
      glibc: mustRun("getconf", ["GNU_LIBC_VERSION"])
        .trim()
        .replace(/^glibc\s+/, ""),
      tini: mustRun(TINI_STATIC, ["--version"])
        .trim()
        .replace(/^tini version\s+/, ""),
      files,
    };
    writeFileSync(join(staging, RuntimeFile.manifest), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });

    // The Node with the copied libraries must start the shim (the launcher needs /kustodia: tested).
    const smoke = run(
      join(staging, RuntimeFile.lib, basename(interpreter)),
      ["--library-path", join(staging, RuntimeFile.lib), seaNode, "--version"],
      {
        env: { PATH: "/usr/bin:/bin" },
      },
    );
    if (smoke.status !== 0)
      throw new BuildError(`the built ${RuntimeFile.node} does not start (exit ${smoke.status}):\n${smoke.stderr.trim()}`);

    rmSync(outDir, { recursive: true, force: true });
    renameSync(staging, outDir);
    const total = files.reduce((sum, file) => sum + file.size, 0);
    log(
      `built ${relative(process.cwd(), outDir) || outDir} (${(total / 2 ** 20).toFixed(1)} MiB, Node ${node.version}, glibc ${manifest.glibc}) in ${((Date.now() - began) / 1000).toFixed(1)} s`,
    );
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

function newestMtime(path: string): number {
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  return readdirSync(path).reduce((newest, name) => Math.max(newest, newestMtime(join(path, name))), stats.mtimeMs);
}

/** Why the runtime in `outDir` must be rebuilt, or undefined when it is up to date. */
export function runtimeStaleness(outDir: string = DEFAULT_RUNTIME_DIR): string | undefined {
  const manifest = join(outDir, RuntimeFile.manifest);
  if (!existsSync(manifest)) return `${manifest} does not exist`;
  const built = statSync(manifest).mtimeMs;
  const newer = RUNTIME_INPUTS.map((input) => join(repo, input)).find((input) => existsSync(input) && newestMtime(input) > built);
  return newer === undefined ? undefined : `${relative(repo, newer)} changed since it was built`;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { shim: { type: "string" }, out: { type: "string" } } });
  try {
    await buildRuntime({ shimBundle: values.shim, outDir: values.out });
  } catch (error) {
    console.error(error instanceof BuildError ? `build-runtime: ${error.message}` : error);
    process.exitCode = 1;
  }
}
