// Image pull secrets (`kubernetes.io/dockerconfigjson`, `kubernetes.io/dockercfg`) read into
// credentials, and matched to a registry the way kubelet's keyring does
// (pkg/credentialprovider/keyring.go). Error messages name the secret and the registry key, never a value.
import { isObject } from "../pod.ts";
import { DOCKER_HUB } from "./image-name.ts";

export interface RegistryCredential {
  /** The config key as kubelet normalizes it: `host[:port][/path]`, no scheme, `/v1/` and `/v2/` dropped; may hold globs (`*.example.com`). */
  registry: string;
  username?: string;
  password?: string;
  /** OAuth2 refresh token, exchanged at the token endpoint. */
  identityToken?: string;
  /** A bearer token sent to the registry as is. */
  registryToken?: string;
  /** Where it came from, for messages: `namespace/secret-name`. */
  source?: string;
}

export type ParsedCredentials = { ok: true; credentials: RegistryCredential[] } | { ok: false; error: string };

export const DOCKER_CONFIG_JSON = { type: "kubernetes.io/dockerconfigjson", key: ".dockerconfigjson" } as const;
export const DOCKER_CFG = { type: "kubernetes.io/dockercfg", key: ".dockercfg" } as const;

/** The Docker Hub's key in docker configs (`https://index.docker.io/v1/` normalized). */
const DOCKER_HUB_KEY = "index.docker.io";

/** A pull secret as the Kubernetes API returns it: `data` values are base64. */
export interface PullSecretData {
  type?: string;
  data?: Record<string, string>;
}

/**
 * Every credential of a pod's pull secrets, in their order. A secret that cannot be read is left
 * out (kubelet leaves out secrets of other types too) and said why in `problems`.
 */
export function credentialsFromPullSecrets(
  secrets: readonly (PullSecretData & { name: string })[],
): RegistryCredential[] & { problems: string[] } {
  const problems: string[] = [];
  const credentials: RegistryCredential[] = [];
  for (const secret of secrets) {
    const parsed = parsePullSecret(secret, secret.name);
    if (parsed.ok) credentials.push(...parsed.credentials);
    else problems.push(parsed.error);
  }
  return Object.assign(credentials, { problems });
}

/** Reads an image pull secret; `source` (`namespace/name`) goes into messages and onto each credential. */
export function parsePullSecret(secret: PullSecretData, source: string): ParsedCredentials {
  const fail = (why: string): ParsedCredentials => ({ ok: false, error: `image pull secret ${source}: ${why}` });
  const format = [DOCKER_CONFIG_JSON, DOCKER_CFG].find((candidate) => candidate.type === secret.type);
  if (!format) return fail(`has type ${JSON.stringify(secret.type ?? "")}; it must be ${DOCKER_CONFIG_JSON.type} or ${DOCKER_CFG.type}`);
  const encoded = secret.data?.[format.key];
  if (!encoded) return fail(`has no data key ${format.key}`);
  let config: unknown;
  try {
    config = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
  } catch {
    return fail(`${format.key} is not base64-encoded JSON`);
  }
  const auths = format === DOCKER_CONFIG_JSON ? (isObject(config) ? config.auths : undefined) : config;
  if (!isObject(auths))
    return fail(format === DOCKER_CONFIG_JSON ? `${format.key} has no "auths" object` : `${format.key} must be a JSON object`);
  return readAuths(auths, source, fail);
}

function readAuths(auths: Record<string, unknown>, source: string, fail: (why: string) => ParsedCredentials): ParsedCredentials {
  const credentials: RegistryCredential[] = [];
  for (const [key, entry] of Object.entries(auths)) {
    if (!isObject(entry)) return fail(`the entry for ${JSON.stringify(key)} must be an object`);
    const read = readEntry(entry);
    if (typeof read === "string") return fail(`the entry for ${JSON.stringify(key)}: ${read}`);
    const registry = normalizeKey(key);
    if (registry === undefined) return fail(`${JSON.stringify(key)} is not a registry host or URL`);
    credentials.push({ registry, ...read, source });
  }
  return { ok: true, credentials };
}

type Secrets = Pick<RegistryCredential, "username" | "password" | "identityToken" | "registryToken">;

