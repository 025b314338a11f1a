import { describe, expect, it } from "vitest";
import { DEFAULT_SA_TOKEN_FILE } from "../common/shim-settings.ts";
import { loadConfig, missingVaultSettings, type ShimConfig } from "./config.ts";

function config(env: Record<string, string>): ShimConfig {
  const loaded = loadConfig(env);
  if (!loaded.ok) throw new Error(loaded.errors.join("\n"));
  return loaded.config;
}

function errors(env: Record<string, string>): string[] {
  const loaded = loadConfig(env);
  return loaded.ok ? [] : loaded.errors;
}

describe("loadConfig", () => {
  it("applies the documented defaults when nothing is set", () => {
    expect(config({})).toEqual({
      backend: "vault",
      vault: { authMethod: "kubernetes", authPath: "kubernetes", kvMount: "secret", saTokenFile: DEFAULT_SA_TOKEN_FILE },
      custodia: {},
      prefix: "SECRET_",
      passthrough: [],
      ignoreMissing: false,
      timeoutMs: 30_000,
      rotation: { mode: "none", intervalMs: 300_000, signal: "SIGHUP", margin: { fraction: 1 / 3 } },
      logLevel: "info",
      role: "app",
      handlerAudit: false,
    });
  });

  it("reads every setting", () => {
    const loaded = config({
      KUSTODIA_BACKEND: "custodia",
      KUSTODIA_VAULT_ADDR: "https://vault.example:8200/",
      KUSTODIA_VAULT_CACERT: "/ca.pem",
      KUSTODIA_VAULT_AUTH_METHOD: "approle",
      KUSTODIA_VAULT_AUTH_PATH: "auth/team-approle/",
      KUSTODIA_VAULT_ROLE: "app",
      KUSTODIA_VAULT_KV_MOUNT: "/kv/team/",
      KUSTODIA_VAULT_NAMESPACE: "team-a",
      KUSTODIA_VAULT_TOKEN_FILE: "/t",
      KUSTODIA_VAULT_ROLE_ID_FILE: "/r",
      KUSTODIA_VAULT_SECRET_ID_FILE: "/s",
      KUSTODIA_SA_TOKEN_FILE: "/sa",
      KUSTODIA_CUSTODIA_URL: "http+unix:///run/custodia.sock",
      KUSTODIA_PREFIX: "REF_",
      KUSTODIA_PASSTHROUGH: " SECRET_KEY , SALT ",
      KUSTODIA_IGNORE_MISSING: "true",
      KUSTODIA_TIMEOUT: "1m30s",
      KUSTODIA_ROTATION: "signal",
      KUSTODIA_ROTATION_INTERVAL: "1.5s",
      KUSTODIA_ROTATION_SIGNAL: "usr1",
      KUSTODIA_LOG_LEVEL: "debug",
    });
    expect(loaded.vault).toEqual({
      addr: "https://vault.example:8200",
      caCertFile: "/ca.pem",
      authMethod: "approle",
      authPath: "team-approle",
      role: "app",
      kvMount: "kv/team",
      namespace: "team-a",
      tokenFile: "/t",
      roleIdFile: "/r",
      secretIdFile: "/s",
      saTokenFile: "/sa",
    });
    expect(loaded).toMatchObject({
      backend: "custodia",
      custodia: { url: "http+unix:///run/custodia.sock" },
      prefix: "REF_",
      passthrough: ["SECRET_KEY", "SALT"],
      ignoreMissing: true,
      timeoutMs: 90_000,
      rotation: { mode: "signal", intervalMs: 1500, signal: "SIGUSR1" },
      logLevel: "debug",
    });
  });

  it.each([
    ["25%", { fraction: 0.25 }],
    ["12.5%", { fraction: 0.125 }],
    ["10m", { ms: 600_000 }],
    ["1h30m", { ms: 5_400_000 }],
  ])("reads the rotation margin %s", (margin, expected) => {
    expect(config({ KUSTODIA_ROTATION_MARGIN: margin }).rotation.margin).toEqual(expected);
  });

  it("defaults the auth path to the auth method's name", () => {
    expect(config({ KUSTODIA_VAULT_AUTH_METHOD: "jwt" }).vault.authPath).toBe("jwt");
  });

  it("returns a frozen config and a frozen copy of the environment", () => {
    const loaded = loadConfig({ A: "1" });
    if (!loaded.ok) throw new Error("unexpected");
    expect(Object.isFrozen(loaded.config)).toBe(true);
    expect(Object.isFrozen(loaded.config.vault)).toBe(true);
    expect(Object.isFrozen(loaded.env)).toBe(true);
    expect(loaded.env).toEqual({ A: "1" });
  });

  it("treats an empty value as unset", () => {
    expect(config({ KUSTODIA_TIMEOUT: "", KUSTODIA_BACKEND: "" })).toMatchObject({ timeoutMs: 30_000, backend: "vault" });
  });

  it.each<{ name: string; env: Record<string, string>; error: string }>([
    { name: "backend", env: { KUSTODIA_BACKEND: "aws" }, error: 'KUSTODIA_BACKEND="aws" is invalid; accepted: "vault", "custodia"' },
    { name: "auth method", env: { KUSTODIA_VAULT_AUTH_METHOD: "ldap" }, error: 'KUSTODIA_VAULT_AUTH_METHOD="ldap" is invalid' },
    {
      name: "address scheme",
      env: { KUSTODIA_VAULT_ADDR: "ftp://x" },
      error: 'KUSTODIA_VAULT_ADDR="ftp://x" is invalid; accepted: a URL with scheme http:// or https://',
    },
    { name: "address with a query", env: { KUSTODIA_VAULT_ADDR: "http://x/?a=1" }, error: "KUSTODIA_VAULT_ADDR" },
    { name: "address that is no URL", env: { KUSTODIA_VAULT_ADDR: "vault:8200" }, error: "KUSTODIA_VAULT_ADDR" },
    { name: "custodia over plain http", env: { KUSTODIA_CUSTODIA_URL: "http://c" }, error: "KUSTODIA_CUSTODIA_URL" },
    { name: "kv mount walking up", env: { KUSTODIA_VAULT_KV_MOUNT: "secret/../sys" }, error: "KUSTODIA_VAULT_KV_MOUNT" },
    { name: "auth path", env: { KUSTODIA_VAULT_AUTH_PATH: "a b" }, error: "KUSTODIA_VAULT_AUTH_PATH" },
    { name: "namespace", env: { KUSTODIA_VAULT_NAMESPACE: "../x" }, error: "KUSTODIA_VAULT_NAMESPACE" },
    { name: "role", env: { KUSTODIA_VAULT_ROLE: "a role" }, error: "KUSTODIA_VAULT_ROLE" },
    { name: "prefix", env: { KUSTODIA_PREFIX: "1X" }, error: "KUSTODIA_PREFIX" },
    { name: "prefix of kustodia's own", env: { KUSTODIA_PREFIX: "KUSTODIA_X_" }, error: "KUSTODIA_PREFIX" },
    { name: "passthrough", env: { KUSTODIA_PASSTHROUGH: "OK,not-a-name" }, error: 'KUSTODIA_PASSTHROUGH="OK,not-a-name"' },
    {
      name: "boolean",
      env: { KUSTODIA_IGNORE_MISSING: "yes please" },
      error: 'KUSTODIA_IGNORE_MISSING="yes please" is invalid; accepted: "true" or "false"',
    },
    { name: "timeout", env: { KUSTODIA_TIMEOUT: "30" }, error: 'KUSTODIA_TIMEOUT="30" is invalid; accepted: a duration' },
    { name: "rotation", env: { KUSTODIA_ROTATION: "always" }, error: "KUSTODIA_ROTATION" },
    { name: "short rotation interval", env: { KUSTODIA_ROTATION_INTERVAL: "10ms" }, error: "a duration of at least 1000 ms" },
    { name: "signal", env: { KUSTODIA_ROTATION_SIGNAL: "SIGKILL" }, error: "KUSTODIA_ROTATION_SIGNAL" },
    { name: "margin", env: { KUSTODIA_ROTATION_MARGIN: "100%" }, error: 'KUSTODIA_ROTATION_MARGIN="100%" is invalid; accepted: a share' },
    { name: "short margin", env: { KUSTODIA_ROTATION_MARGIN: "500ms" }, error: "KUSTODIA_ROTATION_MARGIN" },
    { name: "log level", env: { KUSTODIA_LOG_LEVEL: "trace" }, error: "KUSTODIA_LOG_LEVEL" },
    {
      name: "client cert without key",
      env: { KUSTODIA_CUSTODIA_CLIENT_CERT: "/c" },
      error: "KUSTODIA_CUSTODIA_CLIENT_CERT and KUSTODIA_CUSTODIA_CLIENT_KEY must be set together",
    },
  ])("rejects an invalid $name, naming the var", ({ env, error }) => {
    expect(errors(env).join("\n")).toContain(error);
  });

  it("reports every invalid setting at once", () => {
    expect(errors({ KUSTODIA_BACKEND: "x", KUSTODIA_TIMEOUT: "y", KUSTODIA_LOG_LEVEL: "z" })).toHaveLength(3);
  });

  it("warns about unknown KUSTODIA_* vars", () => {
    const loaded = loadConfig({ KUSTODIA_VAULT_ADRR: "typo" });
    expect(loaded.ok && loaded.warnings).toEqual([
      "unknown setting KUSTODIA_VAULT_ADRR ignored (stripped from the app's env like every KUSTODIA_* var)",
    ]);
  });

  it("keeps a var named __proto__ as an ordinary var", () => {
    const source = Object.defineProperty({}, "__proto__", { value: "x", enumerable: true }) as Record<string, string>;
    const loaded = loadConfig(source);
    expect(Object.keys(loaded.env)).toEqual(["__proto__"]);
    expect(Object.getOwnPropertyDescriptor(loaded.env, "__proto__")?.value).toBe("x");
  });
});

