import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { openbaoCall } from "../infra/openbao-api.ts";
import { type Daemon, freePort, startDaemon, stopDaemon, tcpOpen, waitUntil } from "../infra/proc.ts";
import { baseEnv, runShim, shimLines, suffix, tempDir, withoutAudit, writeFile } from "./harness.ts";

/** A call to the TLS OpenBao, trusting its generated CA; its HTTP status. */
async function call(addr: string, ca: Buffer, token: string, method: string, path: string, body?: unknown): Promise<number> {
  return (await openbaoCall({ addr, token, ca }, method, path, body)).status;
}

// KUSTODIA_VAULT_CACERT against a second real OpenBao serving TLS with its own generated CA
// (`bao server -dev -dev-tls`).
describe.skipIf(skipWithout("openbao"))("vault over TLS with a custom CA", () => {
  const dir = tempDir();
  const rootToken = `root-${suffix()}`;
  let daemon: Daemon;
  let addr: string;
  let caFile: string;

  beforeAll(async () => {
    let port = await freePort();
    while (await tcpOpen(port + 1)) port = await freePort();
    addr = `https://127.0.0.1:${port}`;
    daemon = startDaemon({
      name: "openbao-tls",
      command: service("openbao").binary,
      args: ["server", "-dev", "-dev-tls", `-dev-tls-cert-dir=${dir}`, `-dev-listen-address=127.0.0.1:${port}`, "-dev-no-store-token"],
      logFile: join(dir, "openbao.log"),
      cwd: dir,
      env: { PATH: process.env.PATH ?? "", HOME: dir, BAO_DEV_ROOT_TOKEN_ID: rootToken },
    });
    caFile = join(dir, "vault-ca.pem");
    await waitUntil(
      daemon,
      `${addr}/v1/sys/health`,
      async () => existsSync(caFile) && (await call(addr, readFileSync(caFile), "", "GET", "sys/health")) === 200,
    );
    expect(await call(addr, readFileSync(caFile), rootToken, "POST", "secret/data/tls/app", { data: { password: "over-tls" } })).toBe(200);
  });
  afterAll(async () => {
    if (daemon) await stopDaemon(daemon.pid);
  });

  const env = () => ({
    ...baseEnv(),
    KUSTODIA_VAULT_ADDR: addr,
    KUSTODIA_VAULT_AUTH_METHOD: "token",
    KUSTODIA_VAULT_TOKEN_FILE: writeFile(dir, "token", rootToken),
    SECRET_PASSWORD: "tls/app#password",
  });

  it("trusts the server through KUSTODIA_VAULT_CACERT", async () => {
    const run = await runShim({ ...env(), KUSTODIA_VAULT_CACERT: caFile }, ["sh", "-c", 'printf "%s" "$PASSWORD"']);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe("over-tls");
  });

  it("fails with 78 at once without the CA: an untrusted certificate does not heal by retrying", async () => {
    const run = await runShim({ ...env(), KUSTODIA_TIMEOUT: "10s" }, ["true"]);
    expect(run.code).toBe(78);
    expect(run.durationMs).toBeLessThan(5000);
    expect(shimLines(run.stderr)[0]).toMatch(/SECRET_PASSWORD .*vault GET \/v1\/auth\/token\/lookup-self: .*certificate/i);
  });

  it("keeps checking certificates when the app's env says NODE_TLS_REJECT_UNAUTHORIZED=0", async () => {
    const run = await runShim({ ...env(), NODE_TLS_REJECT_UNAUTHORIZED: "0", KUSTODIA_TIMEOUT: "10s" }, [
      "sh",
      "-c",
      'printf "%s" "$PASSWORD"',
    ]);
    expect(run.code).toBe(78);
    expect(run.stdout).toBe("");
  });

  it("fails with 78 when the CA file does not exist, naming the setting", async () => {
    const run = await runShim({ ...env(), KUSTODIA_VAULT_CACERT: join(dir, "missing.pem") }, ["true"]);
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)[0]).toContain(`KUSTODIA_VAULT_CACERT="${join(dir, "missing.pem")}": no such file`);
  });
});
