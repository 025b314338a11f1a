import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";
import { ensureServiceAccount, kubeRequest, serviceAccountToken } from "./kube-api.ts";

const execFileAsync = promisify(execFile);

describe.skipIf(skipWithout("kube"))("kube-apiserver + etcd", () => {
  it("is a real kube-apiserver reporting its version", async () => {
    const kube = service("kube");
    const { status, body } = await kubeRequest<{ gitVersion: string; major: string }>(kube, "GET", "/version");
    expect(status).toBe(200);
    expect(body.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(body.gitVersion).toBe(kube.version);
    expect(body.major).toBe("1");
  });

  it("stores a namespace created through the API in etcd", async () => {
    const kube = service("kube");
    const name = `smoke-${randomBytes(4).toString("hex")}`;
    const created = await kubeRequest(kube, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    expect(created.status).toBe(201);
    const { stdout } = await execFileAsync(kube.etcdctl, [`--endpoints=${kube.etcdEndpoint}`, "get", `/registry/namespaces/${name}`], {
      env: { ...process.env, ETCDCTL_API: "3" },
      encoding: "latin1",
    });
    expect(stdout.split("\n")[0]).toBe(`/registry/namespaces/${name}`);
    expect(stdout).toContain(name);
  });

  it("issues service-account tokens (TokenRequest) that TokenReview accepts", async () => {
    const kube = service("kube");
    const namespace = `smoke-${randomBytes(4).toString("hex")}`;
    await ensureServiceAccount(kube, namespace, "app");
    const token = await serviceAccountToken(kube, namespace, "app");
    expect(token.split(".")).toHaveLength(3);

    const review = await kubeRequest<{ status: { authenticated?: boolean; user?: { username: string } } }>(
      kube,
      "POST",
      "/apis/authentication.k8s.io/v1/tokenreviews",
      { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
    );
    expect(review.status).toBe(201);
    expect(review.body.status.authenticated).toBe(true);
    expect(review.body.status.user?.username).toBe(`system:serviceaccount:${namespace}:app`);

    const forged = await kubeRequest<{ status: { authenticated?: boolean } }>(kube, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      spec: { token: `${token.slice(0, -4)}AAAA` },
    });
    expect(forged.body.status.authenticated).not.toBe(true);
  });

  it("rejects requests without the admin token", async () => {
    const kube = service("kube");
    const { status } = await kubeRequest(kube, "GET", "/api/v1/namespaces", undefined, "not-a-token");
    expect(status).toBe(401);
  });
});
