import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";
import { kubeRequest } from "./kube-api.ts";

// OpenBao's answers are deep JSON; the assertions below are what check their shape.
// biome-ignore lint/suspicious/noExplicitAny: see above
type BaoBody = Record<string, any>;

// OpenBao's kubernetes auth, configured against the real kube-apiserver: a pod's ServiceAccount token
// logs in (OpenBao calls TokenReview) and the issued token reads what the role's policy allows.
describe.skipIf(skipWithout("openbao", "kube"))("OpenBao kubernetes auth against the kube-apiserver", () => {
  async function bao(method: string, path: string, token: string, body?: unknown) {
    const { addr } = service("openbao");
    const response = await fetch(`${addr}/v1/${path}`, {
      method,
      headers: { "x-vault-token": token, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as BaoBody };
  }

  async function serviceAccountToken(namespace: string, name: string): Promise<string> {
    const kube = service("kube");
    await kubeRequest(kube, "POST", "/api/v1/namespaces", { metadata: { name: namespace } });
    await kubeRequest(kube, "POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name } });
    const issued = await kubeRequest<{ status: { token: string } }>(
      kube,
      "POST",
      `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
      {
        spec: { expirationSeconds: 600 },
      },
    );
    expect(issued.status).toBe(201);
    return issued.body.status.token;
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
