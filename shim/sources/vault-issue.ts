// Issued secrets from Vault/OpenBao: `issue:<path>?<parameters>#<field>` writes the parameters to the
// path (`vault write pki/issue/web common_name=...`), `issue:<path>#<field>` reads it (`vault read
// database/creds/app`). Loaded only when a reference asks for an issuance.
//
// The answer's `data` holds the fields: strings as they are, lists of strings (PKI `ca_chain`) one per
// line, anything else as JSON. What the audit record and rotation need comes from the rest: the lease
// (`lease_id`, `lease_duration`, `renewable`), a certificate's `expiration` and `serial_number`.
import { ISSUING_ENGINE_TYPES, type IssuedReference, vaultCommand } from "../../common/reference.ts";
import type { Log } from "../log.ts";
import { errorSummary, type HttpAnswer } from "./http.ts";
import { type Lease, type ReadOptions, type Secret, type SecretInfo, SourceError } from "./source.ts";
import type { VaultApi } from "./vault-api.ts";
import { encodePath, fieldText } from "./vault-encoding.ts";

/** Fields of PKI answers that describe the certificate and are not secret: kept out of redaction. */
const PUBLIC_FIELDS = new Set(["serial_number", "expiration", "not_before", "private_key_type"]);

interface IssueAnswer {
  data?: unknown;
  lease_id?: unknown;
  lease_duration?: unknown;
  renewable?: unknown;
  warnings?: unknown;
}

/** A refused or failed answer as the SourceError to end with. */
function failure(answer: HttpAnswer, where: string, hint = ""): SourceError {
  const summary = errorSummary(answer.json, answer.text);
  if (answer.status === 401 || answer.status === 403) return new SourceError("denied", `permission denied: ${where}${summary}`);
  if (answer.status === 404) return new SourceError("missing", `not found: ${where} (no such mount, role or endpoint)${summary}`);
  return new SourceError("malformed", `${where}: HTTP ${answer.status}${summary}${hint}`);
}

function issuedFieldText(value: unknown): string {
  return Array.isArray(value) && value.every((item) => typeof item === "string") ? value.join("\n") : fieldText(value);
}

/**
 * Refuses, before anything is written, a path whose mount is not a secrets engine that issues
 * secrets. Vault says which mount serves a path, and its type, at sys/internal/ui/mounts/<path>
 * (any token with some capability under the mount may ask; a Vault namespace in the path or the
 * namespace header is understood). The mount's path must also start the reference's path: an auth
 * method's mount is reported without its `auth/` prefix.
 */
async function checkIssuingMount(
  api: VaultApi,
  token: string,
  reference: IssuedReference,
  where: string,
  timeoutMs: number,
): Promise<void> {
  const answer = await api.call("GET", `sys/internal/ui/mounts/${encodePath(reference.path)}`, { token, timeoutMs });
  if (answer.status === 401 || answer.status === 403 || answer.status === 404)
    throw new SourceError(
      "denied",
      `${where}: no secrets engine the shim's token may use is mounted there (no such mount, or no policy for it)`,
    );
  if (answer.status !== 200) throw failure(answer, `${where}: looking up the mount`);
  const mount = ((answer.json ?? {}) as { data?: { type?: unknown; path?: unknown } }).data ?? {};
  const type = typeof mount.type === "string" ? mount.type : "";
  const path = typeof mount.path === "string" ? mount.path : "";
  if (!ISSUING_ENGINE_TYPES.includes(type) || path === "" || !`${reference.path}/`.startsWith(path)) {
    throw new SourceError(
      "config",
      `${where}: ${JSON.stringify(path || reference.path)} is ${type ? `a ${JSON.stringify(type)} mount` : "no secrets engine"}; issued references may only use engines that issue secrets (${ISSUING_ENGINE_TYPES.join(", ")})`,
    );
  }
}

export async function issue(api: VaultApi, token: string, reference: IssuedReference, options: ReadOptions, log: Log): Promise<Secret> {
  const write = reference.parameters !== undefined;
  const body = write ? Object.fromEntries((reference.parameters ?? []).map(({ name, value }) => [name, value])) : undefined;
  const where = vaultCommand(reference);
  await checkIssuingMount(api, token, reference, where, options.timeoutMs);
  const answer = await api.call(write ? "POST" : "GET", encodePath(reference.path), { token, body, timeoutMs: options.timeoutMs });
  if (answer.status !== 200) {
    const hint =
      answer.status === 405
        ? write
          ? ' (this endpoint is read, not written: drop "?" and the parameters)'
          : ' (this endpoint is written, not read: add "?" and its parameters)'
        : "";
    throw failure(answer, where, hint);
  }
  const json = (answer.json ?? {}) as IssueAnswer;
  if (typeof json.data !== "object" || json.data === null) throw new SourceError("malformed", `${where}: the answer has no data`);
  const fields = new Map<string, string>();
  for (const [name, value] of Object.entries(json.data)) {
    const text = issuedFieldText(value);
    if (!PUBLIC_FIELDS.has(name)) log.redact(text);
    fields.set(name, text);
  }
  if (Array.isArray(json.warnings))
    for (const warning of json.warnings) if (typeof warning === "string") log.warn(`${where}: vault warning: ${warning}`);

  const at = Date.now();
  const info: SecretInfo = { at };
  const data = json.data as { expiration?: unknown; serial_number?: unknown };
  if (typeof json.lease_id === "string" && json.lease_id !== "") {
    const durationS = Number(json.lease_duration) || 0;
    info.lease = { id: json.lease_id, durationS, renewable: json.renewable === true };
    if (durationS > 0) info.expiresAt = at + durationS * 1000;
  }
  if (typeof data.expiration === "number" && data.expiration > 0) {
    info.expiresAt = Math.min(info.expiresAt ?? Number.POSITIVE_INFINITY, data.expiration * 1000);
  }
  if (typeof data.serial_number === "string") info.serial = data.serial_number;
  log.debug(`${where}: issued ${fields.size} field(s)${info.lease ? `, lease ${info.lease.id} for ${info.lease.durationS} s` : ""}`);
  return { fields, info };
}

/** Renews `lease` by `incrementS`; resolves with its new expiry (epoch ms). */
export async function renewLease(api: VaultApi, token: string, lease: Lease, incrementS: number, options: ReadOptions): Promise<number> {
  const where = `renewing lease ${lease.id}`;
  const answer = await api.call("PUT", "sys/leases/renew", {
    token,
    body: { lease_id: lease.id, increment: incrementS },
    timeoutMs: options.timeoutMs,
  });
  if (answer.status !== 200) throw failure(answer, where);
  const durationS = Number((answer.json as IssueAnswer | undefined)?.lease_duration);
  if (!(durationS >= 0)) throw new SourceError("malformed", `${where}: the answer has no lease_duration`);
  return Date.now() + durationS * 1000;
}
