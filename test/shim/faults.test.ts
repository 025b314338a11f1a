// Backend faults (DESIGN §5, §6.4), injected by a real TCP proxy (test/infra/tcp-proxy.ts) between the
// real shim and the real OpenBao / Custodia. Transient faults (down, slow, 5xx/429, resets, invalid or
// truncated answers) are retried until KUSTODIA_TIMEOUT: a burst that ends in time gives a normal
// start, one that lasts gives exit 69. Final ones (403, untrusted or expired certificates) give exit
// 78 at once, without retrying. Whatever happens, the app starts with every value or not at all: it
// creates a marker file first thing, and the secret value never shows up in what the shim wrote.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { type HttpFault, type ProxyMode, startTcpProxy, type TcpProxy } from "../infra/tcp-proxy.ts";
import { makeCertificateAuthority, makeLeafCertificate } from "../infra/tls.ts";
import {
  bao,
  baseEnv,
  custodiaPut,
  readPolicy,
  runShim,
  type ShimRun,
  shimLines,
  startShim,
  suffix,
  tempDir,
  tokenFile,
} from "./harness.ts";

const id = suffix();
const dir = tempDir("kustodia-faults-");
const marker = join(dir, "app-started");
const secretValue = `fault-value-${id}-Qx7`;
const custodiaValue = `fault-custodia-${id}-Wp3`;
/** The app: proves it started (marker), then prints what it got. */
const app = ["sh", "-c", `touch ${marker}; printf '<%s|%s>' "$PASSWORD" "$KEY"`];
const KV_READ = /^GET \/v1\/secret\/data\//;

let tokenPath: string;
let certs: Record<"ca" | "otherCa" | "good" | "expired" | "otherName" | "fromOtherCa", { certFile: string; keyFile: string }>;

function url(proxy: TcpProxy, scheme = "http"): string {
  return `${scheme}://${proxy.host}`;
}

/** The shim against Vault at `addr`, with one reference, at debug level. */
function vaultEnv(addr: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...baseEnv(),
    KUSTODIA_VAULT_ADDR: addr,
    KUSTODIA_VAULT_AUTH_METHOD: "token",
    KUSTODIA_VAULT_TOKEN_FILE: tokenPath,
    KUSTODIA_LOG_LEVEL: "debug",
    KUSTODIA_TIMEOUT: "10s",
    SECRET_PASSWORD: `faults-${id}/db#password`,
    ...extra,
  };
}

function expectStarted(run: ShimRun, values = `<${secretValue}|>`): void {
  expect(run.code, run.stderr).toBe(0);
  expect(existsSync(marker)).toBe(true);
  expect(run.stdout).toBe(values);
}

