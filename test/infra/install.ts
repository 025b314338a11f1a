// Runs one of the idempotent install scripts in this folder and returns what it printed on stdout
// (the paths of what it installed, one per line). Progress goes to stderr, which is passed through.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const execFileAsync = promisify(execFile);

export async function runInstallScript(script: string, cacheDir: string, args: string[] = []): Promise<string[]> {
  const child = execFileAsync("bash", [join(here, script), ...args], {
    env: { ...process.env, KUSTODIA_CACHE: cacheDir },
    maxBuffer: 16 * 1024 * 1024,
  });
  child.child.stderr?.pipe(process.stderr);
  try {
    const { stdout } = await child;
    return stdout.split("\n").filter((line) => line.trim() !== "");
  } catch (error) {
    const failure = error as { code?: number; stderr?: string };
    throw new Error(`test/infra/${script} failed (exit ${failure.code}):\n${(failure.stderr ?? "").split("\n").slice(-20).join("\n")}`);
  }
}
