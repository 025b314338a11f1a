// The shim's settings: the only module that reads process.env. It takes one snapshot of the
// environment, validates every KUSTODIA_* var (DESIGN §5 plus the few documented below), and returns
// a frozen object; a bad value is reported with the var's name, what it holds and what is accepted.
//
// Settings beyond DESIGN §5 (all stripped from the app's env like every KUSTODIA_* var):
// - KUSTODIA_VAULT_ROLE_ID_FILE, KUSTODIA_VAULT_SECRET_ID_FILE — AppRole credentials, read from files
//   (like Vault Agent's role_id_file_path / secret_id_file_path), never from env. The secret_id file
//   may be omitted for roles that do not bind a secret_id.
// - KUSTODIA_CUSTODIA_CACERT, KUSTODIA_CUSTODIA_CLIENT_CERT, KUSTODIA_CUSTODIA_CLIENT_KEY — TLS for an
//   `https://` Custodia: CA bundle, and the client certificate + key it authenticates with.
import { DEFAULT_REFERENCE_PREFIX, SHIM_ENV_PREFIX, ShimEnv } from "../common/contract.ts";
import { BACKENDS, type Backend, isValidEnvName, splitList } from "../common/reference.ts";
import { type Environment, parseDuration, parseSignal, Reader, readAddress } from "./config-reader.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

export const ExtraShimEnv = {
  vaultRoleIdFile: "KUSTODIA_VAULT_ROLE_ID_FILE",
  vaultSecretIdFile: "KUSTODIA_VAULT_SECRET_ID_FILE",
  custodiaCaCert: "KUSTODIA_CUSTODIA_CACERT",
  custodiaClientCert: "KUSTODIA_CUSTODIA_CLIENT_CERT",
  custodiaClientKey: "KUSTODIA_CUSTODIA_CLIENT_KEY",
} as const;

export const VAULT_AUTH_METHODS = ["kubernetes", "jwt", "approle", "token"] as const;
export type VaultAuthMethod = (typeof VAULT_AUTH_METHODS)[number];
export const ROTATION_MODES = ["none", "restart", "signal"] as const;
export type RotationMode = (typeof ROTATION_MODES)[number];

export const DEFAULT_SA_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_ROTATION_INTERVAL_MS = 5 * 60_000;
const MIN_ROTATION_INTERVAL_MS = 1000;
/** A third of the lifetime left, as cert-manager's default renewBefore and Vault Agent's renewals. */
const DEFAULT_ROTATION_MARGIN: RotationMargin = { fraction: 1 / 3 };

export interface VaultConfig {
  /** Without a trailing slash; required only when a reference uses Vault. */
  addr?: string;
  caCertFile?: string;
  authMethod: VaultAuthMethod;
  /** Mount path of the auth method, without `auth/`. Default: the method's name. */
  authPath: string;
  role?: string;
  kvMount: string;
  namespace?: string;
  tokenFile?: string;
  saTokenFile: string;
  roleIdFile?: string;
  secretIdFile?: string;
}

export interface CustodiaConfig {
  url?: string;
  caCertFile?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
}

/** How long before an issued secret expires it is renewed or re-issued: a duration, or a share of its lifetime. */
export type RotationMargin = { ms: number } | { fraction: number };

export interface RotationConfig {
  mode: RotationMode;
  intervalMs: number;
  signal: NodeJS.Signals;
  margin: RotationMargin;
}

export interface ShimConfig {
  /** Backend of references without a `vault:` / `custodia:` scheme. */
  backend: Backend;
  vault: VaultConfig;
  custodia: CustodiaConfig;
  prefix: string;
  passthrough: readonly string[];
  ignoreMissing: boolean;
  /** Whole-start deadline (and each rotation refresh's). */
  timeoutMs: number;
  rotation: RotationConfig;
  logLevel: LogLevel;
}

export type { Environment } from "./config-reader.ts";

export type LoadedConfig =
  | { ok: true; config: ShimConfig; env: Environment; warnings: string[] }
  | { ok: false; errors: string[]; env: Environment };

