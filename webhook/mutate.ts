// The mutation rules (DESIGN.md §2–§4), as pure functions over the raw pod JSON. No I/O: image
// ENTRYPOINT/CMD facts are looked up by the caller (see `imagesNeeded`) and passed in.
import {
  Annotations,
  INSTALL_CONTAINER_NAME,
  INSTALL_MOUNT_PATH,
  MOUNT_PATH,
  POD_IDENTITY_FIELDS,
  SERVICE_ACCOUNT_TOKEN_DIR,
  SHIM_IN_IMAGE,
  SHIM_PATH,
  SHIM_TOKEN_DIR,
  ShimEnv,
  TINI_PATH,
  VOLUME_NAME,
} from "../common/contract.ts";
import { ISSUE_PREFIX, isValidEnvName, parseReference, splitList, targetName } from "../common/reference.ts";
import { boundedWarnings, MAX_MESSAGE_LENGTH, safeText } from "./messages.ts";
import { isAtOrUnder } from "./mount-path.ts";
import {
  annotations,
  arrayAt,
  containersOf,
  envOf,
  isObject,
  type Json,
  type JsonObject,
  objectAt,
  type RawContainer,
  stringAt,
  stringListAt,
} from "./pod.ts";
import type { Settings } from "./settings.ts";

/** The part of the webhook's settings that the mutation reads. */
export type MutationSettings = Pick<
  Settings,
  | "shimImage"
  | "shimVersion"
  | "delivery"
  | "emptyDirSizeLimit"
  | "installResources"
  | "installRunAsUser"
  | "referencePrefix"
  | "shimDefaults"
  | "vaultAddrAllowlist"
  | "saTokenAudience"
>;

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
}

export type ImageLookupResult = { ok: true; config: ImageConfig } | { ok: false; error: string };

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** An image whose ENTRYPOINT/CMD the mutation needs. */
export interface ImageNeed {
  container: string;
  image: string;
  /** Undefined: the pod does not pin an architecture; use the configured default. */
  architecture?: string;
}

export type Decision =
  | { kind: "skip"; reason: string; warnings: string[] }
  | {
      kind: "mutate";
      /** The pod as it should be stored. */
      pod: JsonObject;
      /** The init container put first into `pod`, if any — so a patch can say "insert" instead of "shift everything". */
      prepended?: JsonObject;
      injected: string[];
      warnings: string[];
    }
  | { kind: "deny"; message: string; warnings: string[] };

type ListName = "containers" | "initContainers";

interface Selected {
  list: ListName;
  index: number;
  container: RawContainer;
}

const MAX_ENTRYPOINT_ANNOTATION = 8192;

/** Why a pod is not for us, or undefined when it is opted in and not yet mutated. */
function skipReason(pod: JsonObject): string | undefined {
  const podAnnotations = annotations(pod);
  if (podAnnotations[Annotations.inject]?.toLowerCase() !== "true") return `not opted in (${Annotations.inject} is not "true")`;
  if (podAnnotations[Annotations.status] !== undefined)
    return `already handled (${Annotations.status}: ${podAnnotations[Annotations.status]})`;
  const spec = objectAt(pod, "spec");
  if (!spec) return "pod has no spec";
  const os = stringAt(objectAt(spec, "os"), "name") ?? stringAt(objectAt(spec, "nodeSelector"), "kubernetes.io/os");
  if (os === "windows") return "Windows pods are not supported";
  return undefined;
}

function declaresReferences(container: JsonObject, prefix: string, passthrough: Set<string>): boolean {
  return envOf(container).some((env) => targetName(env.name, prefix) !== undefined && !passthrough.has(env.name));
}

export function selectContainers(pod: JsonObject, settings: MutationSettings): { selected: Selected[]; warnings: string[] } {
  const spec = objectAt(pod, "spec") ?? {};
  const podAnnotations = annotations(pod);
  const passthrough = new Set(splitList(podAnnotations[Annotations.passthrough]));
  const requested = podAnnotations[Annotations.containers];
  const wanted = requested === undefined ? undefined : new Set(splitList(requested));
  const selected: Selected[] = [];
  const seen = new Set<string>();
  for (const list of ["initContainers", "containers"] as const) {
    for (const container of containersOf(spec, list)) {
      seen.add(container.name);
      const chosen = wanted ? wanted.has(container.name) : declaresReferences(container, settings.referencePrefix, passthrough);
      if (chosen) selected.push({ list, index: indexIn(spec, list, container), container });
    }
  }
  const warnings = wanted
    ? [...wanted]
        .filter((name) => !seen.has(name))
        .map((name) => `${Annotations.containers} names "${name}", which is not a container or initContainer of this pod`)
    : [];
  return { selected, warnings };
}

