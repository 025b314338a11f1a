// Pod start on the real node (test/infra/node.ts): create → the app's first instruction, for the same
// one-secret app pod with no injector, with kustodia (`copy` and `image-volume`, each its own chart
// release selecting its own namespace) and with Bank-Vaults' vault-secrets-webhook + vault-env (their
// binaries from bench/install-peers.sh in images built without Docker, registered the same way:
// a Deployment behind a Service, a MutatingWebhookConfiguration with failurePolicy Fail). One pod at
// a time, the contenders in a new random order each round; the app prints its wall-clock start
// (test/fixtures/node-app/report.c --time), which is compared to the moment before the POST. Also
// the bytes each delivery writes to the node's disk per pod (the emptyDir the injector fills).
//
//   npx node bench/pod-start.ts [--rounds 40] [--no-peers] [--summary file.json]
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { kubeRequest } from "../test/infra/kube-api.ts";
import { kubectl } from "../test/infra/kubectl.ts";
import { NODE_ROOT } from "../test/infra/node-host.ts";
import { buildImage, busyboxImage, pushImage } from "../test/infra/oci-image.ts";
import { makeCertificateAuthority, makeLeafCertificate } from "../test/infra/tls.ts";
import type { NodeCoordinates } from "../test/infra/types.ts";
import { pushAppImages } from "../test/node/apps.ts";
import { bao, configureKubernetesAuth, type KubernetesAuth, removeKubernetesAuth } from "../test/node/openbao-auth.ts";
import { type Cluster, helmRelease, nodeValues, pushProjectImages, removeRelease } from "../test/node/release.ts";
import { acquireInfra } from "./lib/infra.ts";
import { PEER_VERSIONS, peerBinary } from "./lib/peers.ts";
import { loadAverage, machine } from "./lib/proc.ts";
import { fixed, quantile, ratio, shuffled, table } from "./lib/stats.ts";

const { values: options } = parseArgs({
  options: {
    rounds: { type: "string", default: "40" },
    quick: { type: "boolean", default: false },
    "no-peers": { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    summary: { type: "string" },
  },
});
const rounds = options.quick ? 2 : Number(options.rounds);

type Contender = "bare" | "kustodia copy" | "kustodia image-volume" | "Bank-Vaults";
const SECRET_PATH = `bench-pods/${randomBytes(4).toString("hex")}`;
const VALUE = `bench-${randomBytes(8).toString("hex")}`;
const ROLE = "app";
const AUTH_PATH = "bench-k8s";

interface Setup {
  namespace: string;
  annotations: Record<string, string>;
  env: Record<string, string>;
  /** The emptyDir the injector fills, whose size is what the delivery writes per pod. */
  deliveryVolume?: string;
}

const SETUPS: Record<Contender, Setup> = {
  bare: { namespace: "bench-bare", annotations: {}, env: { PASSWORD: VALUE } },
  "kustodia copy": {
    namespace: "bench-copy",
    annotations: { "kustodia.io/inject": "true", "kustodia.io/vault-role": ROLE, "kustodia.io/vault-auth-path": AUTH_PATH },
    env: { SECRET_PASSWORD: `${SECRET_PATH}#password` },
    deliveryVolume: "kustodia",
  },
  "kustodia image-volume": {
    namespace: "bench-iv",
    annotations: { "kustodia.io/inject": "true", "kustodia.io/vault-role": ROLE, "kustodia.io/vault-auth-path": AUTH_PATH },
    env: { SECRET_PASSWORD: `${SECRET_PATH}#password` },
  },
  "Bank-Vaults": {
    namespace: "bench-bv",
    annotations: { "vault.security.banzaicloud.io/vault-role": ROLE, "vault.security.banzaicloud.io/vault-path": AUTH_PATH },
    env: { PASSWORD: `vault:secret/data/${SECRET_PATH}#password` },
    deliveryVolume: "vault-env",
  },
};

const BENCH_LABEL = "kustodia-bench";
/** Release names; each is installed into the namespace of the same name. */
const KUSTODIA_RELEASES = { "kustodia copy": "bench-copy-system", "kustodia image-volume": "bench-iv-system" } as const;
const BV_NAMESPACE = "bench-bv-system";

function appPod(contender: Contender, name: string, image: string, command = ["/report", "--time", "PASSWORD"]): Record<string, unknown> {
  const setup = SETUPS[contender];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: setup.namespace, annotations: setup.annotations },
    spec: {
      serviceAccountName: ROLE,
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: "app",
          image,
          command,
          env: Object.entries(setup.env).map(([envName, value]) => ({ name: envName, value })),
        },
      ],
    },
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Creates the pod, waits for it to finish, returns create → app start in ms. */
async function startOnce(node: NodeCoordinates, contender: Contender, name: string, image: string): Promise<number> {
  const { namespace } = SETUPS[contender];
  const began = Date.now();
  const created = await kubeRequest(node, "POST", `/api/v1/namespaces/${namespace}/pods`, appPod(contender, name, image));
  if (created.status !== 201) throw new Error(`${contender}: creating the pod: ${created.status} ${JSON.stringify(created.body)}`);
  // biome-ignore lint/suspicious/noExplicitAny: the pod's status is read field by field
  const pod = await until<any>(`${namespace}/${name} to finish`, async () => {
    const current = await kubeRequest<{ status?: { phase?: string } }>(node, "GET", `/api/v1/namespaces/${namespace}/pods/${name}`);
    const phase = current.body.status?.phase;
    return phase === "Succeeded" || phase === "Failed" ? current.body : undefined;
  });
  const log = await kubeRequest<string>(node, "GET", `/api/v1/namespaces/${namespace}/pods/${name}/log?container=app`);
  const startedAt = String(log.body).match(/started_at_ms=(\d+)/)?.[1];
  if (pod.status.phase !== "Succeeded" || !startedAt || !String(log.body).includes("leaked=0"))
    throw new Error(`${contender}: the app did not run as expected (${pod.status.phase}):\n${log.body}`);
  await deletePod(node, namespace, name);
  return Number(startedAt) - began;
}

