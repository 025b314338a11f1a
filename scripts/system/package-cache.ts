// Package files in kustodia's cache, fetched once by scripts/system/fetch-package.sh (serialised,
// nothing installed): npm tarballs (Node for another platform) and Debian .deb files (for another
// architecture, or for an image's layers).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const fetcher = join(dirname(fileURLToPath(import.meta.url)), "fetch-package.sh");

function fetchPackage(args: string[]): string {
  const run = spawnSync("bash", [fetcher, ...args], { encoding: "utf8" });
  const file = run.stdout.trim();
  if (run.status !== 0 || file === "")
    throw new Error(`scripts/system/fetch-package.sh ${args.join(" ")} failed (exit ${run.status ?? run.signal}):\n${run.stderr.trim()}`);
  return file;
}

/** The cached `npm pack` tarball of `name@version`. */
export function npmPackageFile(name: string, version: string): string {
  return fetchPackage(["npm", name, version]);
}

/** The cached .deb of `name:arch` at the candidate version of this machine's apt lists, checked against their SHA256. */
export function debianPackageFile(name: string, arch: string): string {
  return fetchPackage(["debian", `${name}:${arch}`]);
}