/** The container's position in the raw array (containersOf skips malformed entries). */
function indexIn(spec: JsonObject, list: ListName, container: RawContainer): number {
  return (arrayAt(spec, list) ?? []).indexOf(container);
}

function entrypointAnnotation(pod: JsonObject, container: string): { value?: string[]; error?: string } {
  const key = `${Annotations.entrypointPrefix}${container}`;
  const raw = annotations(pod)[key];
  if (raw === undefined) return {};
  const invalid = {
    error: `annotation ${key} must be a non-empty JSON array of strings, like '["/app/server","--flag"]'; got ${truncate(raw)}`,
  };
  if (raw.length > MAX_ENTRYPOINT_ANNOTATION) return invalid;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((item) => typeof item === "string")) return { value: parsed };
  } catch {
    /* reported below */
  }
  return invalid;
}

function truncate(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
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
export function imagesNeeded(pod: JsonObject, settings: MutationSettings): ImageNeed[] {
  if (skipReason(pod) !== undefined) return [];
  const architecture = podArchitecture(pod);
  return selectContainers(pod, settings)
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
  const rotation = annotations(pod)[Annotations.rotation];
  const resident = rotation === "restart" || rotation === "signal";
  return resident ? [TINI_PATH, "--", SHIM_PATH, "--"] : [SHIM_PATH, "--"];
}

type CommandResult = { command: string[]; args?: string[] } | { error: string };

/**
 * What Kubernetes would run, prefixed by the shim. Kubernetes semantics: the image ENTRYPOINT is used
 * only when `command` is unset, and the image CMD only when `command` and `args` are both unset.
 */
function shimCommand(pod: JsonObject, container: RawContainer, images: ReadonlyMap<string, ImageLookupResult>): CommandResult {
  const command = stringListAt(container, "command");
  const args = stringListAt(container, "args");
  const prefix = shimPrefix(pod);
  if (command) return { command: [...prefix, ...command], ...(args ? { args } : {}) };

  const annotated = entrypointAnnotation(pod, container.name);
  if (annotated.error) return { error: annotated.error };
  if (annotated.value) return { command: [...prefix, ...literalForKubelet(annotated.value)], ...(args ? { args } : {}) };

  const fix = `set "command:" on container "${container.name}" or the annotation ${Annotations.entrypointPrefix}${container.name}: '["/path/to/app"]'`;
  if (typeof container.image !== "string" || container.image === "") return { error: `container "${container.name}" has no image; ${fix}` };
  const looked = images.get(container.name);
  if (!looked) return { error: `the ENTRYPOINT of image "${container.image}" (container "${container.name}") was not looked up; ${fix}` };
  if (!looked.ok)
    return {
      error: `cannot read the ENTRYPOINT/CMD of image "${container.image}" (container "${container.name}"): ${looked.error}; ${fix}`,
    };
  const entrypoint = literalForKubelet(looked.config.entrypoint ?? []);
  const effectiveArgs = args ?? literalForKubelet(looked.config.cmd ?? []);
  if (entrypoint.length === 0 && effectiveArgs.length === 0) {
    return {
      error: `image "${container.image}" (container "${container.name}") has neither ENTRYPOINT nor CMD, so there is nothing to run; ${fix}`,
    };
  }
  return { command: [...prefix, ...entrypoint], ...(effectiveArgs.length > 0 ? { args: effectiveArgs } : {}) };
}

/** Admission warnings for the reference vars of one container (malformed references, bad names, collisions). */
function referenceWarnings(container: RawContainer, prefix: string, passthrough: Set<string>): string[] {
  const env = envOf(container);
  const names = new Set(env.map((item) => item.name));
  const warnings: string[] = [];
  for (const item of env) {
    const target = targetName(item.name, prefix);
    if (target === undefined || passthrough.has(item.name)) continue;
    const where = `container "${container.name}" env ${item.name}`;
    if (!isValidEnvName(target))
      warnings.push(`${where}: "${target}" is not a valid environment variable name; the container will fail to start`);
    if (names.has(target)) warnings.push(`${where}: the container already sets ${target}; the container will fail to start`);
    if (item.valueFrom !== undefined) continue; // resolved by the shim from the runtime value
    const value = typeof item.value === "string" ? item.value : "";
    const parsed = parseReference(value);
    if (!parsed.ok) warnings.push(`${where}: ${parsed.error}; the container will fail to start`);
  }
  return warnings;
}

type Validated<T> = { value: T } | { error: string };

const SAFE_SETTING = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;
const ROTATION_MODES = ["restart", "signal", "none"];
const DURATION = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
const SIGNAL = /^SIG[A-Z0-9]{2,8}$/;

/** The shim's `KUSTODIA_*` env from cluster defaults and the pod's annotations, validated. */
function shimEnvironment(pod: JsonObject, settings: MutationSettings): Validated<Map<string, string>> {
  const podAnnotations = annotations(pod);
  const env = new Map<string, string>();
  const defaults = settings.shimDefaults;
  const set = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== "") env.set(name, value);
  };
  set(ShimEnv.backend, defaults.backend);
  set(ShimEnv.vaultAddr, defaults.vaultAddr);
  set(ShimEnv.vaultCaCert, defaults.vaultCaCert);
  set(ShimEnv.vaultAuthMethod, defaults.vaultAuthMethod);
  set(ShimEnv.vaultAuthPath, defaults.vaultAuthPath);
  set(ShimEnv.vaultRole, defaults.vaultRole);
  set(ShimEnv.vaultKvMount, defaults.vaultKvMount);
  set(ShimEnv.custodiaUrl, defaults.custodiaUrl);
  set(ShimEnv.timeout, defaults.timeout);
  set(ShimEnv.logLevel, defaults.logLevel);
  if (settings.referencePrefix !== "SECRET_") set(ShimEnv.prefix, settings.referencePrefix);

  const checks: [string, string, (value: string) => boolean, string][] = [
    [Annotations.backend, ShimEnv.backend, (v) => v === "vault" || v === "custodia", '"vault" or "custodia"'],
    [Annotations.vaultRole, ShimEnv.vaultRole, (v) => SAFE_SETTING.test(v), "letters, digits, '.', '_', '-', '/'"],
    [
      Annotations.vaultAuthPath,
      ShimEnv.vaultAuthPath,
      (v) => SAFE_SETTING.test(v) && !v.split("/").includes(".."),
      "a mount path like auth/kubernetes",
    ],
    [
      Annotations.vaultKvMount,
      ShimEnv.vaultKvMount,
      (v) => SAFE_SETTING.test(v) && !v.split("/").includes(".."),
      "a mount path like secret",
    ],
    [
      Annotations.vaultNamespace,
      ShimEnv.vaultNamespace,
      (v) => SAFE_SETTING.test(v) && !v.split("/").includes(".."),
      "a namespace path like team-a",
    ],
    [Annotations.passthrough, ShimEnv.passthrough, (v) => splitList(v).every(isValidEnvName), "a comma-separated list of env var names"],
    [Annotations.ignoreMissing, ShimEnv.ignoreMissing, (v) => v === "true" || v === "false", '"true" or "false"'],
    [Annotations.rotation, ShimEnv.rotation, (v) => ROTATION_MODES.includes(v), ROTATION_MODES.map((m) => `"${m}"`).join(", ")],
    [Annotations.rotationInterval, ShimEnv.rotationInterval, (v) => DURATION.test(v), "a duration like 30s, 5m or 1h"],
    [Annotations.rotationSignal, ShimEnv.rotationSignal, (v) => SIGNAL.test(v), "a signal name like SIGHUP"],
  ];
  for (const [annotation, envName, valid, accepted] of checks) {
    const value = podAnnotations[annotation];
    if (value === undefined) continue;
    if (!valid(value)) return { error: `annotation ${annotation} has the invalid value ${truncate(value)}; accepted: ${accepted}` };
    env.set(envName, value);
  }
  const addr = podAnnotations[Annotations.vaultAddr];
  if (addr !== undefined) {
    const allowed = settings.vaultAddrAllowlist.some(
      (prefix) => addr === prefix || addr.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`),
    );
    if (!allowed) {
      return {
        error: `annotation ${Annotations.vaultAddr} ${truncate(addr)} is not in the cluster's address allowlist${settings.vaultAddrAllowlist.length === 0 ? " (empty: the backend address is set by the cluster admin only)" : ""}`,
      };
    }
    env.set(ShimEnv.vaultAddr, addr);
  }
  return { value: env };
}

