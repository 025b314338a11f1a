// The webhook's registry client against the real registries of the test infrastructure
// (distribution: plain HTTP + anonymous, TLS + htpasswd basic auth, and `auth: token` behind the fake
// token server of test/infra/token-registry.ts), with a real TCP proxy in front where a test needs a
// slow, failing or counted connection.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ImageLookupResult } from "../../webhook/image-facts.ts";
import { createImageLookup } from "../../webhook/images.ts";
import { createMetrics, type Metrics } from "../../webhook/metrics.ts";
import { createRegistryClient, MAX_DOCUMENT_BYTES, type RegistryClient } from "../../webhook/registry/client.ts";
import { parsePullSecret, type RegistryCredential } from "../../webhook/registry/credentials.ts";
import { UNREADABLE } from "../../webhook/registry/session.ts";
import type { RegistrySettings } from "../../webhook/settings.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { pushConfigOnlyImage } from "../infra/oci-push.ts";
import { freePort, stopDaemon } from "../infra/proc.ts";
import { startTcpProxy, type TcpProxy } from "../infra/tcp-proxy.ts";
import {
  BEARER_IMAGES,
  startDistribution,
  startRealmRegistry,
  startTokenRegistry,
  TOKEN_USER,
  type TokenRegistry,
} from "../infra/token-registry.ts";
import { startInternalService } from "./internal-service.ts";
import { testRegistrySettings } from "./registry-settings.ts";

const registry = () => service("registry");
const plainHost = () => registry().plain.host;
const secureHost = () => registry().secure.host;

function image(key: string) {
  const found = registry().images[key];
  if (!found) throw new Error(`the registry coordinates have no image "${key}"`);
  return found;
}

/** `<host>/<repository>:<tag>` of a test image, on another host (a proxy, a mirror name). */
const onHost = (key: string, host: string, reference = `:${image(key).tag}`) => `${host}/${image(key).repository}${reference}`;

