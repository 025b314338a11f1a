// The webhook's settings: read once at start from a YAML file (KUSTODIA_CONFIG_FILE) and env vars
// (env wins), validated with errors that name the setting, then frozen. Nothing else reads
// process.env.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { parseDuration as readDuration } from "../common/duration.ts";
import { deepFreeze } from "../common/freeze.ts";
import {
  CLUSTER_DEFAULT_KEYS,
  type ClusterDefaultKey,
  clusterDefaultEnv,
  readSetting,
  type ShimSettingKey,
  ShimSettings,
} from "../common/shim-settings.ts";
import type { JsonObject } from "./pod.ts";
import { parseNetwork } from "./registry/destinations.ts";

/** Cluster defaults of the shim's settings (validated by the shim's own rules), as written into its env. */
export type ShimDefaults = Partial<Record<ClusterDefaultKey, string>>;

export interface RegistrySettings {
  /** `host:port` registries reached over plain HTTP. */
  plainHttp: string[];
  /** Registry host → mirror hosts tried first, in order (`docker.io` is the Docker Hub). */
  mirrors: Record<string, string[]>;
  timeoutMs: number;
  /** How long a tag → digest answer is trusted; digest-addressed configs are kept for good (LRU). */
  cacheTtlMs: number;
  cacheSize: number;
  /** Lookups running at once, in all; against one registry; for one admission. */
  concurrency: number;
  hostConcurrency: number;
  admissionConcurrency: number;
  /** Loopback, link-local and private networks (CIDRs) registries, token endpoints and redirects may still be in. */
  allowedNetworks: string[];
  /** Token endpoint (realm) hosts allowed besides the registry's own host. */
  tokenRealmHosts: string[];
  /** Platform for multi-platform images when the pod pins none: `linux/amd64`. */
  defaultPlatform: { os: string; architecture: string; variant?: string };
  /** Extra CA bundle (PEM file) trusted for registries. */
  caFile?: string;
}

export interface Settings {
  listen: { host: string; port: number };
  tls: { certFile: string; keyFile: string };
  shimImage: string;
  shimVersion: string;
  delivery: "copy" | "image-volume";
  emptyDirSizeLimit: string;
  installResources: JsonObject;
  installRunAsUser: number;
  referencePrefix: string;
  shimDefaults: ShimDefaults;
  vaultAddrAllowlist: string[];
  /** Audience of the projected token the webhook mounts for the shim when a pod automounts none. */
  saTokenAudience?: string;
  registry: RegistrySettings;
  /** Never mutated, whatever the namespaceSelector says. */
  excludedNamespaces: string[];
  bodyLimitBytes: number;
  logLevel: string;
  /** Read pull secrets through the Kubernetes API (needs in-cluster config or KUBECONFIG). */
  pullSecrets: boolean;
  /**
   * mTLS on /mutate: a caller whose client certificate this CA signed (and whose CN or DNS SAN is in
   * `allowedNames`, when any are listed) counts as the kube-apiserver; only its requests use pull secrets.
   */
  clientAuth?: { caFile: string; allowedNames: string[] };
}

export class SettingsError extends Error {
  override name = "SettingsError";
}

/** `30s`, `1m30s`, `500ms` → milliseconds. */
export function parseDuration(value: string, setting: string): number {
  const ms = readDuration(value);
  if (ms === undefined) throw new SettingsError(`${setting}: ${JSON.stringify(value)} is not a duration (examples: 500ms, 10s, 5m, 1h30m)`);
  return ms;
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1e3, m: 1e6, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3 };