async function deletePod(node: NodeCoordinates, namespace: string, name: string): Promise<void> {
  await kubeRequest(node, "DELETE", `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`);
  await until(`${namespace}/${name} to go`, async () =>
    (await kubeRequest(node, "GET", `/api/v1/namespaces/${namespace}/pods/${name}`)).status === 404 ? true : undefined,
  );
}

/**
 * What the delivery wrote to the node's disk for one pod: the size of the emptyDir the injector
 * filled, read while the app runs (the kubelet removes a finished pod's volumes).
 */
async function deliveryBytes(node: NodeCoordinates, contender: Contender, image: string): Promise<number> {
  const volume = SETUPS[contender].deliveryVolume;
  if (!volume) return 0;
  const { namespace } = SETUPS[contender];
  const name = "footprint";
  await kubeRequest(
    node,
    "POST",
    `/api/v1/namespaces/${namespace}/pods`,
    appPod(contender, name, image, ["/report", "--every", "60", "PASSWORD"]),
  );
  // biome-ignore lint/suspicious/noExplicitAny: the pod is read field by field
  const pod = await until<any>(`${namespace}/${name} to run`, async () => {
    const current = await kubeRequest<{ status?: { phase?: string } }>(node, "GET", `/api/v1/namespaces/${namespace}/pods/${name}`);
    return current.body.status?.phase === "Running" ? current.body : undefined;
  });
  const dir = join(NODE_ROOT, "kubelet", "pods", pod.metadata.uid, "volumes", "kubernetes.io~empty-dir", volume);
  const bytes = Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
  await deletePod(node, namespace, name);
  return bytes;
}