/**
 * Issued references may name the pod ({pod.name}, {pod.namespace}, {pod.serviceAccount}): a container
 * that declares one gets the pod's identity from the downward API (unless it sets those vars itself).
 */
function podIdentityEnv(container: RawContainer, prefix: string, passthrough: Set<string>): Json[] {
  const env = envOf(container);
  const issues = env.some(
    (item) =>
      targetName(item.name, prefix) !== undefined &&
      !passthrough.has(item.name) &&
      typeof item.value === "string" &&
      item.value.startsWith(ISSUE_PREFIX),
  );
  if (!issues) return [];
  const own = new Set(env.map((item) => item.name));
  return Object.entries(POD_IDENTITY_FIELDS)
    .filter(([name]) => !own.has(name))
    .map(([name, fieldPath]) => ({ name, valueFrom: { fieldRef: { fieldPath } } }));
}

/** Backend addresses are the cluster's to set: a container's own value is replaced (with a warning). */
const CLUSTER_OWNED_ENV = new Set<string>([ShimEnv.vaultAddr, ShimEnv.custodiaUrl]);

function withShimEnv(container: RawContainer, shimEnv: Map<string, string>, warnings: string[]): Json[] {
  const existing = envOf(container);
  const kept: Json[] = (arrayAt(container, "env") ?? []).filter((item) => {
    if (!isObject(item) || typeof item.name !== "string") return true;
    if (!CLUSTER_OWNED_ENV.has(item.name) || !shimEnv.has(item.name)) return true;
    warnings.push(`container "${container.name}" sets ${item.name}; kustodia replaced it with the cluster's value`);
    return false;
  });
  const own = new Set(existing.map((item) => item.name));
  for (const [name, value] of shimEnv) {
    if (own.has(name) && !CLUSTER_OWNED_ENV.has(name)) continue; // the container's own setting wins
    kept.push({ name, value });
  }
  return kept;
}

