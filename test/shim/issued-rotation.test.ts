import { beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import {
  auditRecords,
  auditSecrets,
  bao,
  baseEnv,
  shimLines,
  startShim,
  suffix,
  tempDir,
  tokenFile,
  vaultTokenEnv,
  writeFile,
} from "./harness.ts";
import {
  canLogIn,
  checkCertificate,
  databaseRole,
  lookupLease,
  pkiRole,
  policy,
  postgresEnv,
  psqlCommand,
  readVar,
} from "./issued-harness.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const count = (text: string, needle: string) => text.split(needle).length - 1;

/**
 * A long-running app: at each start it connects to PostgreSQL with the PGUSER/PGPASSWORD it was given
 * and prints `start [<PGUSER>] [<current_user>]`, saves its credentials to `out`, and exits 0 on SIGTERM.
 */
function databaseApp(out: string): string[] {
  const save = `printf '%s' "$PGUSER" > ${out}/PGUSER-$$; printf '%s' "$PGPASSWORD" > ${out}/PGPASSWORD-$$`;
  return [
    "sh",
    "-c",
    `${save}; echo "start [$PGUSER] [$(${psqlCommand("select current_user")})] $$"; trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.05; done`,
  ];
}

/** `[[PGUSER, current_user, pid], ...]` of each start of the database app. */
const starts = (stdout: string) => [...stdout.matchAll(/start \[(.*?)\] \[(.*?)\] (\d+)/g)].map((match) => match.slice(1));

// Rotation mode with issued secrets against the real OpenBao and PostgreSQL: leases renewed while
// they can be, secrets issued anew before they expire (the app restarted or signalled), the app
// stopped when its credentials die, leases ended with the shim.
describe.skipIf(skipWithout("openbao", "postgres"))("rotation of issued secrets", () => {
  const id = suffix();
  const dir = tempDir();
  const base = () => ({ ...baseEnv(), ...postgresEnv(), KUSTODIA_ROTATION: "restart", KUSTODIA_ROTATION_MARGIN: "50%" });
  const credsEnv = (path: string) => ({ SECRET_PGUSER: `issue:${path}#username`, SECRET_PGPASSWORD: `issue:${path}#password` });
  let shimToken: (paths: string[]) => Promise<Record<string, string>>;

  beforeAll(() => {
    shimToken = async (paths) => {
      const name = await policy(
        `rot-${id}-${suffix()}`,
        Object.fromEntries(paths.map((path) => [path, path.includes("/issue/") ? ["update"] : ["read"]])),
      );
      return vaultTokenEnv(await tokenFile(dir, [name], "10m"));
    };
  });

  it("renews a renewable lease while it can, without touching the app", async () => {
    const path = await databaseRole(`renew-${id}`, { defaultTtl: "3s", maxTtl: "1h" });
    const out = tempDir();
    const shim = startShim({ ...base(), ...(await shimToken([path])), ...credsEnv(path), KUSTODIA_LOG_LEVEL: "debug" }, databaseApp(out));
    await shim.waitFor((stdout) => stdout.includes("start ["));
    const [[user, currentUser, pid] = []] = starts(shim.stdout());
    expect(currentUser).toBe(user);
    await sleep(7000);
    expect(starts(shim.stdout())).toHaveLength(1);
    expect(count(shim.stderr(), "renewed until")).toBeGreaterThanOrEqual(3);
    expect(await canLogIn(user ?? "", readVar(out, `PGPASSWORD-${pid}`))).toBe(true);
    shim.child.kill("SIGTERM");
    expect(await shim.exited).toEqual({ code: 0, signal: null });
    expect(shimLines(shim.stderr()).filter((line) => / (warn|error): /.test(line))).toEqual([]);
  }, 30_000);

  it("issues new credentials before the lease reaches its max TTL and restarts the app with them", async () => {
    const path = await databaseRole(`max-${id}`, { defaultTtl: "4s", maxTtl: "4s" });
    const out = tempDir();
    const shim = startShim({ ...base(), ...(await shimToken([path])), ...credsEnv(path) }, databaseApp(out));
    await shim.waitFor((stdout) => starts(stdout).length >= 2, 15_000);
    const [first, second] = starts(shim.stdout());
    expect(first?.[0]).not.toBe(second?.[0]);
    expect(second?.[1]).toBe(second?.[0]); // the restarted app connects as the new user
    expect(shim.stdout()).toContain("got TERM");
    const records = auditRecords(shim.stderr());
    expect(records.map((record) => record.event)).toEqual(["start", "rotation"]);
    expect(records[1]).toMatchObject({ outcome: "ok", changed: ["PGPASSWORD", "PGUSER"] });
    const leases = records.map((record) => (record.secrets as { leaseId: string }[])[0]?.leaseId);
    expect(leases[0]).not.toBe(leases[1]);
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
  }, 30_000);

  it("issues a certificate anew before it expires and signals the app, which restarts with the new pair", async () => {
    const issuePath = await pkiRole(`rot-${id}`);
    const out = tempDir();
    const parameters = "common_name=rot.kustodia.test&ttl=4s";
    const save = `printf '%s' "$TLS_CRT" > ${out}/crt-$$; printf '%s' "$TLS_KEY" > ${out}/key-$$; echo "start $$"`;
    const shim = startShim(
      {
        ...base(),
        ...(await shimToken([issuePath])),
        KUSTODIA_ROTATION: "signal",
        SECRET_TLS_CRT: `issue:${issuePath}?${parameters}#certificate`,
        SECRET_TLS_KEY: `issue:${issuePath}?${parameters}#private_key`,
      },
      ["sh", "-c", `${save}; trap 'echo got HUP; exit 0' HUP; while :; do sleep 0.05; done`],
    );
    await shim.waitFor((stdout) => count(stdout, "start") >= 2, 15_000);
    const pids = [...shim.stdout().matchAll(/start (\d+)/g)].map((match) => match[1]);
    const [first, second] = pids.map((pid) => checkCertificate(readVar(out, `crt-${pid}`), readVar(out, `key-${pid}`)));
    expect(shim.stdout()).toMatch(/^start \d+\ngot HUP\nstart \d+\n/);
    expect(first?.keyMatches && second?.keyMatches).toBe(true);
    expect(second?.certificate.serialNumber).not.toBe(first?.certificate.serialNumber);
    expect(second?.commonName).toBe("rot.kustodia.test");
    shim.child.kill("SIGTERM");
    await shim.exited;
  }, 30_000);

  it("stops the app with a clear message, and 78, when the credentials expire and cannot be issued anew", async () => {
    const role = `gone-${id}`;
    const path = await databaseRole(role, { defaultTtl: "4s", maxTtl: "4s" });
    const shim = startShim({ ...base(), ...(await shimToken([path])), ...credsEnv(path) }, databaseApp(tempDir()));
    await shim.waitFor((stdout) => stdout.includes("start ["));
    await bao("DELETE", `${service("openbao").database?.mount}/roles/${role}`);
    expect(await shim.exited).toEqual({ code: 78, signal: null });
    expect(shim.stdout()).toMatch(/got TERM\n$/);
    const lines = shimLines(shim.stderr());
    expect(lines).toContainEqual(
      expect.stringMatching(/^kustodia-shim warn: issuing SECRET_PGPASSWORD, SECRET_PGUSER anew failed: .*; retrying in/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^kustodia-shim error: SECRET_PGPASSWORD, SECRET_PGUSER: expired at .* and could not be renewed or issued anew \(.*\); stopping the app$/,
      ),
    );
    expect(auditRecords(shim.stderr()).map((record) => [record.event, record.outcome])).toEqual([
      ["start", "ok"],
      ["stop", "failed"],
    ]);
  }, 30_000);

  it("ends its Vault token with the app, and with it the database user (AppRole login)", async () => {
    const path = await databaseRole(`approle-${id}`, { defaultTtl: "10m", maxTtl: "1h" });
    const name = await policy(`approle-${id}`, { [path]: ["read"] });
    await bao("POST", `auth/approle/role/app-${id}`, { token_policies: [name], token_ttl: "10m" });
    const roleId = (await bao("GET", `auth/approle/role/app-${id}/role-id`)).data.role_id as string;
    const secretId = (await bao("POST", `auth/approle/role/app-${id}/secret-id`, {})).data.secret_id as string;
    const out = tempDir();
    const shim = startShim(
      {
        ...base(),
        KUSTODIA_VAULT_ADDR: service("openbao").addr,
        KUSTODIA_VAULT_AUTH_METHOD: "approle",
        KUSTODIA_VAULT_ROLE_ID_FILE: writeFile(dir, `role-id-${id}`, roleId),
        KUSTODIA_VAULT_SECRET_ID_FILE: writeFile(dir, `secret-id-${id}`, secretId),
        ...credsEnv(path),
      },
      databaseApp(out),
    );
    await shim.waitFor((stdout) => stdout.includes("start ["));
    const [[user = "", , pid] = []] = starts(shim.stdout());
    const leaseId = auditSecrets<{ leaseId: string }>(auditRecords(shim.stderr())[0])[0]?.leaseId ?? "";
    expect(await lookupLease(leaseId)).toBeDefined();
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
    // Revoking a token queues the revocation of its leases: poll.
    for (let wait = 0; wait < 50 && (await lookupLease(leaseId)) !== undefined; wait++) await sleep(100);
    expect(await lookupLease(leaseId)).toBeUndefined();
    expect(await canLogIn(user, readVar(out, `PGPASSWORD-${pid}`))).toBe(false);
  }, 30_000);

  it("issues leased credentials anew under a new login before the old token, which holds their lease, expires", async () => {
    const path = await databaseRole(`relogin-${id}`, { defaultTtl: "1h", maxTtl: "1h" });
    const name = await policy(`relogin-${id}`, { [path]: ["read"] });
    // Tokens of this role live 6 s at most: the shim renews its token, then must log in anew.
    await bao("POST", `auth/approle/role/short-${id}`, { token_policies: [name], token_ttl: "3s", token_max_ttl: "6s" });
    const roleId = (await bao("GET", `auth/approle/role/short-${id}/role-id`)).data.role_id as string;
    const secretId = (await bao("POST", `auth/approle/role/short-${id}/secret-id`, {})).data.secret_id as string;
    const shim = startShim(
      {
        ...base(),
        KUSTODIA_VAULT_ADDR: service("openbao").addr,
        KUSTODIA_VAULT_AUTH_METHOD: "approle",
        KUSTODIA_VAULT_ROLE_ID_FILE: writeFile(dir, `role-id-short-${id}`, roleId),
        KUSTODIA_VAULT_SECRET_ID_FILE: writeFile(dir, `secret-id-short-${id}`, secretId),
        ...credsEnv(path),
      },
      databaseApp(tempDir()),
    );
    await shim.waitFor((stdout) => starts(stdout).length >= 2, 20_000);
    const [first, second] = starts(shim.stdout());
    expect(second?.[1]).toBe(second?.[0]);
    expect(second?.[0]).not.toBe(first?.[0]);
    expect(shim.stderr()).toMatch(/the vault token holding lease .* was replaced/);
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
  }, 40_000);
});
