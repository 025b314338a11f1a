// The shim's settings: the only module that reads process.env. It takes one snapshot of the
// environment, validates every KUSTODIA_* var by the rules of common/shim-settings.ts, and returns a
// frozen object; a bad value is reported with the var's name, what it holds and what is accepted.
import { SHIM_ENV_PREFIX, ShimEnv } from "../common/contract.ts";
import { deepFreeze } from "../common/freeze.ts";
import type { Backend } from "../common/reference.ts";
import type { RotationMargin, RotationMode, ShimLogLevel, ShimRole, VaultAuthMethod } from "../common/shim-settings.ts";
import { type Environment, Reader } from "./config-reader.ts";

export type { RotationMargin, RotationMode, VaultAuthMethod } from "../common/shim-settings.ts";

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
  logLevel: ShimLogLevel;
  /** What is started: the app, or a wrapped exec probe or lifecycle hook. */
  role: ShimRole;
  /** A handler writes its audit record at every run. */
  handlerAudit: boolean;
}

export type { Environment } from "./config-reader.ts";

export type LoadedConfig =
  | { ok: true; config: ShimConfig; env: Environment; warnings: string[] }
  | { ok: false; errors: string[]; env: Environment };

const KNOWN_VARS = new Set<string>(Object.values(ShimEnv));

function readVault(reader: Reader): VaultConfig {
  const authMethod = reader.read("vaultAuthMethod");
  const vault: VaultConfig = {
    authMethod,
    authPath: reader.read("vaultAuthPath") ?? authMethod,
    kvMount: reader.read("vaultKvMount"),
    saTokenFile: reader.read("saTokenFile"),
  };
  const optional = {
    addr: reader.read("vaultAddr"),
    caCertFile: reader.read("vaultCaCert"),
    role: reader.read("vaultRole"),
    namespace: reader.read("vaultNamespace"),
    tokenFile: reader.read("vaultTokenFile"),
    roleIdFile: reader.read("vaultRoleIdFile"),
    secretIdFile: reader.read("vaultSecretIdFile"),
  };
  for (const [key, value] of Object.entries(optional)) if (value !== undefined) Object.assign(vault, { [key]: value });
  return vault;
}

function readCustodia(reader: Reader): CustodiaConfig {
  const custodia: CustodiaConfig = {};
  const found = {
    url: reader.read("custodiaUrl"),
    caCertFile: reader.read("custodiaCaCert"),
    clientCertFile: reader.read("custodiaClientCert"),
    clientKeyFile: reader.read("custodiaClientKey"),
  };
  for (const [key, value] of Object.entries(found)) if (value !== undefined) Object.assign(custodia, { [key]: value });
  if ((found.clientCertFile === undefined) !== (found.clientKeyFile === undefined)) {
    reader.errors.push(`${ShimEnv.custodiaClientCert} and ${ShimEnv.custodiaClientKey} must be set together`);
  }
  return custodia;
}

function readRotation(reader: Reader): RotationConfig {
  return {
    mode: reader.read("rotation"),
    intervalMs: reader.read("rotationInterval"),
    signal: reader.read("rotationSignal"),
    margin: reader.read("rotationMargin"),
  };
}

/** What a Vault reference needs beyond the defaults, as messages naming the vars to set. */
export function missingVaultSettings(vault: VaultConfig): string[] {
  const missing: string[] = [];
  if (vault.addr === undefined) missing.push(`${ShimEnv.vaultAddr} is not set`);
  const needs: Record<VaultAuthMethod, [string | undefined, string][]> = {
    kubernetes: [[vault.role, ShimEnv.vaultRole]],
    jwt: [[vault.role, ShimEnv.vaultRole]],
    approle: [[vault.roleIdFile, ShimEnv.vaultRoleIdFile]],
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

/**
 * The one place that reads the process environment. Call it once, at start. `words` are the
 * `KUSTODIA_<X>=<value>` words of the command line (shim/args.ts): settings of this run that win
 * over the env's, read by the same rules.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, words: Readonly<Record<string, string>> = {}): LoadedConfig {
  const env = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries({ ...source, ...words })) if (value !== undefined) env[name] = value;
  Object.freeze(env);
  const reader = new Reader(env);
  const warnings = Object.keys(env)
    .filter((name) => name.startsWith(SHIM_ENV_PREFIX) && !KNOWN_VARS.has(name))
    .map((name) => `unknown setting ${name} ignored (stripped from the app's env like every ${SHIM_ENV_PREFIX}* var)`);

  const config: ShimConfig = {
    backend: reader.read("backend"),
    vault: readVault(reader),
    custodia: readCustodia(reader),
    prefix: reader.read("prefix"),
    passthrough: reader.read("passthrough"),
    ignoreMissing: reader.read("ignoreMissing"),
    timeoutMs: reader.read("timeout"),
    rotation: readRotation(reader),
    logLevel: reader.read("logLevel"),
    role: reader.read("role"),
    handlerAudit: reader.read("handlerAudit"),
  };
  if (reader.errors.length > 0) return { ok: false, errors: reader.errors, env };
  return { ok: true, config: deepFreeze(config), env, warnings };
}
