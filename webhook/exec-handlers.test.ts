import fastJsonPatch from "fast-json-patch";
import { describe, expect, it } from "vitest";
import { Annotations, SHIM_PATH } from "../common/contract.ts";
import { EXEC_HANDLER_KINDS } from "../common/shim-settings.ts";
import { admit } from "./admission.ts";
import { renderDecision } from "./decision.ts";
import { execHandlers, namesRead, probeDeadlineMs, referenceTargets } from "./exec-handlers.ts";
import { renderFinding } from "./findings.ts";
import type { ImageLookupResult } from "./image-facts.ts";
import { mutatePod } from "./mutate.ts";
import { testMutationSettings } from "./mutation-settings.fixture.ts";
import type { JsonObject, RawContainer } from "./pod.ts";

// Token auth: the pods need no ServiceAccount token, so the only warnings are the ones under test.
const settings = testMutationSettings({ shimDefaults: { vaultAddr: "https://vault.example:8200", vaultAuthMethod: "token" } });
const noImages = new Map<string, ImageLookupResult>();
const names = new Set(["PASSWORD", "REDIS_PASSWORD", "TOKEN"]);

const redisProbe = { exec: { command: ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" ping | grep PONG'] }, periodSeconds: 10 };

function app(extra: JsonObject = {}): RawContainer {
  return {
    name: "app",
    image: "example/redis:7",
    command: ["redis-server"],
    env: [{ name: "SECRET_REDIS_PASSWORD", value: "myapp/redis#password" }],
    ...extra,
  };
}

function pod(containers: JsonObject[], annotations: Record<string, string> = {}): JsonObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "ns", annotations: { [Annotations.inject]: "true", ...annotations } },
    spec: { containers },
  };
}

function mutated(input: JsonObject): JsonObject {
  const decision = mutatePod(input, settings, noImages);
  if (decision.kind !== "mutate") throw new Error(`expected a mutation, got ${JSON.stringify(decision)}`);
  return decision.pod;
}

const first = (result: JsonObject) => (result.spec as { containers: JsonObject[] }).containers[0] as JsonObject;
const probeCommand = (container: JsonObject, kind = "readinessProbe") =>
  ((container[kind] as JsonObject).exec as { command: string[] }).command;

/* biome-ignore-start lint/suspicious/noTemplateCurlyInString: shell parameter expansions, not templates */
describe("namesRead", () => {
  it.each<{ name: string; command: string[]; want: string[] }>([
    { name: "$NAME in sh -c", command: ["sh", "-c", "mysqladmin -p$PASSWORD ping"], want: ["PASSWORD"] },
    { name: "${NAME} in bash -c", command: ["/bin/bash", "-c", 'redis-cli -a "${REDIS_PASSWORD}" ping'], want: ["REDIS_PASSWORD"] },
    { name: "${NAME:-default}", command: ["sh", "-c", 'test -n "${TOKEN:-}"'], want: ["TOKEN"] },
    { name: "${#NAME}", command: ["sh", "-c", 'test "${#TOKEN}" -gt 0'], want: ["TOKEN"] },
    { name: "$(NAME), the kubelet's expansion", command: ["mysqladmin", "ping", "-p$(PASSWORD)"], want: ["PASSWORD"] },
    { name: "$NAME outside a shell", command: ["check", "--password=$PASSWORD"], want: ["PASSWORD"] },
    { name: "a word that is just NAME", command: ["printenv", "TOKEN"], want: ["TOKEN"] },
    { name: "NAME alone in a sh -c script", command: ["sh", "-c", "env | grep -q ^TOKEN="], want: ["TOKEN"] },
    { name: "sh -ec", command: ["sh", "-ec", "test -n $TOKEN"], want: ["TOKEN"] },
    { name: "busybox sh -c", command: ["/bin/busybox", "sh", "-c", "test -n $TOKEN"], want: ["TOKEN"] },
    { name: "several names", command: ["sh", "-c", 'login "$TOKEN" "$PASSWORD"'], want: ["PASSWORD", "TOKEN"] },
  ])("finds $name", ({ command, want }) => {
    expect(namesRead(command, names).sort()).toEqual(want);
  });

  it.each<{ name: string; command: string[] }>([
    { name: "a longer name: $PASSWORD_FILE", command: ["sh", "-c", 'cat "$PASSWORD_FILE"'] },
    { name: "a longer name: ${PASSWORD_FILE}", command: ["sh", "-c", 'cat "${PASSWORD_FILE}"'] },
    { name: "a longer name: $(PASSWORD_FILE)", command: ["cat", "$(PASSWORD_FILE)"] },
    { name: "a name ending in NAME: $DB_PASSWORD", command: ["sh", "-c", 'psql -W "$DB_PASSWORD"'] },
    { name: "the reference var itself", command: ["sh", "-c", 'test -n "$SECRET_TOKEN"'] },
    { name: "NAME inside a word outside a shell", command: ["grep", "-q", "TOKENS", "/etc/x"] },
    { name: "NAME alone outside a shell script", command: ["check", "--mode", "PASSWORD-less"] },
    { name: "another case", command: ["sh", "-c", 'test -n "$password"'] },
    { name: "no names", command: ["redis-cli", "ping"] },
  ])("does not find $name", ({ command }) => {
    expect(namesRead(command, names)).toEqual([]);
  });
});