/** Bank-Vaults' webhook in the cluster: images, RBAC, TLS, Deployment, Service, and its MutatingWebhookConfiguration. */
async function installBankVaults(node: NodeCoordinates, work: string): Promise<void> {
  const webhookBinary = peerBinary("vault-secrets-webhook");
  const vaultEnvBinary = peerBinary("vault-env");
  if (!webhookBinary || !vaultEnvBinary) throw new Error("Bank-Vaults' binaries are not built: run bench/install-peers.sh");
  const layout = join(work, "bank-vaults");
  const webhookImage = `bank-vaults/vault-secrets-webhook:${PEER_VERSIONS["vault-secrets-webhook"]}`;
  const vaultEnvImage = `bank-vaults/vault-env:${PEER_VERSIONS["vault-env"]}`;
  await buildImage("umoci", layout, "webhook", {
    files: { "/vault-secrets-webhook": webhookBinary },
    entrypoint: ["/vault-secrets-webhook"],
  });
  await pushImage("skopeo", layout, "webhook", `${node.registry.pushHost}/${webhookImage}`);
  const vaultEnv = busyboxImage(["sh", "cp"]);
  await buildImage("umoci", layout, "vault-env", { ...vaultEnv, files: { ...vaultEnv.files, "/usr/local/bin/vault-env": vaultEnvBinary } });
  await pushImage("skopeo", layout, "vault-env", `${node.registry.pushHost}/${vaultEnvImage}`);

  const service = "bv-webhook";
  const ca = await makeCertificateAuthority(work, "bank-vaults");
  const leaf = await makeLeafCertificate(ca, work, "bv-webhook", [`DNS:${service}.${BV_NAMESPACE}.svc`]);
  const labels = { app: service };
  const objects = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: BV_NAMESPACE } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: service, namespace: BV_NAMESPACE } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "bench-bv-webhook" },
      rules: [{ apiGroups: [""], resources: ["secrets", "configmaps", "serviceaccounts"], verbs: ["get", "list", "watch"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "bench-bv-webhook" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "bench-bv-webhook" },
      subjects: [{ kind: "ServiceAccount", name: service, namespace: BV_NAMESPACE }],
    },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `${service}-tls`, namespace: BV_NAMESPACE },
      type: "kubernetes.io/tls",
      data: { "tls.crt": readFileSync(leaf.certFile).toString("base64"), "tls.key": readFileSync(leaf.keyFile).toString("base64") },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: service, namespace: BV_NAMESPACE },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: service,
            containers: [
              {
                name: "webhook",
                image: `${node.registry.host}/${webhookImage}`,
                env: Object.entries({
                  LISTEN_ADDRESS: ":8443",
                  TLS_CERT_FILE: "/tls/tls.crt",
                  TLS_PRIVATE_KEY_FILE: "/tls/tls.key",
                  VAULT_ADDR: node.openbao.inClusterAddr,
                  VAULT_ENV_IMAGE: `${node.registry.host}/${vaultEnvImage}`,
                }).map(([name, value]) => ({ name, value })),
                ports: [{ containerPort: 8443 }],
                readinessProbe: { httpGet: { path: "/healthz", port: 8443, scheme: "HTTPS" } },
                volumeMounts: [{ name: "tls", mountPath: "/tls", readOnly: true }],
              },
            ],
            volumes: [{ name: "tls", secret: { secretName: `${service}-tls` } }],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: service, namespace: BV_NAMESPACE },
      spec: { selector: labels, ports: [{ port: 443, targetPort: 8443 }] },
    },
  ];
  await kubectl(node, ["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
  await kubectl(node, ["rollout", "status", "deployment", service, "-n", BV_NAMESPACE, "--timeout=180s"]);
  const webhookConfiguration = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: "bench-bv-webhook" },
    webhooks: [
      {
        name: "pods.vault-secrets-webhook.bench",
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Fail",
        clientConfig: {
          service: { name: service, namespace: BV_NAMESPACE, path: "/pods", port: 443 },
          caBundle: readFileSync(ca.certFile).toString("base64"),
        },
        rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }],
        namespaceSelector: { matchLabels: { [BENCH_LABEL]: "bank-vaults" } },
      },
    ],
  };
  await kubectl(node, ["apply", "-f", "-"], JSON.stringify(webhookConfiguration));
}

async function removeBankVaults(node: NodeCoordinates): Promise<void> {
  await kubectl(node, ["delete", "mutatingwebhookconfiguration", "bench-bv-webhook", "--ignore-not-found"]);
  await kubectl(node, ["delete", "clusterrolebinding,clusterrole", "bench-bv-webhook", "--ignore-not-found"]);
  await kubectl(node, ["delete", "namespace", BV_NAMESPACE, "--wait=false", "--ignore-not-found"]);
}

