// How a test reaches a service of the test infrastructure. Coordinates are provided by the vitest
// globalSetup (test/global-setup.ts). Outside CI a test of a missing service is skipped with the
// reason; with CI=true it runs and fails, because CI must never pass on a missing service.
import { inject } from "vitest";
import type { InfraCoordinates, InfraState, ServiceName } from "./types.ts";

declare module "vitest" {
  export interface ProvidedContext {
    infra: InfraState;
  }
}

const inCI = process.env.CI === "true" || process.env.CI === "1";

function state(): InfraState {
  const provided = inject("infra");
  if (!provided) throw new Error("test infrastructure not provided: run through `npm test` (vitest globalSetup)");
  return provided;
}

/** The service's coordinates; throws with the reason it is unavailable. */
export function service<K extends ServiceName>(name: K): NonNullable<InfraCoordinates[K]> {
  const { coordinates, unavailable } = state();
  const found = coordinates[name];
  if (found) return found as NonNullable<InfraCoordinates[K]>;
  throw new Error(`test service "${name}" is unavailable: ${unavailable[name] ?? "not started"}`);
}

/**
 * For `describe.skipIf(skipWithout("openbao"))`: true only outside CI when the service is unavailable.
 * In CI it is always false, so the tests run and fail loudly.
 */
export function skipWithout(...names: ServiceName[]): boolean {
  if (inCI) return false;
  const { coordinates, unavailable } = state();
  const missing = names.filter((name) => !coordinates[name]);
  for (const name of missing) console.warn(`skipping: test service "${name}" is unavailable: ${unavailable[name] ?? "not started"}`);
  return missing.length > 0;
}
