// The exec timer (exec-timer.c): compiled once with `gcc -static`, cached by the hash of its source,
// and a typed way to run one timed start through it.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDebianGroups } from "../../scripts/system/debian.ts";
import { cacheDir } from "../../test/infra/up.ts";

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), "exec-timer.c");

/** The compiled exec timer (built now if needed). */
export function execTimer(): string {
  const source = readFileSync(SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const binary = join(cacheDir(), "bench", `exec-timer-${hash}`);
  if (existsSync(binary)) return binary;
  ensureDebianGroups(["bench"], "the exec timer of bench/shim.ts");
  mkdirSync(dirname(binary), { recursive: true });
  const partial = `${binary}.tmp-${process.pid}`;
  const built = spawnSync("gcc", ["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", partial, SOURCE], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(`gcc exec-timer.c failed:\n${built.stderr}`);
  renameSync(partial, binary);
  return binary;
}

export interface TimedStart {
  /** Fork to the app running, µs. */
  appUs: number;
  /** Fork to the app's exit, µs. */
  exitUs: number;
  /** CPU time (user + system) of the whole chain, µs. */
  cpuUs: number;
  /** Peak RSS over the whole chain (shim and app), KiB. */
  maxRssKiB: number;
}

export interface TimedStartOptions {
  timer: string;
  root: string;
  /** `source:target` bind mounts (read-only) into the root. */
  binds: string[];
  argv: string[];
  env: Record<string, string>;
}

/** One timed start; throws with the chain's stderr when the app did not run. */
export function timedStart({ timer, root, binds, argv, env }: TimedStartOptions): TimedStart {
  const args = ["--root", root, ...binds.flatMap((bind) => ["--bind", bind]), "--", ...argv];
  const run = spawnSync(timer, args, { env, encoding: "utf8", timeout: 120_000 });
  const line = run.stdout.trim().split("\n").pop() ?? "";
  let parsed: (TimedStart & { status: number }) | undefined;
  try {
    parsed = JSON.parse(line) as TimedStart & { status: number };
  } catch {
    parsed = undefined;
  }
  if (run.status !== 0 || !parsed || parsed.status !== 0 || parsed.appUs < 0) {
    throw new Error(`${argv.join(" ")} did not start the app (exit ${parsed?.status ?? run.status}):\n${run.stderr.trim()}\n${line}`);
  }
  return { appUs: parsed.appUs, exitUs: parsed.exitUs, cpuUs: parsed.cpuUs, maxRssKiB: parsed.maxRssKiB };
}
