import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../test/infra/repo-root.ts";
import { loadSettings, parseByteSize, SettingsError } from "./settings.ts";

const required = { KUSTODIA_TLS_CERT_FILE: "/tls/crt", KUSTODIA_TLS_KEY_FILE: "/tls/key", KUSTODIA_SHIM_IMAGE: "shim:1" };
const scratch = mkdtempSync(join(tmpdir(), "kustodia-settings-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function configFile(yaml: string): string {
  const path = join(scratch, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, yaml);
  return path;
}

function failure(env: NodeJS.ProcessEnv): string {
  try {
    loadSettings({ ...required, ...env }, "0.1.0");
  } catch (error) {
    if (error instanceof SettingsError) return error.message;
    throw error;
  }
  throw new Error("expected a SettingsError");
}

describe("loadSettings", () => {
  it("takes a value from env over the config file, and from the file when env has none", () => {
    const file = configFile("registry:\n  timeout: 9s\n  cacheSize: 7\nshimDefaults:\n  vaultRole: from-file\n");
    const settings = loadSettings({ ...required, KUSTODIA_CONFIG_FILE: file, KUSTODIA_REGISTRY_TIMEOUT: "2s" }, "0.1.0");
    expect(settings.registry.timeoutMs).toBe(2000);
    expect(settings.registry.cacheSize).toBe(7);
    expect(settings.shimDefaults).toEqual({ vaultRole: "from-file" });
    const fromEnv = loadSettings({ ...required, KUSTODIA_CONFIG_FILE: file, KUSTODIA_SHIM_VAULT_ROLE: "from-env" }, "0.1.0");
    expect(fromEnv.shimDefaults.vaultRole).toBe("from-env");
  });

  it("reads registry mirrors from env, or as a mapping from the file", () => {
    const env = loadSettings({ ...required, KUSTODIA_REGISTRY_MIRRORS: "docker.io=m1:5000|m2:5000,quay.io=m3" }, "0.1.0");
    expect(env.registry.mirrors).toEqual({ "docker.io": ["m1:5000", "m2:5000"], "quay.io": ["m3"] });
    const file = configFile("registry:\n  mirrors:\n    docker.io: [m1:5000]\n");
    expect(loadSettings({ ...required, KUSTODIA_CONFIG_FILE: file }, "0.1.0").registry.mirrors).toEqual({ "docker.io": ["m1:5000"] });
    expect(failure({ KUSTODIA_REGISTRY_MIRRORS: "docker.io" })).toContain("KUSTODIA_REGISTRY_MIRRORS");
  });

  it.each([
    ["8Mi", 8 * 1024 ** 2],
    ["512Ki", 512 * 1024],
    ["2M", 2e6],
    ["100", 100],
  ])("reads the size %s as %d bytes", (text, bytes) => {
    expect(parseByteSize(text, "X")).toBe(bytes);
  });

  it("returns frozen settings", () => {
    const settings = loadSettings(required, "0.1.0");
    expect(Object.isFrozen(settings)).toBe(true);
    expect(Object.isFrozen(settings.registry.defaultPlatform)).toBe(true);
  });

  it.each<[string, NodeJS.ProcessEnv, string]>([
    ["a shim log level the shim does not know", { KUSTODIA_SHIM_LOG_LEVEL: "trace" }, "KUSTODIA_SHIM_LOG_LEVEL"],
    ["a shim timeout of zero", { KUSTODIA_SHIM_TIMEOUT: "0s" }, "KUSTODIA_SHIM_TIMEOUT"],
    ["a shim role with a space", { KUSTODIA_SHIM_VAULT_ROLE: "my role" }, "KUSTODIA_SHIM_VAULT_ROLE"],
    ["a shim KV mount walking up", { KUSTODIA_SHIM_VAULT_KV_MOUNT: "a/../sys" }, "KUSTODIA_SHIM_VAULT_KV_MOUNT"],
    ["a unix socket as Vault address", { KUSTODIA_SHIM_VAULT_ADDR: "http+unix:///v.sock" }, "KUSTODIA_SHIM_VAULT_ADDR"],
    ["Custodia over plain http", { KUSTODIA_SHIM_CUSTODIA_URL: "http://custodia" }, "KUSTODIA_SHIM_CUSTODIA_URL"],
    ["a reference prefix of kustodia's own", { KUSTODIA_PREFIX: "KUSTODIA_REF_" }, "KUSTODIA_PREFIX"],
    ["a duration without unit", { KUSTODIA_REGISTRY_TIMEOUT: "5" }, "KUSTODIA_REGISTRY_TIMEOUT"],
    ["a size without number", { KUSTODIA_BODY_LIMIT: "Mi" }, "KUSTODIA_BODY_LIMIT"],
  ])("refuses %s, naming the variable", (_name, env, variable) => {
    expect(failure(env)).toMatch(new RegExp(`^${variable}: `));
  });

  it("names the config file key when the bad default comes from the file", () => {
    expect(failure({ KUSTODIA_CONFIG_FILE: configFile("shimDefaults:\n  logLevel: verbose\n") })).toContain(
      "shimDefaults.logLevel (config file)",
    );
  });
});

describe("kustodia-webhook with a bad cluster default", () => {
  it("exits 78 at start, naming the variable", () => {
    const result = spawnSync(process.execPath, [join(repoRoot, "webhook/main.ts")], {
      env: { PATH: process.env.PATH, ...required, KUSTODIA_SHIM_LOG_LEVEL: "verbose" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('KUSTODIA_SHIM_LOG_LEVEL: "verbose" is invalid; accepted: "debug", "info", "warn", "error"');
  }, 60_000);
});
