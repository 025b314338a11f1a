// `node bench/scale.ts`: admissions with the real kube-apiserver in the path. Each webhook (kustodia's
// bundle, Bank-Vaults' vault-secrets-webhook) is registered with the test kube-apiserver for a
// namespace of its own, and pods (the bench's 3-container pod with `command` set) are created through
// the API in interleaved blocks, `--concurrency` creates at a time. Reported: pods created per second
// and the create's latency as the client sees it, and the apiserver's own
// `apiserver_admission_webhook_admission_duration_seconds` for each webhook (its mean from the
// histogram's sum and count; its buckets are too coarse for percentiles). Prints markdown.
//
// The test services have no scheduler or kubelet: pods stay unscheduled, and are deleted at the end
// with their namespaces and the webhook configurations.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { kubeRequest } from "../test/infra/kube-api.ts";
import type { KubeCoordinates } from "../test/infra/types.ts";
import { ensureBuilt, WEBHOOK_BUNDLE } from "./lib/build.ts";
import { acquireInfra } from "./lib/infra.ts";
import { COMMON_OPTIONS } from "./lib/options.ts";
import { PEER_VERSIONS, peerBinary } from "./lib/peers.ts";
import { commandContainers, realisticPod } from "./lib/pods.ts";
import { loadAverage } from "./lib/proc.ts";
import { fixed, quantile, ratio, shuffled, table } from "./lib/stats.ts";
import { bankVaultsWebhook, kustodiaWebhook, type RunningWebhook, throwawayTls } from "./lib/webhooks.ts";

const { values: options } = parseArgs({
  options: {
    pods: { type: "string", default: "1000" },
    blocks: { type: "string", default: "5" },
    concurrency: { type: "string", default: "16" },
    ...COMMON_OPTIONS,
  },
});
const PODS = options.quick ? 10 : Number(options.pods);
const BLOCKS = options.quick ? 2 : Number(options.blocks);
const CONCURRENCY = Number(options.concurrency);
const SCALE_LABEL = "bench.kustodia.io/scale";
const METRIC = "apiserver_admission_webhook_admission_duration_seconds";

interface Registered {
  webhook: RunningWebhook;
  namespace: string;
  /** The webhook's name in its MutatingWebhookConfiguration (the metric's `name` label). */
  hookName: string;
  configName: string;
}

async function api<T = Record<string, unknown>>(kube: KubeCoordinates, method: string, path: string, body?: unknown): Promise<T> {
  const answer = await kubeRequest<T>(kube, method, path, body);
  if (answer.status >= 300) throw new Error(`${method} ${path}: HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 500)}`);
  return answer.body;
}

async function register(kube: KubeCoordinates, webhook: RunningWebhook, caFile: string, suffix: string): Promise<Registered> {
  const namespace = `bench-scale-${webhook.name}-${suffix}`;
  const configName = `bench-scale-${webhook.name}-${suffix}`;
  const hookName = `${webhook.name}.scale.bench.kustodia.io`;
  await api(kube, "POST", "/api/v1/namespaces", { metadata: { name: namespace, labels: { [SCALE_LABEL]: configName } } });
  await api(kube, "POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: "checkout" } });
  await api(kube, "POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
    metadata: { name: configName },
    webhooks: [
      {
        name: hookName,
        clientConfig: { url: webhook.url, caBundle: readFileSync(caFile).toString("base64") },
        rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
        namespaceSelector: { matchLabels: { [SCALE_LABEL]: configName } },
        sideEffects: "None",
        admissionReviewVersions: ["v1"],
        failurePolicy: "Fail",
        timeoutSeconds: 10,
      },
    ],
  });
  return { webhook, namespace, hookName, configName };
}

function podFor(registered: Registered): Record<string, unknown> {
  const pod = realisticPod(registered.webhook.style, commandContainers());
  const { ownerReferences: _, ...metadata } = pod.metadata as Record<string, unknown>;
  return { ...pod, metadata: { ...metadata, namespace: registered.namespace } };
}

/** Waits until the apiserver calls the webhook (a dry-run create comes back with the shim in front). */
async function untilMutating(kube: KubeCoordinates, registered: Registered): Promise<void> {
  const shim = registered.webhook.style === "kustodia" ? "/kustodia/kustodia-shim" : "/vault/vault-env";
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const answer = await kubeRequest<{ spec?: { containers?: { command?: string[] }[] } }>(
      kube,
      "POST",
      `/api/v1/namespaces/${registered.namespace}/pods?dryRun=All`,
      podFor(registered),
    );
    if (answer.status === 201 && answer.body.spec?.containers?.[0]?.command?.[0] === shim) return;
    await new Promise((wait) => setTimeout(wait, 200));
  }
  throw new Error(`${registered.webhook.name}: the apiserver does not call it within 30 s`);
}

/** Creates `count` pods, `CONCURRENCY` at a time; resolves with each create's latency (ms). */
async function createPods(kube: KubeCoordinates, registered: Registered, count: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const started = performance.now();
      await api(kube, "POST", `/api/v1/namespaces/${registered.namespace}/pods`, podFor(registered));
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
  return latencies;
}

/** `METRIC`'s count and mean (s) for `hookName`, from the apiserver's /metrics. */
function admissionDuration(metrics: string, hookName: string): { count: number; meanS: number } {
  const sample = (suffix: string) =>
    metrics
      .split("\n")
      .filter((line) => line.startsWith(`${METRIC}_${suffix}{`) && line.includes(`name="${hookName}"`))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
  const count = sample("count");
  return { count, meanS: count > 0 ? sample("sum") / count : Number.NaN };
}

/**
 * Deletes what the run put into `namespace`, then the namespace. The test services run no namespace
 * controller, so the namespace is finalized here once it is empty.
 */
