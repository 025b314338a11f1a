import fastJsonPatch from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { Annotations, INSTALL_CONTAINER_NAME, MOUNT_PATH, SHIM_PATH } from "../common/contract.ts";
import { imagesNeeded } from "./command.ts";
import { renderDecision } from "./decision.ts";
import type { ImageLookupResult } from "./image-facts.ts";
import { mutatePod as decide } from "./mutate.ts";
import { testMutationSettings } from "./mutation-settings.fixture.ts";
import type { JsonObject } from "./pod.ts";

/** The decision in words, as the admission response carries it. */
const mutatePod = (...args: Parameters<typeof decide>) => renderDecision(decide(...args));

const settings = testMutationSettings({
  installResources: { requests: { cpu: "10m", memory: "32Mi" } },
  shimDefaults: { backend: "vault", vaultAddr: "https://vault.example:8200", vaultAuthMethod: "kubernetes", vaultRole: "default-role" },
  vaultAddrAllowlist: ["https://vault-team.example:8200"],
});

function pod(spec: JsonObject, annotations: Record<string, string> = { [Annotations.inject]: "true" }): JsonObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "ns", annotations }, spec };
}

/** What the ServiceAccount admission plugin mounts into every container when automounting is on. */
const serviceAccountMount = { name: "kube-api-access-abcde", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true };

const app = (extra: JsonObject = {}): JsonObject => ({
  name: "app",
  image: "example/app:1",
  env: [{ name: "SECRET_PASSWORD", value: "myapp/password" }],
  volumeMounts: [serviceAccountMount],
  ...extra,
});

const noImages = new Map<string, ImageLookupResult>();

function mutated(input: JsonObject, images = noImages) {
  const decision = mutatePod(input, settings, images);
  if (decision.kind !== "mutate") throw new Error(`expected a mutation, got ${JSON.stringify(decision)}`);
  return decision;
}

function container(result: JsonObject, name: string): JsonObject {
  const spec = result.spec as { containers?: JsonObject[]; initContainers?: JsonObject[] };
  const found = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((c) => c.name === name);
  if (!found) throw new Error(`no container ${name}`);
  return found;
}

