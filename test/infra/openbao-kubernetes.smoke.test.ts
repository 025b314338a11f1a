import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";
import { ensureServiceAccount, serviceAccountToken as issueToken } from "./kube-api.ts";
import { openbaoCall } from "./openbao-api.ts";

// OpenBao's kubernetes auth, configured against the real kube-apiserver: a pod's ServiceAccount token
// logs in (OpenBao calls TokenReview) and the issued token reads what the role's policy allows.
describe.skipIf(skipWithout("openbao", "kube"))("OpenBao kubernetes auth against the kube-apiserver", () => {
  function bao(method: string, path: string, token: string, body?: unknown) {
    return openbaoCall({ addr: service("openbao").addr, token }, method, path, body);
  }

  async function serviceAccountToken(namespace: string, name: string): Promise<string> {
    await ensureServiceAccount(service("kube"), namespace, name);
    return issueToken(service("kube"), namespace, name);
  }

  it("logs a ServiceAccount in and scopes it by policy", async () => {
    const openbao = service("openbao");
    expect(openbao.kubernetesAuthMount).toBe("kubernetes");
    const suffix = randomBytes(4).toString("hex");
    const namespace = `bao-${suffix}`;
    const secretPath = `smoke-${suffix}/db`;

    expect((await bao("POST", `secret/data/${secretPath}`, openbao.rootToken, { data: { password: "s3cr3t" } })).status).toBe(200);
    const policy = `path "secret/data/smoke-${suffix}/*" { capabilities = ["read"] }`;
    expect((await bao("PUT", `sys/policies/acl/smoke-${suffix}`, openbao.rootToken, { policy })).status).toBe(204);
    const role = {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [namespace],
      token_policies: [`smoke-${suffix}`],
      token_ttl: "5m",
    };
    expect((await bao("POST", `auth/kubernetes/role/app-${suffix}`, openbao.rootToken, role)).status).toBe(204);

    const jwt = await serviceAccountToken(namespace, "app");
    const login = await bao("POST", "auth/kubernetes/login", "", { role: `app-${suffix}`, jwt });
    expect(login.status).toBe(200);
    const clientToken = login.body.auth.client_token as string;
    expect(login.body.auth.metadata.service_account_namespace).toBe(namespace);

    const read = await bao("GET", `secret/data/${secretPath}`, clientToken);
    expect(read.status).toBe(200);
    expect(read.body.data.data.password).toBe("s3cr3t");
    expect((await bao("GET", "secret/data/elsewhere", clientToken)).status).toBe(403);
  });

  it("refuses a ServiceAccount the role is not bound to, and a forged token", async () => {
    const openbao = service("openbao");
    const suffix = randomBytes(4).toString("hex");
    const role = {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [`only-${suffix}`],
      token_policies: ["default"],
    };
    expect((await bao("POST", `auth/kubernetes/role/bound-${suffix}`, openbao.rootToken, role)).status).toBe(204);

    const otherNamespaceJwt = await serviceAccountToken(`other-${suffix}`, "app");
    expect((await bao("POST", "auth/kubernetes/login", "", { role: `bound-${suffix}`, jwt: otherNamespaceJwt })).status).toBe(403);
    const forged = `${otherNamespaceJwt.slice(0, -6)}AAAAAA`;
    expect((await bao("POST", "auth/kubernetes/login", "", { role: `bound-${suffix}`, jwt: forged })).status).toBeGreaterThanOrEqual(400);
  });
});