/** Like kubelet, a non-empty `auth` ("user:pass" in base64) wins over `username`/`password`. */
function readEntry(entry: Record<string, unknown>): Secrets | string {
  const fields: [keyof Secrets, string][] = [
    ["username", "username"],
    ["password", "password"],
    ["identityToken", "identitytoken"],
    ["registryToken", "registrytoken"],
  ];
  const wrongType = [...fields.map(([, key]) => key), "auth"].find((key) => entry[key] != null && typeof entry[key] !== "string");
  if (wrongType) return `"${wrongType}" must be a string`;
  const read: Secrets = {};
  for (const [field, key] of fields) {
    const value = entry[key];
    if (typeof value === "string" && value !== "") read[field] = value;
  }
  if (typeof entry.auth !== "string" || entry.auth === "") return read;
  const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon === -1) return '"auth" must be base64 of "username:password"';
  return { ...read, username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** kubelet's key normalization: drop the scheme, keep host and path, and treat `/v1/` and `/v2/` as the bare host. */
export function normalizeKey(key: string): string | undefined {
  const url = splitUrl(key.replace(/^https?:\/\//, ""));
  if (url.host === "") return undefined;
  const path = /^\/v[12]\//.test(url.path) ? url.path.slice(3) : url.path;
  return path === "" || path === "/" ? url.host : `${url.host}${path}`;
}

/**
 * The credentials to try for an image's registry (or a mirror) and repository, in kubelet's order:
 * more specific keys first (reverse-sorted), then the Docker Hub key, only for images on the Docker
 * Hub and only when nothing else matched. `registry` is the host as `parseImageName` read it: the
 * one rule that also says where the request goes, so credentials follow the connection and nothing else.
 */
export function credentialsFor(
  endpoint: { registry: string; repository: string },
  credentials: readonly RegistryCredential[],
): RegistryCredential[] {
  const target = endpoint.repository === "" ? endpoint.registry : `${endpoint.registry}/${endpoint.repository}`;
  const keys = [...new Set(credentials.map((credential) => credential.registry))].sort().reverse();
  const matched = keys
    .filter((key) => urlsMatch(key, target))
    .flatMap((key) => credentials.filter((credential) => credential.registry === key));
  if (matched.length > 0 || endpoint.registry !== DOCKER_HUB) return matched;
  return credentials.filter((credential) => credential.registry === DOCKER_HUB_KEY);
}

/** kubelet's `URLsMatch`: same port, same number of host labels each matching as a glob, and the key's path a prefix of the target's. */
function urlsMatch(glob: string, target: string): boolean {
  const key = splitUrl(glob);
  const wanted = splitUrl(target);
  const keyHost = splitHostPort(key.host);
  const wantedHost = splitHostPort(wanted.host);
  if (keyHost.port !== wantedHost.port || !wanted.path.startsWith(key.path)) return false;
  const keyLabels = keyHost.hostname.split(".");
  const wantedLabels = wantedHost.hostname.split(".");
  return keyLabels.length === wantedLabels.length && keyLabels.every((label, index) => globMatch(label, wantedLabels[index] ?? ""));
}

function splitUrl(value: string): { host: string; path: string } {
  const slash = value.indexOf("/");
  return slash === -1 ? { host: value, path: "" } : { host: value.slice(0, slash), path: value.slice(slash) };
}

/** Go's `net.SplitHostPort`, falling back to the whole value as the host (as kubelet does). */
function splitHostPort(host: string): { hostname: string; port: string } {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(host);
  if (!match) return { hostname: host, port: "" };
  return { hostname: match[1] ?? match[2] ?? "", port: match[3] ?? "" };
}

/** Go's `filepath.Match` for one host label: `*`, `?`, `[...]` classes (with `^` negation) and `\` escapes. */
function globMatch(pattern: string, label: string): boolean {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === "*") source += ".*";
    else if (char === "?") source += ".";
    else if (char === "\\") source += escapeRegExp(pattern[++i] ?? "\\");
    else if (char === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end === -1) return false; // Go reports ErrBadPattern, which kubelet takes as no match
      source += `[${pattern.slice(i + 1, end)}]`; // Go's class syntax ([a-z], [^a]) is also JavaScript's
      i = end;
    } else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`, "s").test(label);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}
