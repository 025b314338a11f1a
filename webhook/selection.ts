// Which pods and containers the webhook injects, and why (DESIGN.md §2): the opt-in, the
// `containers` annotation, or the reference vars a container declares.
import { Annotations } from "../common/contract.ts";
import { isValidEnvName, parseReference, splitList, targetName } from "../common/reference.ts";
import type { ListName } from "./decision.ts";
import type { Finding, Selection, SkipReason } from "./findings.ts";
import { annotations, arrayAt, containersOf, envOf, type JsonObject, objectAt, type RawContainer, stringAt } from "./pod.ts";

export interface Selected {
  list: ListName;
  index: number;
  container: RawContainer;
}

export interface ContainerSelection {
  list: ListName;
  name: string;
  selected: boolean;
  selection: Selection;
}

/** Why a pod is not for us, or undefined when it is opted in and not yet mutated. */
export function skipReason(pod: JsonObject): SkipReason | undefined {
  const podAnnotations = annotations(pod);
  if (podAnnotations[Annotations.inject]?.toLowerCase() !== "true") return { code: "not-opted-in" };
  const status = podAnnotations[Annotations.status];
  if (status !== undefined) return { code: "already-handled", status };
  const spec = objectAt(pod, "spec");
  if (!spec) return { code: "no-spec" };
  const os = stringAt(objectAt(spec, "os"), "name") ?? stringAt(objectAt(spec, "nodeSelector"), "kubernetes.io/os");
  if (os === "windows") return { code: "windows" };
  return undefined;
}

/** The pod's `passthrough` annotation: prefixed vars that are plain values. */
export function passthroughOf(pod: JsonObject): Set<string> {
  return new Set(splitList(annotations(pod)[Annotations.passthrough]));
}

function selectionOf(container: RawContainer, prefix: string, passthrough: Set<string>, wanted?: Set<string>): Selection {
  if (wanted) return { code: wanted.has(container.name) ? "named" : "not-named" };
  const prefixed = envOf(container)
    .map((item) => item.name)
    .filter((name) => targetName(name, prefix) !== undefined);
  const references = prefixed.filter((name) => !passthrough.has(name));
  if (references.length > 0) return { code: "declares", variables: references };
  return { code: prefixed.length > 0 ? "all-passthrough" : "no-references", prefix };
}

/** Every container and initContainer with why it is (not) selected; warnings for names in `containers` the pod lacks. */
export function selectContainers(
  pod: JsonObject,
  prefix: string,
): { selected: Selected[]; all: ContainerSelection[]; warnings: Finding[] } {
  const spec = objectAt(pod, "spec") ?? {};
  const requested = annotations(pod)[Annotations.containers];
  const wanted = requested === undefined ? undefined : new Set(splitList(requested));
  const passthrough = passthroughOf(pod);
  const selected: Selected[] = [];
  const all: ContainerSelection[] = [];
  for (const list of ["initContainers", "containers"] as const) {
    for (const container of containersOf(spec, list)) {
      const selection = selectionOf(container, prefix, passthrough, wanted);
      const chosen = selection.code === "named" || selection.code === "declares";
      all.push({ list, name: container.name, selected: chosen, selection });
      if (chosen) selected.push({ list, index: (arrayAt(spec, list) ?? []).indexOf(container), container });
    }
  }
  const seen = new Set(all.map((container) => container.name));
  const warnings: Finding[] = [...(wanted ?? [])]
    .filter((name) => !seen.has(name))
    .map((container) => ({ code: "KUS_CONTAINER_NOT_FOUND", container }));
  return { selected, all, warnings };
}

/** Admission warnings for the reference vars of one container (malformed references, bad names, collisions). */
export function referenceWarnings(container: RawContainer, prefix: string, passthrough: Set<string>): Finding[] {
  const env = envOf(container);
  const names = new Set(env.map((item) => item.name));
  const warnings: Finding[] = [];
  for (const item of env) {
    const target = targetName(item.name, prefix);
    if (target === undefined || passthrough.has(item.name)) continue;
    const where = { container: container.name, variable: item.name };
    if (!isValidEnvName(target)) warnings.push({ code: "KUS_TARGET_NAME_INVALID", ...where, target });
    if (names.has(target)) warnings.push({ code: "KUS_TARGET_NAME_TAKEN", ...where, target });
    if (item.valueFrom !== undefined) continue; // resolved by the shim from the runtime value
    const parsed = parseReference(typeof item.value === "string" ? item.value : "");
    if (!parsed.ok) warnings.push({ code: "KUS_REFERENCE_INVALID", ...where, error: parsed.error });
  }
  return warnings;
}
