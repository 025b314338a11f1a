// `npm run build`: bundles each program with esbuild into dist/ (one self-contained ESM file each,
// for the pinned Node). Programs appear here as they are written.
import { existsSync } from "node:fs";
import { build } from "esbuild";
import { buildRuntime } from "./build-runtime.ts";

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
// The shim's portable runtime (dist/shim-runtime/), from the shim bundle just built.
if (programs.some((program) => program.outfile === "dist/shim/main.js")) await buildRuntime();