describe("mutatePod: Kubernetes command/args semantics", () => {
  const image = (entrypoint?: string[], cmd?: string[]) =>
    new Map<string, ImageLookupResult>([["app", { ok: true, config: { ...(entrypoint ? { entrypoint } : {}), ...(cmd ? { cmd } : {}) } }]]);

  it.each([
    [
      "command + args: image ignored",
      { command: ["/bin/app"], args: ["--x"] },
      image(["/ep"], ["cmd"]),
      [SHIM_PATH, "--", "/bin/app"],
      ["--x"],
    ],
    ["command only: image CMD not used", { command: ["/bin/app"] }, image(["/ep"], ["cmd"]), [SHIM_PATH, "--", "/bin/app"], undefined],
    [
      "args only: image ENTRYPOINT + spec args",
      { args: ["--port", "80"] },
      image(["/ep"], ["cmd"]),
      [SHIM_PATH, "--", "/ep"],
      ["--port", "80"],
    ],
    ["neither: image ENTRYPOINT + CMD", {}, image(["/ep", "-a"], ["cmd", "-b"]), [SHIM_PATH, "--", "/ep", "-a"], ["cmd", "-b"]],
    ["neither, CMD-only image", {}, image(undefined, ["/bin/sh", "-c", "echo hi"]), [SHIM_PATH, "--"], ["/bin/sh", "-c", "echo hi"]],
    [
      "neither, ENTRYPOINT-only image",
      {},
      image(["/usr/bin/tini", "--", "/run"]),
      [SHIM_PATH, "--", "/usr/bin/tini", "--", "/run"],
      undefined,
    ],
    ["empty command array counts as unset", { command: [], args: ["x"] }, image(["/ep"]), [SHIM_PATH, "--", "/ep"], ["x"]],
    [
      "args only, CMD-only image: CMD replaced by args",
      { args: ["/bin/app"] },
      image(undefined, ["/bin/sh"]),
      [SHIM_PATH, "--"],
      ["/bin/app"],
    ],
  ] as const)("%s", (_name, fields, images, command, args) => {
    const result = mutated(pod({ containers: [app(fields as JsonObject)] }), images);
    const c = container(result.pod, "app");
    expect(c.command).toEqual(command);
    expect(c.args).toEqual(args);
  });

  it("uses kustodia.io/entrypoint.<container> instead of the registry", () => {
    const input = pod(
      { containers: [app({ args: ["--serve"] })] },
      { [Annotations.inject]: "true", "kustodia.io/entrypoint.app": '["/app/server","--x"]' },
    );
    expect(imagesNeeded(input, settings)).toEqual([]);
    const c = container(mutated(input).pod, "app");
    expect(c.command).toEqual([SHIM_PATH, "--", "/app/server", "--x"]);
    expect(c.args).toEqual(["--serve"]);
  });

  it("asks for the image only where command is unset, with the pod's pinned architecture", () => {
    const input = pod({
      nodeSelector: { "kubernetes.io/arch": "arm64" },
      containers: [app(), { ...app({ name: "worker", image: "example/worker:2" }), command: ["/w"] }],
    });
    expect(imagesNeeded(input, settings)).toEqual([{ container: "app", image: "example/app:1", architecture: "arm64" }]);
  });

  it.each([
    ["failed lookup", new Map([["app", { ok: false, error: "registry answered 404" } as ImageLookupResult]]), "registry answered 404"],
    ["no lookup", noImages, "was not looked up"],
    [
      "image with neither ENTRYPOINT nor CMD",
      new Map([["app", { ok: true, config: {} } as ImageLookupResult]]),
      "neither ENTRYPOINT nor CMD",
    ],
  ])("denies with the fix named when the entrypoint is unknown: %s", (_name, images, cause) => {
    const decision = mutatePod(pod({ containers: [app()] }), settings, images);
    expect(decision.kind).toBe("deny");
    if (decision.kind !== "deny") return;
    expect(decision.message).toContain(cause);
    expect(decision.message).toContain('set "command:" on container "app"');
    expect(decision.message).toContain("kustodia.io/entrypoint.app");
  });

  it("denies an invalid entrypoint annotation", () => {
    const input = pod({ containers: [app()] }, { [Annotations.inject]: "true", "kustodia.io/entrypoint.app": "/app/server" });
    const decision = mutatePod(input, settings, noImages);
    expect(decision).toMatchObject({ kind: "deny" });
    expect(decision.kind === "deny" && decision.message).toContain("must be a non-empty JSON array of strings");
  });
});

