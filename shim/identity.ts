// The pod's identity (namespace, name, ServiceAccount): for the {pod.*} placeholders of issued
// references and for the audit record. Two sources, in this order:
// 1. KUSTODIA_POD_NAME / KUSTODIA_POD_NAMESPACE / KUSTODIA_POD_SERVICE_ACCOUNT — downward-API env vars
//    that the webhook adds to containers with issued references (anyone may set them by hand);
// 2. the claims of the ServiceAccount token file (KUSTODIA_SA_TOKEN_FILE): a bound token — what the
//    kubelet mounts since Kubernetes 1.22, and the projected token the webhook adds — names the pod in
//    `kubernetes.io.pod.name`; older tokens name the namespace and ServiceAccount only.
// The token is decoded, not verified: it is the file the kubelet gave this container, as trusted as
// the env. Only the claims named above are read, and the token itself goes nowhere.
import { existsSync, readFileSync } from "node:fs";
import { ShimEnv } from "../common/contract.ts";
import type { PodPlaceholder } from "../common/reference.ts";
import type { Environment } from "./config.ts";

export interface PodIdentity {
  namespace?: string;
  name?: string;
  serviceAccount?: string;
  /** Where each known item came from, for --explain. */
  sources: Partial<Record<"namespace" | "name" | "serviceAccount", string>>;
  /** Env values that are not Kubernetes names, ignored (for a warning). */
  ignored: string[];
}

/** DNS subdomain names (RFC 1123), as Kubernetes requires for namespaces, pods and ServiceAccounts. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

interface TokenClaims {
  namespace?: unknown;
  name?: unknown;
  serviceAccount?: unknown;
}

/** The identity claims of a ServiceAccount JWT, without verifying it; empty when it is not one. */
export function tokenClaims(jwt: string): TokenClaims {
  const payload = jwt.trim().split(".")[1];
  if (payload === undefined) return {};
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return {};
  }
  if (typeof claims !== "object" || claims === null) return {};
  const bound = claims["kubernetes.io"] as
    | { namespace?: unknown; pod?: { name?: unknown }; serviceaccount?: { name?: unknown } }
    | undefined;
  if (typeof bound === "object" && bound !== null) {
    return { namespace: bound.namespace, name: bound.pod?.name, serviceAccount: bound.serviceaccount?.name };
  }
  return {
    namespace: claims["kubernetes.io/serviceaccount/namespace"],
    serviceAccount: claims["kubernetes.io/serviceaccount/service-account.name"],
  };
}

function readClaims(tokenFile: string): TokenClaims {
  // No mounted token is common: told without an exception (an error walks the stack, and at start
  // that walk can wait on V8's compiler threads).
  if (!existsSync(tokenFile)) return {};
  try {
    return tokenClaims(readFileSync(tokenFile, "utf8"));
  } catch {
    return {};
  }
}

/** The pod's identity from the env and, for what the env does not say, the ServiceAccount token's claims. */
export function podIdentity(env: Environment, saTokenFile: string): PodIdentity {
  const identity: PodIdentity = { sources: {}, ignored: [] };
  const fromEnv = { namespace: ShimEnv.podNamespace, name: ShimEnv.podName, serviceAccount: ShimEnv.podServiceAccount } as const;
  let claims: TokenClaims | undefined;
  for (const key of ["namespace", "name", "serviceAccount"] as const) {
    const set = env[fromEnv[key]];
    if (set !== undefined && NAME.test(set)) {
      identity[key] = set;
      identity.sources[key] = fromEnv[key];
      continue;
    }
    if (set !== undefined && set !== "")
      identity.ignored.push(`${fromEnv[key]}=${JSON.stringify(set.slice(0, 80))} is not a Kubernetes name; ignored`);
    claims ??= readClaims(saTokenFile);
    const claimed = claims[key];
    if (typeof claimed === "string" && NAME.test(claimed)) {
      identity[key] = claimed;
      identity.sources[key] = `ServiceAccount token ${saTokenFile}`;
    }
  }
  return identity;
}

/** The identity as values of the {pod.*} placeholders. */
export function placeholderValues(identity: PodIdentity): Partial<Record<PodPlaceholder, string>> {
  const values: Partial<Record<PodPlaceholder, string>> = {};
  if (identity.name !== undefined) values["pod.name"] = identity.name;
  if (identity.namespace !== undefined) values["pod.namespace"] = identity.namespace;
  if (identity.serviceAccount !== undefined) values["pod.serviceAccount"] = identity.serviceAccount;
  return values;
}
