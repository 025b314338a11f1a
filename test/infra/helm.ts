// helm, built from the Go module proxy (no daemon: the tests run the binary).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { runInstallScript } from "./install.ts";
import type { HelmCoordinates, InfraContext, StartedService } from "./types.ts";

const execFileAsync = promisify(execFile);

export async function installHelm(ctx: InfraContext): Promise<StartedService<HelmCoordinates>> {
  const [binary] = await runInstallScript("install-helm.sh", ctx.cacheDir);
  if (!binary) throw new Error("install-helm.sh did not print the helm path");
  const { stdout } = await execFileAsync(binary, ["version", "--short"]);
  return { coordinates: { binary, version: stdout.trim() }, daemons: [] };
}
