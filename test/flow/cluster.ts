// The full flow's moving parts for tests: the real webhook (test/webhook/harness.ts) registered with
// the real kube-apiserver by a MutatingWebhookConfiguration that points at it by URL, pods created
// through the apiserver and read back, and a stored pod's containers started as a kubelet would.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { Annotations, SHIM_PATH } from "../../common/contract.ts";
import { createObject, type KubeObject, statusMessage } from "../chart/chart.ts";
import { service } from "../infra/coords.ts";
import { kubeRequest, serviceAccountToken } from "../infra/kube-api.ts";
import { type RunningShim, startShim, writeFile } from "../shim/harness.ts";
import type { RunningWebhook } from "../webhook/harness.ts";

/** `etcdctl <args>` against the test etcd (API v3); stdout as raw bytes. */
export function etcdctl(args: string[]): Promise<{ stdout: Buffer }> {
  const kube = service("kube");
  return promisify(execFile)(kube.etcdctl, [`--endpoints=${kube.etcdEndpoint}`, ...args], {
    env: { ...process.env, ETCDCTL_API: "3" },
    encoding: "buffer",
    maxBuffer: 512 * 1024 * 1024,
  });
}

const MWC_PATH = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

/**
 * Registers `webhook` for pod creations in `namespaces` (failurePolicy Fail), and waits until the
 * apiserver calls it: a dry-run of `probe` comes back with kustodia's status annotation.
 */
export async function registerWebhook(name: string, webhook: RunningWebhook, namespaces: string[], probe: KubeObject): Promise<void> {
  const kube = service("kube");
  const configuration = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name },
    webhooks: [
      {
        name: "inject.kustodia.io",
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Fail",
        timeoutSeconds: 10,
        reinvocationPolicy: "Never",
        clientConfig: { url: `${webhook.url}/mutate`, caBundle: readFileSync(webhook.caFile).toString("base64") },
        rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
        // The apiserver is shared with other tests: this test's namespaces only.
        namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: namespaces }] },
      },
    ],
  };
  const created = await kubeRequest(kube, "POST", MWC_PATH, configuration);
  if (created.status !== 201) throw new Error(`creating ${name}: HTTP ${created.status} ${statusMessage(created.body)}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { status, body } = await createObject(service("kube"), probe, { dryRun: true });
    if (status === 201 && (body as KubeObject).metadata.annotations?.[Annotations.status]) return;
    if (Date.now() > deadline) throw new Error(`the webhook did not take effect within 30 s: HTTP ${status} ${statusMessage(body)}`);
    await sleep(250);
  }
}

export async function unregisterWebhook(name: string): Promise<void> {
  await kubeRequest(service("kube"), "DELETE", `${MWC_PATH}/${name}`);
}

export async function storedPod(namespace: string, name: string): Promise<KubeObject> {
  const { status, body } = await kubeRequest<KubeObject>(service("kube"), "GET", `/api/v1/namespaces/${namespace}/pods/${name}`);
  if (status !== 200) throw new Error(`GET pod ${namespace}/${name}: HTTP ${status} ${statusMessage(body)}`);
  return body;
}

export interface StoredContainer {
  name: string;
  command: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
}

export function containerOf(pod: KubeObject, name: string): StoredContainer {
  const found = (pod.spec.containers as StoredContainer[]).find((container) => container.name === name);
  if (!found) throw new Error(`pod ${pod.metadata.name} has no container ${name}`);
  return found;
}

/** The env a kubelet would give the container (literal values only), over `base` (PATH, TMPDIR, ...: the image's ENV). */
export function kubeletEnv(container: StoredContainer, base: Record<string, string>): Record<string, string> {
  const env = { ...base };
  for (const item of container.env ?? []) if (item.value !== undefined) env[item.name] = item.value;
  return env;
}

/**
 * Starts a stored pod's injected container as a kubelet would, with two stand-ins (no kubelet or
 * images run here): `/kustodia/kustodia-shim` is `<the pinned node> shim/main.ts` (and a rotation-mode
 * `/kustodia/tini --` in front is dropped), and the pod's
 * ServiceAccount token is a file named by KUSTODIA_SA_TOKEN_FILE instead of the kubelet's mount.
 */
export async function startInjected(
  pod: KubeObject,
  containerName: string,
  options: { dir: string; base: Record<string, string>; cwd: string },
): Promise<RunningShim> {
  const container = containerOf(pod, containerName);
  // Rotation mode puts /kustodia/tini (PID 1, zombie reaping) in front; here the shim runs directly.
  const command =
    container.command[0] === "/kustodia/tini" && container.command[1] === "--" ? container.command.slice(2) : container.command;
  if (command[0] !== SHIM_PATH || command[1] !== "--")
    throw new Error(`container ${containerName} does not run ${SHIM_PATH} --: ${JSON.stringify(container.command)}`);
  const token = await serviceAccountToken(service("kube"), pod.metadata.namespace as string, pod.spec.serviceAccountName);
  const tokenFile = writeFile(options.dir, `${pod.metadata.name}-${containerName}-token`, token);
  const env = kubeletEnv(container, { ...options.base, KUSTODIA_SA_TOKEN_FILE: tokenFile });
  return startShim(env, [...command.slice(2), ...(container.args ?? [])], options.cwd);
}

/** Every file below `root` (no symlinks followed), with its path. */
export function* filesBelow(root: string, depth = 8): Generator<string> {
  const { readdirSync } = process.getBuiltinModule("node:fs");
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(root, entry.name);
    if (entry.isDirectory() && depth > 0) yield* filesBelow(path, depth - 1);
    else if (entry.isFile()) yield path;
  }
}
