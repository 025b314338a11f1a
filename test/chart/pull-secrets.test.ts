// Pull secrets serve the kube-apiserver only (#13 item 1), through the real kube-apiserver started
// with an AdmissionConfiguration that gives it a webhook client certificate (test/infra/kube.ts), the
// chart installed with helm (per-namespace RBAC, webhook.clientAuth), the webhook program running on
// this machine with the ServiceAccount token the chart's RBAC applies to, and the TLS + basic-auth
// test registry holding a private image. The attacker is a client on the network with no
// certificate: it names namespace `victim` in a hand-made AdmissionReview.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Annotations, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, SHIM_PATH } from "../../common/contract.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { kubeRequest, serviceAccountToken } from "../infra/kube-api.ts";
import { freePort } from "../infra/proc.ts";
import { type HttpAnswer, podCreateReview, type RunningWebhook, readAnswer, startWebhook } from "../webhook/harness.ts";
import {
  chartTlsFiles,
  createObject,
  ensureObject,
  helm,
  helmRelease,
  type KubeObject,
  localWebhookEnv,
  namespaceObject,
  parseObjects,
  statusMessage,
  type Values,
} from "./chart.ts";

const suffix = randomBytes(3).toString("hex");
const release = `pull-${suffix}`;
const systemNamespace = `kustodia-pull-${suffix}`;
const victim = `victim-${suffix}`;
/** Holds the same pull secret, is in the chart's RBAC list, but never opted in. */
const notOptedIn = `plain-${suffix}`;
/** Opted in and holds the same pull secret, but is not in the chart's RBAC list. */
const unlisted = `unlisted-${suffix}`;
/** The chart's ServiceAccount's token: what the webhook reads the API with. */
let webhookToken = "";

let dir: string;
let webhook: RunningWebhook | undefined;

const privateImage = () => service("registry").images.private as { reference: string; entrypoint: string[] };

function optedInPod(name: string, pullSecret: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, annotations: { [Annotations.inject]: "true" } },
    spec: {
      serviceAccountName: "app",
      imagePullSecrets: [{ name: pullSecret }],
      containers: [{ name: "app", image: privateImage().reference, env: [{ name: "SECRET_TOKEN", value: "app/api#token" }] }],
    },
  };
}

function dockerConfigSecret(namespace: string): KubeObject {
  const { host, username, password } = service("registry").secure;
  const config = { auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString("base64") } } };
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/dockerconfigjson",
    metadata: { name: "regcred", namespace },
    data: { ".dockerconfigjson": Buffer.from(JSON.stringify(config)).toString("base64") },
  };
}

/** A review POSTed straight to the webhook, with the apiserver's client certificate when `asApiserver`. */
function postReview(namespace: string, pod: KubeObject, asApiserver: boolean): Promise<HttpAnswer> {
  const { body } = podCreateReview({ ...pod, metadata: { ...pod.metadata, namespace } }, namespace);
  const client = service("kube").webhookClient;
  return new Promise((resolve, reject) => {
    const req = request(
      `${webhook?.url}/mutate`,
      {
        method: "POST",
        ca: readFileSync(webhook?.caFile as string),
        headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
        ...(asApiserver ? { cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) } : {}),
      },
      (res) => readAnswer(res).then(resolve, reject),
    );
    req.on("error", reject);
    req.end(body);
  });
}

function patchText(answer: HttpAnswer): string {
  const patch = answer.json?.response?.patch as string | undefined;
  return patch ? Buffer.from(patch, "base64").toString("utf8") : "";
}

/** The webhook's env from the chart, with the ConfigMap's files written to `dir` and the API reached as the chart's ServiceAccount. */
async function webhookEnvFromChart(port: number): Promise<Record<string, string>> {
  const kube = service("kube");
  const manifest = await helm(service("helm").binary, ["get", "manifest", release, "--namespace", systemNamespace], kube);
  const objects = parseObjects(manifest.stdout);
  const configMap = objects.find((object) => object.kind === "ConfigMap") as KubeObject;
  for (const [name, text] of Object.entries(configMap.data as Record<string, string>)) writeFileSync(join(dir, name), text);
  const env = localWebhookEnv(objects, join(dir, "config.yaml"), port);
  for (const [name, value] of Object.entries(env))
    if (value.startsWith("/etc/kustodia/config/")) env[name] = join(dir, value.slice("/etc/kustodia/config/".length));

  const account = (objects.find((object) => object.kind === "ServiceAccount") as KubeObject).metadata.name;
  const token = await serviceAccountToken(kube, systemNamespace, account, { expirationSeconds: 3600 });
  webhookToken = token;
  const kubeconfig = join(dir, "webhook.kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server: kube.server, "certificate-authority": kube.caFile } }],
      users: [{ name: "webhook", user: { token } }],
      contexts: [{ name: "test", context: { cluster: "test", user: "webhook" } }],
      "current-context": "test",
    }),
  );
  return { ...env, KUBECONFIG: kubeconfig };
}

