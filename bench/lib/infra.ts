// The services a benchmark runs against, from the test infrastructure (test/infra): a state file
// named by KUSTODIA_BENCH_INFRA, else what `npm run infra -- up` left running, else started here
// (and stopped again by `release`). Never writes the shared .infra/state.json.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { InfraCoordinates, InfraState, ServiceName } from "../../test/infra/types.ts";
import { down, runningState, up } from "../../test/infra/up.ts";

export interface BenchInfra {
  coordinates: InfraCoordinates;
  /** Where the coordinates came from, for the report. */
  origin: string;
  release: () => Promise<void>;
}

function missing(state: InfraState, services: ServiceName[]): ServiceName[] {
  return services.filter((name) => !state.coordinates[name]);
}

/** The coordinates of `services` (those that could be had; a caller checks what it needs). */
export async function acquireInfra(services: ServiceName[]): Promise<BenchInfra> {
  const named = process.env.KUSTODIA_BENCH_INFRA;
  if (named) {
    if (!existsSync(named)) throw new Error(`KUSTODIA_BENCH_INFRA=${named}: no such file`);
    const state = JSON.parse(readFileSync(named, "utf8")) as InfraState;
    return { coordinates: state.coordinates, origin: `state file ${named}`, release: async () => {} };
  }
  const running = runningState();
  if (running && missing(running, services).length === 0) {
    return { coordinates: running.coordinates, origin: "the running `npm run infra -- up`", release: async () => {} };
  }
  const previous = process.env.KUSTODIA_INFRA_ONLY;
  process.env.KUSTODIA_INFRA_ONLY = services.join(",");
  try {
    const state = await up();
    for (const [name, reason] of Object.entries(state.unavailable)) console.error(`[bench] ${name} unavailable: ${reason}`);
    return { coordinates: state.coordinates, origin: `started for this run (${services.join(", ")})`, release: () => down(state) };
  } finally {
    if (previous === undefined) delete process.env.KUSTODIA_INFRA_ONLY;
    else process.env.KUSTODIA_INFRA_ONLY = previous;
  }
}

// `node bench/lib/infra.ts up <state.json>`: starts the services for repeated bench runs
// (KUSTODIA_BENCH_INFRA=<state.json>); `down <state.json>` stops them.
if (import.meta.main) {
  const [command, file] = process.argv.slice(2);
  if (command === "up" && file) {
    process.env.KUSTODIA_INFRA_ONLY ??= "kube,openbao,registry";
    const state = await up();
    writeFileSync(file, JSON.stringify(state, null, 2));
    console.log(`${file}: ${Object.keys(state.coordinates).join(", ")} up; unavailable: ${JSON.stringify(state.unavailable)}`);
  } else if (command === "down" && file) {
    await down(JSON.parse(readFileSync(file, "utf8")) as InfraState);
  } else {
    console.error("usage: node bench/lib/infra.ts up|down <state.json>");
    process.exitCode = 2;
  }
}