async function removeNamespace(kube: KubeCoordinates, namespace: string): Promise<void> {
  await kubeRequest(kube, "DELETE", `/api/v1/namespaces/${namespace}/pods`);
  await kubeRequest(kube, "DELETE", `/api/v1/namespaces/${namespace}/serviceaccounts/checkout`);
  await kubeRequest(kube, "DELETE", `/api/v1/namespaces/${namespace}`);
  const found = await kubeRequest<{ spec?: { finalizers?: string[] } }>(kube, "GET", `/api/v1/namespaces/${namespace}`);
  if (found.status === 200)
    await kubeRequest(kube, "PUT", `/api/v1/namespaces/${namespace}/finalize`, { ...found.body, spec: { finalizers: [] } });
}

async function main(): Promise<void> {
  if (!options["no-build"]) ensureBuilt();
  const peer = options["no-peers"] ? undefined : peerBinary("vault-secrets-webhook");
  const infra = await acquireInfra(["kube"]);
  const kube = infra.coordinates.kube;
  if (!kube) {
    console.log("(Scale not measured: the test kube-apiserver is unavailable.)");
    await infra.release();
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "kustodia-bench-scale-"));
  const suffix = randomBytes(3).toString("hex");
  const registered: Registered[] = [];
  const running: RunningWebhook[] = [];
  const latencies = new Map<string, number[]>();
  const seconds = new Map<string, number>();
  try {
    const tls = await throwawayTls(dir);
    for (const contender of [kustodiaWebhook(WEBHOOK_BUNDLE), ...(peer ? [bankVaultsWebhook(peer)] : [])]) {
      const webhook = await contender.start({ dir, tls, infra: infra.coordinates });
      running.push(webhook);
      registered.push(await register(kube, webhook, tls.caFile, suffix));
    }
    for (const each of registered) await untilMutating(kube, each);
    const before = await api<string>(kube, "GET", "/metrics");
    const perBlock = Math.ceil(PODS / BLOCKS);
    for (let block = 0; block < BLOCKS; block++) {
      console.error(`[bench] scale: block ${block + 1} of ${BLOCKS}, ${perBlock} pods each (load average ${loadAverage()})`);
      for (const each of shuffled(registered)) {
        const started = performance.now();
        const times = await createPods(kube, each, perBlock);
        seconds.set(each.webhook.name, (seconds.get(each.webhook.name) ?? 0) + (performance.now() - started) / 1000);
        latencies.set(each.webhook.name, [...(latencies.get(each.webhook.name) ?? []), ...times]);
      }
    }
    const after = await api<string>(kube, "GET", "/metrics");

    const rows = registered.map((each) => {
      const name = each.webhook.name;
      const times = latencies.get(name) ?? [];
      const total = seconds.get(name) ?? Number.NaN;
      const was = admissionDuration(before, each.hookName);
      const now = admissionDuration(after, each.hookName);
      const calls = now.count - was.count;
      const meanMs = ((now.meanS * now.count - was.meanS * was.count) / calls) * 1000;
      return {
        name,
        cells: [
          name,
          String(times.length),
          fixed(times.length / total, 0),
          fixed(quantile(times, 0.5)),
          fixed(quantile(times, 0.99)),
          String(calls),
          fixed(meanMs, 2),
        ],
      };
    });
    console.log(
      `### Scale: pods created through the kube-apiserver (${PODS} per webhook, ${BLOCKS} interleaved blocks, ${CONCURRENCY} creates at a time)\n`,
    );
    console.log(
      `Each webhook is registered (MutatingWebhookConfiguration, failurePolicy Fail) for a namespace of its own on the test kube-apiserver ${kube.version}; the 3-container pod with \`command\` set. "webhook mean" is the apiserver's ${METRIC} (sum ÷ count over the run).\n`,
    );
    const header = ["webhook", "pods", "pods/s", "create p50 ms", "create p99 ms", "webhook calls", "webhook mean ms"];
    console.log(
      table(
        header,
        rows.map((row) => row.cells),
      ),
    );
    const ours = rows.find((row) => row.name === "kustodia");
    const theirs = rows.find((row) => row.name !== "kustodia");
    if (options.summary) {
      const cell = (row: typeof ours, index: number) => (row ? Number(row.cells[index]) : Number.NaN);
      writeFileSync(
        options.summary,
        JSON.stringify({
          podsPerSecond: cell(ours, 2),
          peerPodsPerSecond: cell(theirs, 2),
          webhookMeanMs: cell(ours, 6),
          peerWebhookMeanMs: cell(theirs, 6),
        }),
      );
    }
    if (ours && theirs) {
      console.log(
        `\nkustodia/${theirs.name}: pods/s ${ratio(Number(ours.cells[2]), Number(theirs.cells[2]))}, create p99 ${ratio(Number(ours.cells[4]), Number(theirs.cells[4]))}, webhook mean ${ratio(Number(ours.cells[6]), Number(theirs.cells[6]))}.`,
      );
    }
    console.log(
      `\nkustodia: \`node ${WEBHOOK_BUNDLE.replace(`${process.cwd()}/`, "")}\`; ${peer ? `Bank-Vaults vault-secrets-webhook ${PEER_VERSIONS["vault-secrets-webhook"]}` : "Bank-Vaults not measured"}. Services: ${infra.origin}.`,
    );
  } finally {
    for (const each of registered) {
      await kubeRequest(kube, "DELETE", `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${each.configName}`);
      await removeNamespace(kube, each.namespace);
    }
    for (const webhook of running) await webhook.stop();
    rmSync(dir, { recursive: true, force: true });
    await infra.release();
  }
}

await main();
