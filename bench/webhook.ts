// `node bench/webhook.ts`: kustodia's admission webhook (the bundle `npm run build` writes) next to
// Bank-Vaults' vault-secrets-webhook, on loopback over HTTPS, same pod, same load generator (wrk, a
// separate process): latency p50/p99 and throughput at concurrency 1, 16 and 64 for a 3-container
// pod with `command` set; the ENTRYPOINT-lookup path (no `command`) against the local registry, cold
// (every image new) and warm; CPU time per admission; RSS idle and under load. Prints markdown.
//
// Cells are measured in rounds; each round runs every contender once, in a shuffled order, so load
// from other users of the machine hits all of them alike. A cell reports the median over rounds.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from "../common/contract.ts";
import { kubeRequest } from "../test/infra/kube-api.ts";
import type { InfraCoordinates } from "../test/infra/types.ts";
import { PULL_SECRET_TTL_MS } from "../webhook/pull-secrets.ts";
import { ensureBuilt, WEBHOOK_BUNDLE } from "./lib/build.ts";
import { acquireInfra } from "./lib/infra.ts";
import { type ClientTls, runLoadgen } from "./lib/loadgen.ts";
import { COMMON_OPTIONS } from "./lib/options.ts";
import { PEER_VERSIONS, peerBinary } from "./lib/peers.ts";
import { admissionReview, type ContainerSpec, commandContainers, realisticPod } from "./lib/pods.ts";
import { cpuTimeMs, loadAverage, rssMiB, sampleRss } from "./lib/proc.ts";
import { pushFreshImages } from "./lib/registry-images.ts";
import { fixed, median, quantile, ratio, shuffled, table } from "./lib/stats.ts";
import {
  bankVaultsWebhook,
  httpsPost,
  imageNodeFlags,
  kustodiaWebhook,
  type RunningWebhook,
  throwawayTls,
  type WebhookContender,
} from "./lib/webhooks.ts";
import { ensureWrk, runWrk, type WrkResult } from "./lib/wrk.ts";

const { values: options } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "1,16,64" },
    "cold-pods": { type: "string", default: "200" },
    /**
     * `name=file[,KEY=VALUE...][,node-flags=<flags>]`: another build or setting of kustodia's webhook to measure beside
     * (before/after comparisons). KEY=VALUE goes to its env; node-flags (space-separated, may be empty) replaces the
     * Node flags of the image's ENTRYPOINT.
     */
    "extra-program": { type: "string", multiple: true, default: [] },
    ...COMMON_OPTIONS,
  },
});
const ROUNDS = options.quick ? 1 : Number(options.rounds);
const SECONDS = options.quick ? 1 : Number(options.seconds);
const CONCURRENCY = (options.quick ? "1,16" : options.concurrency).split(",").map(Number);
const COLD_PODS = options.quick ? 2 : Number(options["cold-pods"]);
const NAMESPACE = "shop";

interface Cell {
  p50Ms: number;
  p99Ms: number;
  rps: number;
  cpuMsPerAdmission: number;
  peakRssMiB: number;
}

/** The answer must be an allowed AdmissionReview whose patch puts each tool's shim in front of every command. */
function checkAnswer(webhook: RunningWebhook, text: string, expectWords: string[]): void {
  const response = (JSON.parse(text) as { response?: { allowed?: boolean; patch?: string } }).response;
  if (!response?.allowed || !response.patch) throw new Error(`${webhook.name}: no patch in ${text.slice(0, 300)}`);
  const patch = Buffer.from(response.patch, "base64").toString("utf8");
  const shim = webhook.style === "kustodia" ? "/kustodia/kustodia-shim" : "/vault/vault-env";
  for (const word of [shim, ...expectWords]) {
    if (!patch.includes(word)) throw new Error(`${webhook.name}: the patch lacks ${JSON.stringify(word)}: ${patch.slice(0, 500)}`);
  }
}

/** What drives a load cell: wrk, or the load generator that presents the kube-apiserver's client certificate. */
type Load = (url: string, bodyFile: string, connections: number, seconds: number) => Promise<WrkResult>;

