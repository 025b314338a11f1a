// Package files in kustodia's cache, fetched once by scripts/system/fetch-package.sh (serialised,
// nothing installed): npm tarballs (Node for another platform) and Debian .deb files (for another
// architecture, or for an image's layers).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const fetcher = join(dirname(fileURLToPath(import.meta.url)), "fetch-package.sh");

function fetchPackages(args: string[], count: number): string[] {
  const run = spawnSync("bash", [fetcher, ...args], { encoding: "utf8" });
  const files = run.stdout.split("\n").filter(Boolean);
  if (run.status !== 0 || files.length !== count)
    throw new Error(`scripts/system/fetch-package.sh ${args.join(" ")} failed (exit ${run.status ?? run.signal}):\n${run.stderr.trim()}`);
  return files;
}

/** The cached `npm pack` tarball of `name@version`. */
export function npmPackageFile(name: string, version: string): string {
  return fetchPackages(["npm", name, version], 1)[0] as string;
}

/**
 * The cached .deb files of `name:arch` specs (`libc6:arm64`, `ca-certificates:all`), in order, at
 * the candidate versions of this machine's apt lists, checked against their SHA256.
 */
export function debianPackageFiles(specs: readonly string[]): string[] {
  return specs.length === 0 ? [] : fetchPackages(["debian", ...specs], specs.length);
}
