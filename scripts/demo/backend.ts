// The demo's OpenBao setup over its HTTP API, as an operator would do it with the `bao` CLI
// (docs/backends.md): the secret, a read policy, jwt auth trusting the demo's token issuer, and a
// role binding the pod's ServiceAccount to the policy.
import type { OpenBaoCoordinates } from "../../test/infra/types.ts";
import { DEMO_ISSUER } from "./identity.ts";

export interface DemoBackend {
  /** KV v2 secret path under `secret/` and its field: the reference `myapp/password`. */
  secret: string;
  field: string;
  value: string;
  policy: string;
  authPath: string;
  role: string;
}

async function call(bao: OpenBaoCoordinates, method: string, path: string, body?: unknown): Promise<void> {
  const response = await fetch(`${bao.addr}/v1/${path}`, {
    method,
    headers: { "X-Vault-Token": bao.rootToken, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`OpenBao ${method} /v1/${path}: HTTP ${response.status} ${(await response.text()).trim()}`);
}

export async function configureOpenBao(
  bao: OpenBaoCoordinates,
  backend: DemoBackend,
  identity: { publicKeyPem: string; namespace: string; serviceAccount: string },
): Promise<void> {
  // bao kv put secret/myapp password=...
  await call(bao, "POST", `${bao.kvV2Mount}/data/${backend.secret}`, { data: { [backend.field]: backend.value } });
  // bao policy write myapp - <<< 'path "secret/data/myapp" { capabilities = ["read"] }'
  await call(bao, "PUT", `sys/policies/acl/${backend.policy}`, {
    policy: `path "${bao.kvV2Mount}/data/${backend.secret}" { capabilities = ["read"] }`,
  });
  // bao auth enable jwt; bao write auth/jwt/config jwt_validation_pubkeys=@key.pem bound_issuer=...
  await call(bao, "POST", `sys/auth/${backend.authPath}`, { type: "jwt" });
  await call(bao, "POST", `auth/${backend.authPath}/config`, {
    jwt_validation_pubkeys: [identity.publicKeyPem],
    bound_issuer: DEMO_ISSUER,
  });
  // bao write auth/jwt/role/myapp role_type=jwt user_claim=sub bound_subject=... token_policies=myapp
  await call(bao, "POST", `auth/${backend.authPath}/role/${backend.role}`, {
    role_type: "jwt",
    user_claim: "sub",
    bound_audiences: [DEMO_ISSUER],
    bound_subject: `system:serviceaccount:${identity.namespace}:${identity.serviceAccount}`,
    token_policies: [backend.policy],
    token_ttl: "5m",
  });
}
