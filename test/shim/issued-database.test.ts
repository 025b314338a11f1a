import { beforeAll, describe, expect, it } from "vitest";
import { skipWithout } from "../infra/coords.ts";
import { auditRecords, auditSecrets, baseEnv, runShim, suffix, tempDir, tokenFile, vaultTokenEnv, withoutAudit } from "./harness.ts";
import { canLogIn, databaseRole, lookupLease, policy, postgresEnv, psqlCommand, readVar, writeVars } from "./issued-harness.ts";

// Database credentials issued at start by the real OpenBao's database engine for the real PostgreSQL:
// the app connects with them (Debian's psql), and the user and password come from one lease.
describe.skipIf(skipWithout("openbao", "postgres"))("issued database credentials", () => {
  const id = suffix();
  const dir = tempDir();
  let credsPath: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    credsPath = await databaseRole(`app-${id}`, { defaultTtl: "10m", maxTtl: "1h" });
    const name = await policy(`db-${id}`, { [credsPath]: ["read"] });
    env = {
      ...baseEnv(),
      ...postgresEnv(),
      ...vaultTokenEnv(await tokenFile(dir, [name], "30m")),
      SECRET_PGUSER: `issue:${credsPath}#username`,
      SECRET_PGPASSWORD: `issue:${credsPath}#password`,
    };
  });

  it("lets the app connect to PostgreSQL as the user issued for it", async () => {
    const out = tempDir();
    const run = await runShim(env, ["sh", "-c", `${writeVars(out, ["PGUSER", "PGPASSWORD"])}; ${psqlCommand("select current_user")}`]);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    const user = readVar(out, "PGUSER");
    expect(user).toMatch(/^v-token-/);
    expect(run.stdout).toBe(`written\n${user}\n`);

    const [record] = auditRecords(run.stderr);
    const secrets = record?.secrets as { var: string; leaseId: string; renewable: boolean; expiresAt: string; issuance: string }[];
    expect(secrets.map((secret) => secret.var)).toEqual(["PGPASSWORD", "PGUSER"]);
    const [password, username] = secrets;
    expect(password?.leaseId).toMatch(new RegExp(`^${credsPath}/`));
    expect(username).toEqual({ ...password, var: "PGUSER", reference: `issue:${credsPath}#username` });
    expect(password).toMatchObject({ backend: "vault", issuance: `issue:${credsPath}`, renewable: true });
    const lease = await lookupLease(password?.leaseId ?? "");
    expect(lease?.ttl).toBeGreaterThan(500);
    expect(Math.abs(Date.parse(lease?.expire_time ?? "") - Date.parse(password?.expiresAt ?? ""))).toBeLessThan(2000);
    expect(await canLogIn(user, readVar(out, "PGPASSWORD"))).toBe(true);
  });

  it("issues new credentials at every start", async () => {
    const first = tempDir();
    const second = tempDir();
    await runShim(env, ["sh", "-c", writeVars(first, ["PGUSER"])]);
    await runShim(env, ["sh", "-c", writeVars(second, ["PGUSER"])]);
    expect(readVar(first, "PGUSER")).not.toBe(readVar(second, "PGUSER"));
  });

  it("warns in exec mode when the shim's token ends the lease before the lease would end", async () => {
    const name = await policy(`db-short-${id}`, { [credsPath]: ["read"] });
    const run = await runShim({ ...env, ...vaultTokenEnv(await tokenFile(dir, [name], "2m")) }, ["true"]);
    expect(run.code).toBe(0);
    expect(withoutAudit(run.stderr)).toMatch(
      /^kustodia-shim warn: SECRET_PGPASSWORD, SECRET_PGUSER: lease .* lasts 600 s, but Vault revokes it with the shim's token in 1[12][0-9] s; raise the token TTL of the Vault auth role, or use KUSTODIA_ROTATION=restart\|signal, which keeps the token alive\n$/,
    );
    const [secret] = auditSecrets<{ expiresAt: string; tokenExpiresAt: string }>(auditRecords(run.stderr)[0]);
    expect(Date.parse(secret?.tokenExpiresAt ?? "") - Date.now()).toBeLessThan(121_000);
    expect(Date.parse(secret?.expiresAt ?? "") - Date.now()).toBeGreaterThan(590_000);
  });

  it("fails with 78, naming the vars, when the policy does not allow the role", async () => {
    const other = await databaseRole(`other-${id}`, { defaultTtl: "1m", maxTtl: "1m" });
    const run = await runShim({ ...env, SECRET_PGUSER: `issue:${other}#username`, SECRET_PGPASSWORD: `issue:${other}#password` }, ["true"]);
    expect(run.code).toBe(78);
    expect(withoutAudit(run.stderr)).toContain(
      `SECRET_PGUSER (reference "issue:${other}#username"): permission denied: vault read ${other}`,
    );
  });
});
