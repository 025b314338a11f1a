// Narrow, read-only accessors over a pod as raw JSON. The webhook never turns a pod into typed model
// objects: whatever fields the pod carries, known to us or not, must survive untouched.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface EnvVar extends JsonObject {
  name: string;
}

/** A container as far as the webhook reads it; every other field is carried along unread. */
export interface RawContainer extends JsonObject {
  name: string;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function objectAt(value: unknown, key: string): JsonObject | undefined {
  if (!isObject(value)) return undefined;
  const found = value[key];
  return isObject(found) ? found : undefined;
}

export function stringAt(value: unknown, key: string): string | undefined {
  if (!isObject(value)) return undefined;
  const found = value[key];
  return typeof found === "string" ? found : undefined;
}

export function arrayAt(value: unknown, key: string): Json[] | undefined {
  if (!isObject(value)) return undefined;
  const found = value[key];
  return Array.isArray(found) ? found : undefined;
}

/** A string array field; undefined when absent, empty (Kubernetes treats `[]` as unset) or not all strings. */
export function stringListAt(value: unknown, key: string): string[] | undefined {
  const list = arrayAt(value, key);
  if (!list || list.length === 0 || !list.every((item) => typeof item === "string")) return undefined;
  return list as string[];
}

export function annotations(pod: unknown): Record<string, string> {
  const found = objectAt(objectAt(pod, "metadata"), "annotations") ?? {};
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(found)) if (typeof value === "string") result[key] = value;
  return result;
}

export function containersOf(spec: JsonObject, list: "containers" | "initContainers"): RawContainer[] {
  return (arrayAt(spec, list) ?? []).filter((item): item is RawContainer => isObject(item) && typeof item.name === "string");
}

export function envOf(container: JsonObject): EnvVar[] {
  return (arrayAt(container, "env") ?? []).filter((item): item is EnvVar => isObject(item) && typeof item.name === "string");
}

/** The pod's display name for logs and messages: name, else generateName + "*". */
export function podDisplayName(pod: unknown): string {
  const metadata = objectAt(pod, "metadata");
  return stringAt(metadata, "name") ?? `${stringAt(metadata, "generateName") ?? ""}*`;
}
