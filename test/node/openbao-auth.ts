// OpenBao's kubernetes auth against the node's cluster, as docs/backends.md sets it up: a reviewer
// ServiceAccount with system:auth-delegator, its token as token_reviewer_jwt, and a role bound to
// ServiceAccounts in named namespaces that may read one KV prefix. Shared by test/node and bench.
import { readFileSync } from "node:fs";
import { kubectl } from "../infra/kubectl.ts";
import { asRoot, openbaoApi } from "../infra/openbao-api.ts";
import type { NodeCoordinates } from "../infra/types.ts";

export interface KubernetesAuth {
  /** The auth mount, e.g. `pods-k8s` (enabled afresh). */
  path: string;
  role: string;
  serviceAccount: string;
  namespaces: string[];
  /** The KV v2 prefix under `secret/` the role may read, e.g. `node-pods`. */
  readPrefix: string;
  /** Where the reviewer ServiceAccount is created (it must exist). */
  reviewerNamespace: string;
}

export function bao(node: NodeCoordinates, method: string, path: string, body?: unknown) {
  return openbaoApi(asRoot(node.openbao), method, path, body);
}

/** The ClusterRoleBinding `configureKubernetesAuth` creates; delete it when done. */
export const reviewerBinding = (auth: KubernetesAuth) => `${auth.path}-openbao-reviewer`;

export async function configureKubernetesAuth(node: NodeCoordinates, auth: KubernetesAuth): Promise<void> {
  await kubectl(node, ["create", "serviceaccount", "openbao-reviewer", "-n", auth.reviewerNamespace]);
  await kubectl(node, [
    "create",
    "clusterrolebinding",
    reviewerBinding(auth),
    "--clusterrole=system:auth-delegator",
    `--serviceaccount=${auth.reviewerNamespace}:openbao-reviewer`,
  ]);
  const reviewer = (await kubectl(node, ["create", "token", "openbao-reviewer", "-n", auth.reviewerNamespace, "--duration=2h"])).trim();
  await bao(node, "DELETE", `sys/auth/${auth.path}`);
  await bao(node, "POST", `sys/auth/${auth.path}`, { type: "kubernetes" });
  await bao(node, "POST", `auth/${auth.path}/config`, {
    kubernetes_host: node.inClusterServer,
    kubernetes_ca_cert: readFileSync(node.caFile, "utf8"),
    token_reviewer_jwt: reviewer,
    disable_local_ca_jwt: true,
  });
  await bao(node, "PUT", `sys/policies/acl/${auth.path}`, {
    policy: `path "secret/data/${auth.readPrefix}/*" { capabilities = ["read"] }`,
  });
  await bao(node, "POST", `auth/${auth.path}/role/${auth.role}`, {
    bound_service_account_names: [auth.serviceAccount],
    bound_service_account_namespaces: auth.namespaces,
    token_policies: [auth.path],
    token_ttl: "10m",
  });
}

export async function removeKubernetesAuth(node: NodeCoordinates, auth: KubernetesAuth): Promise<void> {
  await kubectl(node, ["delete", "clusterrolebinding", reviewerBinding(auth), "--ignore-not-found"]);
  await bao(node, "DELETE", `sys/auth/${auth.path}`).catch(() => undefined);
}
