// `npm run build`: bundles each program with esbuild into dist/ (one self-contained ESM file each,
// for the pinned Node), then the shim's portable runtime for every platform this machine builds
// (dist/shim-runtime/linux-amd64, dist/shim-runtime/linux-arm64; scripts/build-runtime.ts).
// `npm run build -- --platform linux/arm64` builds the runtime of that platform only (repeatable).
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { buildRuntimes } from "./build-runtime.ts";
import { targetPlatform } from "./platforms.ts";

const { values } = parseArgs({ options: { platform: { type: "string", multiple: true } } });
const platforms = values.platform?.map((key) => targetPlatform(key).key);

const programs = [
  { entry: "webhook/main.ts", outfile: "dist/webhook/main.js" },
  { entry: "shim/main.ts", outfile: "dist/shim/main.js" },
  { entry: "webhook/cli.ts", outfile: "dist/webhook/cli.js" },
].filter((program) => existsSync(program.entry));

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