/** Not started, the documented exit code, one problem line matching `reason`, no value anywhere. */
function expectRefused(run: ShimRun, code: 69 | 78, reason: RegExp): void {
  expect(run.code, run.stderr).toBe(code);
  expect(existsSync(marker), "the app was never started").toBe(false);
  expect(run.stdout).toBe("");
  const errors = shimLines(run.stderr).filter((line) => line.startsWith("kustodia-shim error:"));
  expect(errors.at(-1)).toMatch(/^kustodia-shim error: not starting the app: \d+ of \d+ reference\(s\) unresolved$/);
  expect(errors[0]).toMatch(/^kustodia-shim error: SECRET_(PASSWORD|KEY) \(reference "[^"]+"\): /);
  expect(errors[0]).toMatch(reason);
  expect(run.stderr).not.toContain(secretValue);
  expect(run.stderr).not.toContain(custodiaValue);
}

describe.skipIf(skipWithout("openbao", "custodia"))("the shim under backend faults (real proxy, real OpenBao and Custodia)", () => {
  let proxy: TcpProxy;

  beforeAll(async () => {
    await bao("POST", `secret/data/faults-${id}/db`, { data: { password: secretValue } });
    await custodiaPut(`faults-${id}`, "key", custodiaValue);
    tokenPath = await tokenFile(dir, [await readPolicy(`faults-${id}`, [`secret/data/faults-${id}/*`])], "30m");
    const ca = await makeCertificateAuthority(dir, "faults");
    const otherCa = await makeCertificateAuthority(dir, "other");
    certs = {
      ca,
      otherCa,
      good: await makeLeafCertificate(ca, dir, "good", ["IP:127.0.0.1"]),
      // Valid until yesterday (`openssl x509 -days -1`).
      expired: await makeLeafCertificate(ca, dir, "expired", ["IP:127.0.0.1"], "serverAuth", -1),
      otherName: await makeLeafCertificate(ca, dir, "other-name", ["DNS:vault.other.example"]),
      fromOtherCa: await makeLeafCertificate(otherCa, dir, "from-other-ca", ["IP:127.0.0.1"]),
    };
    const target = new URL(service("openbao").addr);
    proxy = await startTcpProxy({ targetHost: target.hostname, targetPort: Number(target.port) });
  });
  afterEach(async () => {
    rmSync(marker, { force: true });
    proxy.setHttpFault(undefined);
    proxy.setDelay(0);
    await proxy.setMode("forward");
    proxy.resetStats();
  });
  afterAll(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts the app with the value through the proxy when nothing goes wrong", async () => {
    expectStarted(await runShim(vaultEnv(url(proxy)), app));
    expect(proxy.stats().bytesFromTarget).toBeGreaterThan(0);
  });

  describe("transient faults that last past KUSTODIA_TIMEOUT: exit 69, after retrying", () => {
    it.each<{ name: string; mode?: ProxyMode; delayMs?: number; fault?: HttpFault; reason: RegExp }>([
      {
        name: "backend down (connection refused)",
        mode: "refuse",
        reason: /backend unreachable within [12]\.\d s \(\d+ attempts\): .*ECONNREFUSED/,
      },
      {
        name: "every connection reset",
        mode: "reset",
        reason: /backend unreachable within [12]\.\d s \(\d+ attempts\): .*(ECONNRESET|socket hang up)/,
      },
      {
        name: "slower than the deadline (3 s per chunk)",
        delayMs: 3000,
        reason: /backend unreachable within [12]\.\d s \(\d+ attempts?\): .*no answer within/,
      },
      {
        name: "HTTP 500 on every read",
        fault: { kind: "respond", status: 500, body: '{"errors":["internal error: storage unavailable"]}', match: KV_READ },
        reason:
          /backend unreachable within [12]\.\d s \(\d+ attempts\): vault GET \/v1\/secret\/data\/faults-\w+\/db: HTTP 500: internal error: storage unavailable/,
      },
      {
        name: "HTTP 503 (sealed) on every request",
        fault: { kind: "respond", status: 503, body: '{"errors":["Vault is sealed"]}' },
        reason: /backend unreachable within [12]\.\d s \(\d+ attempts\): .*HTTP 503: Vault is sealed/,
      },
      {
        name: "invalid JSON in every answer to the read",
        fault: { kind: "respond", status: 200, body: '{"data":{"data":{"password":', match: KV_READ },
        reason:
          /backend unreachable within [12]\.\d s \(\d+ attempts\): vault GET \/v1\/secret\/data\/faults-\w+\/db: HTTP 200 with an answer that is not valid JSON/,
      },
      {
        name: "every answer to the read truncated (the connection ends early)",
        fault: { kind: "truncate", bodyBytes: 20, match: KV_READ },
        reason:
          /backend unreachable within [12]\.\d s \(\d+ attempts\): vault GET \/v1\/secret\/data\/faults-\w+\/db: .*(aborted|ECONNRESET)/,
      },
      {
        name: "every answer to the read truncated (looking complete)",
        fault: { kind: "truncate", bodyBytes: 20, dropLength: true, match: KV_READ },
        reason:
          /backend unreachable within [12]\.\d s \(\d+ attempts\): vault GET \/v1\/secret\/data\/faults-\w+\/db: HTTP 200 with an answer that is not valid JSON/,
      },
      {
        name: "invalid JSON from the token lookup (the login)",
        fault: { kind: "respond", status: 200, body: "<html>proxy error</html>", match: /lookup-self/ },
        reason: /backend unreachable within [12]\.\d s \(\d+ attempts?\): .*lookup-self: HTTP 200 with an answer that is not valid JSON/,
      },
    ])("$name", async ({ mode, delayMs, fault, reason }) => {
      if (mode) await proxy.setMode(mode);
      if (delayMs) proxy.setDelay(delayMs);
      if (fault) proxy.setHttpFault(fault);
      const run = await runShim(vaultEnv(url(proxy), { KUSTODIA_TIMEOUT: "2s" }), app);
      expectRefused(run, 69, reason);
      expect(run.durationMs).toBeGreaterThanOrEqual(2000);
      expect(run.durationMs, "ends near the deadline").toBeLessThan(6000);
      if (fault) expect(proxy.stats().httpFaults, "retried").toBeGreaterThan(1);
      if (mode === "reset") expect(proxy.stats().connections, "retried").toBeGreaterThan(1);
    });
  });

  describe("transient faults that end before the deadline: retried, then a normal start", () => {
    it.each<{ name: string; fault: HttpFault }>([
      {
        name: "a burst of three 503s",
        fault: { kind: "respond", status: 503, body: '{"errors":["Vault is sealed"]}', match: KV_READ, count: 3 },
      },
      {
        name: "a burst of 429s (rate limited)",
        fault: { kind: "respond", status: 429, body: '{"errors":["rate limit quota exceeded"]}', count: 4 },
      },
      { name: "a burst of 502s with an HTML body", fault: { kind: "respond", status: 502, body: "<html>Bad Gateway</html>", count: 2 } },
      { name: "two connection resets after the request", fault: { kind: "reset", match: KV_READ, count: 2 } },
      { name: "two truncated answers", fault: { kind: "truncate", bodyBytes: 30, match: KV_READ, count: 2 } },
      { name: "two answers of invalid JSON", fault: { kind: "respond", status: 200, body: "{]", match: KV_READ, count: 2 } },
    ])("$name", async ({ fault }) => {
      proxy.setHttpFault(fault);
      const run = await runShim(vaultEnv(url(proxy)), app);
      expectStarted(run);
      expect(proxy.stats().httpFaults).toBe(fault.count);
      // One line per failed attempt; an attempt meets several faults when its requests go out at once
      // (the token lookup beside the read and the mount lookup).
      const retries = shimLines(run.stderr).filter((line) => line.includes("retrying in")).length;
      expect(retries).toBeGreaterThanOrEqual(1);
      expect(retries).toBeLessThanOrEqual(fault.count as number);
      expect(run.stderr).not.toContain(secretValue);
    });

    it("reads a KV v2 secret without waiting for the mount lookup, which goes out beside the read", async () => {
      // Every mount lookup fails: the read answered as KV v2 answers settles the start by itself.
      proxy.setHttpFault({ kind: "respond", status: 503, body: '{"errors":["Vault is sealed"]}', match: /sys\/internal\/ui\/mounts/ });
      const run = await runShim(vaultEnv(url(proxy)), app);
      expectStarted(run);
      expect(proxy.stats().httpFaults, "the lookup was sent, once").toBe(1);
      expect(shimLines(run.stderr).filter((line) => line.includes("retrying in"))).toHaveLength(0);
    });

    it("waits for the mount lookup, and retries it, when the read's answer does not settle the mount", async () => {
      // A reference that does not exist answers 404, which a KV v1 mount or a mount below the
      // configured path would answer too: only the lookup tells, so its truncated answer is retried.
      proxy.setHttpFault({ kind: "truncate", bodyBytes: 10, dropLength: true, match: /sys\/internal\/ui\/mounts/, count: 1 });
      const run = await runShim(vaultEnv(url(proxy), { SECRET_PASSWORD: `faults-${id}/nothing#password` }), app);
      expect(run.code).toBe(78);
      expect(proxy.stats().httpFaults).toBe(1);
      expect(shimLines(run.stderr).filter((line) => line.includes("retrying in"))).toHaveLength(1);
      expect(shimLines(run.stderr).join("\n")).toMatch(
        /SECRET_PASSWORD .*not found: vault secret "faults-\w+\/nothing" in mount secret\/ \(KV v2\)/,
      );
    });

    it("backend down at the start and back once the shim has retried", async () => {
      await proxy.setMode("refuse");
      // Back when the shim has met the refusal (not after a fixed time: a loaded machine may take
      // longer than that to start the shim at all).
      const running = startShim(vaultEnv(url(proxy)), app);
      let exited = false;
      void running.exited.then(() => {
        exited = true;
      });
      while (!running.stderr().includes("retrying in") && !exited) await new Promise((resolve) => setTimeout(resolve, 20));
      await proxy.setMode("forward");
      const { code } = await running.exited;
      expectStarted({ code, signal: null, stdout: running.stdout(), stderr: running.stderr(), pid: running.pid, durationMs: 0 });
      expect(running.stderr()).toMatch(/ECONNREFUSED 127\.0\.0\.1:\d+; retrying in \d+ ms/);
      expect(running.stderr()).not.toContain(secretValue);
    });

    it("slow (300 ms per chunk each way) but within the deadline", async () => {
      proxy.setDelay(300);
      const run = await runShim(vaultEnv(url(proxy)), app);
      expectStarted(run);
      expect(run.stderr).not.toContain("retrying");
    });
  });

  describe("final faults: exit 78 at once, no retry", () => {
    it("403 on the read", async () => {
      proxy.setHttpFault({
        kind: "respond",
        status: 403,
        body: '{"errors":["1 error occurred:\\n\\t* permission denied\\n\\n"]}',
        match: KV_READ,
      });
      const run = await runShim(vaultEnv(url(proxy)), app);
      expectRefused(
        run,
        78,
        /permission denied: vault secret "faults-\w+\/db" in mount secret\/ \(KV v2\), for the token of the vault token login/,
      );
      expect(proxy.stats().httpFaults, "not retried").toBe(1);
      expect(run.durationMs).toBeLessThan(5000);
    });

    it("403 on the login (token lookup)", async () => {
      proxy.setHttpFault({ kind: "respond", status: 403, body: '{"errors":["permission denied"]}', match: /lookup-self/ });
      const run = await runShim(vaultEnv(url(proxy)), app);
      expectRefused(run, 78, /vault token login \(KUSTODIA_VAULT_TOKEN_FILE\) refused: HTTP 403: permission denied/);
      expect(proxy.stats().httpFaults).toBe(1);
    });

    it("sends the read beside the token lookup, not after it, and a refused token is still the reason", async () => {
      // The lookup is refused, yet the read went out: it did not wait for the lookup's answer. The read
      // itself succeeds (the real token is fine), and the start fails all the same, as before.
      proxy.setHttpFault({ kind: "respond", status: 403, body: '{"errors":["permission denied"]}', match: /lookup-self/ });
      const run = await runShim(vaultEnv(url(proxy)), app);
      expectRefused(run, 78, /vault token login \(KUSTODIA_VAULT_TOKEN_FILE\) refused: HTTP 403: permission denied/);
      expect(proxy.stats().requests.filter((line) => KV_READ.test(line))).toHaveLength(1);
    });

    it("a partial set is never handed over: one reference fine, another unreachable", async () => {
      proxy.setHttpFault({ kind: "respond", status: 500, body: "{}", match: /faults-\w+\/other/ });
      const run = await runShim(vaultEnv(url(proxy), { KUSTODIA_TIMEOUT: "1500ms", SECRET_KEY: `faults-${id}/other#key` }), app);
      expectRefused(run, 69, /^kustodia-shim error: SECRET_KEY .*HTTP 500/);
      expect(shimLines(run.stderr).join("\n")).not.toContain("SECRET_PASSWORD (");
    });
  });

  describe("TLS terminated by the proxy with certificates made by openssl", () => {
    const tlsProxies: TcpProxy[] = [];
    const target = () => new URL(service("openbao").addr);

    afterAll(async () => {
      await Promise.all(tlsProxies.map((tlsProxy) => tlsProxy.close()));
    });

    const tlsProxy = async (leaf: { certFile: string; keyFile: string }) => {
      const started = await startTcpProxy({ targetHost: target().hostname, targetPort: Number(target().port), tls: leaf });
      tlsProxies.push(started);
      return started;
    };

    it("starts the app through TLS with the right CA (KUSTODIA_VAULT_CACERT)", async () => {
      const front = await tlsProxy(certs.good);
      expectStarted(await runShim(vaultEnv(url(front, "https"), { KUSTODIA_VAULT_CACERT: certs.ca.certFile }), app));
    });

    it.each([
      ["a certificate from another CA", "fromOtherCa", "ca", /unable to verify|UNABLE_TO_VERIFY|self[- ]signed/i],
      ["a CA bundle that does not hold the issuer", "good", "otherCa", /unable to verify|UNABLE_TO_VERIFY|self[- ]signed/i],
      ["an expired certificate", "expired", "ca", /CERT_HAS_EXPIRED|certificate has expired/],
      [
        "a certificate for another name",
        "otherName",
        "ca",
        /ERR_TLS_CERT_ALTNAME_INVALID|does not match|IP: 127\.0\.0\.1 is not in the cert's list/,
      ],
    ] as const)("refuses %s: exit 78, not retried", async (_name, leaf, ca, reason) => {
      const front = await tlsProxy(certs[leaf]);
      const run = await runShim(vaultEnv(url(front, "https"), { KUSTODIA_VAULT_CACERT: certs[ca].certFile }), app);
      expectRefused(run, 78, reason);
      expect(run.stderr, "a TLS failure is not retried").not.toContain("retrying in");
      // The first attempt's requests go out at once: the token lookup, the read and the mount lookup.
      expect(front.stats().connections, "no connection beyond the first attempt's").toBeLessThanOrEqual(3);
      expect(front.stats().bytesToTarget, "nothing reached OpenBao").toBe(0);
    });

    it("ignores NODE_TLS_REJECT_UNAUTHORIZED=0 in the container's env", async () => {
      const front = await tlsProxy(certs.expired);
      const run = await runShim(
        vaultEnv(url(front, "https"), { KUSTODIA_VAULT_CACERT: certs.ca.certFile, NODE_TLS_REJECT_UNAUTHORIZED: "0" }),
        app,
      );
      expectRefused(run, 78, /CERT_HAS_EXPIRED|certificate has expired/);
    });
  });

  describe("Custodia behind the proxy (HTTPS in front of its unix socket)", () => {
    let front: TcpProxy;
    const custodiaEnv = (extra: Record<string, string> = {}) => ({
      ...baseEnv(),
      KUSTODIA_BACKEND: "custodia",
      KUSTODIA_CUSTODIA_URL: url(front, "https"),
      KUSTODIA_CUSTODIA_CACERT: certs.ca.certFile,
      KUSTODIA_LOG_LEVEL: "debug",
      KUSTODIA_TIMEOUT: "10s",
      SECRET_KEY: `faults-${id}/key`,
      ...extra,
    });
    beforeAll(async () => {
      // Custodia admits the proxy by its uid (the socket peer), and the proxy passes its answers on.
      front = await startTcpProxy({ targetPath: service("custodia").socket, tls: certs.good });
    });
    afterEach(async () => {
      front.setHttpFault(undefined);
      await front.setMode("forward");
      front.resetStats();
    });
    afterAll(async () => {
      await front?.close();
    });

    it("starts the app with the value", async () => {
      expectStarted(await runShim(custodiaEnv(), app), `<|${custodiaValue}>`);
    });

    it("retries a burst of 503s, then starts the app", async () => {
      front.setHttpFault({ kind: "respond", status: 503, body: "Service Unavailable", count: 3 });
      const run = await runShim(custodiaEnv(), app);
      expectStarted(run, `<|${custodiaValue}>`);
      expect(front.stats().httpFaults).toBe(3);
    });

    it.each<{ name: string; mode?: ProxyMode; fault?: HttpFault; code: 69 | 78; reason: RegExp }>([
      { name: "down", mode: "refuse", code: 69, reason: /backend unreachable within 1\.\d s .*ECONNREFUSED/ },
      { name: "resetting", mode: "reset", code: 69, reason: /backend unreachable within 1\.\d s .*(ECONNRESET|socket hang up)/ },
      {
        name: "answering invalid JSON",
        fault: { kind: "respond", status: 200, body: '{"type":"simple","value":' },
        code: 69,
        reason: /not valid JSON/,
      },
      { name: "answering truncated", fault: { kind: "truncate", bodyBytes: 12 }, code: 69, reason: /aborted|ECONNRESET/ },
      {
        name: "refusing this process (403)",
        fault: { kind: "respond", status: 403, body: "Forbidden" },
        code: 78,
        reason: /custodia key \/secrets\/faults-\w+\/key: HTTP 403/,
      },
    ])("$name: exit $code", async ({ mode, fault, code, reason }) => {
      if (mode) await front.setMode(mode);
      if (fault) front.setHttpFault(fault);
      expectRefused(await runShim(custodiaEnv({ KUSTODIA_TIMEOUT: "1500ms" }), app), code, reason);
    });
  });
});
