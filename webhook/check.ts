// `kustodia check`: what the webhook would do to one pod, container by container, in words a user can
// act on — which containers are selected and why, their new command, which reference var becomes
// which app var read from where, the warnings and the denial. Pure: the caller looks up images.
// Every decision comes from the mutation rules themselves (mutate.ts); this module only explains.
import { ANNOTATION_PREFIX, Annotations, MOUNT_PATH, SERVICE_ACCOUNT_TOKEN_DIR } from "../common/contract.ts";
import { type Backend, isIssued, parseReference, type Reference, splitList, targetName } from "../common/reference.ts";
import { readSetting, ShimSettings } from "../common/shim-settings.ts";
import type { ContainerPlan, Decision } from "./decision.ts";
import { isNotice, renderDenial, renderFinding, renderSelection, renderSkipReason } from "./findings.ts";
import type { ImageLookupResult, ImageNeed } from "./image-facts.ts";
import { type MutationSettings, mutatePod } from "./mutate.ts";
import { annotations, arrayAt, containersOf, envOf, type JsonObject, objectAt, type RawContainer, stringAt, stringListAt } from "./pod.ts";
import { selectContainers } from "./selection.ts";

export interface ReferenceReport {
  /** `SECRET_PASSWORD` */
  name: string;
  /** A reference (`value`), one known only at run time (`valueFrom`), a plain value (passthrough), or malformed. */
  kind: "reference" | "valueFrom" | "passthrough" | "invalid";
  /** What the app gets and from where, or why it gets nothing. */
  text: string;
}

export interface ContainerReport {
  list: "initContainers" | "containers";
  name: string;
  selected: boolean;
  /** Why it is (or is not) selected. */
  why: string;
  /** The container's command + args after the mutation, when it is mutated. */
  runs?: string[];
  /** Exec probes and hooks that run through the shim (`kustodia.io/wrap-exec`), with their new command. */
  handlers?: { kind: string; runs: string[] }[];
  /** `KUSTODIA_*` settings the webhook adds to the container's env. */
  settings: string[];
  references: ReferenceReport[];
}

export type Outcome = "mutated" | "not mutated" | "denied";

export interface PodReport {
  outcome: Outcome;
  /** One line: what happens to the pod. */
  summary: string;
  containers: ContainerReport[];
  /** Problems: the exit code is 1 when any pod has one. */
  problems: string[];
  /** Worth knowing, not wrong. */
  notes: string[];
  /** The init container the webhook puts first (delivery `copy`). */
  installContainer?: string;
}

const KNOWN_ANNOTATIONS = new Set<string>(Object.values(Annotations));

/**
 * The pod as the webhook receives it in a cluster: the apiserver's ServiceAccount admission plugin
 * runs before mutating webhooks and mounts the ServiceAccount token into every container, unless the
 * pod sets `automountServiceAccountToken: false` (a ServiceAccount that turns it off cannot be seen
 * from a file). Without this, a pod read from a file would look as if it had no token.
 */
