// `npm run build`: bundles each program with esbuild into dist/ (one self-contained ESM file each,
// for the pinned Node), then the shim's portable runtime for every platform this machine builds
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
import { existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";
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

const programs = [
  { entry: "webhook/main.ts", outfile: "dist/webhook/main.js" },
  { entry: "shim/main.ts", outfile: "dist/shim/main.js" },
  { entry: "webhook/cli.ts", outfile: "dist/webhook/cli.js" },
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
      outfile: program.outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: `node${nodeMajor}`,
      sourcemap: "linked",
      legalComments: "linked",
      // Bundled CommonJS dependencies call require(); give the ESM bundle one.
      banner: {
        js: "import { createRequire as __kustodiaCreateRequire } from 'node:module'; const require = __kustodiaCreateRequire(import.meta.url);",
      },
      logLevel: "warning",
    }),
  ),
);
console.log(programs.length > 0 ? `built ${programs.map((p) => p.outfile).join(", ")}` : "nothing to build yet");
// The shim's portable runtimes (dist/shim-runtime/<os>-<arch>/), from the shim bundle just built.
if (programs.some((program) => program.outfile === "dist/shim/main.js")) await buildRuntimes(platforms);
