import { describe, expect, it } from "vitest";
import { Annotations } from "../common/contract.ts";
import { renderDecision } from "./decision.ts";
import type { ImageLookupResult } from "./image-facts.ts";
import { mutatePod as decide } from "./mutate.ts";
import { testMutationSettings } from "./mutation-settings.fixture.ts";
import type { JsonObject } from "./pod.ts";

/** The decision in words, as the admission response carries it. */
const mutatePod = (...args: Parameters<typeof decide>) => renderDecision(decide(...args));

// Issued references may use the pod's identity ({pod.name}, ...): containers that declare one get it
// from the downward API as KUSTODIA_POD_NAME / _NAMESPACE / _SERVICE_ACCOUNT; others are left alone.
const settings = testMutationSettings({
  shimDefaults: { backend: "vault", vaultAddr: "https://vault.example:8200", vaultRole: "web" },
});

const identityEnv = [
  { name: "KUSTODIA_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
  { name: "KUSTODIA_POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
  { name: "KUSTODIA_POD_SERVICE_ACCOUNT", valueFrom: { fieldRef: { fieldPath: "spec.serviceAccountName" } } },
];

function envAfter(containers: JsonObject[], annotations: Record<string, string> = {}): Record<string, JsonObject[]> {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { generateName: "web-", namespace: "shop", annotations: { [Annotations.inject]: "true", ...annotations } },
    spec: { containers },
  };
  const decision = mutatePod(pod, settings, new Map<string, ImageLookupResult>());
  if (decision.kind !== "mutate") throw new Error(JSON.stringify(decision));
  const spec = decision.pod.spec as { containers: JsonObject[] };
  return Object.fromEntries(spec.containers.map((c) => [c.name as string, c.env as JsonObject[]]));
}

const identityOf = (env: JsonObject[]) => env.filter((item) => String(item.name).startsWith("KUSTODIA_POD_"));

const container = (name: string, env: JsonObject[]) => ({ name, image: "example/app:1", command: ["/app"], env });

describe("mutatePod: the pod's identity for issued references", () => {
  it.each([
    ["a certificate", "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc#certificate"],
    ["database credentials", "issue:database/creds/app#password"],
  ])("adds it from the downward API to a container that issues %s", (_, reference) => {
    const env = envAfter([container("app", [{ name: "SECRET_X", value: reference }])]).app ?? [];
    expect(identityOf(env)).toEqual(identityEnv);
  });

  it("leaves containers with stored references only, and passthrough values, as they were", () => {
    const env = envAfter(
      [
        container("static", [{ name: "SECRET_X", value: "myapp/db#password" }]),
        container("plain", [{ name: "SECRET_KEY", value: "issue:not-a-reference" }]),
      ],
      { [Annotations.passthrough]: "SECRET_KEY", [Annotations.containers]: "static,plain" },
    );
    for (const name of ["static", "plain"]) expect(identityOf(env[name] ?? [])).toEqual([]);
  });

  it("keeps identity vars the container sets itself", () => {
    const own = { name: "KUSTODIA_POD_NAME", value: "web-canary" };
    const env = envAfter([container("app", [own, { name: "SECRET_X", value: "issue:database/creds/app#password" }])]).app ?? [];
    expect(identityOf(env)).toEqual([own, ...identityEnv.slice(1)]);
  });
});
