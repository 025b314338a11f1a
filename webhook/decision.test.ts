import { describe, expect, it } from "vitest";
import { Annotations, SHIM_PATH } from "../common/contract.ts";
import { renderDecision } from "./decision.ts";
import { mutatePod } from "./mutate.ts";
import type { JsonObject } from "./pod.ts";

const settings = {
  shimImage: "shim:1",
  shimVersion: "0.1.0",
  delivery: "copy" as const,
  emptyDirSizeLimit: "256Mi",
  installResources: {},
  installRunAsUser: 65532,
  referencePrefix: "SECRET_",
  shimDefaults: { vaultAddr: "https://vault.example:8200", vaultAuthMethod: "token" },
  vaultAddrAllowlist: [],
};

function pod(annotations: Record<string, string>, containers: JsonObject[]): JsonObject {
  return { metadata: { name: "p", annotations: { [Annotations.inject]: "true", ...annotations } }, spec: { containers } };
}

const app = { name: "app", image: "a:1", command: ["/app"], env: [{ name: "SECRET_A", value: "app/a" }] };
const plain = { name: "plain", image: "b:1", env: [{ name: "SECRET_KEY", value: "x" }] };

describe("mutatePod returns structure", () => {
  it("says per container why it is (not) selected, what it runs now and which shim settings it got", () => {
    const decision = mutatePod(pod({ [Annotations.passthrough]: "SECRET_KEY" }, [app, plain]), settings, new Map());
    expect(decision.kind).toBe("mutate");
    if (decision.kind !== "mutate") return;
    expect(decision.containers).toEqual([
      {
        list: "containers",
        name: "app",
        selected: true,
        selection: { code: "declares", variables: ["SECRET_A"] },
        command: [SHIM_PATH, "--", "/app"],
        shimEnv: [
          { name: "KUSTODIA_VAULT_ADDR", value: "https://vault.example:8200" },
          { name: "KUSTODIA_VAULT_AUTH_METHOD", value: "token" },
          { name: "KUSTODIA_PASSTHROUGH", value: "SECRET_KEY" },
        ],
      },
      { list: "containers", name: "plain", selected: false, selection: { code: "all-passthrough", prefix: "SECRET_" } },
    ]);
  });

  it("denies with a code and the parameters of the problem, rendered to text only at the edge", () => {
    const decision = mutatePod(pod({ [Annotations.rotationSignal]: "SIGKILL" }, [app]), settings, new Map());
    expect(decision).toMatchObject({
      kind: "deny",
      denials: [{ code: "KUS_ANNOTATION_INVALID", annotation: Annotations.rotationSignal, value: "SIGKILL" }],
    });
    expect(renderDecision(decision)).toMatchObject({
      kind: "deny",
      message: expect.stringMatching(/^annotation kustodia\.io\/rotation-signal has the invalid value "SIGKILL"; accepted: /),
    });
  });

  it("gives warnings as codes: a reference that does not parse, a container name the pod lacks", () => {
    const broken = { ...app, env: [{ name: "SECRET_A", value: "" }] };
    const decision = mutatePod(pod({ [Annotations.containers]: "app,ghost" }, [broken]), settings, new Map());
    expect(decision.warnings.map((warning) => warning.code)).toEqual(["KUS_CONTAINER_NOT_FOUND", "KUS_REFERENCE_INVALID"]);
  });

  it("skips with a reason code", () => {
    expect(mutatePod(pod({ [Annotations.status]: "injected 0.0.1" }, [app]), settings, new Map())).toEqual({
      kind: "skip",
      reason: { code: "already-handled", status: "injected 0.0.1" },
      warnings: [],
    });
  });
});
