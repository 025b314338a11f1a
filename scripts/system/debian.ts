// The Debian packages kustodia needs, by group (scripts/system/debian-packages.txt), and the one way
// to install them: scripts/system/install-debian.sh, one apt-get transaction under a machine-wide
// lock. Nothing else in the project runs apt-get.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const installer = join(dirname(fileURLToPath(import.meta.url)), "install-debian.sh");

export function debianPackages(group: string): string[] {
  const listed = spawnSync("bash", [installer, "--list", group], { encoding: "utf8" });
  if (listed.status !== 0) throw new Error(listed.stderr.trim());
  return listed.stdout.split("\n").filter(Boolean);
}

/**
 * Installs the packages of these groups that are missing (nothing happens when none is). Throws with
 * apt's own output when that fails.
 */
export function ensureDebianGroups(groups: readonly string[], purpose: string, log: (line: string) => void = console.error): void {
  const run = spawnSync("bash", [installer, ...groups], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (run.stderr) for (const line of run.stderr.trimEnd().split("\n")) log(line);
  if (run.status !== 0) {
    throw new Error(
      `${purpose} needs the Debian packages of ${groups.join(", ")} (scripts/system/debian-packages.txt), and ` +
        `scripts/system/install-debian.sh ${groups.join(" ")} failed (exit ${run.status ?? run.signal}):\n${run.stderr.trim()}`,
    );
  }
}
