// Runs the real webhook program (`node webhook/main.ts`) over HTTPS with a throwaway CA, and talks
// to it like the kube-apiserver does: AdmissionReview v1 over TLS.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fastJsonPatch from "fast-json-patch";
import { repoRoot } from "../infra/repo-root.ts";
import { makeCertificateAuthority, makeLeafCertificate } from "../infra/tls.ts";

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field in the tests
  json: any;
}

export interface RunningWebhook {
  url: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  dir: string;
  process: ChildProcess;
  /** Every log line the program wrote so far (stdout + stderr). */
  logs: () => string[];
  post: (path: string, body: string | Buffer, headers?: Record<string, string>) => Promise<HttpAnswer>;
  get: (path: string) => Promise<HttpAnswer>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export interface WebhookOptions {
  env?: Record<string, string>;
  /** Serve with this TLS material (e.g. what the Helm chart made) instead of a throwaway CA's. */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /** Run this file (e.g. the built bundle) from `cwd`, with these Node flags, instead of webhook/main.ts from the checkout. */
  program?: { file: string; cwd: string; nodeFlags?: string[] };
}

async function throwawayTls(dir: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const ca = await makeCertificateAuthority(dir, "webhook");
  const leaf = await makeLeafCertificate(ca, dir, "webhook", ["IP:127.0.0.1", "DNS:localhost"]);
  return { caFile: ca.certFile, certFile: leaf.certFile, keyFile: leaf.keyFile };
}

function httpsCall(
  url: string,
  ca: Buffer,
  method: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, ca, headers: { ...headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) } },
      (res) => readAnswer(res).then(resolve, reject),
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A response's status, headers and body (text, and parsed when it is JSON). */
export function readAnswer(res: IncomingMessage): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("error", reject);
    res.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
    });
  });
}

export async function startWebhook(options: WebhookOptions = {}): Promise<RunningWebhook> {
  const dir = mkdtempSync(join(tmpdir(), "kustodia-webhook-"));
  const tls = options.tls ?? (await throwawayTls(dir));
  const lines: string[] = [];
  const program = options.program?.file ?? join(repoRoot, "webhook", "main.ts");
  const child = spawn(process.execPath, [...(options.program?.nodeFlags ?? []), program], {
    cwd: options.program?.cwd ?? repoRoot,
    env: {
      PATH: process.env.PATH ?? "",
      KUSTODIA_LISTEN: "127.0.0.1:0",
      KUSTODIA_TLS_CERT_FILE: tls.certFile,
      KUSTODIA_TLS_KEY_FILE: tls.keyFile,
      KUSTODIA_SHIM_IMAGE: "registry.example/kustodia/shim:test",
      KUSTODIA_LOG_LEVEL: "debug",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      lines.push(...parts.filter((line) => line !== ""));
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhook did not start within 20 s:\n${lines.join("\n")}`)), 20_000);
    const poll = setInterval(() => {
      for (const line of lines) {
        const match = /"listen":"[^"]*:(\d+)"/.exec(line);
        if (match) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`webhook exited with ${code} before serving:\n${lines.join("\n")}`));
    });
  });
  const url = `https://127.0.0.1:${port}`;
  const caPem = readFileSync(tls.caFile);
  return {
    url,
    caFile: tls.caFile,
    certFile: tls.certFile,
    keyFile: tls.keyFile,
    dir,
    process: child,
    logs: () => [...lines],
    post: (path, body, headers = { "content-type": "application/json" }) => httpsCall(`${url}${path}`, caPem, "POST", body, headers),
    get: (path) => httpsCall(`${url}${path}`, caPem, "GET"),
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null) child.kill(signal);
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** An AdmissionReview v1 for creating `pod` in `namespace`. */
export function podCreateReview(pod: object, namespace = "default", extra: Record<string, unknown> = {}): { uid: string; body: string } {
  const uid = randomUUID();
  const review = {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      requestKind: { group: "", version: "v1", kind: "Pod" },
      requestResource: { group: "", version: "v1", resource: "pods" },
      namespace,
      operation: "CREATE",
      userInfo: { username: "kubernetes-admin", groups: ["system:masters", "system:authenticated"] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
      ...extra,
    },
  };
  return { uid, body: JSON.stringify(review) };
}

/** Applies the patch of an AdmissionReview response to `pod` (what the apiserver does). */
export function applyResponse<T extends object>(pod: T, response: { patch?: string; patchType?: string }): T {
  if (!response.patch) return structuredClone(pod);
  expectPatchType(response.patchType);
  const operations = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8"));
  return fastJsonPatch.applyPatch(structuredClone(pod), operations, true, false).newDocument;
}

function expectPatchType(patchType: string | undefined): void {
  if (patchType !== "JSONPatch") throw new Error(`patchType must be JSONPatch, got ${patchType}`);
}
