#!/usr/bin/env node
// `kustodia mutate -f pod.yaml`: shows what the webhook would do to a pod (or to the pod template of
// a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob), through the same admission code
// path and the same registry lookups, configured by the same env vars and config file.
// `kustodia check -f pod.yaml`: explains it container by container and exits 1 on any problem.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import fastJsonPatch from "fast-json-patch";
import { parseAllDocuments, stringify } from "yaml";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from "../common/contract.ts";
import { VERSION } from "../common/version.ts";
import { type AdmissionContext, admit } from "./admission.ts";
import { asAdmittedByApiserver, checkPod, notLookedUp, type PodReport, renderPodReport } from "./check.ts";
import { imagesNeeded } from "./command.ts";
import { createImageLookup } from "./images.ts";
import { createMetrics } from "./metrics.ts";
import { isObject, type JsonObject, objectAt } from "./pod.ts";
import type { PullSecretReader } from "./pull-secrets.ts";
import { createRegistryClient } from "./registry/client.ts";
import { loadSettings, SettingsError } from "./settings.ts";

const USAGE = `usage: kustodia mutate -f <file.yaml|-> [-n <namespace>] [-o yaml|json|patch]
       kustodia check  -f <file.yaml|-> [-n <namespace>] [-o text|json] [--offline]

mutate prints each object of the file as the kustodia webhook would admit it. Warnings go to stderr;
a denied pod prints the denial and makes the exit code 1.
check tells, for each pod, what the webhook would do to each container (selected or not and why,
its new command, which reference becomes which variable read from where), its warnings and denial,
and exits 1 when any pod has a problem. --offline never asks a registry for an image's ENTRYPOINT.
Settings come from the webhook's env vars (KUSTODIA_SHIM_IMAGE, KUSTODIA_REGISTRY_*, KUSTODIA_SHIM_*,
KUSTODIA_CONFIG_FILE, ...).`;

/** Where the pod lives inside a workload object, or the object itself for a Pod. */
function podPath(object: JsonObject): string[] | undefined {
  switch (object.kind) {
    case "Pod":
      return [];
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "Job":
      return ["spec", "template"];
    case "CronJob":
      return ["spec", "jobTemplate", "spec", "template"];
    default:
      return undefined;
  }
}

function getPath(object: JsonObject, path: string[]): JsonObject | undefined {
  let node: JsonObject | undefined = object;
  for (const key of path) node = objectAt(node, key);
  return node;
}

function setPath(object: JsonObject, path: string[], value: JsonObject): JsonObject {
  if (path.length === 0) return value;
  const copy = structuredClone(object);
  const parent = getPath(copy, path.slice(0, -1)) as JsonObject;
  parent[path[path.length - 1] as string] = value;
  return copy;
}

async function admissionContext(): Promise<AdmissionContext> {
  const settings = loadSettings(
    { KUSTODIA_TLS_CERT_FILE: "-", KUSTODIA_TLS_KEY_FILE: "-", KUSTODIA_SHIM_IMAGE: `kustodia/shim:${VERSION}`, ...process.env },
    VERSION,
  );
  let pullSecrets: PullSecretReader | undefined;
  if (settings.pullSecrets) {
    // Loaded only when needed: the Kubernetes client costs most of the command's start-up time.
    const { KubeConfig } = await import("@kubernetes/client-node");
    const { createPullSecretReader } = await import("./pull-secrets.ts");
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    pullSecrets = createPullSecretReader(kubeConfig);
  }
  return {
    settings,
    lookupImages: createImageLookup({
      // The webhook keeps lookup causes out of denials (and in its debug log); here the user runs the lookup, so they see them.
      registry: createRegistryClient(settings.registry, createMetrics({ defaultMetrics: false }), {
        warn: (fields) => process.stderr.write(`Lookup: ${String(fields.image)}: ${String(fields.cause)}\n`),
      }),
      pullSecrets,
    }),
  };
}

/** A Pod, or a workload's pod template, found in the file. */
interface FoundPod {
  /** The whole object as written. */
  object: JsonObject;
  /** Where the pod is inside it; undefined for objects that hold no pod. */
  path?: string[];
  pod?: JsonObject;
  namespace: string;
  /** `Deployment shop/web` */
  title: string;
}

function readObjects(file: string, defaultNamespace: string): FoundPod[] {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  const found: FoundPod[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
    const object = document.toJS() as unknown;
    if (!isObject(object)) continue;
    const metadata = objectAt(object, "metadata");
    const namespace = (metadata?.namespace as string | undefined) ?? defaultNamespace;
    const path = podPath(object);
    const pod = path ? getPath(object, path) : undefined;
    const name = (metadata?.name as string | undefined) ?? (metadata?.generateName ? `${String(metadata.generateName)}*` : "*");
    const title = `${String(object.kind)} ${namespace}/${name}`;
    found.push(path && pod ? { object, path, pod, namespace, title } : { object, namespace, title });
  }
  return found;
}

