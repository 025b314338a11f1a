import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { auditRecords, auditSecrets, bao, baseEnv, custodiaPut, runShim, startShim, suffix, tempDir, withoutAudit } from "./harness.ts";
import { boundPodToken, databaseRole, pkiRole, policy, readVar, writeVars } from "./issued-harness.ts";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// The audit record (docs/audit.md) of a pod that logs in with its bound ServiceAccount token and
// resolves every kind of reference: KV v2, Custodia, a PKI certificate and database credentials.
// It must say everything an operator asks (which pod, which var from which reference and backend,
// which version or lease, until when, how long it took) and hold no value and no credential.
describe.skipIf(skipWithout("openbao", "postgres", "kube", "custodia"))("the audit record", () => {
  const id = suffix();
  const dir = tempDir();
  const namespace = `audit-${id}`;
  const pod = `web-${id}-x7k2p`;
  let env: Record<string, string>;
  let issuePath: string;
  let credsPath: string;
  let saTokenFile: string;
  const custodiaValue = `custodia-value-${id}`;

  beforeAll(async () => {
    await bao("POST", `secret/data/audit-${id}/db`, { data: { password: `kv-first-${id}` } });
    await bao("POST", `secret/data/audit-${id}/db`, { data: { password: `kv-second-${id}` } });
    await custodiaPut(`audit-${id}`, "token", custodiaValue);
    issuePath = await pkiRole(`audit-${id}`);
    credsPath = await databaseRole(`audit-${id}`, { defaultTtl: "10m", maxTtl: "1h" });
    const name = await policy(`audit-${id}`, { [`secret/data/audit-${id}/*`]: ["read"], [issuePath]: ["update"], [credsPath]: ["read"] });
    await bao("POST", `auth/kubernetes/role/audit-${id}`, {
      bound_service_account_names: ["web"],
      bound_service_account_namespaces: [namespace],
      token_policies: [name],
      token_ttl: "30m",
    });
    saTokenFile = await boundPodToken(dir, namespace, "web", pod);
    env = {
      ...baseEnv(),
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_ROLE: `audit-${id}`,
      KUSTODIA_SA_TOKEN_FILE: saTokenFile,
      KUSTODIA_CUSTODIA_URL: service("custodia").url,
      SECRET_DB_PASSWORD: `audit-${id}/db#password`,
      SECRET_API_TOKEN: `custodia:audit-${id}/token`,
      SECRET_TLS_CRT: `issue:${issuePath}?common_name={pod.name}.{pod.namespace}.svc#certificate`,
      SECRET_TLS_KEY: `issue:${issuePath}?common_name={pod.name}.{pod.namespace}.svc#private_key`,
      SECRET_PGUSER: `issue:${credsPath}#username`,
      SECRET_PGPASSWORD: `issue:${credsPath}#password`,
    };
  }, 60_000);

  const VARS = ["API_TOKEN", "DB_PASSWORD", "PGPASSWORD", "PGUSER", "TLS_CRT", "TLS_KEY"];

  /** Every value the app received, each line of multi-line ones too, and the credentials the shim used. */
  function secretsOf(out: string): string[] {
    const values = VARS.map((name) => readVar(out, name));
    expect(values.every((value) => value.length > 0)).toBe(true);
    return [
      ...values,
      ...values.flatMap((value) => value.split("\n").filter((line) => line.length >= 8 && !line.startsWith("-----"))),
      readFileSync(saTokenFile, "utf8"),
    ];
  }

  it("says at start which pod resolved which reference, from where, which version or lease, until when — and no value", async () => {
    const out = tempDir();
    const began = Date.now();
    const run = await runShim(env, ["sh", "-c", writeVars(out, VARS)]);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    const records = auditRecords(run.stderr);
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(Object.keys(record ?? {})).toEqual(["record", "version", "event", "time", "pod", "app", "outcome", "durationMs", "secrets"]);
    expect(record).toMatchObject({
      record: "kustodia.audit",
      version: 1,
      event: "start",
      pod: { namespace, name: pod, serviceAccount: "web" },
      app: expect.stringMatching(/\/sh$/),
      outcome: "ok",
    });
    expect(Date.parse(record?.time as string)).toBeGreaterThanOrEqual(began - 5);
    expect(record?.time).toMatch(ISO);
    expect(record?.durationMs).toBeGreaterThan(0);
    expect(record?.durationMs).toBeLessThan(Date.now() - began);

    const secrets = record?.secrets as Record<string, unknown>[];
    const certificateIssuance = `issue:${issuePath}?common_name=${pod}.${namespace}.svc`;
    expect(secrets).toEqual([
      { var: "API_TOKEN", reference: `custodia:audit-${id}/token`, backend: "custodia" },
      { var: "DB_PASSWORD", reference: `audit-${id}/db#password`, backend: "vault", kvVersion: 2 },
      {
        var: "PGPASSWORD",
        reference: `issue:${credsPath}#password`,
        backend: "vault",
        issuance: `issue:${credsPath}`,
        leaseId: expect.stringMatching(new RegExp(`^${credsPath}/\\w+$`)),
        renewable: true,
        expiresAt: expect.stringMatching(ISO),
        tokenExpiresAt: expect.stringMatching(ISO),
      },
      expect.objectContaining({ var: "PGUSER", reference: `issue:${credsPath}#username`, issuance: `issue:${credsPath}` }),
      {
        var: "TLS_CRT",
        reference: env.SECRET_TLS_CRT,
        backend: "vault",
        issuance: certificateIssuance,
        expiresAt: expect.stringMatching(ISO),
        serial: expect.stringMatching(/^[0-9a-f]{2}(:[0-9a-f]{2})+$/),
      },
      expect.objectContaining({ var: "TLS_KEY", issuance: certificateIssuance }),
    ]);
    expect(secrets[3]?.leaseId).toBe(secrets[2]?.leaseId);
    expect(secrets[5]?.serial).toBe(secrets[4]?.serial);
    const leaseEnds = Date.parse(secrets[2]?.expiresAt as string) - began;
    expect(leaseEnds).toBeGreaterThan(590_000);
    expect(leaseEnds).toBeLessThan(610_000);

    const line = run.stderr.split("\n").find((text) => text.startsWith("{")) ?? "";
    for (const secret of secretsOf(out)) expect(line).not.toContain(secret);
  });

  it("writes a record for each rotation, naming what changed, and still no value", async () => {
    const out = tempDir();
    const shim = startShim({ ...env, KUSTODIA_ROTATION: "restart", KUSTODIA_ROTATION_INTERVAL: "1s" }, [
      "sh",
      "-c",
      `${writeVars(out, VARS, "started")}; trap 'exit 0' TERM; while :; do sleep 0.05; done`,
    ]);
    await shim.waitFor((stdout) => stdout.includes("started"));
    await bao("POST", `secret/data/audit-${id}/db`, { data: { password: `kv-third-${id}` } });
    await shim.waitFor((stdout) => stdout.split("started").length > 2, 10_000);
    shim.child.kill("SIGTERM");
    await shim.exited;
    const records = auditRecords(shim.stderr());
    expect(records.map((record) => [record.event, record.outcome, record.changed])).toEqual([
      ["start", "ok", undefined],
      ["rotation", "ok", ["DB_PASSWORD"]],
    ]);
    const secrets = records[1]?.secrets as Record<string, unknown>[];
    expect(secrets.find((secret) => secret.var === "DB_PASSWORD")?.kvVersion).toBe(3);
    // The issued secrets were not issued anew: same lease, same certificate.
    expect(secrets.filter((secret) => secret.var !== "DB_PASSWORD")).toEqual(
      auditSecrets(records[0]).filter((secret) => secret.var !== "DB_PASSWORD"),
    );
    const lines = shim
      .stderr()
      .split("\n")
      .filter((text) => text.startsWith("{"));
    for (const secret of secretsOf(out)) for (const line of lines) expect(line).not.toContain(secret);
  }, 30_000);

  it("records a failed start: the pod, each reference, and what went wrong with it", async () => {
    const run = await runShim({ ...env, SECRET_DB_PASSWORD: `audit-${id}/nope#password`, SECRET_BAD: "nofield" }, ["true"]);
    expect(run.code).toBe(78);
    const [record] = auditRecords(run.stderr);
    expect(record).toMatchObject({
      event: "start",
      outcome: "failed",
      pod: { namespace, name: pod },
      reason: "1 invalid reference var(s)",
    });
    expect(record?.secrets).toContainEqual({ var: "SECRET_BAD", reference: "nofield", backend: "", error: "malformed" });
  });
});
