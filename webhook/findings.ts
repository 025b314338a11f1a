// What the mutation found, as codes with parameters: denials, admission warnings, and why a pod or
// container was (not) picked. The mutation core returns these; text is made only at the edges
// (admission responses, `kustodia check`) by `renderFinding` and friends, and nothing branches on it.
import { Annotations, MOUNT_PATH, SHIM_TOKEN_DIR } from "../common/contract.ts";
import { ISSUE_PREFIX } from "../common/reference.ts";
import type { ExecHandlerKind } from "../common/shim-settings.ts";
import { boundedWarnings, MAX_MESSAGE_LENGTH, safeText } from "./messages.ts";

export type Finding =
  | { code: "KUS_ANNOTATION_INVALID"; annotation: string; value: string; accepted: string }
  | { code: "KUS_VAULT_ADDR_NOT_ALLOWED"; annotation: string; value: string; allowlistEmpty: boolean }
  | { code: "KUS_ENTRYPOINT_ANNOTATION_INVALID"; annotation: string; value: string }
  | { code: "KUS_SHIM_PATH_TAKEN"; container: string }
  | { code: "KUS_NO_IMAGE"; container: string }
  | { code: "KUS_IMAGE_NOT_LOOKED_UP"; container: string; image: string }
  | { code: "KUS_IMAGE_UNREADABLE"; container: string; image: string; error: string }
  | { code: "KUS_IMAGE_RUNS_NOTHING"; container: string; image: string }
  | { code: "KUS_CONTAINER_NOT_FOUND"; container: string }
  | { code: "KUS_NOTHING_TO_INJECT"; prefix: string }
  | { code: "KUS_TARGET_NAME_INVALID"; container: string; variable: string; target: string }
  | { code: "KUS_TARGET_NAME_TAKEN"; container: string; variable: string; target: string }
  | { code: "KUS_REFERENCE_INVALID"; container: string; variable: string; error: string }
  | { code: "KUS_CLUSTER_SETTING_REPLACED"; container: string; variable: string }
  | { code: "KUS_TOKEN_MOUNTED"; container: string }
  | { code: "KUS_HANDLER_NEEDS_SECRET"; container: string; handler: ExecHandlerKind; variables: string[] }
  | { code: "KUS_WRAPPED_HANDLER_ISSUES"; container: string; handlers: ExecHandlerKind[] };

export type FindingCode = Finding["code"];

/** Findings that only say what the webhook adds: worth knowing, not wrong. */
const NOTICES: ReadonlySet<FindingCode> = new Set<FindingCode>(["KUS_TOKEN_MOUNTED"]);

export function isNotice(finding: Finding): boolean {
  return NOTICES.has(finding.code);
}

/** Why a pod is left alone. */
export type SkipReason = { code: "not-opted-in" } | { code: "already-handled"; status: string } | { code: "no-spec" } | { code: "windows" };

/** Why a container is (not) selected. */
export type Selection =
  | { code: "named" }
  | { code: "not-named" }
  | { code: "declares"; variables: string[] }
  | { code: "all-passthrough"; prefix: string }
  | { code: "no-references"; prefix: string };

