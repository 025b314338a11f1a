// The cluster-level proof through a real kube-apiserver + etcd (issue 5, proofs 1–7). The chart is
// installed with `helm install`, its MutatingWebhookConfiguration and ValidatingAdmissionPolicy live;
// the webhook program (`node webhook/main.ts`) runs on this machine with the TLS pair the chart made
// and the env the chart's Deployment gives it, reached by the apiserver through `webhook.url`
// (a value for tests only) instead of the Service — no kubelet or controllers run here.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Annotations,
  INSTALL_CONTAINER_NAME,
  MOUNT_PATH,
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_VALUE,
  SHIM_PATH,
} from "../../common/contract.ts";
import { VERSION } from "../../common/version.ts";
import { containerOf, etcdctl, startInjected, storedPod } from "../flow/cluster.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { kubeRequest, serviceAccountToken } from "../infra/kube-api.ts";
import { openbaoCall } from "../infra/openbao-api.ts";
import { freePort } from "../infra/proc.ts";
import { type RunningWebhook, startWebhook } from "../webhook/harness.ts";
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
  podObject,
  statusMessage,
  type Values,
} from "./chart.ts";

const suffix = randomBytes(3).toString("hex");
const release = `proof-${suffix}`;
const systemNamespace = `kustodia-${suffix}`;
const appNamespace = `app-${suffix}`;
const plainNamespace = `plain-${suffix}`;
const role = `app-${suffix}`;
const secretPath = `proof-${suffix}/db`;
const reference = `${secretPath}#password`;
/** The secret value: lives in OpenBao only; must never reach the pod spec or etcd. */
const secretValue = `s3cr3t-${randomBytes(12).toString("hex")}`;
/** The app: prints what it received, and how many reference or shim vars leaked into its env. */
const APP_SCRIPT = `printf 'DB_PASSWORD=%s\\n' "$DB_PASSWORD"; printf 'GREETING=%s\\n' "$GREETING"; printf 'leaked=%s\\n' "$(env | grep -c -e '^SECRET_' -e '^KUSTODIA_')"`;

let dir: string;
let port: number;
let webhook: RunningWebhook | undefined;
let webhookStartEnv: Record<string, string>;
let tls: { caFile: string; certFile: string; keyFile: string };

function bao(method: string, path: string, body?: unknown, token = service("openbao").rootToken) {
  return openbaoCall({ addr: service("openbao").addr, token }, method, path, body);
}

function tokenOf(namespace: string, name: string): Promise<string> {
  return serviceAccountToken(service("kube"), namespace, name);
}

function appPod(name: string, annotations: Record<string, string>, secretRef = reference): KubeObject {
  return podObject(name, annotations, {
    command: ["/bin/sh", "-c", APP_SCRIPT],
    env: [
      { name: "SECRET_DB_PASSWORD", value: secretRef },
      { name: "GREETING", value: "hello" },
    ],
  });
}

const optedIn = { [Annotations.inject]: "true", [Annotations.vaultRole]: role };

async function createPod(namespace: string, pod: KubeObject, options: { dryRun?: boolean } = {}) {
  return createObject(service("kube"), { ...pod, metadata: { ...pod.metadata, namespace } }, options);
}

