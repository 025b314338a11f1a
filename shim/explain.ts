// `kustodia-shim --explain [[--] <command> [args...]]`: what a start would do with this environment —
// the pod's identity, the backends and how the shim would log in, and for each var the reference,
// the backend and what would be read or issued (issued references: which issuance, and which vars
// share it) — without contacting any backend, reading any credential or showing any value. Run it
// in the container (`kubectl exec <pod> -c <container> -- /kustodia/kustodia-shim --explain`).
// Exits 0 when the start would get as far as asking the backends, 78 (EX_CONFIG) when it would fail
// before that (a malformed reference, a missing setting, a command that is not there).
import { ShimEnv } from "../common/contract.ts";
import { type Backend, isIssued, issuanceKey, vaultCommand } from "../common/reference.ts";
import type { Invocation } from "./args.ts";
import { type Environment, missingCustodiaSettings, missingVaultSettings, type ShimConfig } from "./config.ts";
import { ShimExit } from "./errors.ts";
import { findCommand } from "./exec.ts";
import { type PodIdentity, placeholderValues, podIdentity } from "./identity.ts";
import { formatProblem, isReferenceVar, planReferences, type ReferenceVar } from "./resolve.ts";
import { describeCustodiaKey } from "./sources/custodia.ts";
import { describeKvSecret } from "./sources/vault.ts";
import { describeLogin } from "./sources/vault-auth.ts";

export interface ExplainContext {
  config: ShimConfig;
  env: Environment;
  write: (text: string) => void;
}

function describePod(identity: PodIdentity): string {
  const { namespace, name, serviceAccount, sources } = identity;
  if (!namespace && !name && !serviceAccount) return `unknown (no ${ShimEnv.podName} etc., no readable ServiceAccount token)`;
  const who = `${namespace ?? "?"}/${name ?? "?"}${serviceAccount ? ` (ServiceAccount ${serviceAccount})` : ""}`;
  const from = [...new Set(Object.values(sources))].join(", ");
  return `${who}, from ${from}`;
}

function describeMode(config: ShimConfig): string {
  const { rotation } = config;
  if (rotation.mode === "none") return "exec: the shim replaces itself with the app";
  const margin =
    "ms" in rotation.margin ? `${rotation.margin.ms / 1000} s` : `${Math.round(rotation.margin.fraction * 100)}% of their lifetime`;
  const how = rotation.mode === "restart" ? "restarts the app" : `sends the app ${rotation.signal}`;
  return `rotation: the shim stays as the app's parent; re-reads stored secrets every ${rotation.intervalMs / 1000} s, renews or issues anew issued ones ${margin} before they expire, and ${how} when a value changes`;
}

function describeBackend(backend: Backend, config: ShimConfig): string {
  if (backend === "custodia") return `custodia  ${config.custodia.url ?? "(no address)"}`;
  const { vault } = config;
  const namespace = vault.namespace ? `, namespace ${vault.namespace}` : "";
  return `vault     ${vault.addr ?? "(no address)"}${namespace}, ${describeLogin(vault)}, KV mount ${vault.kvMount}/`;
}

function describeVar(
  ref: ReferenceVar,
  config: ShimConfig,
  issuances: Map<string, ReferenceVar[]>,
  numbers: Map<string, number>,
): string[] {
  const lines = [`  ${ref.target}  <- ${ref.name}=${JSON.stringify(ref.raw)}`];
  const reference = ref.reference;
  if (!isIssued(reference)) {
    const where = reference.backend === "vault" ? describeKvSecret(reference, config.vault.kvMount) : describeCustodiaKey(reference);
    const field = reference.backend === "vault" ? `, field ${JSON.stringify(reference.field)}` : "";
    lines.push(`      read ${where}${field}`);
    return lines;
  }
  const key = issuanceKey(reference);
  const shared = (issuances.get(key) ?? []).filter((other) => other !== ref).map((other) => other.target);
  lines.push(`      issuance #${numbers.get(key)}: ${vaultCommand(reference)}, field ${JSON.stringify(reference.field)}`);
  if (shared.length > 0) lines.push(`      one response with ${shared.join(", ")}`);
  return lines;
}

export function explain(context: ExplainContext, invocation: Extract<Invocation, { kind: "explain" }>): number {
  const { config, env, write } = context;
  const out: string[] = ["kustodia-shim --explain: what a start would do (no backend contacted, no value shown)", ""];
  const problems: string[] = [];
  const identity = podIdentity(env, config.vault.saTokenFile);
  out.push(`pod:      ${describePod(identity)}`);
  if (invocation.command !== undefined) {
    try {
      const command = findCommand(invocation.command, invocation.args, env.PATH);
      out.push(`command:  ${JSON.stringify(command.argv)} (runs ${command.file})`);
    } catch (error) {
      problems.push(`command: ${(error as Error).message}`);
    }
  }
  out.push(`mode:     ${describeMode(config)}`);

  const plan = planReferences(env, config, placeholderValues(identity));
  const backends = [...new Set(plan.references.map((ref) => ref.reference.backend))].sort();
  for (const backend of backends) {
    const missing = backend === "vault" ? missingVaultSettings(config.vault) : missingCustodiaSettings(config.custodia);
    problems.push(...missing.map((reason) => `${backend} backend: ${reason}`));
  }
  if (backends.length > 0) out.push("", "backends:", ...backends.map((backend) => `  ${describeBackend(backend, config)}`));

  const issuances = new Map<string, ReferenceVar[]>();
  for (const ref of plan.references) {
    if (!isIssued(ref.reference)) continue;
    const key = issuanceKey(ref.reference);
    issuances.set(key, [...(issuances.get(key) ?? []), ref]);
  }
  const numbers = new Map([...issuances.keys()].map((key, index) => [key, index + 1]));
  out.push("", `vars (${plan.references.length}):`);
  for (const ref of plan.references) out.push(...describeVar(ref, config, issuances, numbers));
  if (plan.references.length === 0) out.push("  none");

  const passthrough = Object.keys(env)
    .filter((name) => name.startsWith(config.prefix) && !isReferenceVar(name, config))
    .sort();
  if (passthrough.length > 0) out.push("", `passed through as they are (${ShimEnv.passthrough}): ${passthrough.join(", ")}`);
  const warnings = [...identity.ignored, ...plan.warnings];
  if (warnings.length > 0) out.push("", "warnings:", ...warnings.map((warning) => `  ${warning}`));
  problems.push(...plan.problems.map(formatProblem));
  if (problems.length > 0) out.push("", "the start would fail:", ...problems.map((problem) => `  ${problem}`));
  write(`${out.join("\n")}\n`);
  return problems.length > 0 ? ShimExit.config : 0;
}
