// The reference grammar (DESIGN.md §3), shared by the webhook (admission warnings) and the shim
// (resolution). Two forms:
//
//   reference        := static-reference | issued-reference
//   static-reference := [ backend ":" ] path [ "#" field ] [ "@" version ]
//   issued-reference := "issue:" api-path [ "?" [ parameter *( "&" parameter ) ] ] "#" field
//   parameter        := name "=" value
//
// A static reference names a stored secret: without "#", the last path segment is the field. Paths are
// relative, made of plain segments: no empty, "." or ".." segment and no control characters, so a
// reference can never walk out of the KV mount or the Custodia container it names.
//
// An issued reference asks Vault/OpenBao to issue a secret at start: `api-path` is the full API path,
// mount included (`pki/issue/web`, `database/creds/app`). With "?" the shim writes to it with the
// parameters as the request body (`vault write`), without "?" it reads it (`vault read`). Parameter
// names are Vault's (`common_name`, `alt_names`, `ttl`); values are URL-query text (%XX escapes) and
// may use the pod's identity: {pod.name}, {pod.namespace}, {pod.serviceAccount}. References with the
// same api-path and parameters (in any order) share one issuance: a certificate and its key match.
// "issue:" was never a valid backend, so every static reference keeps its meaning.

export const BACKENDS = ["vault", "custodia"] as const;
export type Backend = (typeof BACKENDS)[number];

export interface SecretReference {
  /** Explicit `vault:` / `custodia:`; absent means the pod's or the cluster's default backend. */
  backend?: Backend;
  /** The secret's path: for Vault relative to the KV mount, for Custodia under `/secrets/`. */
  path: string;
  field: string;
  /** KV v2 version (`@3`). */
  version?: number;
}

/** The pod's identity as placeholders of issued-reference parameters. */
export const POD_PLACEHOLDERS = ["pod.name", "pod.namespace", "pod.serviceAccount"] as const;
export type PodPlaceholder = (typeof POD_PLACEHOLDERS)[number];

export interface IssueParameter {
  name: string;
  /** Decoded text; `{pod.name}`-style placeholders stay in it (literal braces are not allowed). */
  value: string;
}

export interface IssuedReference {
  kind: "issued";
  /** Issued secrets come from Vault/OpenBao only. */
  backend: "vault";
  /** The API path, mount included: `pki/issue/web`, `database/creds/app`. */
  path: string;
  /** Present (possibly empty): write with these parameters, sorted by name. Absent: read. */
  parameters?: IssueParameter[];
  field: string;
}

export type Reference = SecretReference | IssuedReference;

export type ParsedReference = { ok: true; reference: Reference } | { ok: false; error: string };

