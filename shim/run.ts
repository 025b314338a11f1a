// The shim's start: find the app, resolve its references, and either replace the shim with it
// (execve) or, in rotation mode, supervise it. Fails closed: the app never starts with an unresolved
// reference.
import { ShimEnv } from "../common/contract.ts";
import type { Environment, ShimConfig } from "./config.ts";
import { buildAppEnv } from "./env.ts";
import { ShimError } from "./errors.ts";
import { type AppCommand, execApp, findCommand } from "./exec.ts";
import type { Log } from "./log.ts";
import { createResolver, formatProblem, isUnavailableOnly, planReferences, type ReferenceVar, type Resolver } from "./resolve.ts";
import { openSource } from "./sources/open.ts";

export interface Start {
  config: ShimConfig;
  env: Environment;
  log: Log;
}

function sameValues(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([name, value]) => b.get(name) === value);
}

/** Resolves every reference or throws the ShimError to end with, after one line per problem. */
async function resolveAll(start: Start, resolver: Resolver, references: ReferenceVar[]): Promise<Map<string, string>> {
  const { config, log } = start;
  const began = Date.now();
  const resolution = await resolver.resolve(references, began + config.timeoutMs);
  for (const ignored of resolution.ignored) log.warn(`${formatProblem(ignored)}; left unset (${ShimEnv.ignoreMissing})`);
  if (resolution.problems.length > 0) {
    for (const problem of resolution.problems) log.error(formatProblem(problem));
    const code = isUnavailableOnly(resolution.problems) ? "KUS_BACKEND_UNAVAILABLE" : "KUS_REF_UNRESOLVED";
    throw new ShimError(code, `not starting the app: ${resolution.problems.length} of ${references.length} reference(s) unresolved`);
  }
  log.debug(`resolved ${resolution.values.size} reference(s) in ${Date.now() - began} ms`);
  return resolution.values;
}

async function supervised(start: Start, command: AppCommand, resolver: Resolver, references: ReferenceVar[], values: Map<string, string>) {
  const { config, env, log } = start;
  const { endLike, supervise } = await import("./rotation.ts");
  for (const source of await resolver.sources()) source.keepAlive?.();
  let current = values;
  process.removeAllListeners("SIGUSR1"); // main's startup guard: the supervisor forwards SIGUSR1 from now on
  const refresh = async () => {
    const next = await resolver.resolve(references, Date.now() + config.timeoutMs);
    for (const problem of next.problems) log.warn(`rotation: ${formatProblem(problem)}; keeping the current values`);
    if (next.problems.length > 0 || sameValues(current, next.values)) return undefined;
    const changed = references.filter((ref) => current.get(ref.target) !== next.values.get(ref.target)).map((ref) => ref.name);
    log.info(`rotation: ${changed.join(", ")} changed`);
    current = next.values;
    return buildAppEnv(env, config, current);
  };
  endLike(await supervise({ command, env: buildAppEnv(env, config, values), rotation: config.rotation, refresh, log }));
}

export async function runApp(start: Start, commandName: string, args: string[]): Promise<void> {
  const { config, env, log } = start;
  const command = findCommand(commandName, args, env.PATH);
  const plan = planReferences(env, config);
  if (plan.problems.length > 0) {
    for (const problem of plan.problems) log.error(formatProblem(problem));
    throw new ShimError("KUS_REF_UNRESOLVED", `not starting the app: ${plan.problems.length} invalid reference var(s)`);
  }
  const resolver = createResolver((backend) => openSource(backend, config, log), { ignoreMissing: config.ignoreMissing, log });
  const values = plan.references.length > 0 ? await resolveAll(start, resolver, plan.references) : new Map<string, string>();
  if (config.rotation.mode === "none") {
    log.debug(`exec ${command.file}`);
    execApp(command, buildAppEnv(env, config, values));
  }
  await supervised(start, command, resolver, plan.references, values);
}
