// The contract between the two programs (issue #14): the webhook admits an annotation value if and
// only if the real shim config reader accepts the env var it becomes. The shim's reader runs
// in-process on the mutated container's env; nothing talks to a backend.
import { constants } from "node:os";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Annotations } from "../common/contract.ts";
import {
  ANNOTATED_SETTINGS,
  CLUSTER_DEFAULT_KEYS,
  clusterDefaultEnv,
  EXEC_HANDLER_KINDS,
  readPodSetting,
  type ShimSettingKey,
  ShimSettings,
} from "../common/shim-settings.ts";
import { parseArgs } from "../shim/args.ts";
import { loadConfig } from "../shim/config.ts";
import { renderDecision } from "./decision.ts";
import type { WrappedHandler } from "./exec-handlers.ts";
import type { ImageLookupResult } from "./image-facts.ts";
import { mutatePod as decide } from "./mutate.ts";
import { testMutationSettings } from "./mutation-settings.fixture.ts";
import type { Json, JsonObject } from "./pod.ts";
import { loadSettings, SettingsError } from "./settings.ts";

/** The decision in words, as the admission response carries it. */
const mutatePod = (...args: Parameters<typeof decide>) => renderDecision(decide(...args));

const RUNS = Number(process.env.KUSTODIA_PROPERTY_RUNS ?? 12_000);
const ALLOWED_ADDR = "https://vault-team.example:8200";

const settings = testMutationSettings({
  shimDefaults: { vaultAddr: "https://vault.example:8200", vaultRole: "default-role" },
  vaultAddrAllowlist: [ALLOWED_ADDR],
});
const noImages = new Map<string, ImageLookupResult>();

function podWith(annotations: Record<string, string>): JsonObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "ns", annotations: { [Annotations.inject]: "true", ...annotations } },
    spec: { containers: [{ name: "app", image: "example/app:1", command: ["/app"], env: [{ name: "SECRET_A", value: "app/a" }] }] },
  };
}

/** The env of the mutated container, as the kubelet would give it to the shim (downward-API vars aside). */
function containerEnv(pod: JsonObject): Record<string, string> {
  const [container] = (pod.spec as { containers: { env: { name: string; value?: unknown }[] }[] }).containers;
  const env: Record<string, string> = {};
  for (const item of container?.env ?? []) if (typeof item.value === "string") env[item.name] = item.value;
  return env;
}

const signalNames = Object.keys(constants.signals).map((name) => name.slice(3));
/** Values near the edge of what each setting accepts; plain random strings are mixed in below. */
const near: Partial<Record<ShimSettingKey, fc.Arbitrary<string>>> = {
  backend: fc.constantFrom("vault", "custodia", "Vault", "vault ", "aws", "custodia:"),
  vaultAddr: fc
    .tuple(
      fc.constantFrom(ALLOWED_ADDR, "https://vault.example", "http://vault-team.example:8200"),
      fc.stringMatching(/^[/?#a-z.:@%]{0,8}$/),
    )
    .map(([prefix, rest]) => prefix + rest),
  vaultAuthPath: fc.stringMatching(/^\/{0,2}(auth\/)?([A-Za-z0-9._ @-]{0,5}\/{0,2}){0,3}$/),
  vaultKvMount: fc.stringMatching(/^\/{0,2}([A-Za-z0-9._ -]{0,5}\/{0,2}){0,3}$/),
  vaultNamespace: fc.stringMatching(/^\/{0,2}([A-Za-z0-9._ -]{0,5}\/{0,2}){0,3}$/),
  vaultRole: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._@/ :-]{0,12}$/), fc.constantFrom("a".repeat(255), "a".repeat(256))),
  passthrough: fc.stringMatching(/^[ ,A-Za-z0-9_-]{0,20}$/),
  ignoreMissing: fc.constantFrom("true", "false", "TRUE", "True", "1", "0", "yes", " true"),
  handlerAudit: fc.constantFrom("true", "false", "TRUE", "1", "yes", "false "),
  rotation: fc.constantFrom("none", "restart", "signal", "Restart", "always", "signal "),
  rotationInterval: fc.stringMatching(/^([0-9]{1,5}(\.[0-9]{1,3})?(ms|s|m|h|d|us)?){1,3}$/),
  rotationSignal: fc
    .tuple(fc.constantFrom("", "SIG", "sig", "Sig"), fc.constantFrom(...signalNames, "FOO", "hup", "usr1", "RTMIN", "0", ""))
    .map(([prefix, name]) => prefix + name),
};

