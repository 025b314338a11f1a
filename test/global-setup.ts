// vitest globalSetup for the integration project: brings the real test infrastructure up (or reuses
// the one `npm run infra -- up` left running) and provides its coordinates to the tests.
import type { TestProject } from "vitest/node";
import { down, runningState, up } from "./infra/up.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reused = runningState();
  const state = reused ?? (await up());
  if (!reused) {
    const { timingsMs } = state as Awaited<ReturnType<typeof up>>;
    console.log(`[infra] started in ${timingsMs.total} ms: ${JSON.stringify(timingsMs)}`);
  }
  for (const [name, reason] of Object.entries(state.unavailable)) console.error(`[infra] ${name} unavailable: ${reason}`);
  project.provide("infra", state);
  return async () => {
    if (!reused) await down(state);
  };
}
