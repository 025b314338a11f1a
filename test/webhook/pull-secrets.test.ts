// The pull-secret reader against the real kube-apiserver of the test infrastructure (admin
// kubeconfig), and the image lookup with it against the real TLS + basic-auth registry: what is
// reused between admissions, for how long, for whom, and what happens when reused credentials fail.
import { randomBytes } from "node:crypto";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from "../../common/contract.ts";
import { createImageLookup } from "../../webhook/images.ts";
import { createMetrics } from "../../webhook/metrics.ts";
import type { JsonObject } from "../../webhook/pod.ts";
import { createPullSecretReader, PULL_SECRET_TTL_MS } from "../../webhook/pull-secrets.ts";
import { createRegistryClient } from "../../webhook/registry/client.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { kubeRequest } from "../infra/kube-api.ts";
import { testRegistrySettings } from "./registry-settings.ts";

const suffix = randomBytes(3).toString("hex");
const home = `pull-cache-${suffix}`;
const other = `pull-cache-other-${suffix}`;

const kube = () => service("kube");

async function api(method: string, path: string, body?: unknown): Promise<void> {
  const answer = await kubeRequest(kube(), method, path, body);
  if (answer.status >= 300) throw new Error(`${method} ${path}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
}

/** A dockerconfigjson Secret for the test registry with `password`. */
function registrySecret(name: string, password: string): JsonObject {
  const { host, username } = service("registry").secure;
  const auths = { [host]: { auth: Buffer.from(`${username}:${password}`).toString("base64") } };
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/dockerconfigjson",
    metadata: { name },
    data: { ".dockerconfigjson": Buffer.from(JSON.stringify({ auths })).toString("base64") },
  };
}

const putSecret = (namespace: string, secret: JsonObject) =>
  api("PUT", `/api/v1/namespaces/${namespace}/secrets/${(secret.metadata as { name: string }).name}`, secret);
const createSecret = (namespace: string, secret: JsonObject) => api("POST", `/api/v1/namespaces/${namespace}/secrets`, secret);
const deleteSecret = (namespace: string, name: string) => api("DELETE", `/api/v1/namespaces/${namespace}/secrets/${name}`);

const pod = (pullSecrets: string[] = []): JsonObject => ({
  spec: { serviceAccountName: "app", imagePullSecrets: pullSecrets.map((name) => ({ name })), containers: [] },
});

function reader() {
  const clock = { now: 1_000_000 };
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kube().kubeconfig);
  return { clock, reader: createPullSecretReader(kubeConfig, () => clock.now) };
}

describe.skipIf(skipWithout("kube", "registry"))("pull secrets reused between admissions (real kube-apiserver)", () => {
  beforeAll(async () => {
    for (const namespace of [home, other]) {
      await api("POST", "/api/v1/namespaces", { metadata: { name: namespace, labels: { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE } } });
      await api("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, {
        metadata: { name: "app" },
        imagePullSecrets: [{ name: "regcred" }],
      });
      await createSecret(namespace, registrySecret("regcred", `password-of-${namespace}`));
    }
  });
  afterAll(async () => {
    for (const namespace of [home, other]) await kubeRequest(kube(), "DELETE", `/api/v1/namespaces/${namespace}`);
  });

  it(`reuses a ServiceAccount's pull secrets for ${PULL_SECRET_TTL_MS / 1000} s, then reads them again`, async () => {
    const { clock, reader: pullSecrets } = reader();
    await createSecret(home, registrySecret("short-lived", "x"));
    const first = await pullSecrets.read(pod(["short-lived"]), home);
    expect(first.secrets.map((secret) => secret.name).sort()).toEqual(["regcred", "short-lived"]);
    expect(first.reused).toBe(false);
    await deleteSecret(home, "short-lived");
    clock.now += PULL_SECRET_TTL_MS - 1;
    const again = await pullSecrets.read(pod(["short-lived"]), home);
    expect(again.secrets.map((secret) => secret.name).sort()).toEqual(["regcred", "short-lived"]);
    expect(again.reused).toBe(true);
    clock.now += 2;
    const later = await pullSecrets.read(pod(["short-lived"]), home);
    expect(later.secrets.map((secret) => secret.name)).toEqual(["regcred"]);
    expect(later.problems).toEqual([expect.stringContaining(`imagePullSecret ${home}/short-lived: not readable`)]);
  });

  it("never reuses what could not be read", async () => {
    const { reader: pullSecrets } = reader();
    const before = await pullSecrets.read(pod(["late"]), home);
    expect(before.problems).toEqual([expect.stringContaining(`imagePullSecret ${home}/late: not readable`)]);
    await createSecret(home, registrySecret("late", "x"));
    const after = await pullSecrets.read(pod(["late"]), home);
    expect(after.problems).toEqual([]);
    expect(after.secrets.map((secret) => secret.name).sort()).toEqual(["late", "regcred"]);
  });

  it("gives each namespace its own Secret of the same name", async () => {
    const { reader: pullSecrets } = reader();
    const data = async (namespace: string) => (await pullSecrets.read(pod(), namespace)).secrets.map((secret) => secret.data);
    const mine = await data(home);
    const theirs = await data(other);
    expect(mine).toEqual([registrySecret("regcred", `password-of-${home}`).data]);
    expect(theirs).toEqual([registrySecret("regcred", `password-of-${other}`).data]);
    expect(await data(home)).toEqual(mine);
  });

  it("a lookup that fails with reused credentials reads them afresh and, as they changed, succeeds", async () => {
    const { reader: pullSecrets } = reader();
    const registry = createRegistryClient(testRegistrySettings({ plainHttp: [] }), createMetrics({ defaultMetrics: false }));
    try {
      const lookupImages = createImageLookup({ registry, pullSecrets });
      const image = service("registry").images.private as { reference: string; entrypoint: string[] };
      const lookup = async () =>
        (await lookupImages([{ container: "app", image: image.reference }], pod(["rotated"]), home, { pullSecrets: true })).get("app");
      await createSecret(home, registrySecret("rotated", "the-old-password"));
      expect((await lookup())?.ok, "the old password is refused").toBe(false);
      // Rotated within the reuse window: the reused (old) password fails, the fresh read has the new one.
      await putSecret(home, registrySecret("rotated", service("registry").secure.password));
      const result = await lookup();
      expect(result?.ok ? result.config.entrypoint : result).toEqual(image.entrypoint);
    } finally {
      registry.close();
    }
  });
});