export function asAdmittedByApiserver(pod: JsonObject): JsonObject {
  const spec = objectAt(pod, "spec");
  if (!spec || spec.automountServiceAccountToken === false) return pod;
  const copy = structuredClone(pod);
  const copySpec = copy.spec as JsonObject;
  const volume = "kube-api-access";
  copySpec.volumes = [
    ...(arrayAt(copySpec, "volumes") ?? []),
    {
      name: volume,
      projected: {
        defaultMode: 0o644,
        sources: [
          { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
        ],
      },
    },
  ];
  for (const list of ["initContainers", "containers"] as const) {
    for (const container of containersOf(copySpec, list)) {
      const mounts = arrayAt(container, "volumeMounts") ?? [];
      if (mounts.some((mount) => stringAt(mount, "mountPath") === SERVICE_ACCOUNT_TOKEN_DIR)) continue;
      container.volumeMounts = [...mounts, { name: volume, mountPath: SERVICE_ACCOUNT_TOKEN_DIR, readOnly: true }];
    }
  }
  return copy;
}

/**
 * Stand-ins for image lookups that were not made (`kustodia check --offline`): the new command shows
 * where the image's ENTRYPOINT and CMD go, and a note says they were not read.
 */
export function notLookedUp(needs: readonly ImageNeed[]): { images: Map<string, ImageLookupResult>; notes: string[] } {
  const images = new Map<string, ImageLookupResult>(
    needs.map((need) => [need.container, { ok: true, config: { entrypoint: ["<ENTRYPOINT of the image>"], cmd: ["<CMD of the image>"] } }]),
  );
  const notes = needs.map(
    (need) =>
      `container "${need.container}" has no command: the webhook reads the ENTRYPOINT/CMD of ${need.image} from its registry (not asked: --offline)`,
  );
  return { images, notes };
}

/** `sh -c 'echo "$X"'`: argv as a shell would need it typed. */
export function shellWords(words: readonly string[]): string {
  return words.map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(" ");
}

interface PodDefaults {
  backend: Backend;
  kvMount: string;
}

function podDefaults(pod: JsonObject, settings: MutationSettings): PodDefaults {
  const podAnnotations = annotations(pod);
  const backend = readSetting("backend", podAnnotations[Annotations.backend] || settings.shimDefaults.backend);
  const kvMount = readSetting("vaultKvMount", podAnnotations[Annotations.vaultKvMount] || settings.shimDefaults.vaultKvMount);
  return {
    backend: backend.ok ? backend.value : ShimSettings.backend.fallback,
    kvMount: kvMount.ok ? kvMount.value : ShimSettings.vaultKvMount.fallback,
  };
}

/** Where the shim reads a reference: `vault KV mount "secret", secret "myapp", field "password"`. */
export function describeSource(reference: Reference, defaults: PodDefaults): string {
  if (isIssued(reference)) {
    const parameters = reference.parameters?.map(({ name, value }) => `${name}=${value}`).join(", ");
    const request = reference.parameters
      ? `write to ${reference.path}${parameters ? ` (${parameters})` : ""}`
      : `read of ${reference.path}`;
    return `vault, issued at start by a ${request}, field "${reference.field}"`;
  }
  const backend = reference.backend ?? defaults.backend;
  if (backend === "custodia") return `custodia key /secrets/${reference.path}/${reference.field}`;
  const version = reference.version === undefined ? "" : `, version ${reference.version}`;
  return `vault KV mount "${defaults.kvMount}", secret "${reference.path}", field "${reference.field}"${version}`;
}

function referenceReports(container: RawContainer, pod: JsonObject, settings: MutationSettings): ReferenceReport[] {
  const prefix = settings.referencePrefix;
  const passthrough = new Set(splitList(annotations(pod)[Annotations.passthrough]));
  const defaults = podDefaults(pod, settings);
  const reports: ReferenceReport[] = [];
  for (const item of envOf(container)) {
    const target = targetName(item.name, prefix);
    if (target === undefined) continue;
    if (passthrough.has(item.name)) {
      reports.push({ name: item.name, kind: "passthrough", text: `is a plain value, passed on as it is (${Annotations.passthrough})` });
    } else if (item.valueFrom !== undefined) {
      reports.push({ name: item.name, kind: "valueFrom", text: `→ ${target}: resolved at start from its runtime value (valueFrom)` });
    } else {
      const parsed = parseReference(typeof item.value === "string" ? item.value : "");
      if (!parsed.ok) reports.push({ name: item.name, kind: "invalid", text: parsed.error });
      else if (
        !isIssued(parsed.reference) &&
        (parsed.reference.backend ?? defaults.backend) === "custodia" &&
        parsed.reference.version !== undefined
      )
        reports.push({
          name: item.name,
          kind: "invalid",
          text: `the pod's backend is custodia, and Custodia keys have no versions: "@${parsed.reference.version}" would be ignored`,
        });
      else reports.push({ name: item.name, kind: "reference", text: `→ ${target} from ${describeSource(parsed.reference, defaults)}` });
    }
  }
  return reports;
}

/** Each container as the mutation planned it: selected or not and why, and what it runs now. */
function containerReports(admitted: JsonObject, decision: Decision, settings: MutationSettings): ContainerReport[] {
  const optedIn = annotations(admitted)[Annotations.inject]?.toLowerCase() === "true";
  const plans: ContainerPlan[] = decision.kind === "skip" ? selectContainers(admitted, settings.referencePrefix).all : decision.containers;
  const spec = objectAt(admitted, "spec") ?? {};
  return plans.map((plan) => {
    const container = containersOf(spec, plan.list).find((candidate) => candidate.name === plan.name) as RawContainer;
    const report: ContainerReport = {
      list: plan.list,
      name: plan.name,
      selected: optedIn && plan.selected,
      why: optedIn ? renderSelection(plan.selection) : "the pod is not opted in",
      settings: (plan.shimEnv ?? []).map(({ name, value }) => `${name}=${value}`),
      references: referenceReports(container, admitted, settings),
    };
    if (decision.kind === "mutate" && plan.command) report.runs = [...plan.command, ...(plan.args ?? [])];
    if (decision.kind === "mutate" && plan.handlers) report.handlers = plan.handlers.map(({ kind, command }) => ({ kind, runs: command }));
    return report;
  });
}

/** `kustodia.io/*` annotations the webhook does not know, or `entrypoint.<c>` naming no container. */
function annotationProblems(pod: JsonObject): string[] {
  const names = new Set(
    ["initContainers", "containers"].flatMap((list) => containersOf(objectAt(pod, "spec") ?? {}, list as never).map((c) => c.name)),
  );
  const problems: string[] = [];
  for (const key of Object.keys(annotations(pod))) {
    if (!key.startsWith(ANNOTATION_PREFIX) || KNOWN_ANNOTATIONS.has(key)) continue;
    if (key.startsWith(Annotations.entrypointPrefix)) {
      const container = key.slice(Annotations.entrypointPrefix.length);
      if (!names.has(container))
        problems.push(`annotation ${key} names "${container}", which is not a container or initContainer of this pod`);
      continue;
    }
    const normalized = key.toLowerCase().replaceAll("_", "-");
    const meant = [...KNOWN_ANNOTATIONS].find((known) => known === normalized);
    problems.push(
      `unknown annotation ${key}; the webhook ignores it (${meant ? `did you mean ${meant}?` : "docs/configuration.md lists the annotations"})`,
    );
  }
  return problems;
}

/**
 * A Bank-Vaults value (`vault:<mount>/data/<path>#<key>[#<version>]`, KV v2; `vault:<mount>/<path>#<key>`,
 * KV v1) in kustodia's grammar, with the KV mount it names; undefined when there is no equivalent.
 * The reference has no `vault:` prefix: while Bank-Vaults' webhook still runs it would take any value
 * starting with `vault:` for its own (docs/migration.md).
 */
export function fromBankVaults(value: string): { reference: string; kvMount: string } | undefined {
  const match = /^vault:([^#]+)#([^#{}]+)(?:#([1-9][0-9]*))?$/.exec(value);
  if (!match) return undefined;
  const [, fullPath = "", key = "", version] = match;
  const [mount = "", ...rest] = fullPath.split("/");
  const path = rest[0] === "data" && rest.length > 1 ? rest.slice(1) : rest;
  if (mount === "" || path.length === 0 || /^v[0-9]+$/.test(mount)) return undefined;
  return { reference: `${path.join("/")}#${key}${version ? `@${version}` : ""}`, kvMount: mount };
}

const GUSTODIA = /(^|\/)gustodia$/;

/** Values written for other injectors (Bank-Vaults' `vault:`, gustodia in the command) and how to write them for kustodia. */
function migrationProblems(pod: JsonObject, settings: MutationSettings): string[] {
  const problems: string[] = [];
  for (const list of ["initContainers", "containers"] as const) {
    for (const container of containersOf(objectAt(pod, "spec") ?? {}, list)) {
      const where = `container "${container.name}"`;
      const command = stringListAt(container, "command") ?? [];
      if (command[0] && GUSTODIA.test(command[0])) {
        problems.push(
          `${where} runs ${command[0]}: drop it from command; the webhook puts the kustodia shim there, and the ${settings.referencePrefix} references stay as they are, read from Custodia with ${Annotations.backend}: custodia (docs/migration.md)`,
        );
      }
      for (const item of envOf(container)) {
        const value = typeof item.value === "string" ? item.value : "";
        if (targetName(item.name, settings.referencePrefix) !== undefined || !/^(>>)?vault:|\$\{(>>)?vault:/.test(value)) continue;
        const converted = fromBankVaults(value);
        const defaults = podDefaults(pod, settings);
        const scheme = defaults.backend === "vault" ? "" : "vault:";
        const mount =
          converted && converted.kvMount !== defaults.kvMount ? ` with ${Annotations.vaultKvMount}: "${converted.kvMount}"` : "";
        problems.push(
          converted
            ? `${where} env ${item.name} holds a Bank-Vaults reference; kustodia reads ${settings.referencePrefix}<NAME> vars: write ${settings.referencePrefix}${item.name}: ${scheme}${converted.reference}${mount} (docs/migration.md)`
            : `${where} env ${item.name} holds a Bank-Vaults value (${value.startsWith(">>") ? "a write" : value.includes("${") ? "an inline template" : "transit or an unusual path"}) that kustodia has no equivalent for (docs/migration.md)`,
        );
      }
    }
  }
  return problems;
}

function declaresReferences(container: ContainerReport): boolean {
  return container.references.some((reference) => reference.kind !== "passthrough");
}

/**
 * Explains what the webhook would do to `pod` (raw JSON, as in a file). `images` holds the lookups
 * of `imagesNeeded(asAdmittedByApiserver(pod))`; a missing entry is reported as not looked up.
 */
export function checkPod(pod: JsonObject, settings: MutationSettings, images: ReadonlyMap<string, ImageLookupResult>): PodReport {
  const admitted = asAdmittedByApiserver(pod);
  const problems = [...annotationProblems(pod), ...migrationProblems(pod, settings)];
  const notes: string[] = [];
  const inject = annotations(pod)[Annotations.inject];
  const decision = mutatePod(admitted, settings, images);
  const containers = containerReports(admitted, decision, settings);
  for (const warning of decision.warnings) (isNotice(warning) ? notes : problems).push(renderFinding(warning));
  const warned = new Set(
    decision.warnings.flatMap((warning) => (warning.code === "KUS_REFERENCE_INVALID" ? [`${warning.container}\0${warning.variable}`] : [])),
  );
  for (const container of containers) {
    for (const reference of container.references) {
      if (reference.kind === "invalid" && !warned.has(`${container.name}\0${reference.name}`))
        problems.push(`container "${container.name}" env ${reference.name}: ${reference.text}`);
    }
  }

  let outcome: Outcome;
  let summary: string;
  if (decision.kind === "deny") {
    outcome = "denied";
    summary = "denied: the apiserver would refuse to create it";
    problems.push(`kustodia: ${renderDenial(decision.denials)}`);
  } else if (decision.kind === "skip") {
    outcome = "not mutated";
    summary = `not mutated: ${renderSkipReason(decision.reason)}`;
    const declaring = containers.filter(declaresReferences);
    if (inject !== undefined && inject.toLowerCase() !== "true") {
      problems.push(`${Annotations.inject} is ${JSON.stringify(inject)}; only "true" opts a pod in`);
    } else if (inject === undefined && declaring.length > 0) {
      problems.push(
        `container(s) ${declaring.map((c) => `"${c.name}"`).join(", ")} declare ${settings.referencePrefix} references but the pod is not opted in: the app would see the reference text, not the secret (add ${Annotations.inject}: "true")`,
      );
    }
    if (annotations(pod)[Annotations.status] !== undefined)
      notes.push(`${Annotations.status} is set: a copy of a stored pod? Remove it to have the pod mutated`);
  } else if (decision.injected.length === 0) {
    outcome = "not mutated";
    summary = "opted in, but no container to inject (marked skipped)";
  } else {
    outcome = "mutated";
    summary = `mutated: the shim runs first in ${decision.injected.map((name) => `"${name}"`).join(", ")}`;
  }
  for (const container of containers) {
    if (!container.selected && declaresReferences(container) && outcome === "mutated") {
      notes.push(`container "${container.name}" declares references but is not selected: it would see the reference text`);
    }
  }
  const report: PodReport = { outcome, summary, containers, problems, notes };
  if (decision.kind === "mutate" && decision.prepended) report.installContainer = String(decision.prepended.name);
  return report;
}

/** The report as text, indented under `title`. */
export function renderPodReport(title: string, report: PodReport): string {
  const lines = [`${title}: ${report.summary}`];
  for (const container of report.containers) {
    const kind = container.list === "initContainers" ? "initContainer" : "container";
    lines.push(`  ${kind} ${container.name}: ${container.selected ? "selected" : "not selected"} (${container.why})`);
    if (container.runs) lines.push(`    runs: ${shellWords(container.runs)}`);
    for (const handler of container.handlers ?? []) lines.push(`    ${handler.kind} runs: ${shellWords(handler.runs)}`);
    for (const reference of container.references)
      lines.push(`    ${reference.kind === "invalid" ? "✗ " : ""}${reference.name} ${reference.text}`);
    if (container.settings.length > 0) lines.push(`    shim settings: ${container.settings.join(" ")}`);
  }
  if (report.installContainer) {
    lines.push(`  + initContainer ${report.installContainer}, put first: copies the shim into the volume mounted at ${MOUNT_PATH}`);
  }
  for (const problem of report.problems) lines.push(`  problem: ${problem}`);
  for (const note of report.notes) lines.push(`  note: ${note}`);
  lines.push(report.problems.length === 0 ? "  ok" : `  ${report.problems.length} problem(s)`);
  return lines.join("\n");
}
