import { beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { bao, baseEnv, runShim, shimLines, suffix, tempDir, tokenFile, vaultTokenEnv } from "./harness.ts";
import { policy } from "./issued-harness.ts";

// Issued references may only reach secrets engines that issue secrets (#13 item 7), on the real
// OpenBao, whose dev server has namespaces: `sys/` and `auth/` are refused after a namespace prefix
// too, and a path on any other kind of mount (here KV) is refused before anything is written.
describe.skipIf(skipWithout("openbao"))("issued references and the mounts they may reach", () => {
  const id = suffix();
  const namespace = `ns-${id}`;
  const dir = tempDir();
  let env: Record<string, string>;

  beforeAll(async () => {
    await bao("POST", `sys/namespaces/${namespace}`, {});
    // A careless policy that would let the shim's token reconfigure the namespace and write KV.
    const name = await policy(`careless-${id}`, {
      [`${namespace}/sys/*`]: ["create", "update", "read", "list"],
      [`${namespace}/auth/*`]: ["create", "update", "read"],
      [`${service("openbao").kvV1Mount}/issued-${id}`]: ["create", "update", "read"],
    });
    env = { ...baseEnv(), ...vaultTokenEnv(await tokenFile(dir, [name])) };
  });

  const mountsOf = async (where: string) => Object.keys((await bao("GET", "sys/mounts", undefined, { namespace: where })).data ?? {});

  it("never writes under sys/ or auth/ after a Vault namespace prefix (issue:<ns>/sys/mounts/pwned?type=kv)", async () => {
    const before = await mountsOf(namespace);
    const runs: Awaited<ReturnType<typeof runShim>>[] = [];
    for (const [extra, reference] of [
      [{}, `issue:${namespace}/sys/mounts/pwned-${id}?type=kv#x`],
      // The namespace from the vault-namespace setting, a child namespace in the path.
      [{ KUSTODIA_VAULT_NAMESPACE: namespace }, `issue:${namespace}/sys/mounts/pwned-${id}?type=kv#x`],
      [{}, `issue:${namespace}/auth/token/create?policies=root#client_token`],
    ] as const) {
      runs.push(await runShim({ ...env, ...extra, SECRET_X: reference }, ["true"]));
    }
    // What matters first: nothing was mounted (before the fix, pwned-<id>/ was).
    expect(await mountsOf(namespace)).toEqual(before);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(78);
      expect(shimLines(run.stderr).join("\n")).toMatch(/cannot use (sys|auth)\/ paths/);
    }
  });

  it("refuses a path on a mount that issues nothing (KV), before writing to it", async () => {
    const kv = service("openbao").kvV1Mount;
    const run = await runShim({ ...env, SECRET_X: `issue:${kv}/issued-${id}?value=overwritten#value` }, ["true"]);
    // What matters first: nothing was written (before the fix, the value was).
    await expect(bao("GET", `${kv}/issued-${id}`)).rejects.toThrow(/HTTP 404/);
    expect(run.code, run.stderr).toBe(78);
    expect(shimLines(run.stderr).join("\n")).toContain('is a "kv" mount; issued references may only use engines that issue secrets');
  });
});