export const ISSUE_PREFIX = "issue:";

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const FIELD = /^[^\s#@/\p{Cc}\p{Cf}]+$/u;
const VERSION = /^[1-9][0-9]{0,9}$/;
const MAX_REFERENCE_LENGTH = 1024;
const PARAMETER_NAME = /^[a-z][a-z0-9_]{0,63}$/;
/** A parameter value as written: URL-query characters, %XX escapes and placeholders. */
const PARAMETER_TEXT = /^(?:[A-Za-z0-9\-._~!$'()*+,;:=@/]|%[0-9A-Fa-f]{2}|\{pod\.[A-Za-z]+\})*$/;
const PLACEHOLDER = /\{(pod\.[A-Za-z]+)\}/g;
/**
 * Mounts an issued reference may not name: Vault's own configuration and logins. A Vault namespace
 * can prefix the mount (`ns1/sys/...`, `ns1/team/auth/...`), so they are refused in every segment
 * that could name a mount: all but the last (a mount needs an endpoint after it).
 */
const RESERVED_MOUNTS = new Set(["sys", "auth"]);

/**
 * Types of secrets engine an issued reference may use (`type` in `vault secrets list`): engines that
 * issue secrets. The shim asks Vault for the mount's type before it issues and refuses any other.
 */
export const ISSUING_ENGINE_TYPES: readonly string[] = [
  "ad",
  "alicloud",
  "aws",
  "azure",
  "consul",
  "database",
  "gcp",
  "kmip",
  "kubernetes",
  "ldap",
  "mongodbatlas",
  "nomad",
  "openldap",
  "pki",
  "rabbitmq",
  "ssh",
  "terraform",
  "totp",
  "transit",
];

export function isIssued(reference: Reference): reference is IssuedReference {
  return "kind" in reference && reference.kind === "issued";
}

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function parseBackend(raw: string): { backend?: Backend; rest: string } | { error: string } {
  const colon = raw.indexOf(":");
  if (colon < 0) return { rest: raw };
  const scheme = raw.slice(0, colon);
  if (!(BACKENDS as readonly string[]).includes(scheme)) {
    return { error: `unknown backend ${quote(scheme)} (use ${BACKENDS.map((b) => `"${b}:"`).join(" or ")}, or no prefix)` };
  }
  return { backend: scheme as Backend, rest: raw.slice(colon + 1) };
}

function parseVersion(text: string): { version?: number; rest: string } | { error: string } {
  const at = text.lastIndexOf("@");
  if (at < 0) return { rest: text };
  const version = text.slice(at + 1);
  if (!VERSION.test(version)) return { error: `version ${quote(version)} after "@" must be a positive integer` };
  return { version: Number(version), rest: text.slice(0, at) };
}

function checkSegments(path: string): string | undefined {
  if (path.startsWith("/")) return `path ${quote(path)} must be relative (no leading "/")`;
  for (const segment of path.split("/")) {
    if (segment === "" || segment === "." || segment === "..") return `path ${quote(path)} has an empty, "." or ".." segment`;
    if (!SEGMENT.test(segment)) return `path segment ${quote(segment)} may only use letters, digits, ".", "_" and "-"`;
  }
  return undefined;
}

function parseParameter(text: string): IssueParameter | { error: string } {
  const equals = text.indexOf("=");
  const name = equals < 0 ? text : text.slice(0, equals);
  if (!PARAMETER_NAME.test(name)) return { error: `parameter name ${quote(name)} must be lower-case letters, digits and "_"` };
  if (equals < 0) return { error: `parameter ${quote(name)} has no "=<value>"` };
  const written = text.slice(equals + 1);
  if (!PARAMETER_TEXT.test(written)) {
    return { error: `parameter ${name}: ${quote(written)} may only use URL-query characters, %XX escapes and {pod.*} placeholders` };
  }
  for (const [, placeholder] of written.matchAll(PLACEHOLDER)) {
    if (!(POD_PLACEHOLDERS as readonly string[]).includes(placeholder as string)) {
      return {
        error: `parameter ${name}: unknown placeholder {${placeholder}} (known: ${POD_PLACEHOLDERS.map((p) => `{${p}}`).join(", ")})`,
      };
    }
  }
  const parts = written.split(PLACEHOLDER);
  for (let index = 0; index < parts.length; index += 2) {
    try {
      parts[index] = decodeURIComponent(parts[index] as string);
    } catch {
      return { error: `parameter ${name}: %XX escapes must encode UTF-8 text` };
    }
    if (/[{}\p{Cc}]/u.test(parts[index] as string))
      return { error: `parameter ${name}: no control characters or literal "{" "}" in values` };
  }
  const value = parts.map((part, index) => (index % 2 === 1 ? `{${part}}` : part)).join("");
  return { name, value };
}

function parseIssued(text: string): { reference: IssuedReference } | { error: string } {
  const hash = text.lastIndexOf("#");
  if (hash < 0) return { error: 'an issued reference needs "#<field>", e.g. "#certificate" or "#password"' };
  const field = text.slice(hash + 1);
  if (!FIELD.test(field)) return { error: `field ${quote(field)} after "#" must be non-empty, without whitespace, "#", "@" or "/"` };
  const request = text.slice(0, hash);
  const question = request.indexOf("?");
  const path = question < 0 ? request : request.slice(0, question);
  const problem = checkSegments(path);
  if (problem) return { error: problem };
  const segments = path.split("/");
  if (segments.length < 2) return { error: `path ${quote(path)} must name a mount and an endpoint, e.g. "pki/issue/<role>"` };
  const reserved = segments.slice(0, -1).find((segment) => RESERVED_MOUNTS.has(segment));
  if (reserved) return { error: `issued references cannot use ${reserved}/ paths (not at the start, nor after a Vault namespace)` };
  const reference: IssuedReference = { kind: "issued", backend: "vault", path, field };
  if (question < 0) return { reference };
  const query = request.slice(question + 1);
  const parameters: IssueParameter[] = [];
  for (const item of query === "" ? [] : query.split("&")) {
    const parameter = parseParameter(item);
    if ("error" in parameter) return parameter;
    if (parameters.some((other) => other.name === parameter.name)) return { error: `parameter ${parameter.name} is given twice` };
    parameters.push(parameter);
  }
  reference.parameters = parameters.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { reference };
}

export function parseReference(raw: string): ParsedReference {
  const fail = (reason: string): ParsedReference => ({ ok: false, error: `invalid reference ${quote(raw)}: ${reason}` });
  if (raw.length === 0) return fail("it is empty");
  if (raw.length > MAX_REFERENCE_LENGTH) return fail(`longer than ${MAX_REFERENCE_LENGTH} characters`);
  if (raw.trim() !== raw) return fail("leading or trailing whitespace");
  if (raw.startsWith(ISSUE_PREFIX)) {
    const issued = parseIssued(raw.slice(ISSUE_PREFIX.length));
    return "error" in issued ? fail(issued.error) : { ok: true, reference: issued.reference };
  }

  const scheme = parseBackend(raw);
  if ("error" in scheme) return fail(scheme.error);
  const versioned = parseVersion(scheme.rest);
  if ("error" in versioned) return fail(versioned.error);

  let path = versioned.rest;
  let field: string;
  const hash = path.indexOf("#");
  if (hash >= 0) {
    field = path.slice(hash + 1);
    path = path.slice(0, hash);
    if (!FIELD.test(field)) return fail(`field ${quote(field)} after "#" must be non-empty, without whitespace, "#", "@" or "/"`);
    const problem = checkSegments(path);
    if (problem) return fail(problem);
  } else {
    const problem = checkSegments(path);
    if (problem) return fail(problem);
    const slash = path.lastIndexOf("/");
    if (slash < 0) return fail('needs a secret and a field: "<secret>/<field>" or "<secret>#<field>"');
    field = path.slice(slash + 1);
    path = path.slice(0, slash);
  }
  if (scheme.backend === "custodia" && hash >= 0)
    return fail('Custodia keys have no fields: write "custodia:<container>/<key>" without "#"');
  if (scheme.backend === "custodia" && versioned.version !== undefined) return fail('Custodia keys have no versions: drop "@"');

  const reference: SecretReference = { path, field };
  if (scheme.backend) reference.backend = scheme.backend;
  if (versioned.version !== undefined) reference.version = versioned.version;
  return { ok: true, reference };
}

/** A parameter value written back: placeholders as they are, other characters escaped where needed. */
function encodeValue(value: string): string {
  return value
    .split(PLACEHOLDER)
    .map((part, index) =>
      index % 2 === 1
        ? `{${part}}`
        : [...part].map((char) => (/[A-Za-z0-9\-._~!$'()*+,;:=@/]/.test(char) ? char : encodeURIComponent(char))).join(""),
    )
    .join("");
}

/**
 * What identifies one issuance: `issue:<path>[?<parameters sorted by name>]`. References with equal
 * keys are served by one request, so the fields they pick come from the same response.
 */
export function issuanceKey(reference: IssuedReference): string {
  const query = reference.parameters ? `?${reference.parameters.map(({ name, value }) => `${name}=${encodeValue(value)}`).join("&")}` : "";
  return `${ISSUE_PREFIX}${reference.path}${query}`;
}

/** The Vault CLI command that makes the same request: `vault write pki/issue/web common_name=a.svc ttl=1h`. */
export function vaultCommand(reference: IssuedReference): string {
  const word = (text: string) => (/^[A-Za-z0-9_\-.,:=@/{}+]*$/.test(text) && text !== "" ? text : `'${text.replaceAll("'", `'"'"'`)}'`);
  if (!reference.parameters) return `vault read ${reference.path}`;
  return ["vault write", reference.path, ...reference.parameters.map(({ name, value }) => word(`${name}=${value}`))].join(" ");
}

/** The reference's placeholders filled in from `identity`; the names of those it lacks, otherwise. */
export function fillPlaceholders(
  reference: IssuedReference,
  identity: Partial<Record<PodPlaceholder, string>>,
): { reference: IssuedReference } | { unknown: PodPlaceholder[] } {
  if (!reference.parameters) return { reference };
  const unknown = new Set<PodPlaceholder>();
  const parameters = reference.parameters.map(({ name, value }) => ({
    name,
    value: value.replace(PLACEHOLDER, (_, placeholder: PodPlaceholder) => {
      const known = identity[placeholder];
      if (known === undefined) unknown.add(placeholder);
      return known ?? "";
    }),
  }));
  return unknown.size > 0 ? { unknown: [...unknown] } : { reference: { ...reference, parameters } };
}

/** The reference back in its canonical written form. */
export function formatReference(reference: Reference): string {
  if (isIssued(reference)) return `${issuanceKey(reference)}#${reference.field}`;
  const backend = reference.backend ? `${reference.backend}:` : "";
  const version = reference.version === undefined ? "" : `@${reference.version}`;
  const separator = reference.backend === "custodia" ? "/" : "#";
  return `${backend}${reference.path}${separator}${reference.field}${version}`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/**
 * The name the application receives for a reference var (`SECRET_DB_PASSWORD` → `DB_PASSWORD`), or
 * undefined when `envName` is not a reference var under `prefix`.
 */
export function targetName(envName: string, prefix: string): string | undefined {
  if (!envName.startsWith(prefix) || envName.length === prefix.length) return undefined;
  return envName.slice(prefix.length);
}

/** Splits a comma-separated list annotation/env value into trimmed, non-empty names. */
export function splitList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}
