// The app's environment (DESIGN §3, §6.2): every var the container had, byte-for-byte and in order,
// minus the reference vars (except passthrough) and every KUSTODIA_* setting, plus `<NAME>=<value>`
// for each resolved reference. No token is ever in it: the shim reads credentials from files.
import { SHIM_ENV_PREFIX } from "../common/contract.ts";
import type { Environment } from "./config.ts";
import { isReferenceVar } from "./resolve.ts";

/** A null-prototype record: a var named `__proto__` is an ordinary key here. */
export function emptyEnv(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}

export function buildAppEnv(
  env: Environment,
  settings: { prefix: string; passthrough: readonly string[] },
  values: ReadonlyMap<string, string>,
): Record<string, string> {
  const appEnv = emptyEnv();
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith(SHIM_ENV_PREFIX) || isReferenceVar(name, settings)) continue;
    appEnv[name] = value;
  }
  for (const [name, value] of values) appEnv[name] = value;
  return appEnv;
}
