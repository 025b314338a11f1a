// Test helpers for charts/kustodia: render it with helm, and send the rendered objects to the real
// kube-apiserver (created, or dry-run with strict field validation), resolving each kind to its REST
// path through the apiserver's own discovery.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments, stringify } from "yaml";
import { VERSION } from "../../common/version.ts";
import { loadSettings, type Settings } from "../../webhook/settings.ts";
import { type KubeResponse, kubeRequest } from "../infra/kube-api.ts";
import type { KubeCoordinates } from "../infra/types.ts";

export { repoRoot } from "../infra/repo-root.ts";

import { repoRoot } from "../infra/repo-root.ts";

const execFileAsync = promisify(execFile);

export const chartDir = join(repoRoot, "charts", "kustodia");

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered objects are read field by field in the tests
  [key: string]: any;
}

export type Values = Record<string, unknown>;

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm; never throws on a non-zero exit (the result carries it). */
export async function helm(binary: string, args: string[], kube?: Pick<KubeCoordinates, "kubeconfig">): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await execFileAsync(binary, args, {
      env: { ...process.env, ...(kube ? { KUBECONFIG: kube.kubeconfig } : {}), HELM_CACHE_HOME: join(tmpdir(), "kustodia-helm-cache") },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? String(error) };
  }
}

/** `--values <file>` arguments for `values`, written to a temporary file that `cleanup` removes. */
export function valuesArgs(values: Values): { args: string[]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "kustodia-values-"));
  const file = join(dir, "values.yaml");
  writeFileSync(file, stringify(values));
  return { args: ["--values", file], cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Where a release goes: the helm binary and the cluster (its kubeconfig). */
export interface HelmTarget {
  helm: string;
  kube: Pick<KubeCoordinates, "kubeconfig">;
}

/**
 * `helm <verb> <release> charts/kustodia` into `namespace` (created on install) with `values` and
 * `extraArgs`; helm's stdout. Throws with helm's stderr when it fails.
 */
export async function helmRelease(
  { helm: binary, kube }: HelmTarget,
  verb: "install" | "upgrade",
  release: string,
  namespace: string,
  values: Values,
  extraArgs: string[] = [],
): Promise<string> {
  const file = valuesArgs(values);
  try {
    const create = verb === "install" ? ["--create-namespace"] : [];
    const done = await helm(binary, [verb, release, chartDir, "--namespace", namespace, ...create, ...extraArgs, ...file.args], kube);
    if (done.code !== 0) throw new Error(`helm ${verb} ${release} failed: ${done.stderr}`);
    return done.stdout;
  } finally {
    file.cleanup();
  }
}

/** Parses a multi-document YAML stream into objects (empty documents dropped). */
export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`rendered YAML does not parse: ${document.errors[0]?.message}`);
      return document.toJS() as KubeObject | null;
    })
    .filter((object): object is KubeObject => object !== null && typeof object === "object");
}

export interface RenderOptions {
  release: string;
  namespace: string;
  values?: Values;
  kubeVersion: string;
}

/** `helm template` of the chart; throws with helm's message when it fails. */
export async function renderChart(binary: string, options: RenderOptions): Promise<KubeObject[]> {
  const values = valuesArgs(options.values ?? {});
  try {
    const result = await helm(binary, [
      "template",
      options.release,
      chartDir,
      "--namespace",
      options.namespace,
      "--kube-version",
      options.kubeVersion,
      ...values.args,
    ]);
    if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr.trim()}`);
    return parseObjects(result.stdout);
  } finally {
    values.cleanup();
  }
}

export function findObject(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.find((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ""} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`);
  return found;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

const discovery = new Map<string, Promise<ApiResource[]>>();

async function resourcesOf(kube: KubeCoordinates, apiVersion: string): Promise<ApiResource[]> {
  const key = `${kube.server} ${apiVersion}`;
  let found = discovery.get(key);
  if (!found) {
    const path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    found = kubeRequest<{ resources: ApiResource[] }>(kube, "GET", path).then(({ status, body }) => {
      if (status !== 200) throw new Error(`discovery ${path}: HTTP ${status} (is the API group served?)`);
      return body.resources;
    });
    found.catch(() => discovery.delete(key));
    discovery.set(key, found);
  }
  return found;
}

/** The collection path of `object`'s kind, e.g. `/apis/apps/v1/namespaces/ns/deployments`. */
export async function collectionPath(kube: KubeCoordinates, object: KubeObject): Promise<string> {
  const resource = (await resourcesOf(kube, object.apiVersion)).find((item) => item.kind === object.kind && !item.name.includes("/"));
  if (!resource) throw new Error(`the apiserver serves no ${object.kind} in ${object.apiVersion}`);
  const base = object.apiVersion.includes("/") ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
  if (!resource.namespaced) return `${base}/${resource.name}`;
  const namespace = object.metadata.namespace;
  if (!namespace) throw new Error(`${object.kind} ${object.metadata.name} is namespaced but has no namespace`);
  return `${base}/namespaces/${namespace}/${resource.name}`;
}

