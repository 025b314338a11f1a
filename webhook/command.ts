// The container's new command (DESIGN.md §4): the shim first, then what Kubernetes would have run,
// with the image ENTRYPOINT/CMD (looked up by the caller) or the `entrypoint.<container>` annotation.
import { Annotations, SHIM_PATH, TINI_PATH } from "../common/contract.ts";
import { RESIDENT_ROTATION_MODES } from "../common/shim-settings.ts";
import type { Finding } from "./findings.ts";
import type { ImageLookupResult, ImageNeed } from "./image-facts.ts";
import { annotations, arrayAt, type JsonObject, objectAt, type RawContainer, stringAt, stringListAt } from "./pod.ts";
import { selectContainers, skipReason } from "./selection.ts";

const MAX_ENTRYPOINT_ANNOTATION = 8192;

function entrypointAnnotation(pod: JsonObject, container: string): { value?: string[]; invalid?: Finding } {
  const key = `${Annotations.entrypointPrefix}${container}`;
  const raw = annotations(pod)[key];
  if (raw === undefined) return {};
  const invalid = { invalid: { code: "KUS_ENTRYPOINT_ANNOTATION_INVALID", annotation: key, value: raw } as const };
  if (raw.length > MAX_ENTRYPOINT_ANNOTATION) return invalid;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((item) => typeof item === "string")) return { value: parsed };
  } catch {
    /* reported below */
  }
  return invalid;
}

/**
 * The pod's pinned CPU architecture, if any: nodeSelector `kubernetes.io/arch`, else a required node
 * affinity whose every term admits exactly the same single architecture (Bitnami's
 * `nodeAffinityPreset`, Karpenter examples).
 */
function podArchitecture(pod: JsonObject): string | undefined {
  const spec = objectAt(pod, "spec");
  const selected = stringAt(objectAt(spec, "nodeSelector"), "kubernetes.io/arch");
  if (selected) return selected;
  const required = objectAt(objectAt(objectAt(spec, "affinity"), "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution");
  const terms = arrayAt(required, "nodeSelectorTerms") ?? [];
  const perTerm = terms.map((term) => {
    const archs = (arrayAt(term, "matchExpressions") ?? [])
      .filter((expression) => stringAt(expression, "key") === "kubernetes.io/arch" && stringAt(expression, "operator") === "In")
      .map((expression) => (arrayAt(expression, "values") ?? []).filter((value): value is string => typeof value === "string"));
    return archs.length === 1 && archs[0]?.length === 1 ? archs[0][0] : undefined;
  });
  const first = perTerm[0];
  return first !== undefined && perTerm.every((arch) => arch === first) ? first : undefined;
}

/**
 * Words taken from the image (ENTRYPOINT/CMD, or the annotation standing in for them) are never
 * expanded by Kubernetes, but in a pod's `command`/`args` the kubelet turns `$(VAR)` into VAR's value
 * and `$$` into `$`. Doubling every `$` keeps them literal once they are written into the spec.
 */
function literalForKubelet(words: readonly string[]): string[] {
  return words.map((word) => word.replaceAll("$", "$$$$"));
}

/** The images whose ENTRYPOINT/CMD `mutatePod` will need: selected containers without `command` or an entrypoint annotation. */
export function imagesNeeded(pod: JsonObject, settings: { referencePrefix: string }): ImageNeed[] {
  if (skipReason(pod) !== undefined) return [];
  const architecture = podArchitecture(pod);
  return selectContainers(pod, settings.referencePrefix)
    .selected.filter(({ container }) => !stringListAt(container, "command") && !entrypointAnnotation(pod, container.name).value)
    .filter(({ container }) => typeof container.image === "string" && container.image !== "")
    .map(({ container }) => ({ container: container.name, image: container.image as string, ...(architecture ? { architecture } : {}) }));
}

/**
 * `["/kustodia/kustodia-shim", "--"]`; in rotation mode (the shim stays resident as the app's
 * parent) behind tini as PID 1, which reaps the zombies an app's orphans leave: Node reaps only its
 * own children.
 */
function shimPrefix(pod: JsonObject): string[] {
  const rotation = annotations(pod)[Annotations.rotation] ?? "";
  const resident = (RESIDENT_ROTATION_MODES as readonly string[]).includes(rotation);
  return resident ? [TINI_PATH, "--", SHIM_PATH, "--"] : [SHIM_PATH, "--"];
}

export type CommandResult = { command: string[]; args?: string[] } | { denial: Finding };

/**
 * What Kubernetes would run, prefixed by the shim. Kubernetes semantics: the image ENTRYPOINT is used
 * only when `command` is unset, and the image CMD only when `command` and `args` are both unset.
 */
export function shimCommand(pod: JsonObject, container: RawContainer, images: ReadonlyMap<string, ImageLookupResult>): CommandResult {
  const command = stringListAt(container, "command");
  const args = stringListAt(container, "args");
  const prefix = shimPrefix(pod);
  if (command) return { command: [...prefix, ...command], ...(args ? { args } : {}) };

  const annotated = entrypointAnnotation(pod, container.name);
  if (annotated.invalid) return { denial: annotated.invalid };
  if (annotated.value) return { command: [...prefix, ...literalForKubelet(annotated.value)], ...(args ? { args } : {}) };

  if (typeof container.image !== "string" || container.image === "") return { denial: { code: "KUS_NO_IMAGE", container: container.name } };
  const image = { container: container.name, image: container.image };
  const looked = images.get(container.name);
  if (!looked) return { denial: { code: "KUS_IMAGE_NOT_LOOKED_UP", ...image } };
  if (!looked.ok) return { denial: { code: "KUS_IMAGE_UNREADABLE", ...image, error: looked.error } };
  const entrypoint = literalForKubelet(looked.config.entrypoint ?? []);
  const effectiveArgs = args ?? literalForKubelet(looked.config.cmd ?? []);
  if (entrypoint.length === 0 && effectiveArgs.length === 0) return { denial: { code: "KUS_IMAGE_RUNS_NOTHING", ...image } };
  return { command: [...prefix, ...entrypoint], ...(effectiveArgs.length > 0 ? { args: effectiveArgs } : {}) };
}