async function mutatingWebhookConfiguration(change: (configuration: KubeObject) => void): Promise<void> {
  const kube = service("kube");
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${release}-kustodia`;
  const current = await kubeRequest<KubeObject>(kube, "GET", path);
  change(current.body);
  const replaced = await kubeRequest(kube, "PUT", path, current.body);
  expect(replaced.status, statusMessage(replaced.body)).toBe(200);
}

/** Runs a stored pod's container as a kubelet would (test/flow/cluster.ts), to its end; PATH stands for the image's ENV. */
async function runLikeKubelet(pod: KubeObject, containerName: string) {
  const stored = containerOf(pod, containerName);
  const running = await startInjected(pod, containerName, { dir, base: { PATH: "/usr/local/bin:/usr/bin:/bin" }, cwd: dir });
  const { code } = await running.exited;
  return { command: [...stored.command, ...(stored.args ?? [])], code, stdout: running.stdout(), stderr: running.stderr() };
}

async function startChartWebhook(): Promise<RunningWebhook> {
  return startWebhook({ env: webhookStartEnv, tls });
}

/** Waits until the apiserver calls the webhook for opted-in pods in the app namespace (dry-run). */
async function untilWebhookActive(): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { status, body } = await createPod(appNamespace, appPod("probe", optedIn), { dryRun: true });
    if (status === 201 && (body as KubeObject).metadata.annotations?.[Annotations.status]) return;
    if (Date.now() > deadline) throw new Error(`the webhook did not take effect within 30 s: HTTP ${status} ${statusMessage(body)}`);
    await sleep(250);
  }
}

describe.skipIf(skipWithout("kube", "helm", "openbao", "registry"))("kustodia through the kube-apiserver and etcd", () => {
  beforeAll(async () => {
    const kube = service("kube");
    const openbao = service("openbao");
    dir = mkdtempSync(join(tmpdir(), "kustodia-proof-"));
    port = await freePort();

    for (const [namespace, labels] of [
      [appNamespace, { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE }],
      [plainNamespace, {}],
    ] as const) {
      await ensureObject(kube, namespaceObject(namespace, labels));
      // No controller-manager here: nobody creates the default ServiceAccount.
      for (const name of ["app", "other"])
        await ensureObject(kube, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } });
    }

    const values: Values = {
      webhook: {
        url: `https://127.0.0.1:${port}/mutate`,
        // The apiserver is shared with other tests: match this test's namespaces only.
        extraNamespaceSelectorExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [appNamespace, plainNamespace] }],
        logLevel: "debug",
      },
      tls: { extraIpAddresses: ["127.0.0.1"] },
      registry: { plainHttp: [service("registry").plain.host], allowedNetworks: ["127.0.0.0/8"] },
      shim: {
        image: { repository: "registry.example/kustodia/kustodia-shim" },
        defaults: {
          backend: "vault",
          vaultAddr: openbao.addr,
          vaultAuthMethod: "kubernetes",
          vaultAuthPath: openbao.kubernetesAuthMount ?? "kubernetes",
          vaultKvMount: openbao.kvV2Mount,
          timeout: "20s",
        },
      },
    };
    await helmRelease({ helm: service("helm").binary, kube }, "install", release, systemNamespace, values);

    // The TLS pair the chart made, from the apiserver, for the webhook to serve with.
    tls = await chartTlsFiles(kube, release, systemNamespace, dir);

    // The env the chart's Deployment gives the webhook, but listening where webhook.url points.
    const manifest = await helm(service("helm").binary, ["get", "manifest", release, "--namespace", systemNamespace], kube);
    const objects = parseObjects(manifest.stdout);
    const configFile = join(dir, "config.yaml");
    writeFileSync(configFile, (objects.find((object) => object.kind === "ConfigMap") as KubeObject).data["config.yaml"]);
    webhookStartEnv = localWebhookEnv(objects, configFile, port);
    webhook = await startChartWebhook();

    // OpenBao: the secret, a policy that reads it, a kubernetes-auth role bound to app-<suffix>/app.
    expect((await bao("POST", `${openbao.kvV2Mount}/data/${secretPath}`, { data: { password: secretValue } })).status).toBe(200);
    const policy = `path "${openbao.kvV2Mount}/data/proof-${suffix}/*" { capabilities = ["read"] }`;
    expect((await bao("PUT", `sys/policies/acl/proof-${suffix}`, { policy })).status).toBe(204);
    const binding = {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [appNamespace],
      token_policies: [`proof-${suffix}`],
      token_ttl: "5m",
    };
    expect((await bao("POST", `auth/${openbao.kubernetesAuthMount}/role/${role}`, binding)).status).toBe(204);

    await untilWebhookActive();
  });

  afterAll(async () => {
    await webhook?.stop();
    await helm(service("helm").binary, ["uninstall", release, "--namespace", systemNamespace], service("kube"));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("1. stores an opted-in pod in an enabled namespace mutated", async () => {
    // A second container without `command`: the webhook reads its image's ENTRYPOINT/CMD from the
    // test registry (plain HTTP, allowed by the chart's registry.plainHttp).
    const image = service("registry").images.entrypointCmd as { reference: string; entrypoint: string[]; cmd: string[] };
    const pod = appPod("app", optedIn);
    pod.spec.containers.push({ name: "worker", image: image.reference, env: [{ name: "SECRET_API_TOKEN", value: `${secretPath}#token` }] });
    const created = await createPod(appNamespace, pod);
    expect(created.status, statusMessage(created.body)).toBe(201);

    const stored = await storedPod(appNamespace, "app");
    expect(stored.metadata.annotations?.[Annotations.status]).toBe(`injected ${VERSION}`);
    const [install] = stored.spec.initContainers;
    expect(install).toMatchObject({ name: INSTALL_CONTAINER_NAME, image: `registry.example/kustodia/kustodia-shim:${VERSION}` });
    const [app, worker] = stored.spec.containers;
    expect(worker.command).toEqual([SHIM_PATH, "--", ...image.entrypoint]);
    expect(worker.args).toEqual(image.cmd);
    expect(app.command).toEqual([SHIM_PATH, "--", "/bin/sh", "-c", APP_SCRIPT]);
    expect(app.volumeMounts).toContainEqual({ name: "kustodia", mountPath: MOUNT_PATH, readOnly: true });
    const env = Object.fromEntries((app.env as { name: string; value: string }[]).map((item) => [item.name, item.value]));
    expect(env).toMatchObject({
      SECRET_DB_PASSWORD: reference,
      KUSTODIA_BACKEND: "vault",
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_AUTH_METHOD: "kubernetes",
      KUSTODIA_VAULT_ROLE: role,
    });
    expect(JSON.stringify(stored)).not.toContain(secretValue);
    expect(webhook?.logs().join("\n")).toContain('"decision":"mutated"');
  });

  it("2. keeps only the reference in etcd: the pod's raw bytes, and nowhere the value", async () => {
    const { stdout: podBytes } = await etcdctl(["get", `/registry/pods/${appNamespace}/app`, "--print-value-only"]);
    expect(podBytes.length).toBeGreaterThan(0);
    expect(podBytes.includes(Buffer.from(reference))).toBe(true);
    expect(podBytes.includes(Buffer.from("kustodia-shim"))).toBe(true);
    expect(podBytes.includes(Buffer.from(secretValue))).toBe(false);
    const { stdout: everything } = await etcdctl(["get", "", "--prefix"]);
    expect(everything.includes(Buffer.from(`/registry/pods/${appNamespace}/app`))).toBe(true);
    expect(everything.includes(Buffer.from(secretValue))).toBe(false);
  });

  it("3. stores pods untouched outside enabled namespaces and when not opted in", async () => {
    const elsewhere = await createPod(plainNamespace, appPod("app", optedIn));
    expect(elsewhere.status, statusMessage(elsewhere.body)).toBe(201);
    const notOptedIn = await createPod(appNamespace, appPod("plain", {}));
    expect(notOptedIn.status, statusMessage(notOptedIn.body)).toBe(201);
    for (const pod of [await storedPod(plainNamespace, "app"), await storedPod(appNamespace, "plain")]) {
      expect(pod.metadata.annotations?.[Annotations.status]).toBeUndefined();
      expect(pod.spec.containers[0].command).toEqual(["/bin/sh", "-c", APP_SCRIPT]);
      expect(pod.spec.initContainers).toBeUndefined();
    }
  });

  it("4. with the webhook stopped, refuses opted-in pods and still creates the others", async () => {
    await webhook?.stop();
    webhook = undefined;
    const refused = await createPod(appNamespace, appPod("while-down", optedIn));
    expect(refused.status).not.toBe(201);
    expect(statusMessage(refused.body)).toContain('failed calling webhook "inject.kustodia.io"');
    const other = await createPod(appNamespace, appPod("plain-while-down", {}));
    expect(other.status, statusMessage(other.body)).toBe(201);
  });

  it("5. the ValidatingAdmissionPolicy refuses an opted-in pod that reaches the API without the shim", async () => {
    // Someone switches the webhook to failurePolicy Ignore while it is down...
    await mutatingWebhookConfiguration((configuration) => {
      configuration.webhooks[0].failurePolicy = "Ignore";
    });
    const deadline = Date.now() + 30_000;
    let answer = await createPod(appNamespace, appPod("ignored", optedIn), { dryRun: true });
    while (!statusMessage(answer.body).includes("was not processed by the kustodia webhook") && Date.now() < deadline) {
      await sleep(250);
      answer = await createPod(appNamespace, appPod("ignored", optedIn), { dryRun: true });
    }
    expect(answer.status).toBe(403);
    expect(statusMessage(answer.body)).toContain("ValidatingAdmissionPolicy");
    expect(statusMessage(answer.body)).toContain("(no kustodia.io/status annotation)");

    // ...or edits its namespaceSelector so that it no longer sees the namespace (and back to Fail).
    await mutatingWebhookConfiguration((configuration) => {
      configuration.webhooks[0].failurePolicy = "Fail";
      configuration.webhooks[0].namespaceSelector.matchLabels[NAMESPACE_LABEL] = "somewhere-else";
    });
    const bypassDeadline = Date.now() + 30_000;
    let bypassed = await createPod(appNamespace, appPod("bypassed", optedIn));
    while (!statusMessage(bypassed.body).includes("was not processed by the kustodia webhook") && Date.now() < bypassDeadline) {
      await sleep(250);
      bypassed = await createPod(appNamespace, appPod("bypassed", optedIn));
    }
    expect(bypassed.status).toBe(403);

    // A forged verdict does not pass either.
    const forged = await createPod(appNamespace, appPod("forged", { ...optedIn, [Annotations.status]: `injected ${VERSION}` }));
    expect(forged.status).toBe(403);
    expect(statusMessage(forged.body)).toContain("container(s) app do not run /kustodia/kustodia-shim");

    // Pods that do not opt in are not the policy's business.
    const plain = await createPod(appNamespace, appPod("plain-after", {}));
    expect(plain.status, statusMessage(plain.body)).toBe(201);

    await mutatingWebhookConfiguration((configuration) => {
      configuration.webhooks[0].namespaceSelector.matchLabels[NAMESPACE_LABEL] = NAMESPACE_LABEL_VALUE;
    });
  });

  it("6. OpenBao's kubernetes auth accepts a TokenRequest token of the bound ServiceAccount only", async () => {
    const mount = service("openbao").kubernetesAuthMount;
    const bound = await bao("POST", `auth/${mount}/login`, { role, jwt: await tokenOf(appNamespace, "app") }, "");
    expect(bound.status).toBe(200);
    expect(bound.body.auth.metadata).toMatchObject({ service_account_name: "app", service_account_namespace: appNamespace });
    const read = await bao("GET", `${service("openbao").kvV2Mount}/data/${secretPath}`, undefined, bound.body.auth.client_token);
    expect(read.status).toBe(200);

    const otherAccount = await bao("POST", `auth/${mount}/login`, { role, jwt: await tokenOf(appNamespace, "other") }, "");
    expect(otherAccount.status).toBe(403);
    const otherNamespace = await bao("POST", `auth/${mount}/login`, { role, jwt: await tokenOf(plainNamespace, "app") }, "");
    expect(otherNamespace.status).toBe(403);
  });

  it("7. runs the stored pod's container as a kubelet would, and the app receives the value from OpenBao", async () => {
    const pod = await storedPod(appNamespace, "app");
    const started = await runLikeKubelet(pod, "app");
    expect(started.stderr).not.toContain(secretValue);
    expect(started.command.join(" ")).not.toContain(secretValue);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toBe(`DB_PASSWORD=${secretValue}\nGREETING=hello\nleaked=0\n`);
  });

  it("7b. fails closed: a stored pod whose reference does not resolve never starts its app", async () => {
    webhook = await startChartWebhook();
    await untilWebhookActive();
    const created = await createPod(appNamespace, appPod("unresolved", optedIn, `proof-${suffix}/missing#password`));
    expect(created.status, statusMessage(created.body)).toBe(201);
    const started = await runLikeKubelet(await storedPod(appNamespace, "unresolved"), "app");
    expect(started.code).toBe(78);
    expect(started.stdout).toBe("");
    expect(started.stderr).toContain("SECRET_DB_PASSWORD");
  });
});
