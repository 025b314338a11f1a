// Generated pods (fast-check) through the whole admission decision. The image lookup here is an
// in-memory table, because this test is about the decision, not the registry (the registry client
// is tested against real registries in test/webhook/registry.test.ts).
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import fastJsonPatch from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { type AdmissionContext, type AdmissionRequest, admit } from "./admission.ts";
import type { ImageLookupResult } from "./image-facts.ts";
import type { JsonObject } from "./pod.ts";

const RUNS = Number(process.env.KUSTODIA_PROPERTY_RUNS ?? 10_000);

const hostileStrings = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.constantFrom(
    "",
    "$",
    "$$",
    "$(HOME)",
    "__proto__",
    "constructor",
    "../../etc",
    "a/b",
    "a/b#c@2",
    "\u0000",
    "\n",
    "🔑",
    "x".repeat(2000),
  ),
);

const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    hostileStrings,
    fc.constant(null),
    tie("array"),
    tie("object"),
  ),
  array: fc.array(tie("value"), { maxLength: 3 }),
  object: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom("__proto__", "constructor", "prototype")), tie("value"), { maxKeys: 3 }),
})).value;

const referenceLike = fc.oneof(
  fc.constantFrom(
    "myapp/password",
    "myapp/db#password",
    "vault:a/b#c@3",
    "custodia:c/k",
    "password",
    "/etc/passwd",
    "a/../b",
    "a//b",
    "aws:x/y",
  ),
  hostileStrings,
);

const envVar = fc.oneof(
  fc.record({
    name: fc.constantFrom("SECRET_PASSWORD", "SECRET_DB", "SECRET_", "SECRET_A-B", "SECRET_KEY", "PASSWORD", "PATH"),
    value: referenceLike,
  }),
  fc.record({ name: fc.constantFrom("SECRET_FROM_REF", "OTHER"), valueFrom: fc.constant({ secretKeyRef: { name: "s", key: "k" } }) }),
  fc.record({ name: hostileStrings, value: hostileStrings }),
  fc.record({ name: fc.constantFrom("KUSTODIA_VAULT_ADDR", "KUSTODIA_LOG_LEVEL", "KUSTODIA_SA_TOKEN_FILE"), value: hostileStrings }),
);

const stringList = fc.oneof(
  fc.constant(undefined),
  fc.constant([]),
  fc.array(hostileStrings, { maxLength: 3 }),
  fc.constant(["/bin/sh", "-c", "echo $$"]),
);

const volumeMount = fc.record({
  name: fc.constantFrom("data", "kustodia", "kube-api-access-x"),
  mountPath: fc.constantFrom("/data", "/kustodia", "/kustodia/", "/kustodia/x", "/var/run/secrets/kubernetes.io/serviceaccount"),
});

function container(name: string) {
  return fc
    .record(
      {
        image: fc.oneof(
          fc.constantFrom("nginx:1.27", `registry.example/app@sha256:${"a".repeat(64)}`, "missing/image:1", ""),
          hostileStrings,
        ),
        command: stringList,
        args: stringList,
        env: fc.oneof(fc.constant(undefined), fc.array(envVar, { maxLength: 5 })),
        volumeMounts: fc.oneof(fc.constant(undefined), fc.array(volumeMount, { maxLength: 2 })),
        restartPolicy: fc.constantFrom(undefined, "Always"),
        unknown: fc.dictionary(fc.constantFrom("futureField", "__proto__", "constructor", "resizePolicy"), jsonValue, { maxKeys: 2 }),
      },
      { requiredKeys: ["image"] },
    )
    .map(({ unknown, ...fields }) => {
      const result: Record<string, unknown> = { name };
      for (const [key, value] of Object.entries(fields)) if (value !== undefined) result[key] = value;
      for (const [key, value] of Object.entries(unknown ?? {}))
        Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true });
      return result;
    });
}

const annotationValue = fc.oneof(
  fc.constantFrom(
    "true",
    "false",
    "True",
    "",
    "app,worker",
    "SECRET_KEY",
    '["/app"]',
    "[1]",
    "restart",
    "5m",
    "SIGHUP",
    "vault",
    "custodia",
  ),
  hostileStrings,
);