/** POSTs `object` (strict field validation; `dryRun` asks the apiserver to validate and admit but not store). */
export async function createObject<T = KubeObject>(
  kube: KubeCoordinates,
  object: KubeObject,
  options: { dryRun?: boolean } = {},
): Promise<KubeResponse<T>> {
  const query = new URLSearchParams({ fieldValidation: "Strict", ...(options.dryRun ? { dryRun: "All" } : {}) });
  return kubeRequest<T>(kube, "POST", `${await collectionPath(kube, object)}?${query}`, object);
}

/** Creates `object` and fails unless the apiserver stored it (an existing one is fine). */
export async function ensureObject(kube: KubeCoordinates, object: KubeObject): Promise<void> {
  const { status, body } = await createObject(kube, object);
  if (status !== 201 && status !== 200 && status !== 409)
    throw new Error(`creating ${object.kind} ${object.metadata.name}: HTTP ${status} ${JSON.stringify(body)}`);
}

/** The apiserver's message for a refused request. */
export function statusMessage(body: unknown): string {
  return typeof body === "object" && body !== null && "message" in body
    ? String((body as { message: unknown }).message)
    : JSON.stringify(body);
}

/** A Pod run by the ServiceAccount `app` (which tests create: no controller-manager makes `default`), with a container `app`. */
export function podObject(
  name: string,
  annotations: Record<string, string>,
  app: { command: string[]; env: { name: string; value: string }[] },
  spec: Record<string, unknown> = {},
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, annotations },
    spec: { serviceAccountName: "app", containers: [{ name: "app", image: "registry.example/team/app:1", ...app }], ...spec },
  };
}

export function namespaceObject(name: string, labels: Record<string, string> = {}): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

/** The rendered Deployment's env as the kubelet would hand it to the webhook (downward API resolved). */
export function webhookEnv(objects: KubeObject[], configFile: string): NodeJS.ProcessEnv {
  const deployment = findObject(objects, "Deployment");
  const env: NodeJS.ProcessEnv = {};
  const container = deployment.spec.template.spec.containers[0] as {
    env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  };
  for (const item of container.env) {
    if (item.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[item.name] = deployment.metadata.namespace;
    else if (item.value !== undefined) env[item.name] = item.value;
  }
  env.KUSTODIA_CONFIG_FILE = configFile;
  return env;
}

/**
 * The chart's webhook env for running the webhook on this machine with test/webhook/harness.ts: its
 * TLS paths are left to the harness, and it listens on 127.0.0.1:`port`.
 */
export function localWebhookEnv(objects: KubeObject[], configFile: string, port: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(webhookEnv(objects, configFile))) {
    if (value !== undefined && name !== "KUSTODIA_TLS_CERT_FILE" && name !== "KUSTODIA_TLS_KEY_FILE") env[name] = value;
  }
  env.KUSTODIA_LISTEN = `127.0.0.1:${port}`;
  return env;
}

/** What the webhook's own settings loader makes of the rendered Deployment env and ConfigMap. */
export function webhookSettings(objects: KubeObject[]): Readonly<Settings> {
  const dir = mkdtempSync(join(tmpdir(), "kustodia-chart-config-"));
  try {
    const file = join(dir, "config.yaml");
    writeFileSync(file, findObject(objects, "ConfigMap").data["config.yaml"]);
    return loadSettings(webhookEnv(objects, file), VERSION);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The TLS pair the chart made (its Secret `<release>-kustodia-tls`), written to `dir` for the webhook to serve with. */
export async function chartTlsFiles(
  kube: KubeCoordinates,
  release: string,
  namespace: string,
  dir: string,
): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const secret = await kubeRequest<{ data: Record<string, string> }>(
    kube,
    "GET",
    `/api/v1/namespaces/${namespace}/secrets/${release}-kustodia-tls`,
  );
  if (secret.status !== 200) throw new Error(`reading the chart's TLS Secret: HTTP ${secret.status}`);
  const files = { caFile: join(dir, "ca.crt"), certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
  writeFileSync(files.caFile, Buffer.from(secret.body.data["ca.crt"] as string, "base64"));
  writeFileSync(files.certFile, Buffer.from(secret.body.data["tls.crt"] as string, "base64"));
  writeFileSync(files.keyFile, Buffer.from(secret.body.data["tls.key"] as string, "base64"), { mode: 0o600 });
  return files;
}
