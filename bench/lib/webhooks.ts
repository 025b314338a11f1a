// Starts the webhooks under comparison on loopback over HTTPS with one throwaway CA: kustodia's
// built bundle (node <flags> dist/webhook/main.js, the ENTRYPOINT of its image) and Bank-Vaults'
// vault-secrets-webhook. Both log at info level into a file, as a container runtime would keep it.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { entrypointFlags, parseFinalStage } from "../../scripts/dockerfile.ts";
import { freePort } from "../../test/infra/proc.ts";
import { makeCertificateAuthority, makeLeafCertificate } from "../../test/infra/tls.ts";
import type { InfraCoordinates } from "../../test/infra/types.ts";
import { REPO } from "./build.ts";
import type { ReferenceStyle } from "./pods.ts";

export interface Tls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export async function throwawayTls(dir: string): Promise<Tls> {
  const ca = await makeCertificateAuthority(dir, "bench");
  const leaf = await makeLeafCertificate(ca, dir, "webhook", ["IP:127.0.0.1", "DNS:localhost"]);
  return { caFile: ca.certFile, certFile: leaf.certFile, keyFile: leaf.keyFile };
}

export interface RunningWebhook {
  name: string;
  style: ReferenceStyle;
  pid: number;
  /** https://127.0.0.1:<port><path> of the pod mutation endpoint. */
  url: string;
  logFile: string;
  stop: () => Promise<void>;
}

export interface WebhookContender {
  name: string;
  style: ReferenceStyle;
  start: (context: StartContext) => Promise<RunningWebhook>;
}

export interface StartContext {
  dir: string;
  tls: Tls;
  infra: InfraCoordinates;
}

/** One HTTPS request; resolves with the status and the body text. */
export function httpsPost(url: string, caFile: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        ca: readFileSync(caFile),
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function httpsGet(url: string, caFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: readFileSync(caFile) }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

function launch(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(command, args, { env, stdio: ["ignore", fd, fd] });
    if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
    return child;
  } finally {
    closeSync(fd);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Waits until `ready()` holds, failing early with the log when the process ended. */
async function waitReady(name: string, child: ChildProcess, logFile: string, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
    if (await ready().catch(() => false)) return;
    await sleep(50);
  }
  await stopChild(child);
  throw new Error(`${name} did not get ready within 30 s:\n${readFileSync(logFile, "utf8").slice(-3000)}`);
}

/** The Node flags the webhook image runs its bundle with: those of webhook/Dockerfile's ENTRYPOINT. */
export function imageNodeFlags(): string[] {
  return entrypointFlags(parseFinalStage(readFileSync(join(REPO, "webhook", "Dockerfile"), "utf8")), "dist/webhook/main.js");
}

export interface KustodiaSettings {
  name?: string;
  /** On top of the bench's settings. */
  env?: Record<string, string>;
  /** Node flags before the program; default the image's (imageNodeFlags). */
  nodeFlags?: string[];
}

/** kustodia's webhook: `node <flags> <program>` (default the bundle `npm run build` wrote) as its image runs it. */
export function kustodiaWebhook(program: string, settings: KustodiaSettings = {}): WebhookContender {
  const { name = "kustodia", env: extraEnv = {}, nodeFlags = imageNodeFlags() } = settings;
  return {
    name,
    style: "kustodia",
    async start({ dir, tls, infra }) {
      const logFile = join(dir, `${name}.log`);
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        KUSTODIA_LISTEN: "127.0.0.1:0",
        KUSTODIA_TLS_CERT_FILE: tls.certFile,
        KUSTODIA_TLS_KEY_FILE: tls.keyFile,
        KUSTODIA_SHIM_IMAGE: "ghcr.io/kustodia/shim:0.1.0",
        KUSTODIA_SHIM_VAULT_ADDR: infra.openbao?.addr ?? "http://127.0.0.1:8200",
        KUSTODIA_SHIM_VAULT_AUTH_METHOD: "kubernetes",
        KUSTODIA_LOG_LEVEL: "info",
        POD_NAMESPACE: "kustodia",
        ...(infra.registry
          ? { KUSTODIA_REGISTRY_PLAIN_HTTP: infra.registry.plain.host, KUSTODIA_REGISTRY_ALLOWED_NETWORKS: "127.0.0.0/8" }
          : {}),
        // Pull secrets are lent only to a caller with the kube-apiserver's client certificate: the
        // bench's lookups present it (loadgen.ts), so kustodia reads them as in a cluster.
        ...(infra.kube
          ? {
              KUBECONFIG: infra.kube.kubeconfig,
              KUSTODIA_CLIENT_CA_FILE: infra.kube.webhookClient.caFile,
              KUSTODIA_CLIENT_ALLOWED_NAMES: infra.kube.webhookClient.name,
            }
          : { KUSTODIA_PULL_SECRETS: "false" }),
        ...extraEnv,
      };
      const child = launch(name, process.execPath, [...nodeFlags, program], env, logFile);
      let port = 0;
      await waitReady(name, child, logFile, async () => {
        port = Number(/"listen":"[^"]*:(\d+)"/.exec(readFileSync(logFile, "utf8"))?.[1] ?? 0);
        return port > 0;
      });
      return {
        name,
        style: "kustodia",
        pid: child.pid as number,
        url: `https://127.0.0.1:${port}/mutate`,
        logFile,
        stop: () => stopChild(child),
      };
    },
  };
}

/**
 * Bank-Vaults' vault-secrets-webhook, configured by env (viper): TLS, the listen address, the Vault
 * address the mutated pods get, and a kubeconfig for the test kube-apiserver (it builds its
 * Kubernetes client at start and reads ServiceAccounts and pull secrets for registry lookups).
 */
export function bankVaultsWebhook(binary: string, name = "bank-vaults"): WebhookContender {
  return {
    name,
    style: "bank-vaults",
    async start({ dir, tls, infra }) {
      const logFile = join(dir, `${name}.log`);
      const port = await freePort();
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        LISTEN_ADDRESS: `127.0.0.1:${port}`,
        TLS_CERT_FILE: tls.certFile,
        TLS_PRIVATE_KEY_FILE: tls.keyFile,
        VAULT_ADDR: infra.openbao?.addr ?? "http://127.0.0.1:8200",
        VAULT_ENV_IMAGE: "ghcr.io/bank-vaults/vault-env:v1.23.0",
        KUBERNETES_NAMESPACE: "vault-secrets-webhook",
        LOG_LEVEL: "info",
        ENABLE_JSON_LOG: "true",
        KUBECONFIG: infra.kube?.kubeconfig ?? writeOfflineKubeconfig(dir),
      };
      const child = launch(name, binary, [], env, logFile);
      const base = `https://127.0.0.1:${port}`;
      await waitReady(name, child, logFile, async () => (await httpsGet(`${base}/healthz`, tls.caFile)) === 200);
      return { name, style: "bank-vaults", pid: child.pid as number, url: `${base}/pods`, logFile, stop: () => stopChild(child) };
    },
  };
}

/** A kubeconfig naming an apiserver that is not there: enough for pods with `command` set. */
function writeOfflineKubeconfig(dir: string): string {
  const file = join(dir, "offline.kubeconfig");
  writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters: [{name: none, cluster: {server: 'https://127.0.0.1:1'}}]",
      "users: [{name: none, user: {token: none}}]",
      "contexts: [{name: none, context: {cluster: none, user: none}}]",
      "current-context: none",
      "",
    ].join("\n"),
  );
  return file;
}