const clients: RegistryClient[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

const settings = testRegistrySettings;

interface TestClient {
  client: RegistryClient;
  metrics: Metrics;
  /** What the client told its log: the causes denials leave out. */
  lookupLog: string[];
}

function newClient(overrides: Partial<RegistrySettings> = {}): TestClient {
  const metrics = createMetrics({ defaultMetrics: false });
  const lookupLog: string[] = [];
  const client = createRegistryClient(settings(overrides), metrics, {
    warn: (fields, message) => lookupLog.push(`${message}: ${JSON.stringify(fields)}`),
  });
  clients.push(client);
  return { client, metrics, lookupLog };
}

async function proxyTo(host: string, options: { delayMs?: number; port?: number } = {}): Promise<TcpProxy> {
  const [targetHost = "", port] = host.split(":");
  const proxy = await startTcpProxy({ targetHost, targetPort: Number(port), ...options });
  proxies.push(proxy);
  return proxy;
}

async function count(metric: Metrics["registryLookups"] | Metrics["registryCacheHits"], label: string): Promise<number> {
  const { values } = await metric.get();
  return values.find((value) => Object.values(value.labels).includes(label))?.value ?? 0;
}

/** Credentials as the webhook gets them: a kubernetes.io/dockerconfigjson Secret's `data`. */
function pullSecret(auths: Record<string, { username: string; password: string }>, name = "team/pull"): RegistryCredential[] {
  const config = {
    auths: Object.fromEntries(
      Object.entries(auths).map(([host, { username, password }]) => [
        host,
        { auth: Buffer.from(`${username}:${password}`).toString("base64") },
      ]),
    ),
  };
  const parsed = parsePullSecret(
    { type: "kubernetes.io/dockerconfigjson", data: { ".dockerconfigjson": Buffer.from(JSON.stringify(config)).toString("base64") } },
    name,
  );
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.credentials;
}

function expectConfig(result: ImageLookupResult, want: { entrypoint?: string[]; cmd?: string[] }): void {
  expect(result).toEqual({ ok: true, config: want });
}

function expectError(result: ImageLookupResult, ...parts: string[]): string {
  expect(result.ok, JSON.stringify(result)).toBe(false);
  const error = result.ok ? "" : result.error;
  for (const part of parts) expect(error).toContain(part);
  return error;
}

/**
 * A denial that names no network detail (UNREADABLE), with the cause in the webhook's log instead: the
 * `causes` must be in the log and none of them in the denial.
 */
function expectHidden(result: ImageLookupResult, lookupLog: readonly string[], ...causes: string[]): void {
  const error = expectError(result, UNREADABLE);
  for (const cause of causes) {
    expect(error).not.toContain(cause);
    expect(lookupLog.join("\n")).toContain(JSON.stringify(cause).slice(1, -1));
  }
}

const anonymous = { credentials: [] };

describe.skipIf(skipWithout("registry"))("createRegistryClient", () => {
  describe("on a plain-HTTP anonymous registry", () => {
    const kinds = ["entrypointCmd", "cmdOnly", "entrypointOnly", "dockerV2"].flatMap((key) => [
      { key, by: "tag", reference: () => image(key).reference },
      { key, by: "digest", reference: () => onHost(key, plainHost(), `@${image(key).digest}`) },
    ]);

    it.each(kinds)("reads ENTRYPOINT and CMD of $key by $by", async ({ key, reference }) => {
      const { entrypoint, cmd } = image(key);
      expectConfig(await newClient().client.imageConfig(reference(), anonymous), {
        ...(entrypoint ? { entrypoint } : {}),
        ...(cmd ? { cmd } : {}),
      });
    });

    it("reads an image without a tag as :latest", async () => {
      expectConfig(await newClient().client.imageConfig(onHost("entrypointOnly", plainHost(), ""), anonymous), {
        entrypoint: image("entrypointOnly").entrypoint,
      });
    });

    it("fetches by digest when a reference has a tag and a digest (the tag need not exist)", async () => {
      const reference = onHost("cmdOnly", plainHost(), `:no-such-tag@${image("cmdOnly").digest}`);
      expectConfig(await newClient().client.imageConfig(reference, anonymous), { cmd: image("cmdOnly").cmd });
    });
  });

  describe("with a multi-platform image", () => {
    const platforms = () => image("multiPlatform").platforms ?? {};

    it.each([
      { name: "the default platform (amd64)", architecture: undefined, want: "linux/amd64" },
      { name: "amd64", architecture: "amd64", want: "linux/amd64" },
      { name: "arm64, matching the index's arm64/v8", architecture: "arm64", want: "linux/arm64" },
      { name: "aarch64, normalized to arm64", architecture: "aarch64", want: "linux/arm64" },
    ])("picks the manifest for $name", async ({ architecture, want }) => {
      const result = await newClient().client.imageConfig(image("multiPlatform").reference, {
        credentials: [],
        ...(architecture ? { architecture } : {}),
      });
      expectConfig(result, { entrypoint: platforms()[want]?.entrypoint ?? [] });
    });

    it("uses a default platform with a variant (linux/arm64/v8)", async () => {
      const { client } = newClient({ defaultPlatform: { os: "linux", architecture: "arm64", variant: "v8" } });
      expectConfig(await client.imageConfig(image("multiPlatform").reference, anonymous), { entrypoint: ["/app/arm64"] });
    });

    it("picks the platform from an index fetched by digest", async () => {
      const reference = onHost("multiPlatform", plainHost(), `@${image("multiPlatform").digest}`);
      expectConfig(await newClient().client.imageConfig(reference, { architecture: "arm64", credentials: [] }), {
        entrypoint: ["/app/arm64"],
      });
    });

    it("names the platforms there are when the wanted one is missing", async () => {
      const result = await newClient().client.imageConfig(image("multiPlatform").reference, { architecture: "s390x", credentials: [] });
      expectError(
        result,
        `no linux/s390x image in the index of ${image("multiPlatform").reference}`,
        "(available: linux/amd64, linux/arm64/v8)",
      );
    });
  });

  describe("on a TLS registry with basic auth", () => {
    const secret = () => ({ username: registry().secure.username, password: registry().secure.password });

    it("reads the private image with the right imagePullSecret", async () => {
      const result = await newClient().client.imageConfig(image("private").reference, {
        credentials: pullSecret({ [secureHost()]: secret() }),
      });
      expectConfig(result, { entrypoint: image("private").entrypoint });
    });

    it("accepts the key as docker writes it (https://host/v2/)", async () => {
      const result = await newClient().client.imageConfig(image("private").reference, {
        credentials: pullSecret({ [`https://${secureHost()}/v2/`]: secret() }),
      });
      expectConfig(result, { entrypoint: image("private").entrypoint });
    });

    it("tries every matching credential in order", async () => {
      const credentials = [
        ...pullSecret({ [secureHost()]: { ...secret(), password: "stale" } }, "team/old"),
        ...pullSecret({ [secureHost()]: secret() }, "team/new"),
      ];
      expectConfig(await newClient().client.imageConfig(image("private").reference, { credentials }), {
        entrypoint: image("private").entrypoint,
      });
    });

    it("says which imagePullSecret was rejected, without its password", async () => {
      const result = await newClient().client.imageConfig(image("private").reference, {
        credentials: pullSecret({ [secureHost()]: { ...secret(), password: "wrong-password" } }),
      });
      const error = expectError(result, `unauthorized at ${secureHost()}`, "rejected the credentials of imagePullSecret team/pull");
      expect(error).not.toContain("wrong-password");
    });

    it("asks for an imagePullSecret when the pod has none for the registry", async () => {
      const result = await newClient().client.imageConfig(image("private").reference, {
        credentials: pullSecret({ "other.example.com": secret() }),
      });
      const error = expectError(result, `unauthorized at ${secureHost()}`, "add an imagePullSecret");
      expect(error).not.toContain(registry().secure.password);
    });

    it("never answers a pod without credentials from a cache filled with another pod's pull secret", async () => {
      const { client } = newClient();
      const right = pullSecret({ [secureHost()]: secret() });
      expectConfig(await client.imageConfig(image("private").reference, { credentials: right }), {
        entrypoint: image("private").entrypoint,
      });
      expectConfig(await client.imageConfig(image("private").reference, { credentials: right }), {
        entrypoint: image("private").entrypoint,
      });
      expectError(await client.imageConfig(image("private").reference, anonymous), `unauthorized at ${secureHost()}`);
      const byDigest = `${secureHost()}/${image("private").repository}@${image("private").digest}`;
      expectConfig(await client.imageConfig(byDigest, { credentials: right }), { entrypoint: image("private").entrypoint });
      expectError(await client.imageConfig(byDigest, anonymous), `unauthorized at ${secureHost()}`);
    });

    it("logs that the CA must be configured when the registry's certificate is not trusted", async () => {
      const { client, lookupLog } = newClient({ caFile: undefined });
      expectHidden(
        await client.imageConfig(image("private").reference, anonymous),
        lookupLog,
        `the TLS certificate of ${secureHost()} is not trusted`,
        "KUSTODIA_REGISTRY_CA_FILE",
      );
    });

    it("logs that a plain-HTTP registry must be listed when it is spoken to with TLS", async () => {
      const { client, lookupLog } = newClient({ plainHttp: [] });
      const result = await client.imageConfig(image("cmdOnly").reference, anonymous);
      expectHidden(result, lookupLog, `${plainHost()} does not answer TLS`, "KUSTODIA_REGISTRY_PLAIN_HTTP");
    });
  });

  describe("errors", () => {
    it.each([
      {
        name: "a missing repository",
        reference: () => `${plainHost()}/kustodia-test/no-such-image:v1`,
        what: "manifest kustodia-test/no-such-image:v1",
      },
      {
        name: "a missing tag",
        reference: () => onHost("cmdOnly", plainHost(), ":no-such-tag"),
        what: `manifest ${image("cmdOnly").repository}:no-such-tag`,
      },
      {
        name: "a missing digest",
        reference: () => onHost("cmdOnly", plainHost(), `@sha256:${"0".repeat(64)}`),
        what: `manifest ${image("cmdOnly").repository}@sha256:${"0".repeat(64)}`,
      },
    ])("denies $name, with the registry's 404 in the webhook's log only", async ({ reference, what }) => {
      const { client, lookupLog } = newClient();
      expectHidden(
        await client.imageConfig(reference(), anonymous),
        lookupLog,
        `registry ${plainHost()} answered 404 for ${what} (does the image exist?)`,
      );
    });

    it("rejects a malformed image name before any request", async () => {
      expectError(
        await newClient().client.imageConfig(`${plainHost()}/Kustodia/App:v1`, anonymous),
        "is not a valid image reference",
        "must be lowercase",
      );
    });

    it("logs, and does not tell the pod, that nothing listens at the registry's address", async () => {
      const host = `127.0.0.1:${await freePort()}`;
      const { client, lookupLog } = newClient({ plainHttp: [host] });
      expectHidden(
        await client.imageConfig(onHost("cmdOnly", host), anonymous),
        lookupLog,
        `cannot connect to ${host}: connection refused`,
      );
    });

    it("refuses a config larger than the size cap", async () => {
      const repository = "kustodia-test/huge-config";
      await pushConfigOnlyImage({ endpoint: registry().plain, repository }, "v1", {
        config: { Entrypoint: ["/x"] },
        padding: "x".repeat(MAX_DOCUMENT_BYTES),
      });
      const reference = `${plainHost()}/${repository}:v1`;
      const { client, lookupLog } = newClient();
      expectHidden(
        await client.imageConfig(reference, anonymous),
        lookupLog,
        `registry ${plainHost()} sent more than ${MAX_DOCUMENT_BYTES} bytes`,
      );
    });

    it("counts every lookup by result", async () => {
      const { client, metrics } = newClient();
      await client.imageConfig(image("cmdOnly").reference, anonymous);
      await client.imageConfig(`${plainHost()}/kustodia-test/no-such-image:v1`, anonymous);
      await client.imageConfig("Not A Name", anonymous);
      expect([await count(metrics.registryLookups, "ok"), await count(metrics.registryLookups, "error")]).toEqual([1, 2]);
    });
  });

  describe("cache", () => {
    it("answers a second lookup from the caches without contacting the registry", async () => {
      const proxy = await proxyTo(plainHost());
      const { client, metrics } = newClient({ plainHttp: [proxy.host] });
      const reference = onHost("entrypointCmd", proxy.host);
      expect((await client.imageConfig(reference, anonymous)).ok).toBe(true);
      const afterFirst = proxy.stats();
      expectConfig(await client.imageConfig(reference, anonymous), {
        entrypoint: image("entrypointCmd").entrypoint,
        cmd: image("entrypointCmd").cmd,
      });
      expect(proxy.stats()).toEqual(afterFirst);
      expect([await count(metrics.registryCacheHits, "tag"), await count(metrics.registryCacheHits, "config")]).toEqual([1, 1]);
    });

    it("re-resolves a tag once its TTL is over, and finds the config by digest", async () => {
      const proxy = await proxyTo(plainHost());
      const { client, metrics } = newClient({ plainHttp: [proxy.host], cacheTtlMs: 150 });
      const reference = onHost("entrypointCmd", proxy.host);
      await client.imageConfig(reference, anonymous);
      const cold = proxy.stats().bytesToTarget;
      await new Promise((resolve) => setTimeout(resolve, 200));
      proxy.resetStats();
      expect((await client.imageConfig(reference, anonymous)).ok).toBe(true);
      expect(await count(metrics.registryCacheHits, "tag")).toBe(0);
      expect(await count(metrics.registryCacheHits, "config")).toBe(1);
      // Only the tag was asked again (one HEAD), not the manifest and config.
      expect(proxy.stats().bytesToTarget).toBeGreaterThan(0);
      expect(proxy.stats().bytesToTarget).toBeLessThan(cold / 2);
    });

    it("needs no tag resolution for an image given by digest", async () => {
      const { client, metrics } = newClient();
      const reference = onHost("cmdOnly", plainHost(), `@${image("cmdOnly").digest}`);
      await client.imageConfig(reference, anonymous);
      expect((await client.imageConfig(reference, anonymous)).ok).toBe(true);
      expect([await count(metrics.registryCacheHits, "tag"), await count(metrics.registryCacheHits, "config")]).toEqual([0, 1]);
    });

    it("keeps platforms of one index apart", async () => {
      const { client } = newClient();
      expectConfig(await client.imageConfig(image("multiPlatform").reference, { architecture: "amd64", credentials: [] }), {
        entrypoint: ["/app/amd64"],
      });
      expectConfig(await client.imageConfig(image("multiPlatform").reference, { architecture: "arm64", credentials: [] }), {
        entrypoint: ["/app/arm64"],
      });
    });

    it("hands out copies, so that a caller cannot change the cached config", async () => {
      const { client } = newClient();
      const first = await client.imageConfig(image("cmdOnly").reference, anonymous);
      if (first.ok) first.config.cmd?.push("--changed");
      expectConfig(await client.imageConfig(image("cmdOnly").reference, anonymous), { cmd: image("cmdOnly").cmd });
    });
  });

  describe("mirrors", () => {
    it("falls back to the registry when a mirror is down", async () => {
      const down = `127.0.0.1:${await freePort()}`;
      const { client } = newClient({ plainHttp: [plainHost(), down], mirrors: { [plainHost()]: [down] } });
      expectConfig(await client.imageConfig(image("entrypointOnly").reference, anonymous), {
        entrypoint: image("entrypointOnly").entrypoint,
      });
    });

    it("reads from a mirror and never contacts the registry itself", async () => {
      const { client } = newClient({ mirrors: { "mirror-test.invalid": [plainHost()] } });
      const result = await client.imageConfig(onHost("entrypointCmd", "mirror-test.invalid"), anonymous);
      expectConfig(result, { entrypoint: image("entrypointCmd").entrypoint, cmd: image("entrypointCmd").cmd });
    });

    it("logs what the mirror said when the registry fails too", async () => {
      const { client, lookupLog } = newClient({ mirrors: { "mirror-test.invalid": [plainHost()] } });
      const result = await client.imageConfig("mirror-test.invalid/kustodia-test/no-such-image:v1", anonymous);
      expectHidden(
        result,
        lookupLog,
        "cannot resolve the registry host mirror-test.invalid",
        `(mirrors tried first: registry ${plainHost()} answered 404`,
      );
    });
  });

  describe("limits", () => {
    it("gives up at the lookup's deadline when the registry is slow", async () => {
      const proxy = await proxyTo(plainHost(), { delayMs: 300 });
      const { client, lookupLog } = newClient({ plainHttp: [proxy.host], timeoutMs: 500 });
      const started = performance.now();
      const result = await client.imageConfig(onHost("entrypointCmd", proxy.host), anonymous);
      const elapsed = performance.now() - started;
      expectHidden(result, lookupLog, `timed out after 500 ms contacting ${proxy.host}`);
      expect(elapsed).toBeGreaterThanOrEqual(490);
      expect(elapsed).toBeLessThan(900); // without a deadline: three round trips of 600 ms each
    });

    it("gives up at the deadline when the registry accepts and never answers", async () => {
      const proxy = await proxyTo(plainHost());
      await proxy.setMode("blackhole");
      const { client, lookupLog } = newClient({ plainHttp: [proxy.host], timeoutMs: 300 });
      const started = performance.now();
      expectHidden(
        await client.imageConfig(onHost("cmdOnly", proxy.host), anonymous),
        lookupLog,
        `timed out after 300 ms contacting ${proxy.host}`,
      );
      expect(performance.now() - started).toBeLessThan(700);
    });

    it.each([
      { mode: "reset" as const, says: "ECONNRESET" },
      { mode: "refuse" as const, says: "connection refused" },
    ])("logs what happened when the registry's connections $mode", async ({ mode, says }) => {
      const proxy = await proxyTo(plainHost());
      await proxy.setMode(mode);
      const { client, lookupLog } = newClient({ plainHttp: [proxy.host] });
      expectHidden(await client.imageConfig(onHost("cmdOnly", proxy.host), anonymous), lookupLog, says);
      expect(lookupLog.join("\n")).toContain(proxy.host);
    });

    it("sends concurrent identical lookups upstream once", async () => {
      const proxy = await proxyTo(plainHost());
      const reference = onHost("multiPlatform", proxy.host);
      const single = newClient({ plainHttp: [proxy.host] }).client;
      await single.imageConfig(reference, anonymous);
      single.close();
      const oneLookup = proxy.stats();
      proxy.resetStats();

      const { client, metrics } = newClient({ plainHttp: [proxy.host] });
      const results = await Promise.all(Array.from({ length: 20 }, () => client.imageConfig(reference, anonymous)));
      expect(results.every((result) => result.ok)).toBe(true);
      expect(proxy.stats()).toEqual(oneLookup);
      expect(oneLookup.connections).toBe(1);
      expect(await count(metrics.registryLookups, "ok")).toBe(20);
    });

    it("keeps at most `concurrency` requests in flight", async () => {
      const proxy = await proxyTo(plainHost(), { delayMs: 5 });
      const { client } = newClient({ plainHttp: [proxy.host], concurrency: 1 });
      const keys = ["entrypointCmd", "cmdOnly", "entrypointOnly", "dockerV2", "multiPlatform"];
      const results = await Promise.all(keys.map((key) => client.imageConfig(onHost(key, proxy.host), anonymous)));
      expect(results.every((result) => result.ok)).toBe(true);
      // One request at a time: each one finds the kept-alive connection free.
      expect(proxy.stats().connections).toBe(1);
    });
  });
});

// ---- issue #13: the registry path under attack ----------------------------------------------------

describe.skipIf(skipWithout("registry"))("createRegistryClient under attack (#13)", () => {
  const hubSecret = () =>
    pullSecret(
      { "https://index.docker.io/v1/": { username: registry().secure.username, password: registry().secure.password } },
      "team/hub",
    );

  // Item 2. The Docker Hub credential here is, on purpose, the TLS registry's real one: a lookup that
  // succeeds proves the Hub credential was sent to that registry. Port 443 is where a portless host goes.
  it.each(["LOCALHOST", "localhost"])(
    "#13.2 sends the Docker Hub credential to no registry but the Docker Hub (%s/… on port 443)",
    async (host) => {
      await proxyTo(secureHost(), { port: 443 });
      const { client } = newClient();
      const result = await client.imageConfig(`${host}/${image("private").repository}:${image("private").tag}`, {
        credentials: hubSecret(),
      });
      expectError(result, `unauthorized at ${host}`, `add an imagePullSecret (type kubernetes.io/dockerconfigjson) for ${host}`);
    },
  );

  // Item 3.
  it("#13.3 never answers a pod without the mirror's pull secret from a mirror answer another pod's secret got", async () => {
    const { client } = newClient({ mirrors: { "mirror-test.invalid": [secureHost()] } });
    const reference = `mirror-test.invalid/${image("private").repository}:${image("private").tag}`;
    const mirrorSecret = pullSecret({ [secureHost()]: { username: registry().secure.username, password: registry().secure.password } });
    expectConfig(await client.imageConfig(reference, { credentials: mirrorSecret }), { entrypoint: image("private").entrypoint });
    const withoutSecret = await client.imageConfig(reference, anonymous);
    expect(withoutSecret.ok, JSON.stringify(withoutSecret)).toBe(false);
    const byDigest = `mirror-test.invalid/${image("private").repository}@${image("private").digest}`;
    expect((await client.imageConfig(byDigest, anonymous)).ok).toBe(false);
    expectConfig(await client.imageConfig(reference, { credentials: mirrorSecret }), { entrypoint: image("private").entrypoint });
  });

  // Item 4: the token realm, the registry's own address, and what denials say. The registry is the
  // real one (distribution) with its token realm set where an attacker's would point; the internal
  // service counts connections, so the webhook cannot have fetched its token, nor handed it on.
  describe("#13.4 server-side request forgery", () => {
    it.each([
      {
        name: "a plain-HTTP realm (the metadata service)",
        realm: (port: number) => `http://127.0.0.1:${port}/latest/meta-data/iam?role=x`,
      },
      { name: "an https realm on another host", realm: (port: number) => `https://localhost:${port}/token` },
    ])("never follows $name that a real registry names as its token realm", async ({ realm }) => {
      const internal = await startInternalService();
      const hostile = await startRealmRegistry(realm(internal.port));
      try {
        const { client, lookupLog } = newClient({ plainHttp: [hostile.host] });
        const result = await client.imageConfig(`${hostile.host}/team/app:1`, anonymous);
        expect(internal.connections(), "connections the webhook made to the internal service").toBe(0);
        expectHidden(result, lookupLog, "the token endpoint");
      } finally {
        await Promise.all([hostile.close(), internal.close()]);
      }
    });

    it.each([
      { name: "a loopback IP", host: (proxy: TcpProxy) => proxy.host },
      { name: "a name that resolves to loopback", host: (proxy: TcpProxy) => `localhost:${proxy.port}` },
      { name: "an IPv4-mapped IPv6 loopback", host: (proxy: TcpProxy) => `[::ffff:7f00:1]:${proxy.port}` },
    ])("refuses a registry at $name unless its network is allowed, without connecting", async ({ host }) => {
      const proxy = await proxyTo(plainHost());
      const { client, lookupLog } = newClient({ allowedNetworks: [], plainHttp: [host(proxy)] });
      const result = await client.imageConfig(onHost("cmdOnly", host(proxy)), anonymous);
      expect(proxy.stats().connections).toBe(0);
      expectHidden(result, lookupLog, "loopback address");
    });

    it("never follows a real registry's blob redirect to an address outside the allowed networks", async () => {
      // distribution's redirect storage middleware answers a blob GET with 307 to its base URL: here
      // 127.0.0.2, outside the allowed 127.0.0.1/32, where a server counts who connects.
      const inside = await startInternalService("127.0.0.2");
      const dir = mkdtempSync(join(tmpdir(), "kustodia-redirect-registry-"));
      const redirecting = await startDistribution(dir, undefined, {
        middleware: { storage: [{ name: "redirect", options: { baseurl: `http://${inside.host}/` } }] },
      });
      try {
        await pushConfigOnlyImage({ endpoint: { url: `http://${redirecting.host}` }, repository: "team/app" }, "1", {
          config: { Entrypoint: ["/app"] },
        });
        const reference = `${redirecting.host}/team/app:1`;
        const { client, lookupLog } = newClient({ allowedNetworks: ["127.0.0.1/32"], plainHttp: [redirecting.host] });
        const result = await client.imageConfig(reference, anonymous);
        expect(inside.connections(), "connections the webhook made to the redirect target").toBe(0);
        expectHidden(result, lookupLog, "127.0.0.2 is a loopback address");
      } finally {
        await stopDaemon(redirecting.pid);
        await inside.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("tells the pod nothing that tells an open port from a closed one", async () => {
      const closed = `127.0.0.1:${await freePort()}`;
      const open = plainHost();
      const { client, lookupLog } = newClient({ plainHttp: [] });
      const answers = await Promise.all([closed, open].map((host) => client.imageConfig(`${host}/team/app:1`, anonymous)));
      expect(answers[0]).toEqual(answers[1]);
      expectHidden(answers[0] as ImageLookupResult, lookupLog, "connection refused");
      expectHidden(answers[1] as ImageLookupResult, lookupLog, "does not answer TLS");
    });
  });

  // Item 5. The slow registry is the real one behind a proxy that delays every chunk by a second;
  // the flood asks it for tags that do not exist, so that nothing is cached and every lookup holds
  // its slot for the whole slow round trip, like the issue's attacker.
  it("#13.5 keeps a normal pod's lookup p99 within 2x of its unloaded value while 40-container pods flood a slow registry every 0.4 s", async () => {
    const slow = await proxyTo(plainHost(), { delayMs: 1000 });
    const normal = await proxyTo(plainHost(), { delayMs: 50 });
    const { client } = newClient({
      plainHttp: [slow.host, normal.host],
      concurrency: 16,
      hostConcurrency: 8,
      admissionConcurrency: 4,
      timeoutMs: 4000,
      cacheTtlMs: 1, // every normal lookup asks the registry for its tag again
    });
    const lookupImages = createImageLookup({ registry: client, pullSecrets: undefined });
    const admit = (images: string[]) =>
      lookupImages(
        images.map((one, index) => ({ container: `c${index}`, image: one })),
        {},
        "tenant",
        { pullSecrets: false },
      );
    const normalImage = onHost("entrypointCmd", normal.host);
    const measure = async (count: number) => {
      const took: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        const results = await admit([normalImage]);
        took.push(performance.now() - started);
        expect(results.get("c0")?.ok, JSON.stringify(results.get("c0"))).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      return took.sort((a, b) => a - b)[Math.ceil(0.99 * took.length) - 1] ?? 0;
    };

    await admit([normalImage]); // connections up, config cached: what is left is the normal work of a lookup
    const unloaded = await measure(20);
    let round = 0;
    const floods: Promise<unknown>[] = [];
    const flood = setInterval(() => {
      round++;
      floods.push(admit(Array.from({ length: 40 }, (_, index) => `${slow.host}/flood/app${index}:r${round}`)));
    }, 400);
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000)); // the slow registry's slots are all taken by now
      const loaded = await measure(20);
      console.info(`[#13.5] normal lookup p99: unloaded ${unloaded.toFixed(0)} ms, under the flood ${loaded.toFixed(0)} ms`);
      expect(loaded).toBeLessThanOrEqual(2 * unloaded);
    } finally {
      clearInterval(flood);
      await Promise.all(floods);
    }
  }, 60_000);
});

// ---- Bearer token auth ---------------------------------------------------------------------------

describe.skipIf(skipWithout("registry"))("createRegistryClient with a Bearer token registry", () => {
  let tokens: TokenRegistry;
  beforeAll(async () => {
    tokens = await startTokenRegistry();
  });
  afterAll(async () => {
    await tokens?.close();
  });
  const bearerClient = (overrides: Partial<RegistrySettings> = {}) =>
    newClient({ plainHttp: [tokens.host, tokens.tokenHost], ...overrides });
  const reference = (visibility: keyof typeof BEARER_IMAGES) => `${tokens.host}/${BEARER_IMAGES[visibility]}:v1`;
  const user = (fields: Partial<RegistryCredential>): RegistryCredential[] => [{ registry: tokens.host, source: "team/token", ...fields }];

  it("pulls a public image with an anonymous token", async () => {
    expectConfig(await bearerClient().client.imageConfig(reference("public"), anonymous), { entrypoint: ["/public"] });
    expect(tokens.requests.at(-1)).toBe("anonymous");
  });

  it.each([
    {
      name: "username and password",
      credential: () => user({ username: TOKEN_USER.username, password: TOKEN_USER.password }),
      asked: TOKEN_USER.username,
    },
    { name: "an identity (refresh) token", credential: () => user({ identityToken: TOKEN_USER.refreshToken }), asked: "refresh" },
  ])("pulls a private image with $name", async ({ credential, asked }) => {
    expectConfig(await bearerClient().client.imageConfig(reference("private"), { credentials: credential() }), {
      entrypoint: ["/private"],
    });
    expect(tokens.requests.at(-1)).toBe(asked);
  });

  it("sends a registry token as it is, without asking the token server", async () => {
    const before = tokens.requests.length;
    const result = await bearerClient().client.imageConfig(reference("private"), {
      credentials: user({ registryToken: tokens.issue(BEARER_IMAGES.private) }),
    });
    expectConfig(result, { entrypoint: ["/private"] });
    expect(tokens.requests.length).toBe(before);
  });

  it("says which imagePullSecret the token server rejected", async () => {
    const result = await bearerClient().client.imageConfig(reference("private"), {
      credentials: user({ username: TOKEN_USER.username, password: "wrong-password" }),
    });
    const error = expectError(result, `unauthorized at ${tokens.host}`, "rejected the credentials of imagePullSecret team/token");
    expect(error).not.toContain("wrong-password");
  });

  it("asks for an imagePullSecret when an anonymous token is not enough", async () => {
    expectError(
      await bearerClient().client.imageConfig(reference("private"), anonymous),
      `unauthorized at ${tokens.host}`,
      "add an imagePullSecret",
    );
  });

  it.each([
    { who: "with credentials", credentials: () => user({ username: TOKEN_USER.username, password: TOKEN_USER.password }) },
    { who: "anonymously", credentials: () => [] },
  ])("never asks a plain-HTTP token endpoint that is not listed as plain HTTP, $who", async ({ credentials }) => {
    const before = tokens.requests.length;
    const { client, lookupLog } = bearerClient({ plainHttp: [tokens.host] });
    const result = await client.imageConfig(reference("public"), { credentials: credentials() });
    expectHidden(result, lookupLog, `the token endpoint http://${tokens.tokenHost} is not https`, "KUSTODIA_REGISTRY_PLAIN_HTTP");
    expect(tokens.requests.length).toBe(before);
  });

  it("reuses a token until it expires", async () => {
    const { client } = bearerClient({ cacheTtlMs: 1 });
    const credentials = user({ username: TOKEN_USER.username, password: TOKEN_USER.password });
    tokens.setExpiresIn(11); // kept 1 s: the client renews 10 s before expiry
    try {
      const before = tokens.requests.length;
      await client.imageConfig(reference("private"), { credentials });
      await client.imageConfig(reference("private"), { credentials }); // the tag is re-resolved with the cached token
      expect(tokens.requests.length - before).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expectConfig(await client.imageConfig(reference("private"), { credentials }), { entrypoint: ["/private"] });
      expect(tokens.requests.length - before).toBe(2);
    } finally {
      tokens.setExpiresIn(300);
    }
  });
});
