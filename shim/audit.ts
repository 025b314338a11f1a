// The audit record (docs/audit.md): one JSON line on stderr at every start and every rotation, saying
// which pod resolved which reference from which backend, with which KV version or lease and until
// when — never a value. Built from what resolution knows (references, SecretInfo, problems), so a
// value cannot reach it by construction; Log.record censors every string in it besides.
import { isIssued, issuanceKey } from "../common/reference.ts";
import type { PodIdentity } from "./identity.ts";
import type { Problem, ReferenceVar, Resolution } from "./resolve.ts";
import type { SecretInfo } from "./sources/source.ts";

export const AUDIT_RECORD = "kustodia.audit";
export const AUDIT_VERSION = 1;

/** `probe` / `hook`: a run of a wrapped exec handler (KUSTODIA_ROLE), when KUSTODIA_HANDLER_AUDIT asks for its record. */
export type AuditEvent = "start" | "rotation" | "stop" | "probe" | "hook";

export interface AuditEntry {
  /** The var the app receives: `DB_PASSWORD`. */
  var: string;
  /** The reference as written. */
  reference: string;
  backend: string;
  /** Issued references: the request, placeholders filled in (`issue:pki/issue/web?common_name=...`). */
  issuance?: string;
  kvVersion?: number;
  leaseId?: string;
  renewable?: boolean;
  /** ISO 8601: when an issued secret stops working (lease end, certificate notAfter). */
  expiresAt?: string;
  /** ISO 8601: when the shim's Vault token holding the lease expires unless renewed (rotation mode
   *  renews it); Vault revokes the lease with it. */
  tokenExpiresAt?: string;
  /** PKI certificate serial number. */
  serial?: string;
  /** Why it is not set: the problem kind (`missing`, `denied`, ...); the reasons are in the log lines. */
  error?: string;
  /** Missing, and left unset because of KUSTODIA_IGNORE_MISSING. */
  ignored?: true;
}

export interface AuditRecord {
  record: typeof AUDIT_RECORD;
  version: typeof AUDIT_VERSION;
  event: AuditEvent;
  /** ISO 8601, when the resolution began. */
  time: string;
  pod: { namespace?: string; name?: string; serviceAccount?: string };
  /** The program the shim runs. */
  app: string;
  outcome: "ok" | "failed";
  durationMs: number;
  secrets: AuditEntry[];
  /** Rotation: the vars whose values changed. */
  changed?: string[];
  /** Failed or stopped: why, in one line (no value). */
  reason?: string;
}

export interface AuditInput {
  event: AuditEvent;
  identity: PodIdentity;
  app: string;
  began: number;
  durationMs: number;
  references: readonly ReferenceVar[];
  /** Problems found before any backend was asked (malformed references, collisions). */
  planProblems?: readonly Problem[];
  resolution?: Resolution;
  changed?: string[];
  reason?: string;
}

function infoEntry(info: SecretInfo): Partial<AuditEntry> {
  const entry: Partial<AuditEntry> = {};
  if (info.version !== undefined) entry.kvVersion = info.version;
  if (info.lease) {
    entry.leaseId = info.lease.id;
    entry.renewable = info.lease.renewable;
  }
  if (info.expiresAt !== undefined) entry.expiresAt = new Date(info.expiresAt).toISOString();
  if (info.tokenExpiresAt !== undefined) entry.tokenExpiresAt = new Date(info.tokenExpiresAt).toISOString();
  if (info.serial !== undefined) entry.serial = info.serial;
  return entry;
}

export function auditRecord(input: AuditInput): AuditRecord {
  const infoByName = new Map<string, SecretInfo>();
  for (const group of input.resolution?.groups ?? []) for (const ref of group.refs) infoByName.set(ref.name, group.info);
  const problems = new Map<string, { problem: Problem; ignored: boolean }>();
  for (const problem of input.planProblems ?? []) problems.set(problem.name, { problem, ignored: false });
  for (const problem of input.resolution?.problems ?? []) problems.set(problem.name, { problem, ignored: false });
  for (const problem of input.resolution?.ignored ?? []) problems.set(problem.name, { problem, ignored: true });

  const secrets: AuditEntry[] = input.references.map((ref) => {
    const reference = ref.reference;
    const entry: AuditEntry = { var: ref.target, reference: ref.raw, backend: reference.backend };
    if (isIssued(reference)) entry.issuance = issuanceKey(reference);
    const failed = problems.get(ref.name);
    if (failed) {
      entry.error = failed.problem.kind;
      if (failed.ignored) entry.ignored = true;
      return entry;
    }
    const info = infoByName.get(ref.name);
    return info ? { ...entry, ...infoEntry(info) } : entry;
  });
  const planned = new Set(input.references.map((ref) => ref.name));
  for (const { problem } of problems.values()) {
    if (!planned.has(problem.name)) secrets.push({ var: problem.name, reference: problem.raw, backend: "", error: problem.kind });
  }

  const { namespace, name, serviceAccount } = input.identity;
  const failed = (input.planProblems?.length ?? 0) + (input.resolution?.problems.length ?? 0) > 0 || input.event === "stop";
  const record: AuditRecord = {
    record: AUDIT_RECORD,
    version: AUDIT_VERSION,
    event: input.event,
    time: new Date(input.began).toISOString(),
    pod: { ...(namespace ? { namespace } : {}), ...(name ? { name } : {}), ...(serviceAccount ? { serviceAccount } : {}) },
    app: input.app,
    outcome: failed ? "failed" : "ok",
    durationMs: Math.round(input.durationMs),
    secrets,
  };
  if (input.changed) record.changed = input.changed;
  if (input.reason) record.reason = input.reason;
  return record;
}
