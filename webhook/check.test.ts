import { describe, expect, it } from "vitest";
import { SERVICE_ACCOUNT_TOKEN_DIR } from "../common/contract.ts";
import { parseReference } from "../common/reference.ts";
import { asAdmittedByApiserver, describeSource, fromBankVaults, shellWords } from "./check.ts";
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
