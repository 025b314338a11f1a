import { beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { bao, baseEnv, readPolicy, runShim, shimLines, suffix, tempDir, tokenFile, vaultTokenEnv, withoutAudit } from "./harness.ts";

// KV reads against the real OpenBao: v2 (`secret/`) and v1 (`kv1/`) mounts detected per mount, fields,
// versions, values that are not strings. The shim's credential is a token limited by a read policy.
describe.skipIf(skipWithout("openbao"))("vault KV references", () => {
  const id = suffix();
  const dir = tempDir();
  let env: Record<string, string>;

  beforeAll(async () => {
    const { kvV1Mount } = service("openbao");
    await bao("POST", `secret/data/kv-${id}/db`, { data: { user: "app", password: "v2-pass=word" } });
    await bao("POST", `secret/data/kv-${id}/api`, { data: { key: "first" } });
    await bao("POST", `secret/data/kv-${id}/api`, { data: { key: "second" } });
    await bao("POST", `secret/data/kv-${id}/typed`, { data: { port: 5432, on: true, nested: { a: [1, "b"] }, none: null } });
    await bao("POST", `secret/data/team-${id}/app`, { data: { token: "under-a-prefix" } });
    await bao("POST", `${kvV1Mount}/kv-${id}/db`, { user: "v1user", password: "v1-pass" });
    const policy = await readPolicy(`kv-${id}`, [`secret/data/kv-${id}/*`, `secret/data/team-${id}/*`, `${kvV1Mount}/kv-${id}/*`]);
    env = { ...baseEnv(), ...vaultTokenEnv(await tokenFile(dir, [policy])) };
  });

  const printEnv = (...names: string[]) => ["sh", "-c", names.map((name) => `printf '%s\\n' "${name}=\${${name}-<unset>}"`).join(";")];

  it("reads fields of a KV v2 secret, by last segment and by #field", async () => {
    const run = await runShim(
      { ...env, SECRET_DB_USER: `kv-${id}/db/user`, SECRET_DB_PASSWORD: `kv-${id}/db#password` },
      printEnv("DB_USER", "DB_PASSWORD"),
    );
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("DB_USER=app\nDB_PASSWORD=v2-pass=word\n");
  });

  it("reads a KV v1 mount, detected from the mount", async () => {
    const run = await runShim(
      { ...env, KUSTODIA_VAULT_KV_MOUNT: service("openbao").kvV1Mount, SECRET_PW: `kv-${id}/db#password` },
      printEnv("PW"),
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("PW=v1-pass\n");
  });

  it("reads an older version with @version, the latest without", async () => {
    const run = await runShim({ ...env, SECRET_OLD: `kv-${id}/api#key@1`, SECRET_NEW: `kv-${id}/api#key` }, printEnv("OLD", "NEW"));
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("OLD=first\nNEW=second\n");
  });

  it("fails with 78 for @version on a KV v1 mount", async () => {
    const run = await runShim({ ...env, KUSTODIA_VAULT_KV_MOUNT: service("openbao").kvV1Mount, SECRET_PW: `kv-${id}/db#password@1` }, [
      "true",
    ]);
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr).find((line) => line.includes("SECRET_PW"))).toMatch(/KV version 1.*no versions/);
  });

  it("fails with 78 for a version that does not exist", async () => {
    const run = await runShim({ ...env, SECRET_X: `kv-${id}/api#key@9` }, ["true"]);
    expect(run.code).toBe(78);
    expect(run.stderr).toMatch(/SECRET_X \(reference ".*@9"\): not found/);
  });

  it("hands over values that are not strings as JSON", async () => {
    const refs = {
      SECRET_PORT: `kv-${id}/typed#port`,
      SECRET_ON: `kv-${id}/typed#on`,
      SECRET_NESTED: `kv-${id}/typed#nested`,
      SECRET_NONE: `kv-${id}/typed#none`,
    };
    const run = await runShim({ ...env, ...refs }, printEnv("PORT", "ON", "NESTED", "NONE"));
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('PORT=5432\nON=true\nNESTED={"a":[1,"b"]}\nNONE=\n');
  });

  it("reads below a KV mount when KUSTODIA_VAULT_KV_MOUNT names a path inside it", async () => {
    const run = await runShim({ ...env, KUSTODIA_VAULT_KV_MOUNT: `secret/team-${id}`, SECRET_T: "app#token" }, printEnv("T"));
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe("T=under-a-prefix\n");
  });

  it("makes one request per distinct secret path, however many vars use it", async () => {
    const refs = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`SECRET_V${i}`, `kv-${id}/db#${i % 2 ? "user" : "password"}`]));
    const run = await runShim({ ...env, ...refs, KUSTODIA_LOG_LEVEL: "debug" }, ["true"]);
    expect(run.code).toBe(0);
    expect(shimLines(run.stderr).filter((line) => line.includes(`read vault secret "kv-${id}/db"`))).toHaveLength(1);
  });
});
