// Benchmarks measure what `npm run build` makes: rebuild first when a source is newer than it.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { runtimeStaleness } from "../../scripts/build-runtime.ts";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const WEBHOOK_BUNDLE = join(REPO, "dist/webhook/main.js");

function newest(path: string): { path: string; mtimeMs: number } {
  const stats = statSync(path);
  if (!stats.isDirectory()) return { path, mtimeMs: stats.mtimeMs };
  return readdirSync(path)
    .map((name) => newest(join(path, name)))
    .reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a), { path, mtimeMs: 0 });
}

/** Why dist/ must be rebuilt, or undefined. */
function staleness(): string | undefined {
  if (!existsSync(WEBHOOK_BUNDLE)) return `${relative(REPO, WEBHOOK_BUNDLE)} does not exist`;
  const built = statSync(WEBHOOK_BUNDLE).mtimeMs;
  for (const input of ["webhook", "common", "scripts/build.ts", "package-lock.json"]) {
    const found = newest(join(REPO, input));
    if (found.mtimeMs > built) return `${relative(REPO, found.path)} changed since it was built`;
  }
  return runtimeStaleness();
}

/** Runs `npm run build` when dist/ is missing or older than its sources. */
export function ensureBuilt(): void {
  const stale = staleness();
  if (!stale) return;
  console.error(`[bench] npm run build: ${stale}`);
  const built = spawnSync("npm", ["run", "build"], { cwd: REPO, stdio: ["ignore", 2, "inherit"] });
  if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status})`);
}
