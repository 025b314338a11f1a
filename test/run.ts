// `npm test`: runs every vitest project, then prints the plain summary line CI reads
// (`N passed, N failed[, N skipped]`) from vitest's JSON report. Extra arguments go to vitest.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface JsonReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; status: string; message?: string; assertionResults: unknown[] }[];
}

const reportDir = mkdtempSync(join(tmpdir(), "kustodia-vitest-"));
const reportFile = join(reportDir, "report.json");
const run = spawnSync(
  "vitest",
  ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${reportFile}`, ...process.argv.slice(2)],
  { stdio: "inherit" },
);

let summary: string;
let failed = 1;
try {
  const report = JSON.parse(readFileSync(reportFile, "utf8")) as JsonReport;
  // A file that fails before any test runs (import error, failing hook) counts as one failure.
  const brokenFiles = report.testResults.filter((file) => file.status === "failed" && file.assertionResults.length === 0);
  for (const file of brokenFiles) console.error(`failed to run ${file.name}: ${file.message ?? ""}`);
  failed = report.numFailedTests + brokenFiles.length;
  const skipped = report.numPendingTests + report.numTodoTests;
  summary = `${report.numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
} catch (error) {
  summary = `0 passed, 1 failed (no vitest report: ${(error as Error).message})`;
} finally {
  rmSync(reportDir, { recursive: true, force: true });
}
console.log(summary);
process.exitCode = failed > 0 || run.status !== 0 ? 1 : 0;
