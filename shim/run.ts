// The shim's start: find the app, resolve its references, write the audit record, and either replace
// the shim with the app (execve) or, in rotation mode, supervise it. Fails closed: the app never
// starts with an unresolved reference.
import { ShimEnv } from "../common/contract.ts";
import { isIssued } from "../common/reference.ts";
import { type AuditEvent, type AuditInput, auditRecord } from "./audit.ts";
import type { Environment, ShimConfig } from "./config.ts";
import { buildAppEnv } from "./env.ts";
import { ShimError } from "./errors.ts";
import { type AppCommand, execApp, findCommand } from "./exec.ts";
import { expandResolved, isHandler } from "./handler.ts";
import { placeholderValues, podIdentity } from "./identity.ts";
import type { LeaseKeeper } from "./leases.ts";
import type { Log } from "./log.ts";
import {
  createResolver,
  formatProblem,
  isUnavailableOnly,
  type Problem,
  planReferences,
  type ReferenceVar,
  type Resolution,
  type ResolvedGroup,
  type Resolver,
} from "./resolve.ts";
import type { SupervisorControl } from "./rotation.ts";
import { openSource } from "./sources/open.ts";
import { isLeaseIssuer } from "./sources/source.ts";

export interface Start {
  config: ShimConfig;
  env: Environment;
  log: Log;
}

/** How long the shim may spend ending what it holds once the app is gone for good. */
const RELEASE_TIMEOUT_MS = 2000;

/** Writes the audit record (docs/audit.md) of `event`, whose resolution began at `began`. */
type Audit = (
  event: AuditInput["event"],
  began: number,
  details: Pick<AuditInput, "resolution" | "planProblems" | "changed" | "reason">,
) => void;

const exitFor = (problems: readonly Problem[]) => (isUnavailableOnly(problems) ? "KUS_BACKEND_UNAVAILABLE" : "KUS_REF_UNRESOLVED");

/** Resolves every reference or throws the ShimError to end with, after one line per problem. */
async function resolveAll(start: Start, resolver: Resolver, references: ReferenceVar[], audit: Audit): Promise<Resolution> {
  const { config, log } = start;
  const began = Date.now();
  const resolution = await resolver.resolve(references, began + config.timeoutMs);
  for (const ignored of resolution.ignored) log.warn(`${formatProblem(ignored)}; left unset (${ShimEnv.ignoreMissing})`);
  if (resolution.problems.length > 0) {
    const lines = resolution.problems.map(formatProblem);
    for (const line of lines) log.error(line);
    audit("start", began, { resolution, reason: `${resolution.problems.length} of ${references.length} reference(s) unresolved` });
    throw new ShimError(
      exitFor(resolution.problems),
      `not starting the app: ${resolution.problems.length} of ${references.length} reference(s) unresolved`,
      lines,
    );
  }
  log.debug(`resolved ${resolution.values.size} reference(s) in ${Date.now() - began} ms`);
  audit("start", began, { resolution });
  return resolution;
}

/**
 * Exec mode: nobody renews the shim's Vault token once the app runs, and Vault revokes a token's
 * leases with it. Say so when that ends issued credentials before their own lease would.
 */
function warnTokenBoundLeases(log: Log, groups: readonly ResolvedGroup[]): void {
  for (const { refs, info } of groups) {
    if (!info.lease || info.expiresAt === undefined || info.tokenExpiresAt === undefined) continue;
    if (info.tokenExpiresAt >= info.expiresAt - Math.max(60_000, (info.expiresAt - info.at) / 10)) continue;
    log.warn(
      `${refs.map((ref) => ref.name).join(", ")}: lease ${info.lease.id} lasts ${info.lease.durationS} s, but Vault revokes it with the shim's token in ${Math.round((info.tokenExpiresAt - info.at) / 1000)} s; raise the token TTL of the Vault auth role, or use ${ShimEnv.rotation}=restart|signal, which keeps the token alive`,
    );
  }
}

interface Supervised {
  command: AppCommand;
  resolver: Resolver;
  references: ReferenceVar[];
  resolution: Resolution;
  audit: Audit;
}

