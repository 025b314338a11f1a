// Registry settings for the webhook's registry client against the test infrastructure's registries.
import type { RegistrySettings } from "../../webhook/settings.ts";
import { service } from "../infra/coords.ts";

export function testRegistrySettings(overrides: Partial<RegistrySettings> = {}): RegistrySettings {
  const registry = service("registry");
  return {
    plainHttp: [registry.plain.host],
    mirrors: {},
    timeoutMs: 5000,
    cacheTtlMs: 60_000,
    cacheSize: 100,
    concurrency: 8,
    hostConcurrency: 8,
    admissionConcurrency: 8,
    // The test registries run on loopback, which the webhook refuses unless told otherwise.
    allowedNetworks: ["127.0.0.0/8"],
    tokenRealmHosts: [],
    defaultPlatform: { os: "linux", architecture: "amd64" },
    caFile: registry.secure.caFile,
    ...overrides,
  };
}