/* biome-ignore-end lint/suspicious/noTemplateCurlyInString: shell parameter expansions, not templates */

describe("referenceTargets", () => {
  it("holds the names the references define, without passthrough vars or vars the container sets itself", () => {
    const container: RawContainer = {
      name: "app",
      env: [
        { name: "SECRET_PASSWORD", value: "app/password" },
        { name: "SECRET_KEY", value: "django-plain-value" },
        { name: "SECRET_TOKEN", valueFrom: { secretKeyRef: { name: "refs", key: "token" } } },
        { name: "SECRET_HOST", value: "app/host" },
        { name: "HOST", value: "localhost" },
        { name: "PLAIN", value: "x" },
      ],
    };
    expect([...referenceTargets(container, "SECRET_", new Set(["SECRET_KEY"]))].sort()).toEqual(["PASSWORD", "TOKEN"]);
  });
});

describe("execHandlers", () => {
  it("finds exec probes and exec hooks, not httpGet, tcpSocket or sleep handlers", () => {
    const container = app({
      livenessProbe: { httpGet: { path: "/", port: 80 } },
      readinessProbe: redisProbe,
      startupProbe: { tcpSocket: { port: 6379 } },
      lifecycle: { postStart: { exec: { command: ["sh", "-c", "true"] } }, preStop: { sleep: { seconds: 5 } } },
    });
    expect(execHandlers(container).map((handler) => handler.kind)).toEqual(["readinessProbe", "postStart"]);
  });
});

describe("probeDeadlineMs", () => {
  it.each([
    [{}, 500],
    [{ timeoutSeconds: 1 }, 500],
    [{ timeoutSeconds: 3 }, 1500],
    [{ timeoutSeconds: 0 }, 500],
    [{ timeoutSeconds: "5" }, 500],
    [{ timeoutSeconds: 2 ** 31 - 1 }, (2 ** 31 - 1) * 500],
    [{ timeoutSeconds: 2e18 }, 500],
  ])("%j → %d ms", (probe, ms) => {
    expect(probeDeadlineMs(probe as JsonObject)).toBe(ms);
  });
});