const KNOWN_VARS = new Set<string>([...Object.values(ShimEnv), ...Object.values(ExtraShimEnv)]);
const MOUNT_PATH = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9._@/-]{0,254}$/;
function readVault(reader: Reader): VaultConfig {
  const authMethod = reader.oneOf(ShimEnv.vaultAuthMethod, VAULT_AUTH_METHODS, "kubernetes");
  const rawAuthPath = reader
    .text(ShimEnv.vaultAuthPath)
    ?.replace(/^\/+|\/+$/g, "")
    .replace(/^auth\//, "");
  let authPath: string = authMethod;
  if (rawAuthPath !== undefined) {
    if (MOUNT_PATH.test(rawAuthPath)) authPath = rawAuthPath;
    else reader.fail(ShimEnv.vaultAuthPath, reader.text(ShimEnv.vaultAuthPath) ?? "", "a mount path like kubernetes or auth/kubernetes", 0);
  }
  const kvMount = reader.text(ShimEnv.vaultKvMount)?.replace(/^\/+|\/+$/g, "") ?? "secret";
  if (!MOUNT_PATH.test(kvMount)) reader.fail(ShimEnv.vaultKvMount, kvMount, "a mount path like secret or team/kv", 0);
  const vault: VaultConfig = {
    authMethod,
    authPath,
    kvMount,
    saTokenFile: reader.text(ShimEnv.saTokenFile) ?? DEFAULT_SA_TOKEN_FILE,
  };
  const optional: [keyof VaultConfig, string | undefined][] = [
    ["addr", readAddress(reader, ShimEnv.vaultAddr, ["http:", "https:"])],
    ["caCertFile", reader.text(ShimEnv.vaultCaCert)],
    ["role", reader.matching(ShimEnv.vaultRole, ROLE, "a role name: letters, digits, '.', '_', '-', '@', '/'")],
    ["namespace", reader.matching(ShimEnv.vaultNamespace, MOUNT_PATH, "a namespace path like team-a or parent/child")],
    ["tokenFile", reader.text(ShimEnv.vaultTokenFile)],
    ["roleIdFile", reader.text(ExtraShimEnv.vaultRoleIdFile)],
    ["secretIdFile", reader.text(ExtraShimEnv.vaultSecretIdFile)],
  ];
  for (const [key, value] of optional) if (value !== undefined) Object.assign(vault, { [key]: value });
  return vault;
}

function readCustodia(reader: Reader): CustodiaConfig {
  const custodia: CustodiaConfig = {};
  const url = readAddress(reader, ShimEnv.custodiaUrl, ["http+unix:", "https:"]);
  if (url !== undefined) custodia.url = url;
  const caCertFile = reader.text(ExtraShimEnv.custodiaCaCert);
  const clientCertFile = reader.text(ExtraShimEnv.custodiaClientCert);
  const clientKeyFile = reader.text(ExtraShimEnv.custodiaClientKey);
  if (caCertFile) custodia.caCertFile = caCertFile;
  if (clientCertFile) custodia.clientCertFile = clientCertFile;
  if (clientKeyFile) custodia.clientKeyFile = clientKeyFile;
  if ((clientCertFile === undefined) !== (clientKeyFile === undefined)) {
    reader.errors.push(`${ExtraShimEnv.custodiaClientCert} and ${ExtraShimEnv.custodiaClientKey} must be set together`);
  }
  return custodia;
}

function readRotation(reader: Reader): RotationConfig {
  const mode = reader.oneOf(ShimEnv.rotation, ROTATION_MODES, "none");
  const intervalMs = reader.duration(ShimEnv.rotationInterval, DEFAULT_ROTATION_INTERVAL_MS, MIN_ROTATION_INTERVAL_MS);
  const rawSignal = reader.text(ShimEnv.rotationSignal);
  let signal: NodeJS.Signals = "SIGHUP";
  if (rawSignal !== undefined) {
    signal = parseSignal(rawSignal) ?? reader.fail(ShimEnv.rotationSignal, rawSignal, "a signal name like SIGHUP or SIGUSR1", signal);
  }
  return { mode, intervalMs, signal, margin: readMargin(reader) };
}

function readMargin(reader: Reader): RotationMargin {
  const raw = reader.text(ShimEnv.rotationMargin);
  if (raw === undefined) return DEFAULT_ROTATION_MARGIN;
  const percent = /^([1-9][0-9]?(?:\.[0-9]+)?)%$/.exec(raw);
  if (percent) return { fraction: Number(percent[1]) / 100 };
  const ms = parseDuration(raw);
  if (ms !== undefined && ms >= 1000) return { ms };
  return reader.fail(
    ShimEnv.rotationMargin,
    raw,
    "a share of the lifetime like 33% (1-99%), or a duration of at least 1s like 10m",
    DEFAULT_ROTATION_MARGIN,
  );
}

function readReferenceSettings(reader: Reader): Pick<ShimConfig, "prefix" | "passthrough"> {
  let prefix = reader.text(ShimEnv.prefix) ?? DEFAULT_REFERENCE_PREFIX;
  if (!isValidEnvName(prefix) || prefix.startsWith(SHIM_ENV_PREFIX)) {
    prefix = reader.fail(ShimEnv.prefix, prefix, `an env var name prefix like SECRET_, not starting with ${SHIM_ENV_PREFIX}`, prefix);
  }
  const passthrough = splitList(reader.text(ShimEnv.passthrough));
  const invalid = passthrough.filter((name) => !isValidEnvName(name));
  if (invalid.length > 0) reader.fail(ShimEnv.passthrough, invalid.join(","), "a comma-separated list of env var names", 0);
  return { prefix, passthrough: Object.freeze(passthrough) };
}

/** What a Vault reference needs beyond the defaults, as messages naming the vars to set. */
export function missingVaultSettings(vault: VaultConfig): string[] {
  const missing: string[] = [];
  if (vault.addr === undefined) missing.push(`${ShimEnv.vaultAddr} is not set`);
  const needs: Record<VaultAuthMethod, [string | undefined, string][]> = {
    kubernetes: [[vault.role, ShimEnv.vaultRole]],
    jwt: [[vault.role, ShimEnv.vaultRole]],
    approle: [[vault.roleIdFile, ExtraShimEnv.vaultRoleIdFile]],
    token: [[vault.tokenFile, ShimEnv.vaultTokenFile]],
  };
  for (const [value, name] of needs[vault.authMethod]) {
    if (value === undefined) missing.push(`${name} is not set (needed by ${ShimEnv.vaultAuthMethod}=${vault.authMethod})`);
  }
  return missing;
}

export function missingCustodiaSettings(custodia: CustodiaConfig): string[] {
  return custodia.url === undefined ? [`${ShimEnv.custodiaUrl} is not set`] : [];
}

function deepFreeze<T extends object>(value: T): T {
  for (const inner of Object.values(value)) if (typeof inner === "object" && inner !== null) deepFreeze(inner);
  return Object.freeze(value);
}

/** The one place that reads the process environment. Call it once, at start. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const env = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(source)) if (value !== undefined) env[name] = value;
  Object.freeze(env);
  const reader = new Reader(env);
  const warnings = Object.keys(env)
    .filter((name) => name.startsWith(SHIM_ENV_PREFIX) && !KNOWN_VARS.has(name))
    .map((name) => `unknown setting ${name} ignored (stripped from the app's env like every ${SHIM_ENV_PREFIX}* var)`);

  const config: ShimConfig = {
    backend: reader.oneOf(ShimEnv.backend, BACKENDS, "vault"),
    vault: readVault(reader),
    custodia: readCustodia(reader),
    ...readReferenceSettings(reader),
    ignoreMissing: reader.boolean(ShimEnv.ignoreMissing),
    timeoutMs: reader.duration(ShimEnv.timeout, DEFAULT_TIMEOUT_MS, 1),
    rotation: readRotation(reader),
    logLevel: reader.oneOf(ShimEnv.logLevel, LOG_LEVELS, "info"),
  };
  if (reader.errors.length > 0) return { ok: false, errors: reader.errors, env };
  return { ok: true, config: deepFreeze(config), env, warnings };
}
