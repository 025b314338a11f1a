// The load generator that can present a client certificate (loadgen.go): compiled once with
// `go build`, cached by the hash of its source, run like wrk (wrk.ts) in a process of its own.
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { cacheDir } from "../../test/infra/up.ts";
import type { WrkResult } from "./wrk.ts";

const execFileAsync = promisify(execFile);
const SOURCE = join(import.meta.dirname, "loadgen.go");

/** The compiled load generator (built now if needed). */
export function loadgenBinary(): string {
  const hash = createHash("sha256").update(readFileSync(SOURCE)).digest("hex").slice(0, 16);
  const binary = join(cacheDir(), "bench", `loadgen-${hash}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  const partial = `${binary}.tmp-${process.pid}`;
  const built = spawnSync("go", ["build", "-trimpath", "-o", partial, SOURCE], {
    encoding: "utf8",
    env: { ...process.env, GOTOOLCHAIN: "local", CGO_ENABLED: "0" },
  });
  if (built.status !== 0) throw new Error(`go build loadgen.go failed:\n${built.stderr}${built.error?.message ?? ""}`);
  renameSync(partial, binary);
  return binary;
}

export interface ClientTls {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

/** Runs the load generator against `url`; resolves with wrk's summary shape (throws on any failed request). */
export async function runLoadgen(url: string, bodyFile: string, connections: number, seconds: number, tls: ClientTls): Promise<WrkResult> {
  const args = ["-url", url, "-body", bodyFile, "-c", String(connections), "-d", String(seconds), "-ca", tls.caFile];
  if (tls.certFile && tls.keyFile) args.push("-cert", tls.certFile, "-key", tls.keyFile);
  const { stdout, stderr } = await execFileAsync(loadgenBinary(), args);
  const result = JSON.parse(stdout.trim().split("\n").pop() ?? "") as WrkResult;
  const failed = Object.values(result.errors).reduce((sum, count) => sum + count, 0);
  if (failed > 0) throw new Error(`loadgen ${url}: ${failed} failed requests ${JSON.stringify(result.errors)}\n${stderr}`);
  return result;
}