describe("mutatePod: exec handlers that need a secret", () => {
  it("warns about an unwrapped handler that reads a var a reference defines, naming container, handler, variable and fix", () => {
    const decision = mutatePod(pod([app({ readinessProbe: redisProbe })]), settings, noImages);
    expect(decision.warnings).toEqual([
      { code: "KUS_HANDLER_NEEDS_SECRET", container: "app", handler: "readinessProbe", variables: ["REDIS_PASSWORD"] },
    ]);
    expect(renderDecision(decision).warnings).toEqual([
      'container "app" readinessProbe reads REDIS_PASSWORD, which only the app\'s process gets from kustodia: the handler sees no value and fails; run it through the shim with the annotation kustodia.io/wrap-exec: "readinessProbe" (or "true")',
    ]);
  });

  it("warns once per handler, each of the five kinds, in an injected native sidecar too", () => {
    const handler = { exec: { command: ["sh", "-c", "test -n $TOKEN"] } };
    const sidecar = {
      name: "sidecar",
      image: "example/s:1",
      command: ["/s"],
      restartPolicy: "Always",
      env: [{ name: "SECRET_TOKEN", value: "app/token" }],
      livenessProbe: handler,
      readinessProbe: handler,
      startupProbe: handler,
      lifecycle: { postStart: handler, preStop: handler },
    };
    const input = pod([app()]);
    (input.spec as JsonObject).initContainers = [sidecar];
    const decision = mutatePod(input, settings, noImages);
    expect(decision.warnings.map((warning) => warning.code === "KUS_HANDLER_NEEDS_SECRET" && warning.handler)).toEqual([
      ...EXEC_HANDLER_KINDS,
    ]);
  });

  it.each<{ name: string; container: RawContainer; annotations?: Record<string, string> }>([
    { name: "a handler that reads no secret", container: app({ readinessProbe: { exec: { command: ["redis-cli", "ping"] } } }) },
    {
      name: "a var the container sets itself",
      container: app({
        env: [
          { name: "SECRET_REDIS_PASSWORD", value: "myapp/redis#password" },
          { name: "REDIS_HOST", value: "localhost" },
        ],
        readinessProbe: { exec: { command: ["sh", "-c", 'redis-cli -h "$REDIS_HOST" ping'] } },
      }),
    },
    {
      name: "a passthrough var",
      container: app({
        env: [{ name: "SECRET_KEY", value: "plain" }, ...(app().env as JsonObject[])],
        readinessProbe: { exec: { command: ["sh", "-c", 'test -n "$KEY"'] } },
      }),
      annotations: { [Annotations.passthrough]: "SECRET_KEY" },
    },
    {
      name: "a handler the user already runs through the shim",
      container: app({ readinessProbe: { exec: { command: [SHIM_PATH, "--", ...redisProbe.exec.command] } } }),
    },
    {
      name: "a wrapped handler",
      container: app({ readinessProbe: redisProbe }),
      annotations: { [Annotations.wrapExec]: "readinessProbe" },
    },
  ])("does not warn about $name", ({ container, annotations }) => {
    const decision = mutatePod(pod([container], annotations), settings, noImages);
    expect(decision.kind).toBe("mutate");
    expect(decision.warnings).toEqual([]);
  });

  it("does not look at containers that are not injected", () => {
    const other = { name: "other", image: "x:1", readinessProbe: { exec: { command: ["sh", "-c", "test -n $REDIS_PASSWORD"] } } };
    expect(mutatePod(pod([app(), other]), settings, noImages).warnings).toEqual([]);
  });

  it("is shown by the admission response as a warning kubectl prints", async () => {
    const outcome = await admit(
      {
        uid: "u1",
        kind: { group: "", version: "v1", kind: "Pod" },
        resource: { group: "", version: "v1", resource: "pods" },
        operation: "CREATE",
        namespace: "ns",
        object: pod([app({ readinessProbe: redisProbe })]),
      },
      { settings: { ...settings, excludedNamespaces: [] }, lookupImages: async () => new Map() },
    );
    expect(outcome.response.allowed).toBe(true);
    expect(outcome.response.warnings).toEqual([expect.stringMatching(/^container "app" readinessProbe reads REDIS_PASSWORD, .*wrap-exec/)]);
  });
});

