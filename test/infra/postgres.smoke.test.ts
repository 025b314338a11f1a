// Proves the PostgreSQL of the test infrastructure is Debian's real server with password
// authentication, and that OpenBao's PKI and database engines are wired to it as the issued-secret
// tests expect: the default roles issue a certificate of the root CA and credentials that log in,
// and revoking the lease drops the database user.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { bao } from "../shim/harness.ts";
import { service, skipWithout } from "./coords.ts";
import { psql } from "./postgres.ts";

describe.skipIf(skipWithout("postgres"))("PostgreSQL (test infrastructure)", () => {
  it("is Debian's server, on loopback, with password authentication", async () => {
    const postgres = service("postgres");
    expect(postgres.host).toBe("127.0.0.1");
    expect(execFileSync(`${postgres.binDir}/postgres`, ["--version"], { encoding: "utf8" })).toContain(postgres.version.split(" ")[0]);
    expect(await psql(postgres, "select current_user")).toBe(postgres.superuser);
    await expect(psql(postgres, "select 1", postgres.superuser, "wrong-password")).rejects.toThrow(/password authentication failed/);
  });
});

describe.skipIf(skipWithout("openbao"))("OpenBao's PKI engine (test infrastructure)", () => {
  it("issues a certificate of its root CA for the default role", async () => {
    const pki = service("openbao").pki;
    if (!pki) throw new Error("no PKI mount");
    const issued = await bao("POST", `${pki.mount}/issue/${pki.role}`, { common_name: "smoke.kustodia.test", ttl: "5m" });
    const certificate = new X509Certificate(issued.data.certificate);
    expect(certificate.subject).toBe("CN=smoke.kustodia.test");
    expect(certificate.verify(new X509Certificate(pki.caPem).publicKey)).toBe(true);
  });
});

describe.skipIf(skipWithout("openbao", "postgres"))("OpenBao's database engine (test infrastructure)", () => {
  it("issues credentials that log in to the test PostgreSQL, and drops the user when the lease is revoked", async () => {
    const postgres = service("postgres");
    const database = service("openbao").database;
    if (!database) throw new Error("no database engine");
    const creds = await bao("GET", `${database.mount}/creds/${database.role}`);
    const { username, password } = creds.data as { username: string; password: string };
    expect(await psql(postgres, "select current_user", username, password)).toBe(username);
    await bao("PUT", "sys/leases/revoke", { lease_id: creds.lease_id });
    let exists = "1";
    for (let wait = 0; wait < 50 && exists !== ""; wait++) {
      exists = await psql(postgres, `select 1 from pg_roles where rolname = '${username}'`);
      if (exists !== "") await sleep(100);
    }
    expect(exists).toBe("");
  });
});
