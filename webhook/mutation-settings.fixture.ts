// The mutation settings the webhook's unit tests start from; each test overrides what it is about.
import type { MutationSettings } from "./mutate.ts";

export function testMutationSettings(overrides: Partial<MutationSettings> = {}): MutationSettings {
  return {
    shimImage: "registry.example/kustodia/shim:0.1.0",
    shimVersion: "0.1.0",
    delivery: "copy",
    emptyDirSizeLimit: "256Mi",
    installResources: {},
    installRunAsUser: 65532,
    referencePrefix: "SECRET_",
    shimDefaults: {},
    vaultAddrAllowlist: [],
    ...overrides,
  };
}
