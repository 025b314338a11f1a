// AdmissionReview v1 in, AdmissionReview v1 out. Validates the envelope, decides whether the
// request is ours (CREATE of a Pod, not in an excluded namespace), gathers the image facts the
// mutation needs, and turns the mutation into a JSON Patch by diffing raw JSON.
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { imagesNeeded } from "./command.ts";
import { renderDecision } from "./decision.ts";
import type { ImageLookupResult, ImageNeed } from "./image-facts.ts";
import { type MutationSettings, mutatePod } from "./mutate.ts";
import { isObject, type JsonObject, objectAt, podDisplayName, stringAt } from "./pod.ts";

const { compare } = fastJsonPatch;

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  operation: string;
  namespace?: string;
  name?: string;
  dryRun?: boolean;
  object?: JsonObject;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: "JSONPatch";
  patch?: string;
  warnings?: string[];
  status?: { code: number; message: string };
}

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; error: string };

/** Checks the AdmissionReview envelope; the error says what is wrong, for an HTTP 400. */
export function parseReview(body: unknown): ParsedReview {
  if (!isObject(body)) return { ok: false, error: "the body must be a JSON object (an AdmissionReview)" };
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    return { ok: false, error: `apiVersion must be "${ADMISSION_API_VERSION}", got ${JSON.stringify(body.apiVersion ?? null)}` };
  }
  if (body.kind !== "AdmissionReview")
    return { ok: false, error: `kind must be "AdmissionReview", got ${JSON.stringify(body.kind ?? null)}` };
  const request = body.request;
  if (!isObject(request)) return { ok: false, error: "request must be an object" };
  if (typeof request.uid !== "string" || request.uid === "" || request.uid.length > 256) {
    return { ok: false, error: "request.uid must be a non-empty string of at most 256 characters" };
  }
  const kind = objectAt(request, "kind");
  if (!kind || typeof kind.kind !== "string" || typeof kind.version !== "string" || typeof kind.group !== "string") {
    return { ok: false, error: "request.kind must be {group, version, kind}" };
  }
  if (typeof request.operation !== "string") return { ok: false, error: "request.operation must be a string" };
  if (request.object !== undefined && request.object !== null && !isObject(request.object)) {
    return { ok: false, error: "request.object must be an object" };
  }
  return { ok: true, request: request as unknown as AdmissionRequest };
}

/** What the lookups may use for one request. */
export interface LookupAccess {
  /**
   * Read the namespace's pull secrets: only for a caller proven to be the kube-apiserver (its client
   * certificate, server.ts), or the operator's own `kustodia` command. Anyone else gets an answer
   * computed without credentials, which tells them nothing a registry would not.
   */
  pullSecrets: boolean;
}

export interface AdmissionContext {
  settings: MutationSettings & { excludedNamespaces: readonly string[] };
  /** Looks up the images the mutation needs; must not throw (failures are values). */
  lookupImages: (needs: ImageNeed[], pod: JsonObject, namespace: string, access: LookupAccess) => Promise<Map<string, ImageLookupResult>>;
}

export type DecisionName = "allowed" | "mutated" | "denied";

export interface AdmissionOutcome {
  response: AdmissionResponse;
  decision: DecisionName;
  namespace: string;
  pod: string;
  /** Why nothing was done, or why the pod was denied. */
  reason?: string;
  injected?: string[];
}

function isPodCreate(request: AdmissionRequest): boolean {
  const { kind, resource, subResource, operation } = request;
  return (
    kind.group === "" &&
    kind.kind === "Pod" &&
    (resource === undefined || resource.resource === "pods") &&
    (subResource === undefined || subResource === "") &&
    operation === "CREATE"
  );
}

/**
 * The JSON Patch from `original` to `mutated`, by diffing raw JSON. A prepended init container is
 * inserted by one `add` at index 0, applied last: diffing it in would shift every user init
 * container and rewrite each of their fields, unknown ones included.
 */
function encodePatch(original: JsonObject, mutated: JsonObject, prepended: JsonObject | undefined): string | undefined {
  let target = mutated;
  let insert: Operation | undefined;
  if (prepended) {
    // New objects on the path to initContainers only: `compare` reads `target` and copies the values
    // it puts into operations, so the rest is shared with `mutated` (a deep clone was a quarter of
    // the CPU time of an admission).
    const { initContainers, ...spec } = mutated.spec as JsonObject;
    const rest = (initContainers as JsonObject[]).slice(1);
    target = { ...mutated, spec: rest.length > 0 ? { ...(mutated.spec as JsonObject), initContainers: rest } : spec };
    insert =
      rest.length > 0
        ? { op: "add", path: "/spec/initContainers/0", value: prepended }
        : { op: "add", path: "/spec/initContainers", value: [prepended] };
  }
  const operations = compare(original, target);
  if (insert) operations.push(insert);
  return operations.length === 0 ? undefined : Buffer.from(JSON.stringify(operations)).toString("base64");
}

export async function admit(
  request: AdmissionRequest,
  context: AdmissionContext,
  access: LookupAccess = { pullSecrets: false },
): Promise<AdmissionOutcome> {
  const pod = request.object;
  const namespace = request.namespace ?? stringAt(objectAt(pod, "metadata"), "namespace") ?? "";
  const name = pod ? podDisplayName(pod) : (request.name ?? "");
  const allow = (reason: string, warnings: string[] = []): AdmissionOutcome => ({
    response: { uid: request.uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) },
    decision: "allowed",
    namespace,
    pod: name,
    reason,
  });

  if (!isPodCreate(request))
    return allow(`not a pod creation (${request.operation} ${request.kind.kind}${request.subResource ? `/${request.subResource}` : ""})`);
  if (!pod) return allow("no object in the request");
  if (context.settings.excludedNamespaces.includes(namespace)) return allow(`namespace ${namespace} is excluded`);

  const needs = imagesNeeded(pod, context.settings);
  const images = needs.length > 0 ? await context.lookupImages(needs, pod, namespace, access) : new Map<string, ImageLookupResult>();
  const decision = renderDecision(mutatePod(pod, context.settings, images));
  switch (decision.kind) {
    case "skip":
      return allow(decision.reason, decision.warnings);
    case "deny":
      return {
        response: {
          uid: request.uid,
          allowed: false,
          status: { code: 400, message: `kustodia: ${decision.message}` },
          ...(decision.warnings.length > 0 ? { warnings: decision.warnings } : {}),
        },
        decision: "denied",
        namespace,
        pod: name,
        reason: decision.message,
      };
    case "mutate": {
      const patch = encodePatch(pod, decision.pod, decision.prepended);
      return {
        response: {
          uid: request.uid,
          allowed: true,
          ...(patch ? { patchType: "JSONPatch" as const, patch } : {}),
          ...(decision.warnings.length > 0 ? { warnings: decision.warnings } : {}),
        },
        decision: "mutated",
        namespace,
        pod: name,
        injected: decision.injected,
      };
    }
  }
}

export function reviewResponse(response: AdmissionResponse): JsonObject {
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response: response as unknown as JsonObject };
}