const pod = fc
  .record({
    containerNames: fc.uniqueArray(
      fc.oneof(fc.constantFrom("app", "worker", "kustodia-install", "sidecar", "init"), fc.string({ minLength: 1, maxLength: 8 })),
      { minLength: 1, maxLength: 6 },
    ),
    initCount: fc.nat({ max: 3 }),
    annotations: fc.dictionary(
      fc.constantFrom(
        "kustodia.io/inject",
        "kustodia.io/containers",
        "kustodia.io/passthrough",
        "kustodia.io/entrypoint.app",
        "kustodia.io/backend",
        "kustodia.io/rotation",
        "kustodia.io/rotation-interval",
        "kustodia.io/vault-addr",
        "kustodia.io/status",
        "other/annotation",
      ),
      annotationValue,
      { maxKeys: 6 },
    ),
    injectTrue: fc.boolean(),
    volumes: fc.array(fc.record({ name: fc.constantFrom("kustodia", "data", "kustodia-token") }), { maxLength: 2 }),
    nodeSelector: fc.option(
      fc.dictionary(fc.constantFrom("kubernetes.io/arch", "kubernetes.io/os"), fc.constantFrom("arm64", "amd64", "windows", "linux")),
      { nil: undefined },
    ),
    automount: fc.constantFrom(undefined, false, true),
    unknownSpec: fc.dictionary(fc.constantFrom("futureField", "__proto__", "hostUsers"), jsonValue, { maxKeys: 2 }),
    ephemeral: fc.boolean(),
  })
  .chain((shape) =>
    fc.tuple(...shape.containerNames.map((name) => container(name))).map((containers) => {
      const init = containers.slice(0, Math.min(shape.initCount, containers.length - 1));
      const regular = containers.slice(init.length);
      const annotations: Record<string, unknown> = { ...shape.annotations };
      if (shape.injectTrue) annotations["kustodia.io/inject"] = "true";
      const spec: Record<string, unknown> = { containers: regular };
      if (init.length > 0) spec.initContainers = init;
      if (shape.volumes.length > 0) spec.volumes = shape.volumes.map((v) => ({ ...v, emptyDir: {} }));
      if (shape.nodeSelector) spec.nodeSelector = shape.nodeSelector;
      if (shape.automount !== undefined) spec.automountServiceAccountToken = shape.automount;
      if (shape.ephemeral) spec.ephemeralContainers = [{ name: "debugger", image: "busybox", env: [{ name: "SECRET_X", value: "a/b" }] }];
      for (const [key, value] of Object.entries(shape.unknownSpec))
        Object.defineProperty(spec, key, { value, enumerable: true, writable: true, configurable: true });
      return { apiVersion: "v1", kind: "Pod", metadata: { generateName: "gen-", annotations }, spec } as unknown as JsonObject;
    }),
  );

/** Deterministic fake registry answers: some images have configs, some fail. */
function lookupImages(needs: { container: string; image: string }[]): Promise<Map<string, ImageLookupResult>> {
  return Promise.resolve(
    new Map(
      needs.map((need): [string, ImageLookupResult] => {
        if (need.image.startsWith("missing")) return [need.container, { ok: false, error: "registry answered 404" }];
        if (need.image.length % 3 === 0) return [need.container, { ok: true, config: {} }];
        return [
          need.container,
          { ok: true, config: { entrypoint: ["/docker-entrypoint.sh", "$HOME"], cmd: ["nginx", "-g", "daemon off;"] } },
        ];
      }),
    ),
  );
}

const context: AdmissionContext = {
  settings: {
    shimImage: "kustodia/shim:test",
    shimVersion: "0.0.0-test",
    delivery: "copy",
    emptyDirSizeLimit: "256Mi",
    installResources: {},
    installRunAsUser: 65532,
    referencePrefix: "SECRET_",
    shimDefaults: { backend: "vault", vaultAddr: "https://vault.example" },
    vaultAddrAllowlist: ["https://vault-b.example"],
    excludedNamespaces: ["kube-system"],
  },
  lookupImages,
};

function request(object: JsonObject): AdmissionRequest {
  return { uid: "uid-1", kind: { group: "", version: "v1", kind: "Pod" }, operation: "CREATE", namespace: "ns", object };
}

/** Applies a JSON Patch the way the apiserver does (own-property semantics, no prototype games). */
function applyAsApiserver(document: JsonObject, patch: fastJsonPatch.Operation[]): JsonObject {
  const error = fastJsonPatch.validate(patch, structuredClone(document));
  if (error) throw error;
  return fastJsonPatch.applyPatch(structuredClone(document), patch, false, false, false).newDocument;
}

describe("admission of generated pods", () => {
  it(`answers every generated pod with a valid response whose patch applies and is idempotent (${RUNS} cases)`, async () => {
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    await fc.assert(
      fc.asyncProperty(pod, async (arbitraryPod) => {
        // What the server hands to admit(): the pod as parsed from the request's JSON.
        const generated = JSON.parse(JSON.stringify(arbitraryPod)) as JsonObject;
        const snapshot = structuredClone(generated);
        const outcome = await admit(request(generated), context);
        // node's deep equality: vitest's toStrictEqual compares `.constructor`, which these pods may own.
        expect(isDeepStrictEqual(generated, snapshot), "the request object is never modified").toBe(true);
        const { response } = outcome;
        expect(response.uid).toBe("uid-1");
        expect(typeof response.allowed).toBe("boolean");
        if (!response.allowed) {
          expect(outcome.decision).toBe("denied");
          expect(response.status?.message).toMatch(/^kustodia: \S/);
          expect(response.patch).toBeUndefined();
          return;
        }
        if (!response.patch) return;
        expect(response.patchType).toBe("JSONPatch");
        const patch = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as fastJsonPatch.Operation[];
        const mutated = applyAsApiserver(generated, patch);
        const status = (mutated.metadata as { annotations: Record<string, string> }).annotations["kustodia.io/status"];
        expect(status).toMatch(/^(injected|skipped) /);
        for (const name of outcome.injected ?? []) {
          const spec = mutated.spec as { containers?: JsonObject[]; initContainers?: JsonObject[] };
          const found = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((c) => c.name === name);
          const command = (found?.command as string[]) ?? [];
          const shimAt = command[0] === "/kustodia/tini" ? 2 : 0;
          expect(command.slice(shimAt, shimAt + 2)).toEqual(["/kustodia/kustodia-shim", "--"]);
        }
        const again = await admit(request(mutated), context);
        expect(again.response).toEqual({ uid: "uid-1", allowed: true });
      }),
      { numRuns: RUNS },
    );
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  }, 600_000);
});