async function supervised(start: Start, run: Supervised) {
  const { config, env, log } = start;
  const { endLike, supervise } = await import("./rotation.ts");
  const sources = await run.resolver.sources();
  const issuers = sources.filter(isLeaseIssuer);
  for (const issuer of issuers) issuer.keepAlive();
  process.removeAllListeners("SIGUSR1"); // main's startup guard: the supervisor forwards SIGUSR1 from now on

  const stored = run.references.filter((ref) => !isIssued(ref.reference));
  let values = new Map(run.resolution.values);
  let groups = run.resolution.groups;
  let control: SupervisorControl | undefined;
  const current = (): Resolution => ({ values, groups, problems: [], ignored: [] });

  /** Stored secrets, re-read every interval; issued ones are left to the lease keeper. */
  const refresh = async () => {
    if (stored.length === 0) return undefined;
    const began = Date.now();
    const next = await run.resolver.resolve(stored, began + config.timeoutMs);
    for (const problem of next.problems) log.warn(`rotation: ${formatProblem(problem)}; keeping the current values`);
    const changed = stored.filter((ref) => values.get(ref.target) !== next.values.get(ref.target));
    if (next.problems.length > 0 || changed.length === 0) return undefined;
    log.info(`rotation: ${changed.map((ref) => ref.name).join(", ")} changed`);
    values = new Map(values);
    for (const ref of stored) {
      const value = next.values.get(ref.target);
      if (value === undefined) values.delete(ref.target);
      else values.set(ref.target, value);
    }
    groups = [...groups.filter((group) => group.refs.some((ref) => isIssued(ref.reference))), ...next.groups];
    run.audit("rotation", began, { resolution: current(), changed: changed.map((ref) => ref.target) });
    return buildAppEnv(env, config, values);
  };

  const issued = groups.filter((group) => group.refs.some((ref) => isIssued(ref.reference)));
  let keeper: LeaseKeeper | undefined;
  if (issued.length > 0) {
    const [vault] = issuers;
    const { keepLeases } = await import("./leases.ts");
    let reissueBegan = 0;
    keeper = keepLeases({
      groups: issued,
      margin: config.rotation.margin,
      log,
      renew: async (lease, incrementS) => {
        if (!vault) throw new Error("the backend cannot renew leases");
        return vault.renew(lease, incrementS, { timeoutMs: config.timeoutMs });
      },
      reissue: (group) => {
        reissueBegan = Date.now();
        return run.resolver.resolve(group.refs, reissueBegan + config.timeoutMs);
      },
      onReissued: (old, fresh) => {
        values = new Map([...values, ...fresh.values]);
        groups = [...groups.filter((group) => group !== old), ...fresh.groups];
        log.info(`rotation: ${old.refs.map((ref) => ref.name).join(", ")} issued anew`);
        run.audit("rotation", reissueBegan, { resolution: current(), changed: old.refs.map((ref) => ref.target) });
        control?.rotate(buildAppEnv(env, config, values));
      },
      onExpired: (group, problems, reason) => {
        const what = group.refs.map((ref) => ref.name).join(", ");
        const message = `${what}: expired at ${new Date(group.info.expiresAt ?? Date.now()).toISOString()} and could not be renewed or issued anew (${reason}); stopping the app`;
        log.error(message);
        run.audit("stop", Date.now(), { resolution: current(), reason: message });
        control?.stop({ code: new ShimError(exitFor(problems), message).exitCode });
      },
    });
    for (const issuer of issuers) issuer.onCredentialReplaced((at) => keeper?.retire(at));
  }

  const exit = await supervise({
    command: run.command,
    env: buildAppEnv(env, config, values),
    rotation: config.rotation,
    refresh,
    log,
    attach: (attached) => {
      control = attached;
    },
  });
  keeper?.stop();
  await Promise.all(
    issuers.map((issuer) =>
      issuer.release({ timeoutMs: RELEASE_TIMEOUT_MS }).catch((error: unknown) => log.warn(`releasing: ${(error as Error).message}`)),
    ),
  );
  endLike(exit);
}

export async function runApp(start: Start, commandName: string, args: string[]): Promise<void> {
  const { config, env, log } = start;
  const began = Date.now();
  const command = findCommand(commandName, args, env.PATH);
  const identity = podIdentity(env, config.vault.saTokenFile);
  for (const ignored of identity.ignored) log.warn(ignored);
  const plan = planReferences(env, config, placeholderValues(identity));
  for (const warning of plan.warnings) log.warn(warning);
  const quiet = isHandler(config.role) && !config.handlerAudit;
  const startEvent: AuditEvent = config.role === "app" ? "start" : config.role;
  const audit: Audit = (event, from, details) => {
    if (quiet) return;
    log.record(
      auditRecord({
        event: event === "start" ? startEvent : event,
        identity,
        app: command.file,
        began: from,
        durationMs: Date.now() - from,
        references: plan.references,
        ...details,
      }),
    );
  };
  if (plan.problems.length > 0) {
    for (const problem of plan.problems) log.error(formatProblem(problem));
    audit("start", began, { planProblems: plan.problems, reason: `${plan.problems.length} invalid reference var(s)` });
    throw new ShimError("KUS_REF_UNRESOLVED", `not starting the app: ${plan.problems.length} invalid reference var(s)`);
  }
  const resolver = createResolver((backend) => openSource(backend, config, log), { ignoreMissing: config.ignoreMissing, log });
  let resolution: Resolution = { values: new Map(), groups: [], problems: [], ignored: [] };
  if (plan.references.length > 0) resolution = await resolveAll(start, resolver, plan.references, audit);
  else audit("start", began, {});
  if (isHandler(config.role)) {
    const argv =
      config.role === "probe" ? [command.argv[0] as string, ...expandResolved(command.argv.slice(1), resolution.values)] : command.argv;
    execApp({ file: command.file, argv }, buildAppEnv(env, config, resolution.values));
  }
  if (config.rotation.mode === "none") {
    warnTokenBoundLeases(log, resolution.groups);
    log.debug(`exec ${command.file}`);
    execApp(command, buildAppEnv(env, config, resolution.values));
  }
  await supervised(start, { command, resolver, references: plan.references, resolution, audit });
}
