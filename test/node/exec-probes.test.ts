// Exec probes that need a secret, on the real node (issue #18): a pod whose exec readiness probe
// succeeds only when it sees the secret. Without kustodia.io/wrap-exec the kubelet runs the probe
// with the container's spec env (the reference, not the value): kubectl prints kustodia's admission
// warning and the pod never becomes Ready. With it the probe runs through the shim and the pod is
// Ready. The chart is installed as a release of its own (h18-kustodia) whose webhook and policy only
// serve namespaces with the label below, so it never touches the pods of another release on the node.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Annotations, SHIM_PATH } from "../../common/contract.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { kubectl } from "../infra/kubectl.ts";
import { buildImage, busyboxImage, pushImage } from "../infra/oci-image.ts";
import type { NodeCoordinates } from "../infra/types.ts";
import { bao, configureKubernetesAuth, type KubernetesAuth, removeKubernetesAuth } from "./openbao-auth.ts";
import { type Cluster, helmRelease, nodeValues, pushProjectImages, removeRelease } from "./release.ts";

const execFileAsync = promisify(execFile);
const release = "h18-kustodia";
const releaseNamespace = "h18-kustodia";
const appNamespace = "h18-exec-probes";
/** Only namespaces with this label are served by this release (webhook and policy). */
const releaseLabel = "h18-exec-probes";
/** OpenBao's kubernetes auth of this file, on a mount of its own (test/node/openbao-auth.ts). */
const auth: KubernetesAuth = {
  path: "h18-kubernetes",
  role: "h18-probe",
  serviceAccount: "probe",
  namespaces: [appNamespace],
  readPrefix: appNamespace,
  reviewerNamespace: releaseNamespace,
};
const secretPath = `${appNamespace}/probe`;
const value = `probe-${randomBytes(8).toString("hex")}`;
const digest = createHash("sha256").update(value).digest("hex");

const cluster = (): Cluster => ({ node: service("node"), helm: service("helm").binary });

/** `kubectl create -f -` of `object`, with kubectl's stderr, where it prints admission warnings. */
async function create(node: NodeCoordinates, object: unknown): Promise<{ stdout: string; stderr: string }> {
  const child = execFileAsync(node.kubectl, [`--kubeconfig=${node.kubeconfig}`, "create", "-f", "-"]);
  child.child.stdin?.end(JSON.stringify(object));
  return child;
}

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Whether a namespaceSelector selects a namespace with `labels` (the four operators of label selectors). */
function selects(selector: Selector | undefined, labels: Record<string, string>): boolean {
  const expressionHolds = ({ key, operator, values = [] }: { key: string; operator: string; values?: string[] }) => {
    const value = labels[key];
    if (operator === "In") return value !== undefined && values.includes(value);
    if (operator === "NotIn") return value === undefined || !values.includes(value);
    if (operator === "Exists") return value !== undefined;
    return value === undefined;
  };
  return (
    Object.entries(selector?.matchLabels ?? {}).every(([key, value]) => labels[key] === value) &&
    (selector?.matchExpressions ?? []).every(expressionHolds)
  );
}

/**
 * Other releases of the chart on the node that serve our namespace (a release of the lead's, say):
 * their policy would refuse the pods our webhook injects (another shim image), or theirs inject them.
 */
async function otherReleasesServing(node: NodeCoordinates, labels: Record<string, string>): Promise<string[]> {
  const list = JSON.parse(await kubectl(node, ["get", "mutatingwebhookconfigurations", "-o", "json"])) as {
    items: { metadata: { name: string }; webhooks?: { name: string; namespaceSelector?: Selector }[] }[];
  };
  return list.items
    .filter(
      (item) =>
        item.metadata.name !== release &&
        item.webhooks?.some((webhook) => webhook.name === "inject.kustodia.io" && selects(webhook.namespaceSelector, labels)),
    )
    .map((item) => item.metadata.name);
}

const appLabels = { "kubernetes.io/metadata.name": appNamespace, "kustodia.io/injection": "enabled", [releaseLabel]: "true" };

/**
 * Waits while another release serves our namespace. The chart's namespaceSelector always needs
 * kustodia.io/injection=enabled, so a release without an extra selector (test/node/pods.test.ts's)
 * serves every such namespace. vitest runs the node project's files one at a time, but another
 * checkout's run may install one at any moment: the check is repeated before each pod.
 */
async function waitForSoleRelease(node: NodeCoordinates): Promise<void> {
  const deadline = Date.now() + 15 * 60_000;
  for (let others = await otherReleasesServing(node, appLabels); others.length > 0; others = await otherReleasesServing(node, appLabels)) {
    if (Date.now() > deadline) throw new Error(`another release of the chart serves ${appNamespace} and stays: ${others.join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 10_000));
  }
}

/** The probe: Ready only when PASSWORD holds the secret (the pod spec holds its hash, never the value). */
function probePod(name: string, annotations: Record<string, string>) {
  const node = service("node");
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: appNamespace,
      annotations: {
        [Annotations.inject]: "true",
        [Annotations.vaultRole]: auth.role,
        [Annotations.vaultAuthPath]: auth.path,
        ...annotations,
      },
    },
    spec: {
      serviceAccountName: "probe",
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "app",
          image: `${node.registry.host}/h18/probe-app:1`,
          command: ["sh", "-c", "exec sleep 3600"],
          env: [{ name: "SECRET_PASSWORD", value: `${secretPath}#password` }],
          readinessProbe: {
            exec: { command: ["sh", "-c", `test "$(printf %s "$PASSWORD" | sha256sum | cut -c1-64)" = ${digest}`] },
            periodSeconds: 2,
            // The machine running the tests is shared and loaded: room for the shim's start under load.
            timeoutSeconds: 3,
          },
        },
      ],
    },
  };
}

