// Resolution: which env vars are references (planReferences, pure), and their values from the
// backends (createResolver): one read per distinct secret and one issuance per distinct issued
// request (path + parameters), all concurrently, transient failures retried with backoff until the
// deadline. Every unresolved reference becomes one Problem naming the var, the reference and the
// reason — never a value.
import { SHIM_ENV_PREFIX, ShimEnv } from "../common/contract.ts";
import {
  type Backend,
  fillPlaceholders,
  type IssuedReference,
  isIssued,
  issuanceKey,
  isValidEnvName,
  type PodPlaceholder,
  parseReference,
  type SecretReference,
  targetName,
  vaultCommand,
} from "../common/reference.ts";
import type { Environment } from "./config.ts";
import type { Log } from "./log.ts";
import { type Clock, DEFAULT_RETRY, type RetryPolicy, retryUntil, systemClock } from "./retry.ts";
import { isLeaseIssuer, type Secret, type SecretInfo, type SecretSource, SourceError } from "./sources/source.ts";

export interface ReferenceVar {
  /** `SECRET_DB_PASSWORD` */
  name: string;
  /** The reference as written. */
  raw: string;
  /** `DB_PASSWORD`: what the app receives. */
  target: string;
  /** Issued references have their {pod.*} placeholders filled in. */
  reference: (SecretReference & { backend: Backend }) | IssuedReference;
}

export type ProblemKind = "malformed" | "collision" | "missing" | "denied" | "config" | "unavailable";

export interface Problem {
  name: string;
  raw: string;
  kind: ProblemKind;
  reason: string;
}

export interface ReferencePlan {
  references: ReferenceVar[];
  problems: Problem[];
  /** Things that work but are likely mistakes (never a value). */
  warnings: string[];
}

export interface PlanSettings {
  prefix: string;
  passthrough: readonly string[];
  /** For references without `vault:` / `custodia:`. */
  backend: Backend;
}

/** True for vars that are references under `prefix` (passthrough vars are plain values). */
export function isReferenceVar(name: string, settings: Pick<PlanSettings, "prefix" | "passthrough">): boolean {
  return name.startsWith(settings.prefix) && !settings.passthrough.includes(name);
}

const placeholderVars: Record<PodPlaceholder, string> = {
  "pod.name": ShimEnv.podName,
  "pod.namespace": ShimEnv.podNamespace,
  "pod.serviceAccount": ShimEnv.podServiceAccount,
};

/** The reference with its backend settled and its placeholders filled, or why that cannot be. */
function settle(reference: SecretReference | IssuedReference, settings: PlanSettings, identity: Partial<Record<PodPlaceholder, string>>) {
  if (!isIssued(reference)) return { reference: { ...reference, backend: reference.backend ?? settings.backend } };
  const filled = fillPlaceholders(reference, identity);
  if ("reference" in filled) return filled;
  const missing = filled.unknown.map((placeholder) => `{${placeholder}}`).join(", ");
  const vars = filled.unknown.map((placeholder) => placeholderVars[placeholder]).join(", ");
  return {
    error: `the pod's identity for ${missing} is unknown: set ${vars} (the webhook adds them from the downward API to containers with issued references) or mount a ServiceAccount token (${ShimEnv.saTokenFile})`,
  };
}

/** Issued references that share a path but not the parameters get separate issuances: say so. */
function issuanceWarnings(references: readonly ReferenceVar[]): string[] {
  const byPath = new Map<string, Map<string, string[]>>();
  for (const ref of references) {
    if (!isIssued(ref.reference)) continue;
    const keys = byPath.get(ref.reference.path) ?? new Map<string, string[]>();
    const key = issuanceKey(ref.reference);
    keys.set(key, [...(keys.get(key) ?? []), ref.name]);
    byPath.set(ref.reference.path, keys);
  }
  return [...byPath]
    .filter(([, keys]) => keys.size > 1)
    .map(
      ([path, keys]) =>
        `${[...keys.values()].map((names) => names.join(" and ")).join(" / ")} issue from ${path} with different parameters: they get ${keys.size} separate issuances (a certificate and a key from different issuances do not match)`,
    );
}

