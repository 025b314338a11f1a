// A load generator run as its own process (the webhook must not share an event loop with its
// load): sends AdmissionReviews at a fixed rate over HTTPS for a duration, then prints one JSON line
// with the outcome. Usage: node load-client.ts <config.json>
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import type { TLSSocket } from "node:tls";

interface LoadConfig {
  url: string;
  caFiles: string[];
  ratePerSecond: number;
  durationSeconds: number;
  pods: object[];
  /** Every n-th request closes its connection, so new TLS handshakes keep happening. */
  closeEvery: number;
}

const config = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as LoadConfig;
// No TLS session resumption: every new connection makes a full handshake and shows its certificate.
const agent = new Agent({ keepAlive: true, maxSockets: 16, maxCachedSessions: 0, ca: config.caFiles.map((file) => readFileSync(file)) });
const latencies: number[] = [];
const errors: string[] = [];
const certificates = new Map<string, number>();
let sent = 0;

function review(pod: object): string {
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: randomUUID(),
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: "load",
      operation: "CREATE",
      object: pod,
    },
  });
}

function send(index: number): Promise<void> {
  const body = review(config.pods[index % config.pods.length] as object);
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(
      `${config.url}/mutate`,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...(index % config.closeEvery === 0 ? { connection: "close" } : {}),
        },
      },
      (res) => {
        // A reused keep-alive socket shows no certificate again; count each connection's once.
        const fingerprint = (res.socket as TLSSocket | null)?.getPeerCertificate?.()?.fingerprint256 ?? "reused connection";
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          latencies.push(performance.now() - started);
          certificates.set(fingerprint, (certificates.get(fingerprint) ?? 0) + 1);
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) errors.push(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
          else if (!JSON.parse(text).response?.allowed) errors.push(`not allowed: ${text.slice(0, 200)}`);
          resolve();
        });
      },
    );
    req.on("error", (error) => {
      errors.push(error.message);
      resolve();
    });
    req.end(body);
  });
}

const pending: Promise<void>[] = [];
const intervalMs = 1000 / config.ratePerSecond;
const start = performance.now();
const total = Math.round(config.ratePerSecond * config.durationSeconds);
while (sent < total) {
  const due = start + sent * intervalMs;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  pending.push(send(sent));
  sent++;
}
await Promise.all(pending);
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
process.stdout.write(
  `${JSON.stringify({
    sent,
    completed: latencies.length,
    errors: errors.length,
    firstErrors: errors.slice(0, 5),
    elapsedSeconds: Math.round(elapsed * 10) / 10,
    achievedRate: Math.round((latencies.length / elapsed) * 10) / 10,
    p50Ms: Math.round(at(0.5) * 100) / 100,
    p99Ms: Math.round(at(0.99) * 100) / 100,
    maxMs: Math.round((latencies[latencies.length - 1] ?? Number.NaN) * 100) / 100,
    certificates: Object.fromEntries(certificates),
  })}\n`,
);
agent.destroy();