interface PodStatus {
  phase?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: { ready: boolean; started?: boolean; state?: Record<string, unknown> }[];
}

async function podStatus(node: NodeCoordinates, name: string): Promise<PodStatus> {
  return JSON.parse(await kubectl(node, ["get", "pod", name, "-n", appNamespace, "-o", "json"])).status as PodStatus;
}

/** Polls until `done` holds for the pod's status; throws with the status after `timeoutMs`. */
async function waitFor(node: NodeCoordinates, name: string, done: (status: PodStatus) => boolean, timeoutMs: number): Promise<PodStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await podStatus(node, name);
    if (done(status)) return status;
    if (Date.now() > deadline) throw new Error(`pod ${name}: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

const ready = (status: PodStatus) =>
  status.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") ?? false;
const running = (status: PodStatus) => status.phase === "Running" && status.containerStatuses?.[0]?.state?.running !== undefined;

describe.skipIf(skipWithout("node", "helm"))("exec probes that need a secret, on the real node", () => {
  const work = mkdtempSync(join(tmpdir(), "kustodia-node-exec-probes-"));

  beforeAll(async () => {
    const node = service("node");
    await waitForSoleRelease(node);
    const images = await pushProjectImages(node);
    await helmRelease(
      cluster(),
      "install",
      release,
      releaseNamespace,
      nodeValues(node, images, {
        replicaCount: 1,
        podDisruptionBudget: { enabled: false },
        webhook: { extraNamespaceSelectorExpressions: [{ key: releaseLabel, operator: "Exists" }] },
      }),
    );
    await buildImage("umoci", join(work, "layout"), "probe-app", busyboxImage(["sh", "sleep", "sha256sum", "cut"]));
    await pushImage("skopeo", join(work, "layout"), "probe-app", `${node.registry.pushHost}/h18/probe-app:1`);

    await kubectl(node, ["create", "namespace", appNamespace]);
    await kubectl(node, [
      "label",
      "namespace",
      appNamespace,
      ...Object.entries(appLabels)
        .slice(1)
        .map(([key, value]) => `${key}=${value}`),
    ]);
    await kubectl(node, ["create", "serviceaccount", "probe", "-n", appNamespace]);
    await configureKubernetesAuth(node, auth);
    await bao(node, "POST", `secret/data/${secretPath}`, { data: { password: value } });
  }, 1_500_000);

  afterAll(async () => {
    const node = service("node");
    await bao(node, "DELETE", `secret/metadata/${secretPath}`).catch(() => undefined);
    await removeKubernetesAuth(node, auth);
    await bao(node, "DELETE", `sys/policies/acl/${auth.path}`).catch(() => undefined);
    await removeRelease(cluster(), release, releaseNamespace, [appNamespace]).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it("without kustodia.io/wrap-exec: kubectl prints the admission warning, and the pod runs but never becomes Ready", async () => {
    const node = service("node");
    await waitForSoleRelease(node);
    const created = await create(node, probePod("unwrapped", {}));
    expect(created.stderr).toContain(
      'Warning: container "app" readinessProbe reads PASSWORD, which only the app\'s process gets from kustodia: the handler sees no value and fails; run it through the shim with the annotation kustodia.io/wrap-exec: "readinessProbe" (or "true")',
    );
    await waitFor(node, "unwrapped", running, 120_000);
    // Several probe periods (2 s) after the app runs: the kubelet has probed, and every probe failed.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    expect(ready(await podStatus(node, "unwrapped"))).toBe(false);
    const events = JSON.parse(
      await kubectl(node, [
        "get",
        "events",
        "-n",
        appNamespace,
        "--field-selector",
        "involvedObject.name=unwrapped,reason=Unhealthy",
        "-o",
        "json",
      ]),
    ) as { items: { message: string }[] };
    expect(events.items.map((event) => event.message)).toContainEqual(expect.stringMatching(/^Readiness probe failed/));
  });

  it("with kustodia.io/wrap-exec: the probe runs through the shim, sees the secret, and the pod becomes Ready", async () => {
    const node = service("node");
    await waitForSoleRelease(node);
    const created = await create(node, probePod("wrapped", { [Annotations.wrapExec]: "readinessProbe" }));
    expect(created.stderr).toBe("");
    await waitFor(node, "wrapped", ready, 150_000);
    const stored = await kubectl(node, ["get", "pod", "wrapped", "-n", appNamespace, "-o", "json"]);
    const command = JSON.parse(stored).spec.containers[0].readinessProbe.exec.command as string[];
    expect(command.slice(0, 4)).toEqual([SHIM_PATH, "KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=1500ms", "--"]);
    expect(stored).not.toContain(value);
  });
});