describe("mutatePod: kustodia.io/wrap-exec", () => {
  const hook = { exec: { command: ["sh", "-c", 'curl -u "admin:$REDIS_PASSWORD" localhost/drain'] } };
  const handlers = {
    livenessProbe: { exec: { command: ["redis-cli", "-a", "$(REDIS_PASSWORD)", "ping"] }, timeoutSeconds: 4 },
    readinessProbe: redisProbe,
    lifecycle: { preStop: hook },
  };

  it("runs each chosen handler through the shim as a probe or hook, with a deadline inside the probe's timeoutSeconds", () => {
    const result = first(mutated(pod([app(handlers)], { [Annotations.wrapExec]: "true" })));
    expect(probeCommand(result, "livenessProbe")).toEqual([
      SHIM_PATH,
      "KUSTODIA_ROLE=probe",
      "KUSTODIA_TIMEOUT=2000ms",
      "--",
      "redis-cli",
      "-a",
      "$(REDIS_PASSWORD)",
      "ping",
    ]);
    expect(probeCommand(result)).toEqual([SHIM_PATH, "KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=500ms", "--", ...redisProbe.exec.command]);
    expect(((result.lifecycle as JsonObject).preStop as typeof hook).exec.command).toEqual([
      SHIM_PATH,
      "KUSTODIA_ROLE=hook",
      "--",
      ...hook.exec.command,
    ]);
    expect((result.readinessProbe as JsonObject).periodSeconds).toBe(10);
  });

  it("wraps only the kinds listed, and still warns about the others", () => {
    const decision = mutatePod(pod([app(handlers)], { [Annotations.wrapExec]: "readinessProbe, preStop" }), settings, noImages);
    if (decision.kind !== "mutate") throw new Error(decision.kind);
    const result = first(decision.pod);
    expect(probeCommand(result)[0]).toBe(SHIM_PATH);
    expect(probeCommand(result, "livenessProbe")).toEqual(handlers.livenessProbe.exec.command);
    expect(decision.warnings).toEqual([
      { code: "KUS_HANDLER_NEEDS_SECRET", container: "app", handler: "livenessProbe", variables: ["REDIS_PASSWORD"] },
    ]);
    expect(decision.containers[0]?.handlers?.map((handler) => handler.kind)).toEqual(["readinessProbe", "preStop"]);
  });

  it("wraps nothing with false, and leaves the original pod as it was", () => {
    const input = pod([app(handlers)], { [Annotations.wrapExec]: "false" });
    const before = structuredClone(input);
    expect(probeCommand(first(mutated(input)))).toEqual(redisProbe.exec.command);
    expect(input).toEqual(before);
    mutated(pod([app(handlers)], { [Annotations.wrapExec]: "true" }));
    expect(redisProbe.exec.command[0]).toBe("sh");
  });

  it("never wraps twice: a handler that already runs the shim stays as it is", () => {
    const once = [SHIM_PATH, "KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=500ms", "--", "sh", "-c", "true"];
    const result = first(mutated(pod([app({ readinessProbe: { exec: { command: once } } })], { [Annotations.wrapExec]: "true" })));
    expect(probeCommand(result)).toEqual(once);
  });

  it("on reinvocation, the mutated pod is left alone: no second wrapping, no patch", async () => {
    const input = pod([app(handlers)], { [Annotations.wrapExec]: "true" });
    const request = {
      uid: "u1",
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      operation: "CREATE",
      namespace: "ns",
      object: input,
    };
    const context = { settings: { ...settings, excludedNamespaces: [] }, lookupImages: async () => new Map() };
    const outcome = await admit(request, context);
    const patch = JSON.parse(Buffer.from(outcome.response.patch ?? "", "base64").toString("utf8"));
    expect(patch).toContainEqual(
      expect.objectContaining({ path: expect.stringMatching(/^\/spec\/containers\/0\/readinessProbe\/exec\/command\//) }),
    );
    const stored = fastJsonPatch.applyPatch(structuredClone(input), patch).newDocument as JsonObject;
    const again = await admit({ ...request, uid: "u2", object: stored }, context);
    expect(again.response).toEqual({ uid: "u2", allowed: true });
    expect(probeCommand(first(stored))).toEqual([
      SHIM_PATH,
      "KUSTODIA_ROLE=probe",
      "KUSTODIA_TIMEOUT=500ms",
      "--",
      ...redisProbe.exec.command,
    ]);
  });

  it.each(["yes", "True", "readiness", "readinessProbe,bogus", " , "])("denies the value %j, naming what is accepted", (value) => {
    const decision = renderDecision(mutatePod(pod([app(handlers)], { [Annotations.wrapExec]: value }), settings, noImages));
    expect(decision).toMatchObject({
      kind: "deny",
      message: expect.stringContaining(
        `annotation kustodia.io/wrap-exec has the invalid value ${JSON.stringify(value)}; accepted: "true", "false", or a comma-separated list of livenessProbe, readinessProbe, startupProbe, postStart, preStop`,
      ),
    });
  });

  it("warns that wrapped handlers of a container with issued references issue them at every run", () => {
    const container = app({
      env: [{ name: "SECRET_PGPASSWORD", value: "issue:database/creds/app#password" }],
      readinessProbe: { exec: { command: ["sh", "-c", "pg_isready"] } },
    });
    const decision = mutatePod(pod([container], { [Annotations.wrapExec]: "true" }), settings, noImages);
    expect(decision.warnings).toEqual([{ code: "KUS_WRAPPED_HANDLER_ISSUES", container: "app", handlers: ["readinessProbe"] }]);
    expect(renderFinding(decision.warnings[0] as never)).toContain("every run of its wrapped readinessProbe issues them anew");
  });
});
