import { createPublicKey, type webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import {
  bao,
  baseEnv,
  readPolicy,
  runShim,
  serviceAccountToken,
  shimLines,
  suffix,
  tempDir,
  tokenFile,
  withoutAudit,
  writeFile,
} from "./harness.ts";

/** The apiserver's ServiceAccount signing keys (the JWKS endpoint answers only `Accept: application/jwk-set+json`). */
function serviceAccountJwks(): Promise<{ keys: webcrypto.JsonWebKey[] }> {
  const kube = service("kube");
  return new Promise((resolve, reject) => {
    const req = request(
      new URL("/openid/v1/jwks", kube.server),
      { ca: readFileSync(kube.caFile), headers: { authorization: `Bearer ${kube.adminToken}`, accept: "application/jwk-set+json" } },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8");
        });
        response.on("end", () => resolve(JSON.parse(text) as { keys: webcrypto.JsonWebKey[] }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const printPassword = ["sh", "-c", 'printf "%s" "$PASSWORD"'];

// Every auth method of KUSTODIA_VAULT_AUTH_METHOD against the real OpenBao; kubernetes and jwt log in
// with TokenRequest tokens of the real kube-apiserver.
describe.skipIf(skipWithout("openbao", "kube"))("vault auth with the pod's identity", () => {
  const id = suffix();
  const dir = tempDir();
  const namespace = `shim-${id}`;
  let policy: string;

  beforeAll(async () => {
    await bao("POST", `secret/data/auth-${id}/db`, { data: { password: `pw-${id}` } });
    await bao("POST", `secret/data/other-${id}/db`, { data: { password: "not yours" } });
    policy = await readPolicy(`auth-${id}`, [`secret/data/auth-${id}/*`]);
  });

  it("kubernetes: logs in with the ServiceAccount token file and the app sees the value", async () => {
    await bao("POST", `auth/kubernetes/role/app-${id}`, {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [namespace],
      token_policies: [policy],
      token_ttl: "5m",
    });
    const saTokenFile = writeFile(dir, "sa-token", await serviceAccountToken(namespace, "app"));
    const env = {
      ...baseEnv(),
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_ROLE: `app-${id}`,
      KUSTODIA_SA_TOKEN_FILE: saTokenFile,
      SECRET_PASSWORD: `auth-${id}/db/password`,
    };
    const run = await runShim(env, printPassword);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`pw-${id}`);

    const denied = await runShim({ ...env, SECRET_PASSWORD: `other-${id}/db/password` }, printPassword);
    expect(denied.code).toBe(78);
    expect(shimLines(denied.stderr)[0]).toMatch(new RegExp(`SECRET_PASSWORD \\(reference "other-${id}/db/password"\\): permission denied`));
    expect(denied.stdout).toBe("");
  });

  it("kubernetes: a ServiceAccount the role is not bound to is refused with 78", async () => {
    await bao("POST", `auth/kubernetes/role/bound-${id}`, {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [`elsewhere-${id}`],
      token_policies: [policy],
    });
    const saTokenFile = writeFile(dir, "sa-token-unbound", await serviceAccountToken(`unbound-${id}`, "app"));
    const run = await runShim(
      {
        ...baseEnv(),
        KUSTODIA_VAULT_ADDR: service("openbao").addr,
        KUSTODIA_VAULT_ROLE: `bound-${id}`,
        KUSTODIA_SA_TOKEN_FILE: saTokenFile,
        SECRET_PASSWORD: `auth-${id}/db/password`,
      },
      printPassword,
    );
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)[0]).toMatch(
      /SECRET_PASSWORD .*vault kubernetes login at auth\/kubernetes, role "bound-.*" refused: HTTP 403/,
    );
  });

  it("jwt: logs in with a ServiceAccount token checked against the apiserver's signing keys", async () => {
    const kube = service("kube");
    const mount = `jwt-${id}`;
    const jwks = await serviceAccountJwks();
    const pubkeys = jwks.keys.map((key) => createPublicKey({ key, format: "jwk" }).export({ type: "spki", format: "pem" }).toString());
    await bao("POST", `sys/auth/${mount}`, { type: "jwt" });
    await bao("POST", `auth/${mount}/config`, { jwt_validation_pubkeys: pubkeys, bound_issuer: kube.serviceAccountIssuer });
    await bao("POST", `auth/${mount}/role/app`, {
      role_type: "jwt",
      bound_audiences: ["openbao"],
      user_claim: "sub",
      bound_subject: `system:serviceaccount:jwt-${id}:app`,
      token_policies: [policy],
    });
    const saTokenFile = writeFile(dir, "jwt", await serviceAccountToken(`jwt-${id}`, "app", ["openbao"]));
    const run = await runShim(
      {
        ...baseEnv(),
        KUSTODIA_VAULT_ADDR: service("openbao").addr,
        KUSTODIA_VAULT_AUTH_METHOD: "jwt",
        KUSTODIA_VAULT_AUTH_PATH: `auth/${mount}`,
        KUSTODIA_VAULT_ROLE: "app",
        KUSTODIA_SA_TOKEN_FILE: saTokenFile,
        SECRET_PASSWORD: `auth-${id}/db#password`,
      },
      printPassword,
    );
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`pw-${id}`);
  });

  it("approle: logs in with role_id and secret_id files", async () => {
    const role = `auth/approle/role/app-${id}`;
    await bao("POST", role, { token_policies: [policy], secret_id_num_uses: 0 });
    const roleId = (await bao("GET", `${role}/role-id`)).data.role_id as string;
    const secretId = (await bao("POST", `${role}/secret-id`, {})).data.secret_id as string;
    const env = {
      ...baseEnv(),
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_AUTH_METHOD: "approle",
      KUSTODIA_VAULT_ROLE_ID_FILE: writeFile(dir, "role-id", `${roleId}\n`),
      KUSTODIA_VAULT_SECRET_ID_FILE: writeFile(dir, "secret-id", secretId),
      SECRET_PASSWORD: `auth-${id}/db/password`,
    };
    const run = await runShim(env, printPassword);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`pw-${id}`);

    const wrong = await runShim(
      { ...env, KUSTODIA_VAULT_SECRET_ID_FILE: writeFile(dir, "wrong-secret-id", "00000000-0000-0000-0000-000000000000") },
      printPassword,
    );
    expect(wrong.code).toBe(78);
    expect(shimLines(wrong.stderr)[0]).toMatch(/vault approle login at auth\/approle refused: HTTP 400/);
    expect(wrong.stderr).not.toContain(secretId);
  });

  it("token: reads the token from KUSTODIA_VAULT_TOKEN_FILE, never from the environment", async () => {
    const file = await tokenFile(dir, [policy]);
    const env = {
      ...baseEnv(),
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_AUTH_METHOD: "token",
      SECRET_PASSWORD: `auth-${id}/db/password`,
    };
    const run = await runShim({ ...env, KUSTODIA_VAULT_TOKEN_FILE: file }, printPassword);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`pw-${id}`);

    const fromEnv = await runShim({ ...env, VAULT_TOKEN: service("openbao").rootToken }, printPassword);
    expect(fromEnv.code).toBe(78);
    expect(fromEnv.stderr).toContain("KUSTODIA_VAULT_TOKEN_FILE is not set");
    expect(fromEnv.stderr).not.toContain(service("openbao").rootToken);
  });

  it("token: a missing token file is a 78 naming the setting", async () => {
    const run = await runShim(
      {
        ...baseEnv(),
        KUSTODIA_VAULT_ADDR: service("openbao").addr,
        KUSTODIA_VAULT_AUTH_METHOD: "token",
        KUSTODIA_VAULT_TOKEN_FILE: `${dir}/nope`,
        SECRET_PASSWORD: `auth-${id}/db/password`,
      },
      printPassword,
    );
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)[0]).toContain(`KUSTODIA_VAULT_TOKEN_FILE="${dir}/nope": no such file`);
  });

  it("namespaces: logs in and reads inside KUSTODIA_VAULT_NAMESPACE", async () => {
    const ns = `team-${id}`;
    await bao("POST", `sys/namespaces/${ns}`, {});
    const inNs = { namespace: ns };
    await bao("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } }, inNs);
    await bao("POST", "sys/auth/approle", { type: "approle" }, inNs);
    await bao("POST", "secret/data/app/db", { data: { password: `ns-${id}` } }, inNs);
    const nsPolicy = await readPolicy("app", ["secret/data/app/*"], ns);
    await bao("POST", "auth/approle/role/app", { token_policies: [nsPolicy] }, inNs);
    const roleId = (await bao("GET", "auth/approle/role/app/role-id", undefined, inNs)).data.role_id as string;
    const secretId = (await bao("POST", "auth/approle/role/app/secret-id", {}, inNs)).data.secret_id as string;
    const env = {
      ...baseEnv(),
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_AUTH_METHOD: "approle",
      KUSTODIA_VAULT_ROLE_ID_FILE: writeFile(dir, "ns-role-id", roleId),
      KUSTODIA_VAULT_SECRET_ID_FILE: writeFile(dir, "ns-secret-id", secretId),
      SECRET_PASSWORD: "app/db/password",
    };
    const run = await runShim({ ...env, KUSTODIA_VAULT_NAMESPACE: ns }, printPassword);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`ns-${id}`);

    const outside = await runShim(env, printPassword);
    expect(outside.code).toBe(78);
  });
});
