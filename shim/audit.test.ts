import { describe, expect, it } from "vitest";
import { auditRecord } from "./audit.ts";
import { planReferences } from "./resolve.ts";

const settings = { prefix: "SECRET_", passthrough: [], backend: "vault" as const };
const identity = { namespace: "shop", name: "web-0", serviceAccount: "web", sources: {}, ignored: [] };

describe("auditRecord", () => {
  const env = {
    SECRET_DB_PASSWORD: "app/db#password",
    SECRET_PGUSER: "issue:database/creds/app#username",
    SECRET_PGPASSWORD: "issue:database/creds/app#password",
    SECRET_TLS_CRT: "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc#certificate",
    SECRET_TOKEN: "custodia:app/token",
  };
  const { references } = planReferences(env, settings, { "pod.name": "web-0", "pod.namespace": "shop" });
  const byName = (name: string) => references.filter((ref) => ref.name === name);

  it("names each var, its reference, backend, version or lease and expiry — and no value", () => {
    const record = auditRecord({
      event: "start",
      identity,
      app: "/app/server",
      began: Date.parse("2026-01-02T03:04:05.000Z"),
      durationMs: 41.6,
      references,
      resolution: {
        values: new Map([
          ["DB_PASSWORD", "v1"],
          ["PGUSER", "v2"],
          ["PGPASSWORD", "v3"],
          ["TLS_CRT", "v4"],
        ]),
        groups: [
          { refs: byName("SECRET_DB_PASSWORD"), info: { at: 0, version: 7 } },
          {
            refs: [...byName("SECRET_PGPASSWORD"), ...byName("SECRET_PGUSER")],
            info: {
              at: 0,
              lease: { id: "database/creds/app/x1", durationS: 3600, renewable: true },
              expiresAt: Date.parse("2026-01-02T04:04:05.000Z"),
            },
          },
          { refs: byName("SECRET_TLS_CRT"), info: { at: 0, expiresAt: Date.parse("2026-01-03T03:04:05.000Z"), serial: "2b:93" } },
        ],
        problems: [],
        ignored: [{ name: "SECRET_TOKEN", raw: "custodia:app/token", kind: "missing", reason: "not found" }],
      },
    });
    expect(record).toEqual({
      record: "kustodia.audit",
      version: 1,
      event: "start",
      time: "2026-01-02T03:04:05.000Z",
      pod: { namespace: "shop", name: "web-0", serviceAccount: "web" },
      app: "/app/server",
      outcome: "ok",
      durationMs: 42,
      secrets: [
        { var: "DB_PASSWORD", reference: "app/db#password", backend: "vault", kvVersion: 7 },
        {
          var: "PGPASSWORD",
          reference: "issue:database/creds/app#password",
          backend: "vault",
          issuance: "issue:database/creds/app",
          leaseId: "database/creds/app/x1",
          renewable: true,
          expiresAt: "2026-01-02T04:04:05.000Z",
        },
        {
          var: "PGUSER",
          reference: "issue:database/creds/app#username",
          backend: "vault",
          issuance: "issue:database/creds/app",
          leaseId: "database/creds/app/x1",
          renewable: true,
          expiresAt: "2026-01-02T04:04:05.000Z",
        },
        {
          var: "TLS_CRT",
          reference: "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc#certificate",
          backend: "vault",
          issuance: "issue:pki/issue/web?common_name=web-0.shop.svc",
          expiresAt: "2026-01-03T03:04:05.000Z",
          serial: "2b:93",
        },
        { var: "TOKEN", reference: "custodia:app/token", backend: "custodia", error: "missing", ignored: true },
      ],
    });
    expect(JSON.stringify(record)).not.toMatch(/"v[1-4]"/);
  });

  it("records a failed start with each problem's kind and the reason", () => {
    const plan = planReferences({ SECRET_A: "nofield", SECRET_B: "app/db#b" }, settings);
    const record = auditRecord({
      event: "start",
      identity: { sources: {}, ignored: [] },
      app: "/bin/app",
      began: 0,
      durationMs: 1,
      references: plan.references,
      planProblems: plan.problems,
      reason: "1 invalid reference var(s)",
    });
    expect(record).toMatchObject({
      pod: {},
      outcome: "failed",
      reason: "1 invalid reference var(s)",
      secrets: [
        { var: "B", reference: "app/db#b", backend: "vault" },
        { var: "SECRET_A", reference: "nofield", backend: "", error: "malformed" },
      ],
    });
  });
});