/** Finds and parses the reference vars of `env`; malformed ones and name collisions are problems. */
export function planReferences(
  env: Environment,
  settings: PlanSettings,
  identity: Partial<Record<PodPlaceholder, string>> = {},
): ReferencePlan {
  const references: ReferenceVar[] = [];
  const problems: Problem[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!isReferenceVar(name, settings)) continue;
    const raw = env[name] ?? "";
    const problem = (kind: ProblemKind, reason: string) => problems.push({ name, raw, kind, reason });
    const target = targetName(name, settings.prefix);
    if (target === undefined) problem("malformed", `no name after the prefix ${settings.prefix}`);
    else if (!isValidEnvName(target)) problem("malformed", `${JSON.stringify(target)} is not a valid env var name`);
    else if (target.startsWith(SHIM_ENV_PREFIX))
      problem("malformed", `${target}: names starting with ${SHIM_ENV_PREFIX} are kustodia's own`);
    else if (Object.hasOwn(env, target)) problem("collision", `${target} is already set in the container's env`);
    else {
      const parsed = parseReference(raw);
      if (!parsed.ok) {
        problem("malformed", parsed.error.replace(/^invalid reference ".*?": /, "invalid reference: "));
        continue;
      }
      const settled = settle(parsed.reference, settings, identity);
      if ("error" in settled) problem("config", settled.error as string);
      else references.push({ name, raw, target, reference: settled.reference as ReferenceVar["reference"] });
    }
  }
  return { references, problems, warnings: issuanceWarnings(references) };
}

/** The line printed for a problem. */
export function formatProblem(problem: Problem): string {
  return `${problem.name} (reference ${JSON.stringify(problem.raw)}): ${problem.reason}`;
}

/** EX_UNAVAILABLE when every problem is an unreachable backend, EX_CONFIG otherwise. */
export function isUnavailableOnly(problems: readonly Problem[]): boolean {
  return problems.length > 0 && problems.every((problem) => problem.kind === "unavailable");
}

/** References served by one read or one issuance, and what is known about that secret. */
export interface ResolvedGroup {
  refs: ReferenceVar[];
  info: SecretInfo;
}

export interface Resolution {
  /** target name → value */
  values: Map<string, string>;
  /** Every secret that was read or issued, with the references it served. */
  groups: ResolvedGroup[];
  problems: Problem[];
  /** Missing secrets left unset because of KUSTODIA_IGNORE_MISSING. */
  ignored: Problem[];
}

export interface ResolverOptions {
  ignoreMissing: boolean;
  log: Log;
  clock?: Clock;
  retry?: Omit<RetryPolicy, "deadline">;
}

export type SourceOpener = (backend: Backend) => Promise<SecretSource>;

export interface Resolver {
  /** Resolves `references` before the `deadline` (epoch ms). */
  resolve(references: readonly ReferenceVar[], deadline: number): Promise<Resolution>;
  /** The sources opened so far (for keepAlive in rotation mode). */
  sources(): Promise<SecretSource[]>;
}

const isTransient = (error: unknown) => error instanceof SourceError && error.kind === "transient";

function problemFor(error: unknown, attempts: number, timeoutMs: number): Pick<Problem, "kind" | "reason"> {
  if (!(error instanceof SourceError)) return { kind: "config", reason: `unexpected error: ${(error as Error)?.message ?? String(error)}` };
  if (error.kind === "transient") {
    const seconds = (timeoutMs / 1000).toFixed(1);
    return {
      kind: "unavailable",
      reason: `backend unreachable within ${seconds} s (${attempts} attempt${attempts === 1 ? "" : "s"}): ${error.message}`,
    };
  }
  return { kind: error.kind, reason: error.message };
}

