// `npm start` tells the story of the README: a secret stored in a real OpenBao reaches the app's
// environment through the real webhook and the real shim, while the patch and the stored pod hold
// only the reference — and the demo stops everything it started.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { chooseShim } from "../../scripts/demo/kubelet.ts";
import { repoRoot } from "../infra/repo-root.ts";

/** The separator of the side-by-side table. */
const COLUMNS = / │ ?/;

function npmStart(env: Record<string, string> = {}) {
  const run = spawnSync("npm", ["start", "--silent"], {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 240_000,
    env: { ...process.env, ...env },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

/** The story's checks on one run's output; returns the secret value it printed. */
async function expectStory(run: { status: number | null; stdout: string; stderr: string }): Promise<string> {
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  const lines = run.stdout.split("\n");
  const value = /app sees PASSWORD=(s3cr3t-[0-9a-f]{8})\b/.exec(run.stdout)?.[1];
  expect(value, run.stdout).toBeDefined();
  const secret = value as string;

  // The value shows where it was stored and where the app printed it, nowhere else.
  const withValue = lines.filter((line) => line.includes(secret));
  expect(withValue).toHaveLength(2);
  expect(withValue[0]).toMatch(/^\s+stored\s+secret\/myapp\s+password=s3cr3t-/);
  const appLine = withValue[1] as string;
  const [stored, app] = appLine.split(COLUMNS);
  expect(app).toBe(`app sees PASSWORD=${secret}`);
  expect(stored).not.toContain(secret);

  // The stored pod column: references and the shim, never the value.
  const table = lines.filter((line) => COLUMNS.test(line));
  const left = table.map((line) => line.split(COLUMNS)[0] ?? "").join("\n");
  const right = table.map((line) => line.split(COLUMNS)[1] ?? "").join("\n");
  expect(left).toContain("what Kubernetes stores");
  expect(left).toContain("- /kustodia/kustodia-shim");
  expect(left).toContain("- SECRET_PASSWORD: myapp/password");
  expect(left).toContain("- KUSTODIA_VAULT_ROLE: myapp");
  expect(left).not.toContain(secret);
  expect(right).toContain("no SECRET_* or KUSTODIA_* var");
  expect(right).toContain("(exit 0)");

  // The patch was printed, and holds no value.
  const patchStart = lines.findIndex((line) => line.includes("allowed with a JSON Patch of"));
  expect(patchStart).toBeGreaterThan(0);
  const patch = lines.slice(patchStart + 1).filter((line) => /^\s{4}(add|replace|remove)\s/.test(line));
  expect(patch.some((line) => line.includes("/spec/initContainers"))).toBe(true);
  expect(patch.some((line) => line.includes("/kustodia/kustodia-shim"))).toBe(true);
  expect(patch.join("\n")).not.toContain(secret);
  expect(run.stdout).toContain("webhook log: decision=mutated");
  expect(run.stdout).toMatch(/✓ password reached the app's environment only/);
  expect(run.stderr).not.toContain(secret);

  // Everything it started is stopped.
  expect(run.stdout).toContain("Stopped OpenBao and the webhook.");
  const openbao = /OpenBao [0-9.]+ \(`bao server -dev`\) at (http:\/\/127\.0\.0\.1:\d+)/.exec(run.stdout)?.[1];
  const webhook = /webhook\s+(https:\/\/127\.0\.0\.1:\d+)\/mutate/.exec(run.stdout)?.[1];
  expect(openbao).toBeDefined();
  expect(webhook).toBeDefined();
  expect(await answers(`${openbao}/v1/sys/health`)).toBe(false);
  expect(await answers(`${webhook}/healthz`)).toBe(false);
  return secret;
}

describe("npm start", () => {
  it("tells the story with the shim it picks by default, and stops what it started", async () => {
    const run = npmStart();
    const secret = await expectStory(run);
    expect(run.stdout).toContain("/kustodia/kustodia-shim =");
    // A new value every run: the output cannot be a recording.
    const again = npmStart({ KUSTODIA_DEMO_SHIM: "source" });
    expect(await expectStory(again)).not.toBe(secret);
    expect(again.stdout).toContain("`node shim/main.ts`, the shim from source");
  });

  const runtime = chooseShim();
  if (runtime.kind !== "runtime") console.warn(`skipping the portable-runtime demo: ${runtime.description}`);
  it.skipIf(runtime.kind !== "runtime")("runs the app through the portable runtime at /kustodia when it can", async () => {
    const run = npmStart({ KUSTODIA_DEMO_SHIM: "runtime" });
    await expectStory(run);
    expect(run.stdout).toContain("the portable runtime dist/shim-runtime, mounted read-only at /kustodia");
  });

  it("refuses an unknown KUSTODIA_DEMO_SHIM before starting anything", () => {
    const run = npmStart({ KUSTODIA_DEMO_SHIM: "docker" });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('KUSTODIA_DEMO_SHIM must be "runtime" or "source", not "docker"');
    expect(run.stdout).not.toContain("OpenBao");
  });
});
