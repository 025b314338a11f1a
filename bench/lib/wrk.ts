// Load from wrk (Debian's wrk 4, C, epoll): a closed loop of `connections` keep-alive HTTPS
// connections POSTing one AdmissionReview for `seconds`, in a process of its own. post.lua prints the
// outcome as one JSON line.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { ensureDebianGroups } from "../../scripts/system/debian.ts";

const execFileAsync = promisify(execFile);

export interface WrkResult {
  requests: number;
  durationUs: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Latencies in µs. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function ensureWrk(): void {
  ensureDebianGroups(["bench"], "the webhook benchmark's load generator");
}

/** Runs wrk against `url`; resolves with its summary (throws on any failed request). */
export async function runWrk(url: string, bodyFile: string, connections: number, seconds: number): Promise<WrkResult> {
  const threads = Math.min(2, connections);
  const args = ["-t", String(threads), "-c", String(connections), "-d", `${seconds}s`, "--timeout", "10s"];
  args.push("-s", join(import.meta.dirname, "post.lua"), url);
  const { stdout, stderr } = await execFileAsync("wrk", args, { env: { ...process.env, BENCH_BODY_FILE: bodyFile } });
  const line = stdout.trim().split("\n").pop() ?? "";
  let result: WrkResult;
  try {
    result = JSON.parse(line) as WrkResult;
  } catch {
    throw new Error(`wrk ${url} printed no summary:\n${stdout}\n${stderr}`);
  }
  const failed = Object.values(result.errors).reduce((sum, count) => sum + count, 0);
  if (failed > 0) throw new Error(`wrk ${url}: ${failed} failed requests ${JSON.stringify(result.errors)}\n${stderr}`);
  return result;
}