describe.skipIf(skipWithout("kube", "helm", "registry"))("pull secrets serve the kube-apiserver only (#13 item 1)", () => {
  beforeAll(async () => {
    const kube = service("kube");
    dir = mkdtempSync(join(tmpdir(), "kustodia-pull-"));
    const port = await freePort();
    for (const [namespace, labels] of [
      [victim, { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE }],
      [notOptedIn, {}],
      [unlisted, { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE }],
    ] as const) {
      await ensureObject(kube, namespaceObject(namespace, labels));
      await ensureObject(kube, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "app", namespace } });
      await ensureObject(kube, dockerConfigSecret(namespace));
    }
    const values: Values = {
      webhook: {
        url: `https://127.0.0.1:${port}/mutate`,
        extraNamespaceSelectorExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [victim, notOptedIn] }],
        logLevel: "debug",
        clientAuth: { caBundle: readFileSync(kube.webhookClient.caFile, "utf8"), allowedNames: [kube.webhookClient.name] },
      },
      tls: { extraIpAddresses: ["127.0.0.1"] },
      registry: {
        caBundle: readFileSync(service("registry").secure.caFile, "utf8"),
        // The test registries listen on loopback, which the webhook refuses unless allowed.
        allowedNetworks: ["127.0.0.0/8"],
        pullSecrets: { enabled: true, namespaces: [victim, notOptedIn] },
      },
      shim: { defaults: { backend: "vault", vaultAddr: "https://vault.example:8200", vaultAuthMethod: "kubernetes" } },
      // The policy is another test's subject; it would only add a second reason to some refusals here.
      validatingAdmissionPolicy: { enabled: false },
    };
    await helmRelease({ helm: service("helm").binary, kube }, "install", release, systemNamespace, values);
    const tls = await chartTlsFiles(kube, release, systemNamespace, dir);
    webhook = await startWebhook({ env: await webhookEnvFromChart(port), tls });
  });

  afterAll(async () => {
    await webhook?.stop();
    await helm(service("helm").binary, ["uninstall", release, "--namespace", systemNamespace], service("kube"));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the kube-apiserver, presenting its client certificate, gets the private image's ENTRYPOINT with victim's pull secret", async () => {
    const pod = optedInPod("app", "regcred");
    const create = () => createObject(service("kube"), { ...pod, metadata: { ...pod.metadata, namespace: victim } }, { dryRun: true });
    const deadline = Date.now() + 30_000;
    let created = await create();
    while (created.status !== 201 && Date.now() < deadline) {
      await sleep(250);
      created = await create();
    }
    expect(created.status, statusMessage(created.body)).toBe(201);
    expect((created.body as KubeObject).spec.containers[0].command).toEqual([SHIM_PATH, "--", ...privateImage().entrypoint]);
    // The admission's log line is written before the answer, but reaches this process through a pipe.
    const logged = () => webhook?.logs().join("\n") ?? "";
    for (const until = Date.now() + 5_000; !logged().includes('"verifiedCaller":true') && Date.now() < until; ) await sleep(50);
    expect(logged()).toContain('"verifiedCaller":true');
  });

  it("an attacker without the apiserver's certificate naming namespace victim gets no ENTRYPOINT and cannot tell which Secrets exist", async () => {
    const existing = await postReview(victim, optedInPod("stolen", "regcred"), false);
    const missing = await postReview(victim, optedInPod("stolen", "no-such-secret"), false);
    for (const answer of [existing, missing]) {
      expect(answer.status).toBe(200);
      expect(patchText(answer)).not.toContain(privateImage().entrypoint[0]);
      expect(answer.text).not.toContain(privateImage().entrypoint[0]);
      expect(answer.json.response.allowed).toBe(false);
    }
    const message = (answer: HttpAnswer, secret: string) => String(answer.json.response.status.message).replaceAll(secret, "<secret>");
    expect(message(existing, "regcred")).toBe(message(missing, "no-such-secret"));
    expect(message(existing, "regcred")).toContain("came without its client certificate");
  });

  it("even with the apiserver's certificate, a namespace that has not opted in lends no pull secret", async () => {
    const answer = await postReview(notOptedIn, optedInPod("elsewhere", "regcred"), true);
    expect(patchText(answer)).not.toContain(privateImage().entrypoint[0]);
    expect(answer.json.response.allowed).toBe(false);
    expect(answer.json.response.status.message).toContain(`namespace ${notOptedIn} has not opted in`);
    // A namespace that does not exist is told in the same words: no oracle for namespaces either.
    const absent = `absent-${suffix}`;
    const nowhere = await postReview(absent, optedInPod("elsewhere", "regcred"), true);
    expect(String(nowhere.json.response.status.message).replaceAll(absent, "<ns>")).toBe(
      String(answer.json.response.status.message).replaceAll(notOptedIn, "<ns>"),
    );
  });

  it("the chart's RBAC lets the webhook read pull secrets only in the listed namespaces, so an unlisted one lends none", async () => {
    const kube = service("kube");
    const read = (path: string) => kubeRequest(kube, "GET", path, undefined, webhookToken);
    expect((await read(`/api/v1/namespaces/${victim}/secrets/regcred`)).status).toBe(200);
    expect((await read(`/api/v1/namespaces/${unlisted}/secrets/regcred`)).status).toBe(403);
    expect((await read(`/api/v1/namespaces/${unlisted}/serviceaccounts/app`)).status).toBe(403);
    expect((await read(`/api/v1/namespaces/${unlisted}`)).status).toBe(403);
    const answer = await postReview(unlisted, optedInPod("unlisted", "regcred"), true);
    expect(patchText(answer)).not.toContain(privateImage().entrypoint[0]);
    expect(answer.json.response.allowed).toBe(false);
  });

  it("tells a missing Secret and ServiceAccount in the same words as unreadable ones", async () => {
    const pod = optedInPod("ghost", "no-such-secret");
    pod.spec.serviceAccountName = "no-such-account";
    const answer = await postReview(victim, pod, true);
    const text = String(answer.json.response.status.message);
    expect(text).toContain(`imagePullSecret ${victim}/no-such-secret: not readable (it does not exist, or`);
    expect(text).toContain(`ServiceAccount ${victim}/no-such-account: not readable (it does not exist, or`);
    expect(text).not.toMatch(/not found|forbidden/i);
  });
});