const annotationValue = fc
  .constantFrom(...ANNOTATED_SETTINGS)
  .chain(([key, annotation]) =>
    fc.tuple(fc.constant(key), fc.constant(annotation), fc.oneof(near[key] ?? fc.string(), fc.string(), fc.string({ unit: "grapheme" }))),
  );

function admitted(key: ShimSettingKey, annotation: string, value: string) {
  const decision = mutatePod(podWith({ [annotation]: value }), settings, noImages);
  expect(decision.kind, `${annotation}: ${JSON.stringify(value)}`).not.toBe("skip");
  return decision.kind === "mutate" ? { ok: true as const, env: containerEnv(decision.pod) } : { ok: false as const, key };
}

describe("the webhook admits an annotation value if and only if the shim accepts it", () => {
  it(`holds for ${RUNS} generated annotation values`, () => {
    fc.assert(
      fc.property(annotationValue, ([key, annotation, value]) => {
        const answer = admitted(key, annotation, value);
        if (answer.ok) {
          const loaded = loadConfig(answer.env);
          expect(loaded.ok ? [] : loaded.errors, `admitted ${annotation}: ${JSON.stringify(value)}`).toEqual([]);
        } else {
          // Denied: the env var it would have become is one the shim refuses (vault-addr: or one outside the allowlist).
          const loaded = loadConfig({ ...containerEnv(podWith({})), [ShimSettings[key].env]: value });
          const outsideAllowlist = key === "vaultAddr" && !(value === ALLOWED_ADDR || value.startsWith(`${ALLOWED_ADDR}/`));
          if (!outsideAllowlist) expect(loaded.ok, `denied ${annotation}: ${JSON.stringify(value)}`).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it.each<{ name: string; annotation: string; value: string; admitted: boolean }>([
    { name: "a signal that cannot be caught", annotation: Annotations.rotationSignal, value: "SIGKILL", admitted: false },
    { name: "an unknown signal", annotation: Annotations.rotationSignal, value: "SIGFOO", admitted: false },
    { name: "a signal without SIG", annotation: Annotations.rotationSignal, value: "HUP", admitted: true },
    { name: "a signal with SIG", annotation: Annotations.rotationSignal, value: "SIGHUP", admitted: true },
    { name: "a zero rotation interval", annotation: Annotations.rotationInterval, value: "0s", admitted: false },
    { name: "a rotation interval under a second", annotation: Annotations.rotationInterval, value: "999ms", admitted: false },
    { name: "a rotation interval of a second", annotation: Annotations.rotationInterval, value: "1s", admitted: true },
    { name: "a Vault role with @", annotation: Annotations.vaultRole, value: "app@team", admitted: true },
    { name: "a Vault namespace with a trailing slash", annotation: Annotations.vaultNamespace, value: "team-a/", admitted: true },
    { name: "a Vault namespace walking up", annotation: Annotations.vaultNamespace, value: "team-a/../b", admitted: false },
    { name: "ignore-missing as 1", annotation: Annotations.ignoreMissing, value: "1", admitted: false },
    { name: "an allowlisted address with a query", annotation: Annotations.vaultAddr, value: `${ALLOWED_ADDR}/?x=1`, admitted: false },
  ])("$name: admitted=$admitted, and the shim agrees", ({ annotation, value, admitted: expected }) => {
    const decision = mutatePod(podWith({ [annotation]: value }), settings, noImages);
    expect(decision.kind).toBe(expected ? "mutate" : "deny");
    const key = ANNOTATED_SETTINGS.find(([, name]) => name === annotation)?.[0] as ShimSettingKey;
    const env = decision.kind === "mutate" ? containerEnv(decision.pod) : { [ShimSettings[key].env]: value };
    expect(loadConfig(env).ok).toBe(expected);
    if (decision.kind === "deny") expect(decision.message).toContain(annotation);
  });
});

describe("a wrapped exec handler runs a shim that accepts what the webhook wrote", () => {
  const kinds = fc.constantFrom(...EXEC_HANDLER_KINDS, "readiness", "Probe", "true", "false", "TRUE", "");
  const wrapExec = fc.oneof(
    fc.tuple(fc.array(kinds, { maxLength: 4 }), fc.constantFrom(",", ", ", " ,")).map(([list, separator]) => list.join(separator)),
    fc.string(),
  );
  const timeoutSeconds = fc.oneof(fc.integer({ min: -2, max: 2 ** 31 + 1 }), fc.double({ noNaN: true }), fc.string(), fc.constant(null));
  const script = ["sh", "-c", 'test -n "$A"'];

  /** The test pod with all five handlers, its probes with `timeout` as timeoutSeconds. */
  function withHandlers(value: string, timeout: Json): JsonObject {
    const input = podWith({ [Annotations.wrapExec]: value });
    const [container] = (input.spec as { containers: JsonObject[] }).containers as [JsonObject];
    for (const kind of ["livenessProbe", "readinessProbe", "startupProbe"])
      container[kind] = { exec: { command: script }, timeoutSeconds: timeout };
    container.lifecycle = { postStart: { exec: { command: script } }, preStop: { exec: { command: script } } };
    return input;
  }

  /** How long the kubelet gives the probe: its timeoutSeconds when valid (the apiserver refuses others), else the default 1 s. */
  const kubeletTimeoutMs = (timeout: Json) =>
    (typeof timeout === "number" && Number.isInteger(timeout) && timeout >= 1 ? timeout : 1) * 1000;

  function expectShimAccepts(env: Record<string, string>, { kind, command }: WrappedHandler, timeout: Json): void {
    const invocation = parseArgs(command.slice(1));
    if (invocation.kind !== "run") throw new Error(`${kind}: ${JSON.stringify(command)} is no run`);
    const loaded = loadConfig(env, invocation.settings);
    if (!loaded.ok) throw new Error(`${kind}: ${JSON.stringify(command)}: ${loaded.errors.join("; ")}`);
    const probe = kind.endsWith("Probe");
    expect(loaded.config.role).toBe(probe ? "probe" : "hook");
    if (probe) expect(loaded.config.timeoutMs).toBeLessThan(kubeletTimeoutMs(timeout));
    expect([invocation.command, ...invocation.args]).toEqual(script);
  }

  it("holds for generated kustodia.io/wrap-exec values and probe timeouts", () => {
    fc.assert(
      fc.property(wrapExec, timeoutSeconds, (value, timeout) => {
        const decision = decide(withHandlers(value, timeout), settings, noImages);
        expect(decision.kind, JSON.stringify(value)).toBe(readPodSetting("wrapExec", value).ok ? "mutate" : "deny");
        if (decision.kind !== "mutate") return;
        for (const handler of decision.containers[0]?.handlers ?? []) expectShimAccepts(containerEnv(decision.pod), handler, timeout);
      }),
      { numRuns: Math.ceil(RUNS / 4) },
    );
  }, 60_000);
});

describe("the webhook starts with a cluster default if and only if the shim accepts it", () => {
  const base = { KUSTODIA_TLS_CERT_FILE: "/c", KUSTODIA_TLS_KEY_FILE: "/k", KUSTODIA_SHIM_IMAGE: "shim:1" };
  const defaultValue = fc
    .constantFrom(...CLUSTER_DEFAULT_KEYS)
    .chain((key) =>
      fc.tuple(fc.constant(key), fc.oneof(fc.string(), near[key] ?? fc.string(), fc.constantFrom("0s", "1ms", "debug", "trace"))),
    );

  it("holds for generated cluster defaults", () => {
    fc.assert(
      fc.property(defaultValue, ([key, value]) => {
        const shimAccepts = loadConfig({ [ShimSettings[key].env]: value }).ok;
        let webhookStarts = true;
        try {
          loadSettings({ ...base, [clusterDefaultEnv(key)]: value }, "0.1.0");
        } catch (error) {
          if (!(error instanceof SettingsError)) throw error;
          expect(error.message).toContain(clusterDefaultEnv(key));
          webhookStarts = false;
        }
        expect(webhookStarts, `${clusterDefaultEnv(key)}=${JSON.stringify(value)}`).toBe(shimAccepts);
      }),
      { numRuns: Math.ceil(RUNS / 4) },
    );
  }, 60_000);
});