function quoted(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

function fixFor(container: string): string {
  return `set "command:" on container "${container}" or the annotation ${Annotations.entrypointPrefix}${container}: '["/path/to/app"]'`;
}

const render: { [C in FindingCode]: (finding: Extract<Finding, { code: C }>) => string } = {
  KUS_ANNOTATION_INVALID: (f) => `annotation ${f.annotation} has the invalid value ${quoted(f.value)}; accepted: ${f.accepted}`,
  KUS_VAULT_ADDR_NOT_ALLOWED: (f) =>
    `annotation ${f.annotation} ${quoted(f.value)} is not in the cluster's address allowlist${f.allowlistEmpty ? " (empty: the backend address is set by the cluster admin only)" : ""}`,
  KUS_ENTRYPOINT_ANNOTATION_INVALID: (f) =>
    `annotation ${f.annotation} must be a non-empty JSON array of strings, like '["/app/server","--flag"]'; got ${quoted(f.value)}`,
  KUS_SHIM_PATH_TAKEN: (f) => `container "${f.container}" already mounts a volume at ${MOUNT_PATH}, where kustodia mounts its shim`,
  KUS_NO_IMAGE: (f) => `container "${f.container}" has no image; ${fixFor(f.container)}`,
  KUS_IMAGE_NOT_LOOKED_UP: (f) =>
    `the ENTRYPOINT of image "${f.image}" (container "${f.container}") was not looked up; ${fixFor(f.container)}`,
  KUS_IMAGE_UNREADABLE: (f) =>
    `cannot read the ENTRYPOINT/CMD of image "${f.image}" (container "${f.container}"): ${f.error}; ${fixFor(f.container)}`,
  KUS_IMAGE_RUNS_NOTHING: (f) =>
    `image "${f.image}" (container "${f.container}") has neither ENTRYPOINT nor CMD, so there is nothing to run; ${fixFor(f.container)}`,
  KUS_CONTAINER_NOT_FOUND: (f) => `${Annotations.containers} names "${f.container}", which is not a container or initContainer of this pod`,
  KUS_NOTHING_TO_INJECT: (f) => `${Annotations.inject} is "true" but no container declares a ${f.prefix} variable; nothing injected`,
  KUS_TARGET_NAME_INVALID: (f) =>
    `container "${f.container}" env ${f.variable}: "${f.target}" is not a valid environment variable name; the container will fail to start`,
  KUS_TARGET_NAME_TAKEN: (f) =>
    `container "${f.container}" env ${f.variable}: the container already sets ${f.target}; the container will fail to start`,
  KUS_REFERENCE_INVALID: (f) => `container "${f.container}" env ${f.variable}: ${f.error}; the container will fail to start`,
  KUS_CLUSTER_SETTING_REPLACED: (f) => `container "${f.container}" sets ${f.variable}; kustodia replaced it with the cluster's value`,
  KUS_HANDLER_NEEDS_SECRET: (f) =>
    `container "${f.container}" ${f.handler} reads ${f.variables.join(", ")}, which only the app's process gets from kustodia: the handler sees no value and fails; run it through the shim with the annotation ${Annotations.wrapExec}: "${f.handler}" (or "true")`,
  KUS_WRAPPED_HANDLER_ISSUES: (f) =>
    `container "${f.container}" has issued references (${ISSUE_PREFIX}…): every run of its wrapped ${f.handlers.join(", ")} issues them anew (a lease, a database user, a certificate each time); give the handler a static secret, or leave it unwrapped`,
  KUS_TOKEN_MOUNTED: (f) =>
    `container "${f.container}" has no ServiceAccount token mounted (automountServiceAccountToken is off for the pod or its ServiceAccount); kustodia mounts a projected token for the shim at ${SHIM_TOKEN_DIR}`,
};

export function renderFinding(finding: Finding): string {
  return (render[finding.code] as (finding: Finding) => string)(finding);
}

export function renderSkipReason(reason: SkipReason): string {
  switch (reason.code) {
    case "not-opted-in":
      return `not opted in (${Annotations.inject} is not "true")`;
    case "already-handled":
      return `already handled (${Annotations.status}: ${reason.status})`;
    case "no-spec":
      return "pod has no spec";
    case "windows":
      return "Windows pods are not supported";
  }
}

export function renderSelection(selection: Selection): string {
  switch (selection.code) {
    case "named":
      return `named in ${Annotations.containers}`;
    case "not-named":
      return `not named in ${Annotations.containers}`;
    case "declares":
      return `declares ${selection.variables.join(", ")}`;
    case "all-passthrough":
      return `its ${selection.prefix} vars are all passthrough`;
    case "no-references":
      return `declares no ${selection.prefix}<NAME> var`;
  }
}

/** Admission warnings: escaped and bounded, since they quote the pod's own names and values (messages.ts). */
export function renderWarnings(findings: readonly Finding[]): string[] {
  return findings.length === 0 ? [] : boundedWarnings(findings.map(renderFinding));
}

/** The denial message: every reason, escaped and bounded. */
export function renderDenial(denials: readonly Finding[]): string {
  return safeText(denials.map(renderFinding).join("; "), MAX_MESSAGE_LENGTH);
}
