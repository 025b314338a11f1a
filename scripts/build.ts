// `npm run build`: bundles each program with esbuild into dist/ (one self-contained ESM file each,
// for the pinned Node; the webhook's code that only some runs load sits in chunks beside its file),
// then the shim's portable runtime for every platform this machine builds
// (dist/shim-runtime/linux-amd64, dist/shim-runtime/linux-arm64; scripts/build-runtime.ts).
// `npm run build -- --platform linux/arm64` builds the runtime of that platform only (repeatable);
// `-- --if-stale` builds only when an output is missing or older than its sources.
//
// One build at a time per checkout: test files (which run in parallel) and developers may start it
// at once, and a runtime directory replaced while another process runs it breaks that process. So
// the build runs itself again under flock(1) on a lock file of this checkout's (in the temporary
// directory, named by the checkout's path), and one that waited for another finds dist/ up to date
// when it asked for `--if-stale`.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type BuildOptions, build, type Plugin } from "esbuild";
import { buildablePlatforms, buildRuntimes, newestMtime, runtimeDir, runtimeStaleness } from "./build-runtime.ts";
import { targetPlatform } from "./platforms.ts";

if (process.env.KUSTODIA_BUILD_LOCKED !== "1") {
  const script = fileURLToPath(import.meta.url);
  const lock = join(tmpdir(), `kustodia-build-${createHash("sha256").update(process.cwd()).digest("hex").slice(0, 16)}.lock`);
  const locked = spawnSync("flock", ["-w", "1800", lock, process.execPath, ...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, KUSTODIA_BUILD_LOCKED: "1" },
  });
  if (locked.error) throw locked.error;
  process.exit(locked.status ?? 1);
}

const { values } = parseArgs({ options: { platform: { type: "string", multiple: true }, "if-stale": { type: "boolean" } } });
const platforms = values.platform?.map((key) => targetPlatform(key).key);

// Bundled CommonJS dependencies call require(); give the ESM bundle one.
const REQUIRE_BANNER =
  "import { createRequire as __kustodiaCreateRequire } from 'node:module'; const require = __kustodiaCreateRequire(import.meta.url);";

/**
 * The shim's builtins through `process.getBuiltinModule` instead of ESM imports. An ESM import of a
 * builtin builds its namespace object, which reads every export: `node:fs` alone then loads
 * fs/promises, readline and more at every start (bench/RESULTS.md, 2026-12-03 h16). Each import
 * becomes a property read of the module object; the reads nobody uses are dropped.
 */
export function builtinsOnUse(): Plugin {
  return {
    name: "builtins-on-use",
    setup(plugins) {
      plugins.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "builtin" }));
      plugins.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => {
        const module = process.getBuiltinModule(args.path) as Record<string, unknown>;
        // Data properties only: a getter (fs.promises) would load its module on the spot.
        const names = Object.keys(module).filter(
          (name) =>
            /^[A-Za-z_$][\w$]*$/.test(name) && name !== "default" && "value" in (Object.getOwnPropertyDescriptor(module, name) ?? {}),
        );
        const contents = [
          `const module = process.getBuiltinModule(${JSON.stringify(args.path)});`,
          "const get = (name) => module[name];",
          "export default module;",
          ...names.map((name) => `export const ${name} = /* @__PURE__ */ get(${JSON.stringify(name)});`),
        ].join("\n");
        return { contents, loader: "js" };
      });
    },
  };
}

/**
 * Code that only some runs need goes into chunks beside the program, loaded by its dynamic import
 * (the webhook's Kubernetes client, only with pull secrets on). They are named
 * `<program>.<name>-<hash>.js`, so that `main.js*` still names all of the program.
 */
function splitOutput(outfile: string): BuildOptions {
  // Chunks of an earlier build would linger beside the new ones (their names hold a hash).
  for (const name of existsSync(dirname(outfile)) ? readdirSync(dirname(outfile)) : [])
    if (name.startsWith(`${basename(outfile)}.`)) rmSync(join(dirname(outfile), name));
  return {
    splitting: true,
    outdir: dirname(outfile),
    entryNames: basename(outfile, ".js"),
    chunkNames: `${basename(outfile)}.[name]-[hash]`,
  };
}

const programs = [
  { entry: "webhook/main.ts", outfile: "dist/webhook/main.js", banner: REQUIRE_BANNER, split: true },
  { entry: "shim/main.ts", outfile: "dist/shim/main.js", plugins: [builtinsOnUse()] },
  { entry: "webhook/cli.ts", outfile: "dist/webhook/cli.js", banner: REQUIRE_BANNER },
].filter((program) => existsSync(program.entry));

/** Why dist/ must be built: an output missing or older than a source, or undefined. */
function staleness(): string | undefined {
  for (const program of programs) {
    if (!existsSync(program.outfile)) return `${program.outfile} does not exist`;
    const built = statSync(program.outfile).mtimeMs;
    const inputs = [dirname(program.entry), "common", "scripts/build.ts", "package-lock.json"];
    const newer = inputs.find((input) => existsSync(input) && newestMtime(input) > built);
    if (newer) return `${newer} changed since ${program.outfile} was built`;
  }
  if (!programs.some((program) => program.outfile === "dist/shim/main.js")) return undefined;
  for (const platform of platforms ?? buildablePlatforms()) {
    const stale = runtimeStaleness(runtimeDir(platform));
    if (stale) return stale;
  }
  return undefined;
}

if (values["if-stale"] && staleness() === undefined) {
  console.log("dist/ is up to date");
  process.exit(0);
}

const nodeMajor = process.versions.node.split(".")[0];
await Promise.all(
  programs.map((program) =>
    build({
      entryPoints: [program.entry],
      ...("split" in program && program.split ? splitOutput(program.outfile) : { outfile: program.outfile }),
      bundle: true,
      platform: "node",
      format: "esm",
      target: `node${nodeMajor}`,
      sourcemap: "linked",
      legalComments: "linked",
      ...("banner" in program && program.banner ? { banner: { js: program.banner } } : {}),
      plugins: "plugins" in program ? program.plugins : [],
      logLevel: "warning",
    }),
  ),
);
console.log(programs.length > 0 ? `built ${programs.map((p) => p.outfile).join(", ")}` : "nothing to build yet");
// The shim's portable runtimes (dist/shim-runtime/<os>-<arch>/), from the shim bundle just built.
if (programs.some((program) => program.outfile === "dist/shim/main.js")) await buildRuntimes(platforms);
