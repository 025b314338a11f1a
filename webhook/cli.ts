#!/usr/bin/env node
// `kustodia mutate -f pod.yaml`: shows what the webhook would do to a pod (or to the pod template of
// a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob), through the same admission code
// path and the same registry lookups, configured by the same env vars and config file.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import fastJsonPatch from "fast-json-patch";
import { parseAllDocuments, stringify } from "yaml";
import { VERSION } from "../common/version.ts";
import { admit } from "./admission.ts";
import { createImageLookup } from "./images.ts";
import { createMetrics } from "./metrics.ts";
import { isObject, type JsonObject, objectAt } from "./pod.ts";
import { createPullSecretReader } from "./pull-secrets.ts";
import { createRegistryClient } from "./registry/client.ts";
import { loadSettings, SettingsError } from "./settings.ts";

const USAGE = `usage: kustodia mutate -f <file.yaml|-> [-n <namespace>] [-o yaml|json|patch]

Prints each object of the file as the kustodia webhook would admit it. Warnings go to stderr; a
denied pod prints the denial and makes the exit code 1. Settings come from the webhook's env vars
(KUSTODIA_SHIM_IMAGE, KUSTODIA_REGISTRY_*, KUSTODIA_SHIM_*, KUSTODIA_CONFIG_FILE, ...).`;

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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== "mutate") {
    process.stderr.write(`${USAGE}\n`);
    return command === "--help" || command === "-h" ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      file: { type: "string", short: "f" },
      namespace: { type: "string", short: "n", default: "default" },
      output: { type: "string", short: "o", default: "yaml" },
    },
  });
  if (!values.file || !["yaml", "json", "patch"].includes(values.output)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const settings = loadSettings(
    { KUSTODIA_TLS_CERT_FILE: "-", KUSTODIA_TLS_KEY_FILE: "-", KUSTODIA_SHIM_IMAGE: `kustodia/shim:${VERSION}`, ...process.env },
    VERSION,
  );
  let pullSecrets: ReturnType<typeof createPullSecretReader> | undefined;
  if (settings.pullSecrets) {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    pullSecrets = createPullSecretReader(kubeConfig);
  }
  const context = {
    settings,
    lookupImages: createImageLookup({
      registry: createRegistryClient(settings.registry, createMetrics({ defaultMetrics: false })),
      pullSecrets,
    }),
  };

  const text = readFileSync(values.file === "-" ? 0 : values.file, "utf8");
  let denied = false;
  const outputs: unknown[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`${values.file}: ${document.errors[0]?.message}`);
    const object = document.toJS() as unknown;
    if (!isObject(object)) continue;
    const path = podPath(object);
    const pod = path ? getPath(object, path) : undefined;
    if (!path || !pod) {
      outputs.push(object);
      continue;
    }
    const namespace = (objectAt(object, "metadata")?.namespace as string | undefined) ?? values.namespace;
    const outcome = await admit(
      { uid: "kustodia-cli", kind: { group: "", version: "v1", kind: "Pod" }, operation: "CREATE", namespace, object: pod },
      context,
    );
    const name = `${object.kind} ${namespace}/${(objectAt(object, "metadata")?.name as string | undefined) ?? outcome.pod}`;
    for (const warning of outcome.response.warnings ?? []) process.stderr.write(`Warning: ${name}: ${warning}\n`);
    if (!outcome.response.allowed) {
      denied = true;
      process.stderr.write(`Denied: ${name}: ${outcome.response.status?.message}\n`);
      continue;
    }
    const patch = outcome.response.patch
      ? (JSON.parse(Buffer.from(outcome.response.patch, "base64").toString("utf8")) as JsonObject[])
      : [];
    if (values.output === "patch") {
      outputs.push(patch);
      continue;
    }
    if (outcome.decision !== "mutated") process.stderr.write(`Unchanged: ${name}: ${outcome.reason}\n`);
    const mutatedPod = fastJsonPatch.applyPatch(structuredClone(pod), patch as never, false, false).newDocument;
    outputs.push(setPath(object, path, mutatedPod));
  }
  const rendered =
    values.output === "yaml"
      ? outputs.map((o) => stringify(o)).join("---\n")
      : `${JSON.stringify(outputs.length === 1 ? outputs[0] : outputs, null, 2)}\n`;
  process.stdout.write(rendered);
  return denied ? 1 : 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`kustodia: ${error instanceof SettingsError ? error.message : (error as Error).message}\n`);
  process.exitCode = 2;
}
