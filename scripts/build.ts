// `npm run build`: bundles each program with esbuild into dist/ (one self-contained ESM file each,
// for the pinned Node; the webhook's code that only some runs load sits in chunks beside its file).
// Programs appear here as they are written.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type BuildOptions, build, type Plugin } from "esbuild";
import { buildRuntime } from "./build-runtime.ts";

// Bundled CommonJS dependencies call require(); give the ESM bundle one.
const REQUIRE_BANNER =
  "import { createRequire as __kustodiaCreateRequire } from 'node:module'; const require = __kustodiaCreateRequire(import.meta.url);";

/**
 * The shim's builtins through `process.getBuiltinModule` instead of ESM imports. An ESM import of a
 * builtin builds its namespace object, which reads every export: `node:fs` alone then loads
 * fs/promises, readline and more at every start (bench/RESULTS.md, 2026-12-04). Each import becomes a
 * property read of the module object; the reads nobody uses are dropped.
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
 * (the webhook's Kubernetes client, only with pull secrets on). They are named `<program>.<name>-<hash>.js`,
 * so that `main.js*` still names all of the program.
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
      ...(program.banner ? { banner: { js: program.banner } } : {}),
      plugins: program.plugins ?? [],
      logLevel: "warning",
    }),
  ),
);
console.log(programs.length > 0 ? `built ${programs.map((p) => p.outfile).join(", ")}` : "nothing to build yet");
// The shim's portable runtime (dist/shim-runtime/), from the shim bundle just built.
if (programs.some((program) => program.outfile === "dist/shim/main.js")) await buildRuntime();