async function loadCell(webhook: RunningWebhook, bodyFile: string, connections: number, load: Load): Promise<Cell> {
  const cpuBefore = cpuTimeMs(webhook.pid);
  const rss = sampleRss(webhook.pid);
  const result = await load(webhook.url, bodyFile, connections, SECONDS);
  const peakRssMiB = rss.stop();
  return {
    p50Ms: result.p50 / 1000,
    p99Ms: result.p99 / 1000,
    rps: result.requests / (result.durationUs / 1e6),
    cpuMsPerAdmission: (cpuTimeMs(webhook.pid) - cpuBefore) / result.requests,
    peakRssMiB,
  };
}

/** Rounds × contenders of one load cell; returns the cells per contender name. */
async function measure(
  webhooks: RunningWebhook[],
  bodyFiles: Map<string, string>,
  connections: number,
  load: Load = runWrk,
): Promise<Map<string, Cell[]>> {
  const cells = new Map<string, Cell[]>(webhooks.map((webhook) => [webhook.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const webhook of shuffled(webhooks)) {
      cells.get(webhook.name)?.push(await loadCell(webhook, bodyFiles.get(webhook.name) as string, connections, load));
    }
  }
  return cells;
}

function summary(cells: Cell[] | undefined, pick: (cell: Cell) => number): number {
  return median((cells ?? []).map(pick));
}

/** POSTs reviews one at a time on one kept-alive connection; `send` resolves with the latency (ms) and the answer. */
function sequentialSender(
  url: string,
  tls: ClientTls,
): { send: (body: string) => Promise<{ ms: number; text: string }>; close: () => void } {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 1,
    ca: readFileSync(tls.caFile),
    ...(tls.certFile && tls.keyFile ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } : {}),
  });
  const send = (body: string) =>
    new Promise<{ ms: number; text: string }>((resolveAnswer, reject) => {
      const started = performance.now();
      const req = request(
        url,
        { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolveAnswer({ ms: performance.now() - started, text: Buffer.concat(chunks).toString("utf8") }));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}

/** The realistic pod's three containers without `command`: their images' ENTRYPOINTs must be read. */
function lookupContainers(images: string[]): ContainerSpec[] {
  return commandContainers().map(({ command: _, args: __, ...container }, index) => ({ ...container, image: images[index] as string }));
}

/** The client side of TLS as the kube-apiserver calls webhooks: with its client certificate, when the services have one. */
function asApiserver(infra: InfraCoordinates, caFile: string): ClientTls {
  const client = infra.kube?.webhookClient;
  return { caFile, ...(client ? { certFile: client.certFile, keyFile: client.keyFile } : {}) };
}

/** kustodia took the lookups as coming from the kube-apiserver (its log says so), so it read pull secrets. */
function expectVerifiedCallers(webhooks: RunningWebhook[], tls: ClientTls): void {
  if (!tls.certFile) return;
  for (const webhook of webhooks) {
    if (webhook.style === "kustodia" && !readFileSync(webhook.logFile, "utf8").includes('"verifiedCaller":true'))
      throw new Error(`${webhook.name}: no lookup was taken as coming from the kube-apiserver, so no pull secret was read`);
  }
}

async function prepareKube(infra: InfraCoordinates): Promise<void> {
  const kube = infra.kube;
  if (!kube) return;
  // Opted in, so that kustodia lends its pull secrets. 409 when they exist from an earlier run: fine.
  const labels = { [NAMESPACE_LABEL]: NAMESPACE_LABEL_VALUE };
  const created = await kubeRequest(kube, "POST", "/api/v1/namespaces", { metadata: { name: NAMESPACE, labels } });
  if (created.status === 409) {
    const existing = await kubeRequest<{ metadata: { labels?: Record<string, string> } }>(kube, "GET", `/api/v1/namespaces/${NAMESPACE}`);
    existing.body.metadata.labels = { ...existing.body.metadata.labels, ...labels };
    await kubeRequest(kube, "PUT", `/api/v1/namespaces/${NAMESPACE}`, existing.body);
  }
  await kubeRequest(kube, "POST", `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { metadata: { name: "checkout" } });
}

async function main(): Promise<void> {
  if (!options["no-build"]) ensureBuilt();
  ensureWrk();
  const peer = options["no-peers"] ? undefined : peerBinary("vault-secrets-webhook");
  if (!peer && !options["no-peers"])
    console.error("[bench] vault-secrets-webhook is not built (bench/install-peers.sh): timing kustodia only");
  const infra = await acquireInfra(["kube", "openbao", "registry"]);
  const dir = mkdtempSync(join(tmpdir(), "kustodia-bench-webhook-"));
  const running: RunningWebhook[] = [];
  const out: string[] = [];
  const print = (line = "") => out.push(line);
  try {
    await prepareKube(infra.coordinates);
    const tls = await throwawayTls(dir);
    const contenders: WebhookContender[] = [
      kustodiaWebhook(WEBHOOK_BUNDLE),
      ...options["extra-program"].map((spec) => {
        const [program = "", ...settings] = spec.split(",");
        const [name = "", file = ""] = program.split("=");
        const pairs = settings.map((setting) => [setting.slice(0, setting.indexOf("=")), setting.slice(setting.indexOf("=") + 1)]);
        const flags = pairs.find(([key]) => key === "node-flags")?.[1];
        return kustodiaWebhook(file === "" ? WEBHOOK_BUNDLE : resolve(file), {
          name,
          env: Object.fromEntries(pairs.filter(([key]) => key !== "node-flags")),
          ...(flags === undefined ? {} : { nodeFlags: flags.split(" ").filter((flag) => flag !== "") }),
        });
      }),
      ...(peer ? [bankVaultsWebhook(peer)] : []),
    ];
    for (const contender of contenders) running.push(await contender.start({ dir, tls, infra: infra.coordinates }));
    const names = running.map((webhook) => webhook.name);
    const theirs = running.find((webhook) => webhook.style === "bank-vaults");
    // Idle: started, nothing served yet but the readiness probe.
    await new Promise((wait) => setTimeout(wait, 1000));
    const idleRss = new Map(running.map((webhook) => [webhook.name, rssMiB(webhook.pid)]));

    // ---- the pod with `command` set -------------------------------------------------------------
    const bodyFiles = new Map<string, string>();
    for (const webhook of running) {
      const body = admissionReview(realisticPod(webhook.style, commandContainers()), NAMESPACE);
      checkAnswer(webhook, (await httpsPost(webhook.url, tls.caFile, body)).text, ["/app/checkout", "/app/worker", "/bin/exporter"]);
      const file = join(dir, `${webhook.name}.review.json`);
      writeFileSync(file, body);
      bodyFiles.set(webhook.name, file);
    }
    console.error(
      `[bench] pod with command: ${Buffer.byteLength(admissionReview(realisticPod("kustodia", commandContainers()), NAMESPACE))} bytes`,
    );
    for (const webhook of running) await runWrk(webhook.url, bodyFiles.get(webhook.name) as string, 16, Math.min(2, SECONDS)); // warm-up
    const byConcurrency = new Map<number, Map<string, Cell[]>>();
    for (const connections of CONCURRENCY) {
      console.error(`[bench] command set, concurrency ${connections} (load average ${loadAverage()})`);
      byConcurrency.set(connections, await measure(running, bodyFiles, connections));
    }

    const columns = (suffix: string) =>
      names.flatMap((name) => [`${name} p50 ms`, `${name} p99 ms`, `${name} req/s`]).map((c) => c + suffix);
    const compare = theirs ? ["p99 ratio kustodia/bank-vaults", "throughput ratio kustodia/bank-vaults"] : [];
    print(`### Webhook: 3-container pod with \`command\` set (${ROUNDS} rounds × ${SECONDS} s per cell, interleaved)\n`);
    print(
      `wrk (\`-c <concurrency>\`, keep-alive HTTPS) POSTs the same AdmissionReview (${Buffer.byteLength(admissionReview(realisticPod("kustodia", commandContainers()), NAMESPACE))} bytes) for ${SECONDS} s; each cell is the median over the rounds of wrk's p50, p99 and requests/s.\n`,
    );
    const rows = CONCURRENCY.map((connections) => {
      const cells = byConcurrency.get(connections) as Map<string, Cell[]>;
      const row = [String(connections)];
      for (const name of names) {
        const mine = cells.get(name);
        row.push(...loadCells(mine));
      }
      if (theirs) {
        const kustodia = cells.get("kustodia");
        const peerCells = cells.get(theirs.name);
        row.push(
          ratio(
            summary(kustodia, (c) => c.p99Ms),
            summary(peerCells, (c) => c.p99Ms),
          ),
        );
        row.push(
          ratio(
            summary(kustodia, (c) => c.rps),
            summary(peerCells, (c) => c.rps),
          ),
        );
      }
      return row;
    });
    print(table(["concurrency", ...columns(""), ...compare], rows));
    // Figures for the targets table of `npm run bench` (bench/run.ts), written at the end.
    const numbers = loadFigures(byConcurrency.get(16), theirs?.name);

    // ---- CPU and memory ---------------------------------------------------------------------------
    print(`\n### Webhook: CPU time per admission and resident memory\n`);
    const all = (name: string) => [...byConcurrency.values()].flatMap((cells) => cells.get(name) ?? []);
    const resourceRows: string[][] = [
      ...CONCURRENCY.map((connections) => [
        `CPU ms per admission, concurrency ${connections} (user + system, all threads)`,
        ...names.map((name) =>
          fixed(
            summary(byConcurrency.get(connections)?.get(name), (c) => c.cpuMsPerAdmission),
            3,
          ),
        ),
      ]),
      ["RSS idle, MiB (started, 1 s, no admission yet)", ...names.map((name) => fixed(idleRss.get(name) ?? Number.NaN))],
      [
        `RSS under load, MiB (peak sampled every 100 ms over all load cells)`,
        ...names.map((name) => fixed(Math.max(...all(name).map((cell) => cell.peakRssMiB)))),
      ],
    ];
    if (theirs) {
      for (const row of resourceRows) {
        const index = names.indexOf("kustodia") + 1;
        const peerIndex = names.indexOf(theirs.name) + 1;
        row.push(ratio(Number(row[index]), Number(row[peerIndex])));
      }
    }
    print(table(["", ...names, ...(theirs ? ["ratio kustodia/bank-vaults"] : [])], resourceRows));
    Object.assign(numbers, memoryFigures(idleRss, all, theirs?.name));

    // ---- ENTRYPOINT lookups from the registry ----------------------------------------------------
    const registry = infra.coordinates.registry;
    const lookupWebhooks = running.filter((webhook) => webhook.style === "kustodia" || infra.coordinates.kube !== undefined);
    if (registry && lookupWebhooks.length > 0) {
      // The lookups come as from the kube-apiserver: with its client certificate (kustodia lends pull secrets only then).
      const apiserverTls = asApiserver(infra.coordinates, tls.caFile);
      const fresh = await pushFreshImages(registry.plain, COLD_PODS * 3 * lookupWebhooks.length);
      const coldBodies = new Map<string, string[]>();
      lookupWebhooks.forEach((webhook, index) => {
        const bodies: string[] = [];
        for (let pod = 0; pod < COLD_PODS; pod++) {
          const offset = (index * COLD_PODS + pod) * 3;
          const images = fresh.slice(offset, offset + 3).map((image) => image.reference);
          bodies.push(admissionReview(realisticPod(webhook.style, lookupContainers(images)), NAMESPACE));
        }
        coldBodies.set(webhook.name, bodies);
      });
      const cold = new Map<string, number[]>(lookupWebhooks.map((webhook) => [webhook.name, []]));
      console.error(`[bench] ENTRYPOINT lookups, cold: ${COLD_PODS} pods × 3 new images per contender`);
      const senders = new Map(lookupWebhooks.map((webhook) => [webhook.name, sequentialSender(webhook.url, apiserverTls)]));
      try {
        // The connection's TLS handshake happens before the first measured pod.
        for (const webhook of lookupWebhooks) await senders.get(webhook.name)?.send(admissionReview({ kind: "Pod" }, NAMESPACE));
        for (let pod = 0; pod < COLD_PODS; pod++) {
          for (const webhook of shuffled(lookupWebhooks)) {
            const answer = await senders.get(webhook.name)?.send(coldBodies.get(webhook.name)?.[pod] as string);
            if (!answer) continue;
            checkAnswer(webhook, answer.text, ["/app/server-"]);
            cold.get(webhook.name)?.push(answer.ms);
          }
        }
      } finally {
        for (const sender of senders.values()) sender.close();
      }
      // Warm: one pod whose three images every webhook has looked up once already.
      const warmImages = [registry.images.entrypointCmd, registry.images.entrypointOnly, registry.images.cmdOnly].map(
        (image) => image?.reference ?? "",
      );
      const warmFiles = new Map<string, string>();
      for (const webhook of lookupWebhooks) {
        const body = admissionReview(realisticPod(webhook.style, lookupContainers(warmImages)), NAMESPACE);
        checkAnswer(webhook, (await httpsPost(webhook.url, tls.caFile, body)).text, ["/app/server", "/usr/bin/tini"]);
        const file = join(dir, `${webhook.name}.warm.json`);
        writeFileSync(file, body);
        warmFiles.set(webhook.name, file);
      }
      const warm = new Map<number, Map<string, Cell[]>>();
      for (const connections of [1, 16]) {
        console.error(`[bench] ENTRYPOINT lookups, warm, concurrency ${connections}`);
        warm.set(
          connections,
          await measure(lookupWebhooks, warmFiles, connections, (url, body, c, seconds) => runLoadgen(url, body, c, seconds, apiserverTls)),
        );
      }
      expectVerifiedCallers(lookupWebhooks, apiserverTls);
      const lookupNames = lookupWebhooks.map((webhook) => webhook.name);
      const peerName = lookupNames.includes(theirs?.name ?? "") ? theirs?.name : undefined;
      print(`\n### Webhook: ENTRYPOINT lookup (no \`command\`; 3 images from the local registry, ${registry.version})\n`);
      print(
        `Cold: ${COLD_PODS} pods per contender, one at a time, each with 3 images no cache has seen (distinct tags and configs), p50/p99 over the pods. Warm: one pod whose 3 images were looked up once before, under load as above but from bench/lib/loadgen.go (Go, keep-alive HTTPS/1.1, its own process), which presents the test kube-apiserver's webhook client certificate, as wrk cannot: kustodia lends pull secrets only to that caller, in namespaces that opted in (this one has). Both webhooks look up the pod's ServiceAccount for pull secrets (kustodia reuses it for ${PULL_SECRET_TTL_MS / 1000} s).\n`,
      );
      const lookupRows: string[][] = [];
      const coldRow = ["cold, one at a time"];
      for (const name of lookupNames) {
        const samples = cold.get(name) ?? [];
        coldRow.push(fixed(quantile(samples, 0.5), 2), fixed(quantile(samples, 0.99), 2), "–");
      }
      if (peerName) coldRow.push(ratio(quantile(cold.get("kustodia") ?? [], 0.99), quantile(cold.get(peerName) ?? [], 0.99)), "–");
      lookupRows.push(coldRow);
      for (const [connections, cells] of warm) {
        const row = [`warm, concurrency ${connections}`];
        for (const name of lookupNames) {
          const mine = cells.get(name);
          row.push(...loadCells(mine));
        }
        if (peerName) {
          row.push(
            ratio(
              summary(cells.get("kustodia"), (c) => c.p99Ms),
              summary(cells.get(peerName), (c) => c.p99Ms),
            ),
          );
          row.push(
            ratio(
              summary(cells.get("kustodia"), (c) => c.rps),
              summary(cells.get(peerName), (c) => c.rps),
            ),
          );
        }
        lookupRows.push(row);
      }
      const lookupHeader = [
        "path",
        ...lookupNames.flatMap((name) => [`${name} p50 ms`, `${name} p99 ms`, `${name} req/s`]),
        ...(peerName ? ["p99 ratio kustodia/bank-vaults", "throughput ratio kustodia/bank-vaults"] : []),
      ];
      print(table(lookupHeader, lookupRows));
      Object.assign(numbers, lookupFigures(cold, warm, peerName));
    } else {
      print("\n(ENTRYPOINT lookups not measured: the test registry is unavailable.)");
    }
    print(
      `\nkustodia: \`node ${[...imageNodeFlags(), WEBHOOK_BUNDLE.replace(`${resolve(".")}/`, "")].join(" ")}\` (the image's ENTRYPOINT; Node ${process.versions.node}), log level info to a file; ${
        theirs
          ? `Bank-Vaults vault-secrets-webhook ${PEER_VERSIONS["vault-secrets-webhook"]} (go build, CGO off), LOG_LEVEL=info, JSON logs to a file`
          : "Bank-Vaults not measured"
      }. Services: ${infra.origin}.${ROUNDS < 3 ? " A smoke run: too short to compare." : ""}`,
    );
    if (options.summary) writeFileSync(options.summary, JSON.stringify(numbers));
  } finally {
    for (const webhook of running) await webhook.stop();
    rmSync(dir, { recursive: true, force: true });
    await infra.release();
  }
  console.log(out.join("\n"));
}

await main();

/** The figures of the targets table from the pod with `command` set at concurrency 16. */
function loadFigures(at16: Map<string, Cell[]> | undefined, peerName: string | undefined): Record<string, number> {
  const pick = (name: string | undefined, field: (cell: Cell) => number) => summary(name ? at16?.get(name) : undefined, field);
  return {
    p99Ms16: pick("kustodia", (c) => c.p99Ms),
    rps16: pick("kustodia", (c) => c.rps),
    peerP99Ms16: pick(peerName, (c) => c.p99Ms),
    peerRps16: pick(peerName, (c) => c.rps),
  };
}

/** The memory figures of the targets table: RSS idle and the peak under load, kustodia's and the peer's. */
function memoryFigures(
  idleRss: Map<string, number>,
  cellsOf: (name: string) => Cell[],
  peerName: string | undefined,
): Record<string, number> {
  const peakRss = (name: string) =>
    quantile(
      cellsOf(name).map((cell) => cell.peakRssMiB),
      1,
    );
  const idle = (name: string) => idleRss.get(name) ?? Number.NaN;
  return {
    rssIdleMiB: idle("kustodia"),
    rssLoadMiB: peakRss("kustodia"),
    peerRssIdleMiB: peerName ? idle(peerName) : Number.NaN,
    peerRssLoadMiB: peerName ? peakRss(peerName) : Number.NaN,
  };
}

/** The lookup figures of the targets table: kustodia's and the peer's cold p99 and warm requests/s. */
function lookupFigures(
  cold: Map<string, number[]>,
  warm: Map<number, Map<string, Cell[]>>,
  peerName: string | undefined,
): Record<string, number> {
  const numbers: Record<string, number> = {
    lookupColdP99Ms: quantile(cold.get("kustodia") ?? [], 0.99),
    peerLookupColdP99Ms: quantile(cold.get(peerName ?? "") ?? [], 0.99),
  };
  for (const [connections, cells] of warm) {
    numbers[`lookupWarmRps${connections}`] = summary(cells.get("kustodia"), (c) => c.rps);
    numbers[`peerLookupWarmRps${connections}`] = summary(cells.get(peerName ?? ""), (c) => c.rps);
  }
  return numbers;
}

/** A contender's p50 ms, p99 ms and requests/s cells: medians over its rounds. */
function loadCells(cells: Cell[] | undefined): string[] {
  return [
    fixed(
      summary(cells, (c) => c.p50Ms),
      2,
    ),
    fixed(
      summary(cells, (c) => c.p99Ms),
      2,
    ),
    fixed(
      summary(cells, (c) => c.rps),
      0,
    ),
  ];
}
