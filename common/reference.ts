// The reference grammar (DESIGN.md §3), shared by the webhook (admission warnings) and the shim
// (resolution):
//
//   reference := [ backend ":" ] path [ "#" field ] [ "@" version ]
//
// Without "#", the last path segment is the field. Paths are relative, made of plain segments: no
// empty, "." or ".." segment and no control characters, so a reference can never walk out of the
// KV mount or the Custodia container it names.

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

export type ParsedReference = { ok: true; reference: SecretReference } | { ok: false; error: string };

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const FIELD = /^[^\s#@/\p{Cc}]+$/u;
const VERSION = /^[1-9][0-9]{0,9}$/;
const MAX_REFERENCE_LENGTH = 1024;

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

export function parseReference(raw: string): ParsedReference {
  const fail = (reason: string): ParsedReference => ({ ok: false, error: `invalid reference ${quote(raw)}: ${reason}` });
  if (raw.length === 0) return fail("it is empty");
  if (raw.length > MAX_REFERENCE_LENGTH) return fail(`longer than ${MAX_REFERENCE_LENGTH} characters`);
  if (raw.trim() !== raw) return fail("leading or trailing whitespace");

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

/** The reference back in its canonical written form. */
export function formatReference(reference: SecretReference): string {
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
