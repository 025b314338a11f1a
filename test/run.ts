// `npm test`: brings the test infrastructure up once (or reuses the one `npm run infra -- up` left
// running), runs every vitest project against it, and prints the plain summary line CI reads
// (`N passed, N failed[, N skipped]`) from vitest's JSON report. Extra arguments go to vitest.
// With CI=true a service that cannot be installed or started stops the run before any test, with
// that service's name and its installer's own output: one loud failure instead of many scattered ones.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InfraState } from "./infra/types.ts";
import { down, runningState, up } from "./infra/up.ts";

interface JsonReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; status: string; message?: string; assertionResults: unknown[] }[];
}

const args = process.argv.slice(2);
const workDir = mkdtempSync(join(tmpdir(), "kustodia-test-"));
const reportFile = join(workDir, "report.json");
const inCI = process.env.CI === "true";
const onlyUnit = args.some((arg, i) => arg === "--project=unit" || (arg === "--project" && args[i + 1] === "unit"));

/** Infrastructure this run started (and so stops); undefined when reused or not needed. */
let started: InfraState | undefined;
const stopInfra = async () => {
  const state = started;
  started = undefined;
  if (state) await down(state);
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void stopInfra().finally(() => process.exit(130));
  });
}

function vitest(env: NodeJS.ProcessEnv): Promise<number | null> {
  const child = spawn("vitest", ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${reportFile}`, ...args], {
    stdio: "inherit",
    env,
  });
  return new Promise((resolve) => child.on("close", (code) => resolve(code)));
}

function summarise(): { summary: string; failed: number } {
  try {
    const report = JSON.parse(readFileSync(reportFile, "utf8")) as JsonReport;
    // A file that fails before any test runs (import error, failing hook) counts as one failure.
    const brokenFiles = report.testResults.filter((file) => file.status === "failed" && file.assertionResults.length === 0);
    for (const file of brokenFiles) console.error(`failed to run ${file.name}: ${file.message ?? ""}`);
    const failed = report.numFailedTests + brokenFiles.length;
    const skipped = report.numPendingTests + report.numTodoTests;
    return { summary: `${report.numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`, failed };
  } catch (error) {
    console.error(`no vitest report: ${(error as Error).message}`);
    return { summary: "0 passed, 1 failed", failed: 1 };
  }
}

async function main(): Promise<{ summary: string; failed: number; status: number | null }> {
  const env = { ...process.env };
  if (!onlyUnit && !runningState()) {
    const state = await up();
    started = state;
    console.log(`[infra] started in ${state.timingsMs.total} ms: ${JSON.stringify(state.timingsMs)}`);
    const missing = Object.entries(state.unavailable);
    if (inCI && missing.length > 0) {
      for (const [name, reason] of missing)
        console.error(`\n[infra] ${name} could not be installed or started (CI=true: the run stops here):\n${reason}`);
      console.error(`\n[infra] no test ran: ${missing.map(([name]) => name).join(", ")} could not be had`);
      return { summary: `0 passed, ${missing.length} failed`, failed: missing.length, status: 1 };
    }
    const stateFile = join(workDir, "infra-state.json");
    writeFileSync(stateFile, JSON.stringify(state));
    env.KUSTODIA_INFRA_STATE = stateFile;
  }
  const status = await vitest(env);
  return { ...summarise(), status };
}

let outcome: Awaited<ReturnType<typeof main>>;
try {
  outcome = await main();
} finally {
  await stopInfra();
  rmSync(workDir, { recursive: true, force: true });
}
console.log(outcome.summary);
process.exitCode = outcome.failed > 0 || outcome.status !== 0 ? 1 : 0;