export function createResolver(open: SourceOpener, options: ResolverOptions): Resolver {
  const clock = options.clock ?? systemClock;
  const opened = new Map<Backend, Promise<SecretSource>>();
  const source = (backend: Backend) => {
    let pending = opened.get(backend);
    if (!pending) {
      pending = open(backend);
      opened.set(backend, pending);
    }
    return pending;
  };

  type Opened = { source: SecretSource } | { error: unknown };

  const fetch = (source: SecretSource, reference: ReferenceVar["reference"], timeoutMs: number): Promise<Secret> => {
    if (!isIssued(reference)) return source.read(reference, { timeoutMs });
    if (!isLeaseIssuer(source)) throw new SourceError("config", `the ${reference.backend} backend cannot issue secrets`);
    return source.issue(reference, { timeoutMs });
  };

  async function readGroup(
    opened: Opened,
    first: ReferenceVar,
    deadline: number,
  ): Promise<{ secret?: Secret; error?: Pick<Problem, "kind" | "reason"> }> {
    if ("error" in opened) return { error: problemFor(opened.error, 0, 0) };
    const started = clock.now();
    let attempts = 0;
    try {
      const secret = await retryUntil(
        (timeoutMs) => {
          attempts++;
          return fetch(opened.source, first.reference, timeoutMs);
        },
        isTransient,
        { ...DEFAULT_RETRY, ...options.retry, deadline },
        clock,
        (error, delayMs) => options.log.debug(`${(error as Error).message}; retrying in ${delayMs} ms`),
      );
      return { secret };
    } catch (error) {
      return { error: problemFor(error, attempts, clock.now() - started) };
    }
  }

  const describe = (opened: Opened, ref: ReferenceVar, secret: Secret | undefined) => {
    if (isIssued(ref.reference)) return `${vaultCommand(ref.reference)} (fields: ${[...(secret?.fields.keys() ?? [])].join(", ")})`;
    return "source" in opened ? opened.source.describe(ref.reference) : ref.raw;
  };

  async function resolve(references: readonly ReferenceVar[], deadline: number): Promise<Resolution> {
    const backends = [...new Set(references.map((ref) => ref.reference.backend))];
    const openedBy = new Map<Backend, Opened>(
      await Promise.all(
        backends.map(async (backend): Promise<[Backend, Opened]> => {
          try {
            return [backend, { source: await source(backend) }];
          } catch (error) {
            return [backend, { error }];
          }
        }),
      ),
    );
    const groups = new Map<string, { opened: Opened; refs: ReferenceVar[] }>();
    for (const ref of references) {
      const opened = openedBy.get(ref.reference.backend) as Opened;
      const reference = ref.reference;
      const key = isIssued(reference)
        ? issuanceKey(reference)
        : `${reference.backend}\0${"source" in opened ? opened.source.readKey(reference) : ""}`;
      const group = groups.get(key) ?? { opened, refs: [] };
      group.refs.push(ref);
      groups.set(key, group);
    }
    const resolution: Resolution = { values: new Map(), groups: [], problems: [], ignored: [] };
    const results = await Promise.all(
      [...groups.values()].map(async ({ opened, refs }) => ({
        opened,
        refs,
        result: await readGroup(opened, refs[0] as ReferenceVar, deadline),
      })),
    );
    for (const { opened, refs, result } of results) {
      if (result.secret) resolution.groups.push({ refs, info: result.secret.info });
      for (const ref of refs) {
        const problem = (kind: ProblemKind, reason: string) => {
          const entry = { name: ref.name, raw: ref.raw, kind, reason };
          (kind === "missing" && options.ignoreMissing ? resolution.ignored : resolution.problems).push(entry);
        };
        const value = result.secret?.fields.get(ref.reference.field);
        if (result.error) problem(result.error.kind, result.error.reason);
        else if (value === undefined)
          problem("missing", `field ${JSON.stringify(ref.reference.field)} not found in ${describe(opened, ref, result.secret)}`);
        else resolution.values.set(ref.target, value);
      }
    }
    const byName = (a: Problem, b: Problem) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    resolution.problems.sort(byName);
    resolution.ignored.sort(byName);
    return resolution;
  }

  return {
    resolve,
    sources: async () =>
      (await Promise.allSettled(opened.values())).flatMap((entry) => (entry.status === "fulfilled" ? [entry.value] : [])),
  };
}