async function mutate(file: string, namespace: string, output: string): Promise<number> {
  const context = await admissionContext();
  let denied = false;
  const outputs: unknown[] = [];
  for (const { object, path, pod, namespace: podNamespace, title } of readObjects(file, namespace)) {
    if (!path || !pod) {
      outputs.push(object);
      continue;
    }
    const outcome = await admit(
      { uid: "kustodia-cli", kind: { group: "", version: "v1", kind: "Pod" }, operation: "CREATE", namespace: podNamespace, object: pod },
      context,
      // The operator's own command, with the operator's own Kubernetes credentials.
      { pullSecrets: true },
    );
    for (const warning of outcome.response.warnings ?? []) process.stderr.write(`Warning: ${title}: ${warning}\n`);
    if (!outcome.response.allowed) {
      denied = true;
      process.stderr.write(`Denied: ${title}: ${outcome.response.status?.message}\n`);
      continue;
    }
    const patch = outcome.response.patch
      ? (JSON.parse(Buffer.from(outcome.response.patch, "base64").toString("utf8")) as JsonObject[])
      : [];
    if (output === "patch") {
      outputs.push(patch);
      continue;
    }
    if (outcome.decision !== "mutated") process.stderr.write(`Unchanged: ${title}: ${outcome.reason}\n`);
    const mutatedPod = fastJsonPatch.applyPatch(structuredClone(pod), patch as never, false, false).newDocument;
    outputs.push(setPath(object, path, mutatedPod));
  }
  const rendered =
    output === "yaml"
      ? outputs.map((o) => stringify(o)).join("---\n")
      : `${JSON.stringify(outputs.length === 1 ? outputs[0] : outputs, null, 2)}\n`;
  process.stdout.write(rendered);
  return denied ? 1 : 0;
}

async function check(file: string, namespace: string, output: string, offline: boolean): Promise<number> {
  const context = await admissionContext();
  const reports: (PodReport & { object: string })[] = [];
  const skipped: string[] = [];
  for (const { pod, namespace: podNamespace, title } of readObjects(file, namespace)) {
    if (!pod) {
      skipped.push(title);
      continue;
    }
    if (context.settings.excludedNamespaces.includes(podNamespace)) {
      const problem = `namespace ${podNamespace} is excluded: the webhook never mutates pods there`;
      reports.push({
        object: title,
        outcome: "not mutated",
        summary: `not mutated: ${problem}`,
        containers: [],
        problems: [problem],
        notes: [],
      });
      continue;
    }
    const needs = imagesNeeded(asAdmittedByApiserver(pod), context.settings);
    const offlineLookups = offline ? notLookedUp(needs) : undefined;
    const images =
      offlineLookups?.images ??
      (needs.length > 0 ? await context.lookupImages(needs, pod, podNamespace, { pullSecrets: true }) : new Map());
    const report = checkPod(pod, context.settings, images);
    report.notes.push(...(offlineLookups?.notes ?? []));
    reports.push({ object: title, ...report });
  }
  const problems = reports.reduce((total, report) => total + report.problems.length, 0);
  if (output === "json") {
    process.stdout.write(`${JSON.stringify({ pods: reports, problems }, null, 2)}\n`);
  } else {
    const blocks = reports.map((report) => renderPodReport(report.object, report));
    if (skipped.length > 0) blocks.push(`not a pod or a workload, not checked: ${skipped.join(", ")}`);
    if (reports.some((report) => report.outcome === "mutated")) {
      blocks.push(`The webhook is called only in namespaces labelled ${NAMESPACE_LABEL}=${NAMESPACE_LABEL_VALUE}.`);
    }
    blocks.push(
      problems === 0 ? `${reports.length} pod(s) checked, no problems` : `${reports.length} pod(s) checked, ${problems} problem(s)`,
    );
    process.stdout.write(`${blocks.join("\n\n")}\n`);
  }
  return problems > 0 ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== "mutate" && command !== "check") {
    process.stderr.write(`${USAGE}\n`);
    return command === "--help" || command === "-h" ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      file: { type: "string", short: "f" },
      namespace: { type: "string", short: "n", default: "default" },
      output: { type: "string", short: "o" },
      offline: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const outputs = command === "mutate" ? ["yaml", "json", "patch"] : ["text", "json"];
  const output = values.output ?? outputs[0];
  if (!values.file || !output || !outputs.includes(output) || (command === "mutate" && values.offline)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  return command === "mutate"
    ? mutate(values.file, values.namespace, output)
    : check(values.file, values.namespace, output, values.offline);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`kustodia: ${error instanceof SettingsError ? error.message : (error as Error).message}\n`);
  process.exitCode = 2;
}
