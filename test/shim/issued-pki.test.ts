import { beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { auditRecords, baseEnv, runShim, shimLines, suffix, tempDir, tokenFile, vaultTokenEnv, withoutAudit } from "./harness.ts";
import { boundPodToken, checkCertificate, pkiRole, policy, readVar, skipWithoutPki, writeVars } from "./issued-harness.ts";

// Certificates issued at start by the real OpenBao's PKI engine: the app receives a certificate and
// the key of the same issuance, with the names it asked for, some from the pod's identity.
describe.skipIf(skipWithoutPki())("issued certificates (PKI)", () => {
  const id = suffix();
  const dir = tempDir();
  let issuePath: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    issuePath = await pkiRole(`web-${id}`);
    const name = await policy(`pki-${id}`, { [`${issuePath}`]: ["update"] });
    env = { ...baseEnv(), ...vaultTokenEnv(await tokenFile(dir, [name])) };
  });

  const tls = (parameters: string) => ({
    SECRET_TLS_CRT: `issue:${issuePath}?${parameters}#certificate`,
    SECRET_TLS_KEY: `issue:${issuePath}?${parameters}#private_key`,
    SECRET_TLS_CA: `issue:${issuePath}?${parameters}#issuing_ca`,
  });
  const app = (out: string) => ["sh", "-c", writeVars(out, ["TLS_CRT", "TLS_KEY", "TLS_CA"])];

  it("hands the app a certificate with the names asked for, its matching key and the CA, from one issuance", async () => {
    const out = tempDir();
    const run = await runShim(
      {
        ...env,
        KUSTODIA_POD_NAME: "web-0",
        KUSTODIA_POD_NAMESPACE: `shop-${id}`,
        ...tls("common_name={pod.name}.{pod.namespace}.svc&alt_names=web.{pod.namespace}.svc,web.kustodia.test&ttl=30m"),
      },
      app(out),
    );
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    const check = checkCertificate(readVar(out, "TLS_CRT"), readVar(out, "TLS_KEY"));
    expect(check.keyMatches).toBe(true);
    expect(check.signedByRoot).toBe(true);
    expect(check.commonName).toBe(`web-0.shop-${id}.svc`);
    expect(check.dnsNames.sort()).toEqual([`web-0.shop-${id}.svc`, `web.shop-${id}.svc`, "web.kustodia.test"].sort());
    const lifetime = Date.parse(check.certificate.validTo) - Date.now();
    expect(lifetime).toBeGreaterThan(28 * 60_000);
    expect(lifetime).toBeLessThanOrEqual(30 * 60_000);
    expect(readVar(out, "TLS_CA")).toBe(service("openbao").pki?.caPem);

    const [record] = auditRecords(run.stderr);
    const serial = check.certificate.serialNumber.toLowerCase().match(/../g)?.join(":");
    const issuance = `issue:${issuePath}?alt_names=web.shop-${id}.svc,web.kustodia.test&common_name=web-0.shop-${id}.svc&ttl=30m`;
    expect(record?.secrets).toEqual(
      ["TLS_CA", "TLS_CRT", "TLS_KEY"].map((name) =>
        expect.objectContaining({
          var: name,
          backend: "vault",
          issuance,
          serial,
          expiresAt: new Date(check.certificate.validTo).toISOString(),
        }),
      ),
    );
  });

  it.skipIf(skipWithout("kube"))(
    "takes the pod's identity from a bound ServiceAccount token when the env does not say it",
    async () => {
      const out = tempDir();
      const saTokenFile = await boundPodToken(dir, `ns-${id}`, "web", `web-${id}-7d9f`);
      const run = await runShim(
        {
          ...env,
          KUSTODIA_SA_TOKEN_FILE: saTokenFile,
          ...tls("common_name={pod.name}.{pod.namespace}.svc&uri_sans=spiffe://kustodia.test/sa/{pod.serviceAccount}"),
        },
        app(out),
      );
      expect(withoutAudit(run.stderr)).toBe("");
      const check = checkCertificate(readVar(out, "TLS_CRT"), readVar(out, "TLS_KEY"));
      expect(check.commonName).toBe(`web-${id}-7d9f.ns-${id}.svc`);
      expect(check.certificate.subjectAltName).toContain("URI:spiffe://kustodia.test/sa/web");
      expect(auditRecords(run.stderr)[0]?.pod).toEqual({ namespace: `ns-${id}`, name: `web-${id}-7d9f`, serviceAccount: "web" });
    },
    30_000,
  );

  it("gives separate issuances to different parameters, and warns that their certificate and key do not match", async () => {
    const out = tempDir();
    const run = await runShim(
      {
        ...env,
        SECRET_TLS_CRT: `issue:${issuePath}?common_name=a.kustodia.test#certificate`,
        SECRET_TLS_KEY: `issue:${issuePath}?common_name=b.kustodia.test#private_key`,
        SECRET_TLS_CA: `issue:${issuePath}?common_name=b.kustodia.test#issuing_ca`,
      },
      app(out),
    );
    expect(run.code).toBe(0);
    expect(shimLines(run.stderr)).toEqual([
      `kustodia-shim warn: SECRET_TLS_CA and SECRET_TLS_KEY / SECRET_TLS_CRT issue from ${issuePath} with different parameters: they get 2 separate issuances (a certificate and a key from different issuances do not match)`,
    ]);
    expect(checkCertificate(readVar(out, "TLS_CRT"), readVar(out, "TLS_KEY")).keyMatches).toBe(false);
  });

  it("fails with 78 when the role refuses the name, quoting OpenBao", async () => {
    const run = await runShim({ ...env, ...tls("common_name=evil.example.com") }, ["true"]);
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^kustodia-shim error: SECRET_TLS_CRT \\(reference ".*"\\): vault write ${issuePath} common_name=evil.example.com: HTTP 400: .*evil.example.com`,
        ),
      ),
    );
    expect(auditRecords(run.stderr)[0]).toMatchObject({
      outcome: "failed",
      secrets: [{ error: "malformed" }, { error: "malformed" }, { error: "malformed" }],
    });
  });

  it("says how to fix a read of an endpoint that must be written", async () => {
    const readable = await policy(`pki-read-${id}`, { [issuePath]: ["read", "update"] });
    const run = await runShim(
      { ...baseEnv(), ...vaultTokenEnv(await tokenFile(dir, [readable])), SECRET_TLS_CRT: `issue:${issuePath}#certificate` },
      ["true"],
    );
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)[0]).toContain('(this endpoint is written, not read: add "?" and its parameters)');
  });

  it("fails with 78 when the pod's identity for a placeholder is unknown, before asking OpenBao", async () => {
    const run = await runShim({ ...env, KUSTODIA_SA_TOKEN_FILE: "/nonexistent", ...tls("common_name={pod.name}.svc") }, ["true"]);
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)[0]).toContain("the pod's identity for {pod.name} is unknown: set KUSTODIA_POD_NAME");
  });
});