function freeName(taken: Set<string>, base: string): string {
  if (!taken.has(base)) return base;
  for (let n = 1; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

const RESTRICTED_SECURITY_CONTEXT = (runAsUser: number): JsonObject => ({
  runAsNonRoot: true,
  runAsUser,
  runAsGroup: runAsUser,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
});

function installContainer(name: string, volume: string, settings: MutationSettings): JsonObject {
  return {
    name,
    image: settings.shimImage,
    imagePullPolicy: "IfNotPresent",
    command: [SHIM_IN_IMAGE, "install", INSTALL_MOUNT_PATH],
    resources: structuredClone(settings.installResources),
    securityContext: RESTRICTED_SECURITY_CONTEXT(settings.installRunAsUser),
    volumeMounts: [{ name: volume, mountPath: INSTALL_MOUNT_PATH }],
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function shimVolume(name: string, settings: MutationSettings): JsonObject {
  if (settings.delivery === "image-volume") return { name, image: { reference: settings.shimImage, pullPolicy: "IfNotPresent" } };
  return { name, emptyDir: { sizeLimit: settings.emptyDirSizeLimit } };
}

function allContainerNames(spec: JsonObject): Set<string> {
  const names = new Set<string>();
  for (const list of ["containers", "initContainers", "ephemeralContainers"]) {
    for (const item of arrayAt(spec, list) ?? []) if (isObject(item) && typeof item.name === "string") names.add(item.name);
  }
  return names;
}

function mountsAtShimPath(container: RawContainer): boolean {
  return (arrayAt(container, "volumeMounts") ?? []).some((mount) => isAtOrUnder(stringAt(mount, "mountPath") ?? "", MOUNT_PATH));
}

/**
 * Decides what happens to a pod: skip (no patch), mutate (the new pod), or deny (with a message
 * that names the fix). `images` holds the lookups for `imagesNeeded(pod)`, keyed by container name.
 */
export function mutatePod(original: JsonObject, settings: MutationSettings, images: ReadonlyMap<string, ImageLookupResult>): Decision {
  // Warnings and messages quote the pod's own names and values: escaped and bounded (messages.ts).
  const decision = decide(original, settings, images);
  if (decision.kind === "deny")
    return { ...decision, message: safeText(decision.message, MAX_MESSAGE_LENGTH), warnings: boundedWarnings(decision.warnings) };
  return decision.warnings.length === 0 ? decision : { ...decision, warnings: boundedWarnings(decision.warnings) };
}

function decide(original: JsonObject, settings: MutationSettings, images: ReadonlyMap<string, ImageLookupResult>): Decision {
  const reason = skipReason(original);
  if (reason) return { kind: "skip", reason, warnings: [] };

  const pod = structuredClone(original);
  const spec = objectAt(pod, "spec") as JsonObject;
  const { selected, warnings } = selectContainers(pod, settings);
  if (selected.length === 0) {
    warnings.push(`${Annotations.inject} is "true" but no container declares a ${settings.referencePrefix} variable; nothing injected`);
    setAnnotation(pod, Annotations.status, `skipped ${settings.shimVersion}: no container to inject`);
    return { kind: "mutate", pod, injected: [], warnings };
  }

  const shimEnv = shimEnvironment(pod, settings);
  if ("error" in shimEnv) return { kind: "deny", message: shimEnv.error, warnings };
  const passthrough = new Set(splitList(annotations(pod)[Annotations.passthrough]));

  const volumeNames = new Set((arrayAt(spec, "volumes") ?? []).map((volume) => stringAt(volume, "name") ?? ""));
  const volumeName = freeName(volumeNames, VOLUME_NAME);
  volumeNames.add(volumeName);
  let tokenVolumeName: string | undefined;
  const errors: string[] = [];
  for (const { list, index, container } of selected) {
    if (mountsAtShimPath(container)) {
      errors.push(`container "${container.name}" already mounts a volume at ${MOUNT_PATH}, where kustodia mounts its shim`);
      continue;
    }
    const command = shimCommand(pod, container, images);
    if ("error" in command) {
      errors.push(command.error);
      continue;
    }
    warnings.push(...referenceWarnings(container, settings.referencePrefix, passthrough));
    const mutated: RawContainer = { ...container, command: command.command };
    if (command.args) mutated.args = command.args;
    else delete mutated.args;
    mutated.env = withShimEnv(container, shimEnv.value, warnings);
    mutated.env.push(...podIdentityEnv(container, settings.referencePrefix, passthrough));
    mutated.volumeMounts = [...(arrayAt(container, "volumeMounts") ?? []), { name: volumeName, mountPath: MOUNT_PATH, readOnly: true }];
    if (needsServiceAccountToken(shimEnv.value) && !hasServiceAccountToken(container)) {
      tokenVolumeName ??= freeName(volumeNames, `${VOLUME_NAME}-token`);
      warnings.push(
        `container "${container.name}" has no ServiceAccount token mounted (automountServiceAccountToken is off for the pod or its ServiceAccount); kustodia mounts a projected token for the shim at ${SHIM_TOKEN_DIR}`,
      );
      mutated.volumeMounts.push({ name: tokenVolumeName, mountPath: SHIM_TOKEN_DIR, readOnly: true });
      mutated.env.push({ name: ShimEnv.saTokenFile, value: `${SHIM_TOKEN_DIR}/token` });
    }
    (arrayAt(spec, list) as Json[])[index] = mutated;
  }
  if (errors.length > 0) return { kind: "deny", message: errors.join("; "), warnings };

  spec.volumes = [...(arrayAt(spec, "volumes") ?? []), shimVolume(volumeName, settings)];
  if (tokenVolumeName) spec.volumes.push(tokenVolume(tokenVolumeName, settings));
  let prepended: JsonObject | undefined;
  if (settings.delivery === "copy") {
    prepended = installContainer(freeName(allContainerNames(spec), INSTALL_CONTAINER_NAME), volumeName, settings);
    spec.initContainers = [prepended, ...(arrayAt(spec, "initContainers") ?? [])];
  }
  setAnnotation(pod, Annotations.status, `injected ${settings.shimVersion}`);
  return { kind: "mutate", pod, ...(prepended ? { prepended } : {}), injected: selected.map(({ container }) => container.name), warnings };
}

/** The shim logs in with the pod's ServiceAccount token for Vault's kubernetes and jwt auth methods. */
function needsServiceAccountToken(shimEnv: Map<string, string>): boolean {
  const backend = shimEnv.get(ShimEnv.backend) ?? "vault";
  const method = shimEnv.get(ShimEnv.vaultAuthMethod) ?? "kubernetes";
  return backend === "vault" && (method === "kubernetes" || method === "jwt");
}

/** False when automounting is off (pod or ServiceAccount) and the container names no token file itself. */
function hasServiceAccountToken(container: RawContainer): boolean {
  const mounted = (arrayAt(container, "volumeMounts") ?? []).some(
    (mount) => stringAt(mount, "mountPath")?.replace(/\/+$/, "") === SERVICE_ACCOUNT_TOKEN_DIR,
  );
  return mounted || envOf(container).some((item) => item.name === ShimEnv.saTokenFile);
}

/** A projected ServiceAccount token for the shim alone (rotated by the kubelet). */
function tokenVolume(name: string, settings: MutationSettings): JsonObject {
  const token: JsonObject = { path: "token", expirationSeconds: 3600 };
  if (settings.saTokenAudience) token.audience = settings.saTokenAudience;
  return { name, projected: { defaultMode: 0o444, sources: [{ serviceAccountToken: token }] } };
}

function setAnnotation(pod: JsonObject, key: string, value: string): void {
  const metadata = objectAt(pod, "metadata") ?? {};
  pod.metadata = metadata;
  metadata.annotations = { ...(objectAt(metadata, "annotations") ?? {}), [key]: value };
}
