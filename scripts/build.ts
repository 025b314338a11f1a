// `npm run build`: bundles each program with esbuild into dist/ (one self-contained ESM file each,
// for the pinned Node). Programs appear here as they are written.
import { existsSync } from "node:fs";
import { build, type Plugin } from "esbuild";
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

const programs = [
  { entry: "webhook/main.ts", outfile: "dist/webhook/main.js", banner: REQUIRE_BANNER },
  { entry: "shim/main.ts", outfile: "dist/shim/main.js", plugins: [builtinsOnUse()] },
  { entry: "webhook/cli.ts", outfile: "dist/webhook/cli.js", banner: REQUIRE_BANNER },
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
      ...(program.banner ? { banner: { js: program.banner } } : {}),
      plugins: program.plugins ?? [],
      logLevel: "warning",
    }),
  ),
);
console.log(programs.length > 0 ? `built ${programs.map((p) => p.outfile).join(", ")}` : "nothing to build yet");
// The shim's portable runtime (dist/shim-runtime/), from the shim bundle just built.
if (programs.some((program) => program.outfile === "dist/shim/main.js")) await buildRuntime();