describe("missingVaultSettings", () => {
  it.each<{ method: string; env: Record<string, string>; missing: string[] }>([
    {
      method: "kubernetes",
      env: {},
      missing: ["KUSTODIA_VAULT_ADDR is not set", "KUSTODIA_VAULT_ROLE is not set (needed by KUSTODIA_VAULT_AUTH_METHOD=kubernetes)"],
    },
    {
      method: "jwt",
      env: { KUSTODIA_VAULT_ADDR: "http://v" },
      missing: ["KUSTODIA_VAULT_ROLE is not set (needed by KUSTODIA_VAULT_AUTH_METHOD=jwt)"],
    },
    {
      method: "approle",
      env: { KUSTODIA_VAULT_ADDR: "http://v" },
      missing: ["KUSTODIA_VAULT_ROLE_ID_FILE is not set (needed by KUSTODIA_VAULT_AUTH_METHOD=approle)"],
    },
    {
      method: "token",
      env: { KUSTODIA_VAULT_ADDR: "http://v" },
      missing: ["KUSTODIA_VAULT_TOKEN_FILE is not set (needed by KUSTODIA_VAULT_AUTH_METHOD=token)"],
    },
    { method: "token", env: { KUSTODIA_VAULT_ADDR: "http://v", KUSTODIA_VAULT_TOKEN_FILE: "/t" }, missing: [] },
  ])("names what $method still needs", ({ method, env, missing }) => {
    expect(missingVaultSettings(config({ ...env, KUSTODIA_VAULT_AUTH_METHOD: method }).vault)).toEqual(missing);
  });
});
