// The shim's `KUSTODIA_*` env on each selected container: cluster defaults, the pod's annotations
// (admitted exactly when the shim accepts them, common/shim-settings.ts), the pod's identity for
// issued references, and the ServiceAccount token file when the webhook mounts one.
import { POD_IDENTITY_FIELDS, SERVICE_ACCOUNT_TOKEN_DIR, ShimEnv } from "../common/contract.ts";
import { ISSUE_PREFIX, targetName } from "../common/reference.ts";
import { ANNOTATED_SETTINGS, CLUSTER_DEFAULT_KEYS, readSetting, SA_TOKEN_AUTH_METHODS, ShimSettings } from "../common/shim-settings.ts";
import type { Finding } from "./findings.ts";
import { annotations, arrayAt, envOf, isObject, type Json, type JsonObject, type RawContainer, stringAt } from "./pod.ts";
import type { Settings } from "./settings.ts";

export type ShimEnvSettings = Pick<Settings, "shimDefaults" | "referencePrefix" | "vaultAddrAllowlist">;

function allowlisted(addr: string, allowlist: readonly string[]): boolean {
  return allowlist.some((prefix) => addr === prefix || addr.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`));
}

/**
 * The shim's `KUSTODIA_*` env from cluster defaults and the pod's annotations. An annotation value is
 * admitted exactly when the shim accepts it (common/shim-settings.ts); an empty one means unset.
 */
export function shimEnvironment(pod: JsonObject, settings: ShimEnvSettings): { env: Map<string, string> } | { denial: Finding } {
  const podAnnotations = annotations(pod);
  const env = new Map<string, string>();
  for (const key of CLUSTER_DEFAULT_KEYS) {
    const value = settings.shimDefaults[key];
    if (value !== undefined && value !== "") env.set(ShimSettings[key].env, value);
  }
  if (settings.referencePrefix !== ShimSettings.prefix.fallback) env.set(ShimSettings.prefix.env, settings.referencePrefix);
  for (const [key, annotation] of ANNOTATED_SETTINGS) {
    const value = podAnnotations[annotation];
    if (value === undefined || value === "") continue;
    if (key === "vaultAddr" && !allowlisted(value, settings.vaultAddrAllowlist)) {
      return {
        denial: { code: "KUS_VAULT_ADDR_NOT_ALLOWED", annotation, value, allowlistEmpty: settings.vaultAddrAllowlist.length === 0 },
      };
    }
    if (!readSetting(key, value).ok) {
      return { denial: { code: "KUS_ANNOTATION_INVALID", annotation, value, accepted: ShimSettings[key].accepted } };
    }
    env.set(ShimSettings[key].env, value);
  }
  return { env };
}

/** Whether a reference of the container issues a secret (`issue:…`) at every start. */
export function declaresIssued(container: RawContainer, prefix: string, passthrough: ReadonlySet<string>): boolean {
  return envOf(container).some(
    (item) =>
      targetName(item.name, prefix) !== undefined &&
      !passthrough.has(item.name) &&
      typeof item.value === "string" &&
      item.value.startsWith(ISSUE_PREFIX),
  );
}

/**
 * Issued references may name the pod ({pod.name}, {pod.namespace}, {pod.serviceAccount}): a container
 * that declares one gets the pod's identity from the downward API (unless it sets those vars itself).
 */
export function podIdentityEnv(container: RawContainer, prefix: string, passthrough: Set<string>): Json[] {
  if (!declaresIssued(container, prefix, passthrough)) return [];
  const env = envOf(container);
  const own = new Set(env.map((item) => item.name));
  return Object.entries(POD_IDENTITY_FIELDS)
    .filter(([name]) => !own.has(name))
    .map(([name, fieldPath]) => ({ name, valueFrom: { fieldRef: { fieldPath } } }));
}

/** Backend addresses are the cluster's to set: a container's own value is replaced (with a warning). */
const CLUSTER_OWNED_ENV = new Set<string>([ShimEnv.vaultAddr, ShimEnv.custodiaUrl]);

/** The container's env with the shim's settings; `added` lists what the webhook wrote. */
export function withShimEnv(
  container: RawContainer,
  shimEnv: Map<string, string>,
  warnings: Finding[],
): { env: Json[]; added: { name: string; value: string }[] } {
  const kept: Json[] = (arrayAt(container, "env") ?? []).filter((item) => {
    if (!isObject(item) || typeof item.name !== "string") return true;
    if (!CLUSTER_OWNED_ENV.has(item.name) || !shimEnv.has(item.name)) return true;
    warnings.push({ code: "KUS_CLUSTER_SETTING_REPLACED", container: container.name, variable: item.name });
    return false;
  });
  const own = new Set(envOf(container).map((item) => item.name));
  const added: { name: string; value: string }[] = [];
  for (const [name, value] of shimEnv) {
    if (own.has(name) && !CLUSTER_OWNED_ENV.has(name)) continue; // the container's own setting wins
    added.push({ name, value });
  }
  return { env: [...kept, ...added], added };
}

/** The shim logs in with the pod's ServiceAccount token for Vault's kubernetes and jwt auth methods. */
export function needsServiceAccountToken(shimEnv: Map<string, string>): boolean {
  const backend = readSetting("backend", shimEnv.get(ShimEnv.backend));
  const method = readSetting("vaultAuthMethod", shimEnv.get(ShimEnv.vaultAuthMethod));
  return backend.ok && backend.value === "vault" && method.ok && SA_TOKEN_AUTH_METHODS.includes(method.value);
}

/** False when automounting is off (pod or ServiceAccount) and the container names no token file itself. */
export function hasServiceAccountToken(container: RawContainer): boolean {
  const mounted = (arrayAt(container, "volumeMounts") ?? []).some(
    (mount) => stringAt(mount, "mountPath")?.replace(/\/+$/, "") === SERVICE_ACCOUNT_TOKEN_DIR,
  );
  return mounted || envOf(container).some((item) => item.name === ShimEnv.saTokenFile);
}