async function main(): Promise<void> {
  const infra = await acquireInfra(["node", "helm"]);
  const node = infra.coordinates.node;
  if (!node || !infra.coordinates.helm) throw new Error("the real node (and helm) are needed: npm run infra -- up");
  const contenders: Contender[] = [
    "bare",
    "kustodia copy",
    "kustodia image-volume",
    ...(options["no-peers"] ? [] : ["Bank-Vaults" as const]),
  ];
  const auth: KubernetesAuth = {
    path: AUTH_PATH,
    role: ROLE,
    serviceAccount: ROLE,
    namespaces: contenders.map((contender) => SETUPS[contender].namespace),
    readPrefix: "bench-pods",
    reviewerNamespace: SETUPS.bare.namespace,
  };
  const cluster: Cluster = { node, helm: infra.coordinates.helm.binary };
  const work = mkdtempSync(join(tmpdir(), "kustodia-bench-pods-"));
  try {
    const [images, apps] = await Promise.all([pushProjectImages(node), pushAppImages(node, join(work, "apps"))]);
    for (const [contender, release] of Object.entries(KUSTODIA_RELEASES)) {
      const delivery = contender === "kustodia copy" ? "copy" : "image-volume";
      await helmRelease(
        cluster,
        "install",
        release,
        release,
        nodeValues(node, images, {
          shim: { delivery },
          registry: { allowedNetworks: [`${node.nodeIp}/32`] },
          webhook: { extraNamespaceSelectorExpressions: [{ key: BENCH_LABEL, operator: "In", values: [delivery] }] },
        }),
      );
    }
    if (contenders.includes("Bank-Vaults")) await installBankVaults(node, work);
    for (const contender of contenders) {
      const { namespace } = SETUPS[contender];
      await kubectl(node, ["create", "namespace", namespace]);
      await kubectl(node, ["create", "serviceaccount", ROLE, "-n", namespace]);
      const label = { "kustodia copy": "copy", "kustodia image-volume": "image-volume", "Bank-Vaults": "bank-vaults", bare: "bare" }[
        contender
      ];
      const optIn = contender.startsWith("kustodia") ? ["kustodia.io/injection=enabled"] : [];
      await kubectl(node, ["label", "namespace", namespace, `${BENCH_LABEL}=${label}`, ...optIn]);
    }
    await configureKubernetesAuth(node, auth);
    await bao(node, "POST", `secret/data/${SECRET_PATH}`, { data: { password: VALUE } });

    // One unmeasured start each: images pulled, the shim image unpacked, caches warm.
    for (const contender of contenders) await startOnce(node, contender, "warm-up", apps.images.scratch);
    const starts = new Map<Contender, number[]>(contenders.map((contender) => [contender, []]));
    const loads: number[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const contender of shuffled(contenders)) {
        starts.get(contender)?.push(await startOnce(node, contender, `start-${round}`, apps.images.scratch));
      }
      loads.push(loadAverage());
      console.error(`[pod-start] round ${round + 1}/${rounds}`);
    }
    const bytes = new Map<Contender, number>();
    for (const contender of contenders) bytes.set(contender, await deliveryBytes(node, contender, apps.images.scratch));
    writeReport(contenders, starts, bytes, loads, node, images.images.shim.digest);
  } finally {
    await removeRelease(cluster, KUSTODIA_RELEASES["kustodia copy"], KUSTODIA_RELEASES["kustodia copy"]).catch(() => undefined);
    await removeRelease(cluster, KUSTODIA_RELEASES["kustodia image-volume"], KUSTODIA_RELEASES["kustodia image-volume"]).catch(
      () => undefined,
    );
    await removeBankVaults(node).catch(() => undefined);
    await kubectl(node, ["delete", "namespace", ...contenders.map((c) => SETUPS[c].namespace), "--wait=false", "--ignore-not-found"]).catch(
      () => undefined,
    );
    await removeKubernetesAuth(node, auth);
    rmSync(work, { recursive: true, force: true });
    await infra.release();
  }
}

function writeReport(
  contenders: Contender[],
  starts: Map<Contender, number[]>,
  bytes: Map<Contender, number>,
  loads: number[],
  node: NodeCoordinates,
  shimDigest: string,
) {
  const ms = (contender: Contender) => starts.get(contender) ?? [];
  const bare50 = quantile(ms("bare"), 0.5);
  const added = (contender: Contender) => quantile(ms(contender), 0.5) - bare50;
  const rows = contenders.map((contender) => {
    return [
      contender,
      fixed(quantile(ms(contender), 0.5), 0),
      fixed(quantile(ms(contender), 0.95), 0),
      contender === "bare" ? "–" : fixed(added(contender), 0),
      fixed((bytes.get(contender) ?? 0) / 1024 / 1024, 1),
    ];
  });
  const host = machine();
  const lines = [
    `### Pod start on the real node: create → app running (${rounds} interleaved rounds, one pod at a time)`,
    "",
    table(["pod", "p50 ms", "p95 ms", "added over bare, p50 ms", "written to the node per pod, MiB"], rows),
    "",
  ];
  const mib = (contender: Contender) => (contenders.includes(contender) ? (bytes.get(contender) ?? 0) / 1024 / 1024 : Number.NaN);
  const summary: Record<string, number> = {
    bareP50: bare50,
    copyMiB: mib("kustodia copy"),
    imageVolumeMiB: mib("kustodia image-volume"),
    peerMiB: mib("Bank-Vaults"),
  };
  if (contenders.includes("Bank-Vaults")) {
    const bv = added("Bank-Vaults");
    lines.push(
      `Added latency, kustodia / Bank-Vaults: copy ${ratio(added("kustodia copy"), bv)}, image-volume ${ratio(added("kustodia image-volume"), bv)}` +
        " (targets ≤ 1.0× and ≤ 0.5×).",
      "",
    );
    summary.copyOverBankVaults = added("kustodia copy") / bv;
    summary.imageVolumeOverBankVaults = added("kustodia image-volume") / bv;
  }
  lines.push(
    `Kubernetes ${node.versions.kubernetes}, containerd ${node.versions.containerd}, runc ${node.versions.runc}; shim image ${shimDigest.slice(0, 19)}…; ` +
      `${host.cores}× ${host.cpuModel}; load average ${fixed(Math.min(...loads), 1)}–${fixed(Math.max(...loads), 1)}; ${new Date().toISOString().slice(0, 10)}.`,
  );
  console.log(lines.join("\n"));
  if (options.summary) writeFileSync(options.summary, JSON.stringify(summary));
}

await main();