export function parseByteSize(value: string, setting: string): number {
  const match = /^([0-9]+)\s*([kmg]i?)?b?$/i.exec(value.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "").toLowerCase()];
  if (!match || unit === undefined) throw new SettingsError(`${setting}: ${JSON.stringify(value)} is not a size (examples: 8Mi, 512Ki)`);
  return Number(match[1]) * unit;
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):([0-9]{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new SettingsError(`KUSTODIA_LISTEN: ${JSON.stringify(value)} must be <host>:<port>, like 0.0.0.0:8443 (port 0: any free port)`);
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

function parsePlatform(value: string, setting: string): RegistrySettings["defaultPlatform"] {
  const [os, architecture, variant, extra] = value.split("/");
  if (!os || !architecture || extra !== undefined)
    throw new SettingsError(`${setting}: ${JSON.stringify(value)} must be os/arch[/variant], like linux/amd64`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** `docker.io=mirror.local:5000|mirror2:5000,quay.io=...` */
function parseMirrors(value: string, setting: string): Record<string, string[]> {
  const mirrors: Record<string, string[]> = {};
  for (const entry of value.split(",").filter((item) => item.trim() !== "")) {
    const [registry, hosts] = entry.split("=");
    if (!registry || !hosts) throw new SettingsError(`${setting}: ${JSON.stringify(entry)} must be <registry>=<mirror>[|<mirror>...]`);
    mirrors[registry.trim()] = hosts.split("|").map((host) => host.trim());
  }
  return mirrors;
}

type Source = Record<string, unknown>;

function readConfigFile(path: string | undefined): Source {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new SettingsError(`KUSTODIA_CONFIG_FILE: cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new SettingsError(`KUSTODIA_CONFIG_FILE: ${path} is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed))
    throw new SettingsError(`KUSTODIA_CONFIG_FILE: ${path} must hold a YAML mapping`);
  return parsed as Source;
}

/** A value from env (`envName`) or else from the file (`fileKey`, dotted), as a string. */
function pick(env: NodeJS.ProcessEnv, file: Source, envName: string, fileKey: string): { value: string; from: string } | undefined {
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, from: envName };
  let node: unknown = file;
  for (const key of fileKey.split(".")) node = typeof node === "object" && node !== null ? (node as Source)[key] : undefined;
  if (node === undefined || node === null) return undefined;
  const from = `${fileKey} (config file)`;
  if (Array.isArray(node)) return { value: node.map(String).join(","), from };
  if (typeof node === "object") return { value: JSON.stringify(node), from };
  return { value: String(node), from };
}

function fileObject(file: Source, key: string): JsonObject | undefined {
  const value = file[key];
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new SettingsError(`${key} (config file) must be a mapping`);
  return value as JsonObject;
}

/** A shim setting as the shim would read it; a value the shim refuses stops the webhook (exit 78) instead of every pod. */
function shimSetting(key: ShimSettingKey, found: { value: string; from: string }): string {
  if (!readSetting(key, found.value).ok) {
    throw new SettingsError(`${found.from}: ${JSON.stringify(found.value)} is invalid; accepted: ${ShimSettings[key].accepted}`);
  }
  return found.value;
}

function shimDefaults(env: NodeJS.ProcessEnv, file: Source): ShimDefaults {
  const defaults: ShimDefaults = {};
  for (const key of CLUSTER_DEFAULT_KEYS) {
    const found = pick(env, file, clusterDefaultEnv(key), `shimDefaults.${key}`);
    if (found) defaults[key] = shimSetting(key, found);
  }
  return defaults;
}

function positiveInteger(found: { value: string; from: string } | undefined, fallback: number): number {
  if (!found) return fallback;
  const value = Number(found.value);
  if (!Number.isInteger(value) || value < 1)
    throw new SettingsError(`${found.from}: ${JSON.stringify(found.value)} must be a positive integer`);
  return value;
}

function registrySettings(env: NodeJS.ProcessEnv, file: Source): RegistrySettings {
  const timeout = pick(env, file, "KUSTODIA_REGISTRY_TIMEOUT", "registry.timeout");
  const ttl = pick(env, file, "KUSTODIA_REGISTRY_CACHE_TTL", "registry.cacheTtl");
  const platform = pick(env, file, "KUSTODIA_DEFAULT_PLATFORM", "registry.defaultPlatform");
  const mirrorsEnv = env.KUSTODIA_REGISTRY_MIRRORS;
  const fileMirrors = fileObject(file, "registry")?.mirrors;
  let mirrors: Record<string, string[]> = {};
  if (mirrorsEnv) mirrors = parseMirrors(mirrorsEnv, "KUSTODIA_REGISTRY_MIRRORS");
  else if (fileMirrors !== undefined) {
    if (typeof fileMirrors !== "object" || fileMirrors === null || Array.isArray(fileMirrors))
      throw new SettingsError("registry.mirrors (config file) must map a registry to a list of mirrors");
    for (const [registry, hosts] of Object.entries(fileMirrors)) {
      if (!Array.isArray(hosts) || !hosts.every((host) => typeof host === "string"))
        throw new SettingsError(`registry.mirrors.${registry} (config file) must be a list of hosts`);
      mirrors[registry] = hosts as string[];
    }
  }
  const caFile = pick(env, file, "KUSTODIA_REGISTRY_CA_FILE", "registry.caFile")?.value;
  const list = (envName: string, fileKey: string) =>
    (pick(env, file, envName, fileKey)?.value ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean);
  const allowedNetworks = list("KUSTODIA_REGISTRY_ALLOWED_NETWORKS", "registry.allowedNetworks");
  for (const network of allowedNetworks) {
    const parsed = parseNetwork(network);
    if (!parsed.ok) throw new SettingsError(`KUSTODIA_REGISTRY_ALLOWED_NETWORKS: ${parsed.error}`);
  }
  return {
    plainHttp: list("KUSTODIA_REGISTRY_PLAIN_HTTP", "registry.plainHttp"),
    mirrors,
    timeoutMs: timeout ? parseDuration(timeout.value, timeout.from) : 5000,
    cacheTtlMs: ttl ? parseDuration(ttl.value, ttl.from) : 5 * 60_000,
    cacheSize: positiveInteger(pick(env, file, "KUSTODIA_REGISTRY_CACHE_SIZE", "registry.cacheSize"), 1000),
    concurrency: positiveInteger(pick(env, file, "KUSTODIA_REGISTRY_CONCURRENCY", "registry.concurrency"), 16),
    hostConcurrency: positiveInteger(pick(env, file, "KUSTODIA_REGISTRY_HOST_CONCURRENCY", "registry.hostConcurrency"), 8),
    admissionConcurrency: positiveInteger(pick(env, file, "KUSTODIA_REGISTRY_ADMISSION_CONCURRENCY", "registry.admissionConcurrency"), 4),
    allowedNetworks,
    tokenRealmHosts: list("KUSTODIA_REGISTRY_TOKEN_REALM_HOSTS", "registry.tokenRealmHosts"),
    defaultPlatform: parsePlatform(platform?.value ?? "linux/amd64", platform?.from ?? "KUSTODIA_DEFAULT_PLATFORM"),
    ...(caFile ? { caFile } : {}),
  };
}

const DEFAULT_INSTALL_RESOURCES: JsonObject = { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } };

function required(found: { value: string } | undefined, name: string, what: string): string {
  if (!found) throw new SettingsError(`${name} is required: ${what}`);
  return found.value;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function clientAuth(env: NodeJS.ProcessEnv, file: Source): Pick<Settings, "clientAuth"> {
  const caFile = pick(env, file, "KUSTODIA_CLIENT_CA_FILE", "clientAuth.caFile")?.value;
  const names = pick(env, file, "KUSTODIA_CLIENT_ALLOWED_NAMES", "clientAuth.allowedNames");
  const allowedNames = (names?.value ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  if (!caFile && allowedNames.length > 0)
    throw new SettingsError(`${names?.from}: client certificate names need KUSTODIA_CLIENT_CA_FILE, the CA that signs them`);
  return caFile ? { clientAuth: { caFile, allowedNames } } : {};
}

export function loadSettings(env: NodeJS.ProcessEnv, shimVersion: string): Readonly<Settings> {
  const file = readConfigFile(env.KUSTODIA_CONFIG_FILE);
  const delivery = pick(env, file, "KUSTODIA_DELIVERY", "delivery")?.value ?? "copy";
  if (delivery !== "copy" && delivery !== "image-volume")
    throw new SettingsError(`KUSTODIA_DELIVERY: ${JSON.stringify(delivery)} must be "copy" or "image-volume"`);
  const emptyDirSizeLimit = pick(env, file, "KUSTODIA_EMPTYDIR_SIZE_LIMIT", "emptyDirSizeLimit")?.value ?? "256Mi";
  parseByteSize(emptyDirSizeLimit, "KUSTODIA_EMPTYDIR_SIZE_LIMIT");
  const prefixFound = pick(env, file, ShimSettings.prefix.env, "referencePrefix");
  const prefix = prefixFound ? shimSetting("prefix", prefixFound) : ShimSettings.prefix.fallback;
  const bodyLimit = pick(env, file, "KUSTODIA_BODY_LIMIT", "bodyLimit");
  const pullSecrets = pick(env, file, "KUSTODIA_PULL_SECRETS", "pullSecrets")?.value ?? "auto";
  if (!["auto", "true", "false"].includes(pullSecrets))
    throw new SettingsError(`KUSTODIA_PULL_SECRETS: ${JSON.stringify(pullSecrets)} must be auto, true or false`);

  const settings: Settings = {
    listen: parseListen(pick(env, file, "KUSTODIA_LISTEN", "listen")?.value ?? "0.0.0.0:8443"),
    tls: {
      certFile: required(
        pick(env, file, "KUSTODIA_TLS_CERT_FILE", "tls.certFile"),
        "KUSTODIA_TLS_CERT_FILE",
        "the webhook's serving certificate (PEM)",
      ),
      keyFile: required(
        pick(env, file, "KUSTODIA_TLS_KEY_FILE", "tls.keyFile"),
        "KUSTODIA_TLS_KEY_FILE",
        "the private key of the serving certificate (PEM)",
      ),
    },
    shimImage: required(
      pick(env, file, "KUSTODIA_SHIM_IMAGE", "shimImage"),
      "KUSTODIA_SHIM_IMAGE",
      "the image the kustodia-install init container runs",
    ),
    shimVersion,
    delivery,
    emptyDirSizeLimit,
    installResources: fileObject(file, "installResources") ?? DEFAULT_INSTALL_RESOURCES,
    installRunAsUser: positiveInteger(pick(env, file, "KUSTODIA_INSTALL_RUN_AS_USER", "installRunAsUser"), 65532),
    referencePrefix: prefix,
    shimDefaults: shimDefaults(env, file),
    vaultAddrAllowlist: (pick(env, file, "KUSTODIA_VAULT_ADDR_ALLOWLIST", "vaultAddrAllowlist")?.value ?? "")
      .split(",")
      .map((a) => a.trim())
      .filter(Boolean),
    registry: registrySettings(env, file),
    ...optional("saTokenAudience", pick(env, file, "KUSTODIA_SA_TOKEN_AUDIENCE", "saTokenAudience")?.value),
    excludedNamespaces: (pick(env, file, "KUSTODIA_EXCLUDED_NAMESPACES", "excludedNamespaces")?.value ?? "kube-system")
      .split(",")
      .map((n) => n.trim())
      .filter(Boolean),
    bodyLimitBytes: bodyLimit ? parseByteSize(bodyLimit.value, bodyLimit.from) : 8 * 1024 ** 2,
    logLevel: pick(env, file, "KUSTODIA_LOG_LEVEL", "logLevel")?.value ?? "info",
    pullSecrets: pullSecrets === "true" || (pullSecrets === "auto" && Boolean(env.KUBERNETES_SERVICE_HOST || env.KUBECONFIG)),
    ...clientAuth(env, file),
  };
  if (env.POD_NAMESPACE && !settings.excludedNamespaces.includes(env.POD_NAMESPACE)) settings.excludedNamespaces.push(env.POD_NAMESPACE);
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(settings.logLevel)) {
    throw new SettingsError(
      `KUSTODIA_LOG_LEVEL: ${JSON.stringify(settings.logLevel)} must be one of fatal, error, warn, info, debug, trace, silent`,
    );
  }
  return deepFreeze(settings);
}
