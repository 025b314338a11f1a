import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { startTlsCustodia, type TlsCustodia } from "./custodia-tls.ts";
import {
  bao,
  baseEnv,
  custodiaPut,
  readPolicy,
  runShim,
  shimLines,
  suffix,
  tempDir,
  tokenFile,
  vaultTokenEnv,
  withoutAudit,
} from "./harness.ts";

const printValue = ["sh", "-c", 'printf "%s" "$VALUE"'];

// Custodia's `simple` keys through the real server: over its unix socket (Custodia admits the shim by
// its uid/gid), and over HTTPS with a client certificate (a second Custodia started here).
describe.skipIf(skipWithout("custodia"))("custodia references", () => {
  const id = suffix();
  let env: Record<string, string>;

  beforeAll(async () => {
    await custodiaPut(`app-${id}`, "password", `custodia-${id}\nline two`);
    env = { ...baseEnv(), KUSTODIA_BACKEND: "custodia", KUSTODIA_CUSTODIA_URL: service("custodia").url };
  });

  it("reads a key over the unix socket (http+unix:///path)", async () => {
    const run = await runShim({ ...env, SECRET_VALUE: `app-${id}/password` }, printValue);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`custodia-${id}\nline two`);
  });

  it("accepts Custodia's own URL form with the socket path encoded as the host", async () => {
    const url = `http+unix://${encodeURIComponent(service("custodia").socket)}`;
    const run = await runShim({ ...env, KUSTODIA_CUSTODIA_URL: url, SECRET_VALUE: `app-${id}/password` }, printValue);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`custodia-${id}\nline two`);
  });

  it("fails with 78 for a missing key, naming var, reference and key", async () => {
    const run = await runShim({ ...env, SECRET_VALUE: `app-${id}/nope` }, printValue);
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)[0]).toBe(
      `kustodia-shim error: SECRET_VALUE (reference "app-${id}/nope"): not found: custodia key /secrets/app-${id}/nope`,
    );
  });

  it("fails with 69 when the socket does not exist, after the deadline", async () => {
    const run = await runShim(
      { ...env, KUSTODIA_CUSTODIA_URL: `http+unix://${tempDir()}/none.sock`, KUSTODIA_TIMEOUT: "1s", SECRET_VALUE: `app-${id}/password` },
      printValue,
    );
    expect(run.code).toBe(69);
    expect(run.durationMs).toBeGreaterThanOrEqual(1000);
    expect(shimLines(run.stderr)[0]).toMatch(/SECRET_VALUE .*backend unreachable within 1\.\d s .*ENOENT/);
  });

  it.skipIf(skipWithout("openbao"))("mixes backends: custodia: references next to Vault ones", async () => {
    await bao("POST", `secret/data/mix-${id}`, { data: { v: "from-vault" } });
    const file = await tokenFile(tempDir(), [await readPolicy(`mix-${id}`, [`secret/data/mix-${id}`])]);
    const run = await runShim(
      {
        ...baseEnv(),
        ...vaultTokenEnv(file),
        KUSTODIA_CUSTODIA_URL: service("custodia").url,
        SECRET_A: `mix-${id}#v`,
        SECRET_B: `custodia:app-${id}/password`,
      },
      ["sh", "-c", 'printf "%s|%s" "$A" "$B"'],
    );
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.stdout).toBe(`from-vault|custodia-${id}\nline two`);
  });

  describe("over https with a client certificate", () => {
    let tls: TlsCustodia;
    let httpsEnv: Record<string, string>;

    beforeAll(async () => {
      tls = await startTlsCustodia(tempDir());
      await tls.put(`tls-${id}`, "key", `tls-${id}`);
      httpsEnv = {
        ...baseEnv(),
        KUSTODIA_BACKEND: "custodia",
        KUSTODIA_CUSTODIA_URL: tls.url,
        KUSTODIA_CUSTODIA_CACERT: tls.caFile,
        KUSTODIA_CUSTODIA_CLIENT_CERT: tls.client.certFile,
        KUSTODIA_CUSTODIA_CLIENT_KEY: tls.client.keyFile,
        SECRET_VALUE: `tls-${id}/key`,
      };
    });
    afterAll(async () => {
      await tls?.stop();
    });

    it("reads a key, authenticated by the client certificate", async () => {
      const run = await runShim(httpsEnv, printValue);
      expect(withoutAudit(run.stderr)).toBe("");
      expect(run.stdout).toBe(`tls-${id}`);
    });

    it.each([
      { name: "without a client certificate", cert: undefined },
      { name: "with a certificate from another CA", cert: "stranger" as const },
    ])("fails with 78 at once $name (the TLS handshake refuses it)", async ({ cert }) => {
      const { KUSTODIA_CUSTODIA_CLIENT_CERT: _cert, KUSTODIA_CUSTODIA_CLIENT_KEY: _key, ...withoutCert } = httpsEnv;
      const client: Record<string, string> = cert
        ? { KUSTODIA_CUSTODIA_CLIENT_CERT: tls.stranger.certFile, KUSTODIA_CUSTODIA_CLIENT_KEY: tls.stranger.keyFile }
        : {};
      const run = await runShim({ ...withoutCert, ...client, KUSTODIA_TIMEOUT: "5s" }, printValue);
      expect(run.code).toBe(78);
      expect(run.durationMs).toBeLessThan(4000);
      expect(shimLines(run.stderr)[0]).toMatch(/SECRET_VALUE .*custodia GET \/secrets\/tls-.*\/key: ERR_SSL_/);
    });

    it("fails with 78 at once when the server's certificate is not trusted", async () => {
      const { KUSTODIA_CUSTODIA_CACERT: _ca, ...untrusted } = httpsEnv;
      const run = await runShim({ ...untrusted, KUSTODIA_TIMEOUT: "5s" }, printValue);
      expect(run.code).toBe(78);
      expect(run.durationMs).toBeLessThan(4000);
      expect(shimLines(run.stderr)[0]).toMatch(/SECRET_VALUE .*(certificate|CERT)/i);
    });

    it("fails with 78 when both cert and key are not given", async () => {
      const { KUSTODIA_CUSTODIA_CLIENT_KEY: _key, ...certOnly } = httpsEnv;
      const run = await runShim(certOnly, printValue);
      expect(run.code).toBe(78);
      expect(run.stderr).toContain("KUSTODIA_CUSTODIA_CLIENT_CERT and KUSTODIA_CUSTODIA_CLIENT_KEY must be set together");
    });
  });
});