describe("mutatePod: what is added", () => {
  const input = pod({ containers: [app({ command: ["/bin/app"] })], initContainers: [{ name: "migrate", image: "m", command: ["/m"] }] });

  it("puts the install init container first, PSS-restricted, writing the shared volume", () => {
    const result = mutated(input).pod;
    const spec = result.spec as { initContainers: JsonObject[]; volumes: JsonObject[] };
    expect(spec.initContainers.map((c) => c.name)).toEqual([INSTALL_CONTAINER_NAME, "migrate"]);
    const install = spec.initContainers[0] as JsonObject;
    expect(install.image).toBe(settings.shimImage);
    expect(install.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(spec.volumes).toEqual([{ name: "kustodia", emptyDir: { sizeLimit: "256Mi" } }]);
  });

  it("mounts the volume read-only at /kustodia in selected containers only", () => {
    const result = mutated(input).pod;
    expect(container(result, "app").volumeMounts).toEqual([
      serviceAccountMount,
      { name: "kustodia", mountPath: MOUNT_PATH, readOnly: true },
    ]);
    expect(container(result, "migrate").volumeMounts).toBeUndefined();
    expect(container(result, "migrate").command).toEqual(["/m"]);
  });

  it("adds the shim settings to the container env after its own vars", () => {
    const env = container(mutated(input).pod, "app").env as JsonObject[];
    expect(env[0]).toEqual({ name: "SECRET_PASSWORD", value: "myapp/password" });
    expect(env).toContainEqual({ name: "KUSTODIA_VAULT_ADDR", value: "https://vault.example:8200" });
    expect(env).toContainEqual({ name: "KUSTODIA_VAULT_ROLE", value: "default-role" });
  });

  it("lets per-pod annotations override cluster defaults, and keeps a container's own KUSTODIA_LOG_LEVEL", () => {
    const annotated = pod(
      {
        containers: [
          app({
            command: ["/a"],
            env: [
              { name: "SECRET_A", value: "x/y" },
              { name: "KUSTODIA_LOG_LEVEL", value: "debug" },
            ],
          }),
        ],
      },
      {
        [Annotations.inject]: "true",
        [Annotations.vaultRole]: "team-role",
        [Annotations.backend]: "custodia",
      },
    );
    const env = container(mutated(annotated).pod, "app").env as JsonObject[];
    expect(env).toContainEqual({ name: "KUSTODIA_VAULT_ROLE", value: "team-role" });
    expect(env).toContainEqual({ name: "KUSTODIA_BACKEND", value: "custodia" });
    expect(env.filter((e) => e.name === "KUSTODIA_LOG_LEVEL")).toEqual([{ name: "KUSTODIA_LOG_LEVEL", value: "debug" }]);
  });

  it("replaces a container's own backend address with the cluster's, with a warning", () => {
    const input2 = pod({
      containers: [
        app({
          command: ["/a"],
          env: [
            { name: "SECRET_A", value: "x/y" },
            { name: "KUSTODIA_VAULT_ADDR", value: "https://evil.example" },
          ],
        }),
      ],
    });
    const result = mutated(input2);
    const env = container(result.pod, "app").env as JsonObject[];
    expect(env.filter((e) => e.name === "KUSTODIA_VAULT_ADDR")).toEqual([
      { name: "KUSTODIA_VAULT_ADDR", value: "https://vault.example:8200" },
    ]);
    expect(result.warnings.join("\n")).toContain("replaced it with the cluster's value");
  });

  it("honours kustodia.io/vault-addr only inside the allowlist", () => {
    const allowed = pod(
      { containers: [app({ command: ["/a"] })] },
      { [Annotations.inject]: "true", [Annotations.vaultAddr]: "https://vault-team.example:8200" },
    );
    expect(container(mutated(allowed).pod, "app").env).toContainEqual({
      name: "KUSTODIA_VAULT_ADDR",
      value: "https://vault-team.example:8200",
    });
    const refused = pod(
      { containers: [app({ command: ["/a"] })] },
      { [Annotations.inject]: "true", [Annotations.vaultAddr]: "https://vault-team.example:8200.evil.example" },
    );
    const decision = mutatePod(refused, settings, noImages);
    expect(decision.kind === "deny" && decision.message).toContain("not in the cluster's address allowlist");
  });

  it("marks the pod with kustodia.io/status", () => {
    expect((mutated(input).pod.metadata as { annotations: Record<string, string> }).annotations[Annotations.status]).toBe("injected 0.1.0");
  });

  it("uses a free volume and init container name when the user's pod takes kustodia's", () => {
    const taken = pod({
      volumes: [{ name: "kustodia", emptyDir: {} }],
      initContainers: [{ name: "kustodia-install", image: "x", command: ["/x"] }],
      containers: [app({ command: ["/a"], volumeMounts: [serviceAccountMount, { name: "kustodia", mountPath: "/data" }] })],
    });
    const result = mutated(taken).pod;
    const spec = result.spec as { initContainers: JsonObject[]; volumes: JsonObject[] };
    expect(spec.volumes.map((v) => v.name)).toEqual(["kustodia", "kustodia-1"]);
    expect(spec.initContainers.map((c) => c.name)).toEqual(["kustodia-install-1", "kustodia-install"]);
    expect(container(result, "app").volumeMounts).toEqual([
      serviceAccountMount,
      { name: "kustodia", mountPath: "/data" },
      { name: "kustodia-1", mountPath: "/kustodia", readOnly: true },
    ]);
  });

  it("denies a container that already mounts something at /kustodia", () => {
    const clash = pod({
      volumes: [{ name: "v", emptyDir: {} }],
      containers: [app({ command: ["/a"], volumeMounts: [{ name: "v", mountPath: "/kustodia/" }] })],
    });
    const decision = mutatePod(clash, settings, noImages);
    expect(decision.kind === "deny" && decision.message).toContain("already mounts a volume at /kustodia");
  });

  it.each(["//kustodia/kustodia-shim", "/kustodia/./kustodia-shim", "/kustodia/lib/", "/opt/../kustodia"])(
    "denies a container that mounts a volume at %j, under /kustodia once normalised (#13 item 6)",
    (mountPath) => {
      const clash = pod({
        volumes: [{ name: "fake", configMap: { name: "not-the-shim" } }],
        containers: [app({ command: ["/a"], volumeMounts: [{ name: "fake", mountPath }] })],
      });
      const decision = mutatePod(clash, settings, noImages);
      expect(decision.kind === "deny" && decision.message).toContain("already mounts a volume at /kustodia");
    },
  );

  it("mounts the shim image as a volume in image-volume delivery, with no init container", () => {
    const decision = mutatePod(input, { ...settings, delivery: "image-volume" }, noImages);
    if (decision.kind !== "mutate") throw new Error("expected mutation");
    const spec = decision.pod.spec as { initContainers: JsonObject[]; volumes: JsonObject[] };
    expect(spec.initContainers.map((c) => c.name)).toEqual(["migrate"]);
    expect(spec.volumes).toEqual([{ name: "kustodia", image: { reference: settings.shimImage, pullPolicy: "IfNotPresent" } }]);
  });
});

describe("mutatePod: selection", () => {
  it.each([
    ["no annotation", pod({ containers: [app()] }, {}), "not opted in"],
    ["inject false", pod({ containers: [app()] }, { [Annotations.inject]: "false" }), "not opted in"],
    [
      "already injected",
      pod({ containers: [app()] }, { [Annotations.inject]: "true", [Annotations.status]: "injected 0.0.9" }),
      "already handled",
    ],
    ["Windows pod", pod({ os: { name: "windows" }, containers: [app()] }), "Windows"],
  ])("skips: %s", (_name, input, reason) => {
    const decision = mutatePod(input, settings, noImages);
    expect(decision.kind).toBe("skip");
    expect(decision.kind === "skip" && decision.reason).toContain(reason);
  });

  it("selects containers and initContainers (native sidecars too) that declare references; never ephemeral containers", () => {
    const input = pod({
      initContainers: [
        { name: "sidecar", image: "s", restartPolicy: "Always", command: ["/s"], env: [{ name: "SECRET_TOKEN", value: "s/token" }] },
        { name: "plain-init", image: "p", command: ["/p"] },
      ],
      containers: [app({ command: ["/a"] }), { name: "no-secrets", image: "n", command: ["/n"] }],
      ephemeralContainers: [{ name: "debug", image: "d", command: ["/d"], env: [{ name: "SECRET_X", value: "a/b" }] }],
    });
    const decision = mutated(input);
    expect(decision.injected).toEqual(["sidecar", "app"]);
    expect(container(decision.pod, "sidecar").command).toEqual([SHIM_PATH, "--", "/s"]);
    expect(container(decision.pod, "plain-init").command).toEqual(["/p"]);
    expect(container(decision.pod, "no-secrets").command).toEqual(["/n"]);
    expect((decision.pod.spec as { ephemeralContainers: JsonObject[] }).ephemeralContainers).toEqual(
      (input.spec as { ephemeralContainers: JsonObject[] }).ephemeralContainers,
    );
  });

  it("follows kustodia.io/containers and warns about names the pod does not have", () => {
    const input = pod(
      { containers: [app({ command: ["/a"] }), { name: "worker", image: "w", command: ["/w"] }] },
      { [Annotations.inject]: "true", [Annotations.containers]: "worker, ghost" },
    );
    const decision = mutated(input);
    expect(decision.injected).toEqual(["worker"]);
    expect(decision.warnings.join("\n")).toContain('names "ghost"');
  });

  it("does not count passthrough vars as references", () => {
    const input = pod(
      { containers: [{ name: "django", image: "d", command: ["/d"], env: [{ name: "SECRET_KEY", value: "not-a-ref" }] }] },
      {
        [Annotations.inject]: "true",
        [Annotations.passthrough]: "SECRET_KEY",
      },
    );
    const decision = mutated(input);
    expect(decision.injected).toEqual([]);
    expect(decision.warnings.join("\n")).toContain("nothing injected");
    expect((decision.pod.metadata as { annotations: Record<string, string> }).annotations[Annotations.status]).toMatch(/^skipped/);
  });
});

describe("mutatePod: warnings and bad annotations", () => {
  it("warns about malformed references, invalid names and collisions without leaking other values", () => {
    const input = pod({
      containers: [
        app({
          command: ["/a"],
          env: [
            { name: "SECRET_A", value: "../../etc/passwd" },
            { name: "SECRET_B-C", value: "x/y" },
            { name: "SECRET_USER", value: "x/user" },
            { name: "USER", value: "plain-value-42" },
            { name: "SECRET_FROM_CM", valueFrom: { configMapKeyRef: { name: "cm", key: "k" } } },
          ],
        }),
      ],
    });
    const warnings = mutated(input).warnings.join("\n");
    expect(warnings).toContain("SECRET_A: invalid reference");
    expect(warnings).toContain('"B-C" is not a valid environment variable name');
    expect(warnings).toContain("already sets USER");
    expect(warnings).not.toContain("SECRET_FROM_CM");
    expect(warnings).not.toContain("plain-value-42");
  });

  it.each([
    [Annotations.backend, "aws"],
    [Annotations.rotation, "sometimes"],
    [Annotations.rotationInterval, "5 minutes"],
    [Annotations.rotationSignal, "HUP; rm -rf /"],
    [Annotations.vaultKvMount, "../sys"],
    [Annotations.ignoreMissing, "yes"],
    [Annotations.passthrough, "A=B"],
  ])("denies %s=%j with the accepted values", (annotation, value) => {
    const input = pod({ containers: [app({ command: ["/a"] })] }, { [Annotations.inject]: "true", [annotation]: value });
    const decision = mutatePod(input, settings, noImages);
    expect(decision.kind).toBe("deny");
    expect(decision.kind === "deny" && decision.message).toContain(`annotation ${annotation} has the invalid value`);
    expect(decision.kind === "deny" && decision.message).toContain("accepted:");
  });
});

describe("mutatePod: the patch", () => {
  it("keeps unknown fields and leaves the original untouched; the diff applies and re-admission is a no-op", () => {
    const input = pod({
      futureField: { nested: [1, 2, { deep: true }] },
      containers: [
        app({ command: ["/a"], futureContainerField: "keep-me", resizePolicy: [{ resourceName: "cpu", restartPolicy: "NotRequired" }] }),
      ],
    });
    const snapshot = structuredClone(input);
    const result = mutated(input);
    expect(input).toEqual(snapshot);
    const patch = fastJsonPatch.compare(input, result.pod);
    const applied = fastJsonPatch.applyPatch(structuredClone(input), patch).newDocument;
    expect(applied).toEqual(result.pod);
    expect((applied.spec as JsonObject).futureField).toEqual({ nested: [1, 2, { deep: true }] });
    expect(container(applied, "app").futureContainerField).toBe("keep-me");
    expect(mutatePod(applied, settings, noImages).kind).toBe("skip");
  });
});

describe("mutatePod: corpus findings", () => {
  it("keeps $ in image ENTRYPOINT/CMD literal for the kubelet ($ → $$)", () => {
    const images = new Map<string, ImageLookupResult>([
      ["app", { ok: true, config: { entrypoint: ["/bin/sh", "-c"], cmd: ["exec worker --n=$(nproc) --pid=/tmp/w-$$.pid"] } }],
    ]);
    const c = container(mutated(pod({ containers: [app()] }), images).pod, "app");
    expect(c.command).toEqual([SHIM_PATH, "--", "/bin/sh", "-c"]);
    expect(c.args).toEqual(["exec worker --n=$$(nproc) --pid=/tmp/w-$$$$.pid"]);
  });

  it("leaves $ in the pod's own command and args alone (the kubelet expands them as before)", () => {
    const c = container(mutated(pod({ containers: [app({ command: ["/a", "$(HOME)"], args: ["$$"] })] })).pod, "app");
    expect(c.command).toEqual([SHIM_PATH, "--", "/a", "$(HOME)"]);
    expect(c.args).toEqual(["$$"]);
  });

  it.each([
    [
      "a single-arch required affinity",
      [{ matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["arm64"] }] }],
      "arm64",
    ],
    [
      "every term the same arch",
      [
        { matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["arm64"] }] },
        {
          matchExpressions: [
            { key: "kubernetes.io/arch", operator: "In", values: ["arm64"] },
            { key: "zone", operator: "In", values: ["a"] },
          ],
        },
      ],
      "arm64",
    ],
    ["two archs allowed", [{ matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["arm64", "amd64"] }] }], undefined],
    [
      "terms disagreeing",
      [
        { matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["arm64"] }] },
        { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] },
      ],
      undefined,
    ],
  ])("reads the architecture from %s", (_name, nodeSelectorTerms, architecture) => {
    const input = pod({
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } },
      containers: [app()],
    });
    expect(imagesNeeded(input, settings)).toEqual([
      { container: "app", image: "example/app:1", ...(architecture ? { architecture } : {}) },
    ]);
  });

  it("mounts a projected token for the shim when the container has no automounted ServiceAccount token", () => {
    const result = mutated(pod({ automountServiceAccountToken: false, containers: [app({ command: ["/a"], volumeMounts: [] })] }));
    const c = container(result.pod, "app");
    expect(c.volumeMounts).toContainEqual({
      name: "kustodia-token",
      mountPath: "/var/run/secrets/kustodia.io/serviceaccount",
      readOnly: true,
    });
    expect(c.env).toContainEqual({ name: "KUSTODIA_SA_TOKEN_FILE", value: "/var/run/secrets/kustodia.io/serviceaccount/token" });
    expect((result.pod.spec as { volumes: JsonObject[] }).volumes).toContainEqual({
      name: "kustodia-token",
      projected: { defaultMode: 0o444, sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] },
    });
    expect(result.warnings.join("\n")).toContain("no ServiceAccount token");
  });

  it("uses the automounted token when there is one, and none at all for Custodia", () => {
    const automounted = app({
      command: ["/a"],
      volumeMounts: [{ name: "kube-api-access-x", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true }],
    });
    const result = mutated(pod({ containers: [automounted] }));
    expect((result.pod.spec as { volumes: JsonObject[] }).volumes.map((v) => v.name)).toEqual(["kustodia"]);
    const custodia = mutated(
      pod(
        { containers: [app({ command: ["/a"], volumeMounts: [] })] },
        { [Annotations.inject]: "true", [Annotations.backend]: "custodia" },
      ),
    );
    expect((custodia.pod.spec as { volumes: JsonObject[] }).volumes.map((v) => v.name)).toEqual(["kustodia"]);
  });
});

describe("mutatePod: rotation mode", () => {
  it.each(["restart", "signal"])("puts tini as PID 1 in front of the resident shim (rotation %s)", (mode) => {
    const input = pod(
      { containers: [app({ command: ["/a"], args: ["x"] })] },
      { [Annotations.inject]: "true", [Annotations.rotation]: mode },
    );
    const c = container(mutated(input).pod, "app");
    expect(c.command).toEqual(["/kustodia/tini", "--", SHIM_PATH, "--", "/a"]);
    expect(c.args).toEqual(["x"]);
  });

  it("runs the shim directly when it execs the app (rotation none)", () => {
    const input = pod({ containers: [app({ command: ["/a"] })] }, { [Annotations.inject]: "true", [Annotations.rotation]: "none" });
    expect(container(mutated(input).pod, "app").command).toEqual([SHIM_PATH, "--", "/a"]);
  });
});
