import { describe, expect, it } from "vitest";
import { Annotations, SERVICE_ACCOUNT_TOKEN_DIR, SHIM_PATH } from "../common/contract.ts";
import { parseReference } from "../common/reference.ts";
import { asAdmittedByApiserver, checkPod, describeSource, fromBankVaults, renderPodReport, shellWords } from "./check.ts";
import { testMutationSettings } from "./mutation-settings.fixture.ts";
import type { JsonObject } from "./pod.ts";

describe("fromBankVaults", () => {
  it.each([
    ["vault:secret/data/app#password", { reference: "app#password", kvMount: "secret" }],
    ["vault:secret/data/team/app/db#password#3", { reference: "team/app/db#password@3", kvMount: "secret" }],
    ["vault:kv/data/app#token", { reference: "app#token", kvMount: "kv" }],
    ["vault:kv1/app#token", { reference: "app#token", kvMount: "kv1" }],
  ])("%s → %j", (value, expected) => {
    expect(fromBankVaults(value)).toEqual(expected);
    expect(parseReference(expected.reference).ok).toBe(true);
  });

  it.each([
    "vault:login",
    "vault:secret/data/app",
    "vault:v1:c2VjcmV0",
    "vault:secret/data/app#{{ .password }}",
    ">>vault:db/creds#{}",
    "vault:secret#key",
  ])("has no equivalent for %s", (value) => expect(fromBankVaults(value)).toBeUndefined());
});

describe("shellWords", () => {
  it("quotes only what a shell would need quoted", () => {
    expect(shellWords(["/kustodia/kustodia-shim", "--", "sh", "-c", `echo "$X" it's`])).toBe(
      `/kustodia/kustodia-shim -- sh -c 'echo "$X" it'\\''s'`,
    );
  });
});

describe("asAdmittedByApiserver", () => {
  const pod = (spec: JsonObject): JsonObject => ({ metadata: { name: "p" }, spec });

  it("mounts the ServiceAccount token into every container, as the ServiceAccount admission plugin does", () => {
    const admitted = asAdmittedByApiserver(pod({ containers: [{ name: "a" }], initContainers: [{ name: "i", volumeMounts: [] }] }));
    const spec = admitted.spec as { containers: JsonObject[]; initContainers: JsonObject[]; volumes: JsonObject[] };
    for (const container of [...spec.containers, ...spec.initContainers]) {
      expect(container.volumeMounts).toEqual([{ name: "kube-api-access", mountPath: SERVICE_ACCOUNT_TOKEN_DIR, readOnly: true }]);
    }
    expect(spec.volumes.map((volume) => volume.name)).toEqual(["kube-api-access"]);
  });

  it("leaves pods that automount no token, and containers that already mount one, as they are", () => {
    const off = pod({ automountServiceAccountToken: false, containers: [{ name: "a" }] });
    expect(asAdmittedByApiserver(off)).toBe(off);
    const own = { name: "a", volumeMounts: [{ name: "mine", mountPath: SERVICE_ACCOUNT_TOKEN_DIR }] };
    const admitted = asAdmittedByApiserver(pod({ containers: [own] }));
    expect(((admitted.spec as JsonObject).containers as JsonObject[])[0]).toEqual(own);
  });
});

describe("describeSource", () => {
  const defaults = { backend: "vault" as const, kvMount: "secret" };
  const source = (raw: string) => {
    const parsed = parseReference(raw);
    if (!parsed.ok) throw new Error(parsed.error);
    return describeSource(parsed.reference, defaults);
  };

  it("names the mount, secret, field and version the shim reads", () => {
    expect(source("myapp/db#password@2")).toBe('vault KV mount "secret", secret "myapp/db", field "password", version 2');
    expect(source("custodia:myapp/password")).toBe("custodia key /secrets/myapp/password");
    expect(describeSource({ path: "app", field: "x" }, { backend: "custodia", kvMount: "secret" })).toBe("custodia key /secrets/app/x");
  });

  it("says what an issued reference asks Vault for", () => {
    expect(source("issue:database/creds/app#password")).toBe('vault, issued at start by a read of database/creds/app, field "password"');
    expect(source("issue:pki/issue/web?common_name=web.example#certificate")).toBe(
      'vault, issued at start by a write to pki/issue/web (common_name=web.example), field "certificate"',
    );
  });
});

describe("checkPod: exec probes and hooks", () => {
  const settings = testMutationSettings({ shimDefaults: { vaultAddr: "https://vault.example:8200", vaultRole: "app" } });
  const redis = (annotations: Record<string, string>): JsonObject => ({
    metadata: { name: "redis", annotations: { [Annotations.inject]: "true", ...annotations } },
    spec: {
      containers: [
        {
          name: "redis",
          image: "example/redis:7",
          command: ["redis-server"],
          env: [{ name: "SECRET_REDIS_PASSWORD", value: "myapp/redis#password" }],
          readinessProbe: { exec: { command: ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" ping'] }, timeoutSeconds: 2 },
        },
      ],
    },
  });

  it("reports a probe that reads a secret it will not see as a problem", () => {
    const report = checkPod(redis({}), settings, new Map());
    expect(report.outcome).toBe("mutated");
    expect(report.problems).toEqual([
      'container "redis" readinessProbe reads REDIS_PASSWORD, which only the app\'s process gets from kustodia: the handler sees no value and fails; run it through the shim with the annotation kustodia.io/wrap-exec: "readinessProbe" (or "true")',
    ]);
    expect(renderPodReport("Pod redis", report)).toContain("  1 problem(s)");
  });

  it("shows what a wrapped probe runs, and no problem", () => {
    const report = checkPod(redis({ [Annotations.wrapExec]: "readinessProbe" }), settings, new Map());
    expect(report.problems).toEqual([]);
    expect(report.containers[0]?.handlers).toEqual([
      {
        kind: "readinessProbe",
        runs: [SHIM_PATH, "KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=1000ms", "--", "sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" ping'],
      },
    ]);
    expect(renderPodReport("Pod redis", report).split("\n")).toContain(
      `    readinessProbe runs: /kustodia/kustodia-shim KUSTODIA_ROLE=probe KUSTODIA_TIMEOUT=1000ms -- sh -c 'redis-cli -a "$REDIS_PASSWORD" ping'`,
    );
  });
});
