// Proof that the registries of test/infra/registry.ts are the real thing: distribution answers the
// Distribution API as real registries do (plain and anonymous; TLS with basic auth), serves the test
// images exactly as the coordinates record them, and takes new images pushed through the API.
import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";
import { type RegistryEndpoint, type RegistryResponse, registryFetch } from "./registry-http.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";

const registry = () => service("registry");
const plain = (): RegistryEndpoint => registry().plain;
const secure = (): RegistryEndpoint => registry().secure;
const anonymous = (): RegistryEndpoint => ({ url: registry().secure.url, caFile: registry().secure.caFile });

function image(key: string) {
  const found = registry().images[key];
  if (!found) throw new Error(`the registry coordinates have no image "${key}"`);
  return found;
}

interface ImageConfig {
  architecture: string;
  config: { Entrypoint?: string[] | null; Cmd?: string[] | null };
}
interface Manifest {
  config: { digest: string; mediaType: string };
}
interface Index {
  manifests: { digest: string; mediaType: string; platform: { os: string; architecture: string; variant?: string } }[];
}

const sha256 = (data: Buffer | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const json = <T>(response: RegistryResponse): T => JSON.parse(response.body.toString()) as T;

async function getManifest(endpoint: RegistryEndpoint, repository: string, reference: string, accept: string): Promise<RegistryResponse> {
  const response = await registryFetch(endpoint, `/v2/${repository}/manifests/${reference}`, { headers: { accept } });
  expect(response.status, response.body.toString()).toBe(200);
  return response;
}

async function getConfig(endpoint: RegistryEndpoint, repository: string, manifest: Manifest): Promise<ImageConfig> {
  const blob = await registryFetch(endpoint, `/v2/${repository}/blobs/${manifest.config.digest}`);
  expect(blob.status).toBe(200);
  expect(sha256(blob.body)).toBe(manifest.config.digest);
  return json<ImageConfig>(blob);
}

/** The two-step monolithic upload: POST opens an upload session, PUT with `?digest=` completes it. */
async function uploadBlob(endpoint: RegistryEndpoint, repository: string, data: Buffer): Promise<string> {
  const opened = await registryFetch(endpoint, `/v2/${repository}/blobs/uploads/`, { method: "POST" });
  expect(opened.status, opened.body.toString()).toBe(202);
  const location = new URL(String(opened.headers.location), endpoint.url);
  const digest = sha256(data);
  location.searchParams.set("digest", digest);
  const put = await registryFetch(endpoint, location.href, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: data,
  });
  expect(put.status, put.body.toString()).toBe(201);
  expect(put.headers["docker-content-digest"]).toBe(digest);
  return digest;
}

describe.skipIf(skipWithout("registry"))("registry", () => {
  describe("A: plain HTTP, anonymous", () => {
    it("answers GET /v2/ with 200 as distribution", async () => {
      const response = await registryFetch(plain(), "/v2/");
      expect(response.status).toBe(200);
      expect(response.headers["docker-distribution-api-version"]).toBe("registry/2.0");
      expect(registry().version).toMatch(/distribution/);
    });
  });

  describe("B: TLS and htpasswd basic auth", () => {
    it("answers GET /v2/ without credentials with 401 and a Basic challenge", async () => {
      const response = await registryFetch(anonymous(), "/v2/");
      expect(response.status).toBe(401);
      expect(response.headers["www-authenticate"]).toMatch(/^Basic realm="/);
    });

    it("answers GET /v2/ with the credentials with 200", async () => {
      expect((await registryFetch(secure(), "/v2/")).status).toBe(200);
    });

    it("answers a wrong password with 401", async () => {
      expect((await registryFetch({ ...registry().secure, password: "wrong" }, "/v2/")).status).toBe(401);
    });

    it("serves a certificate that only its own CA vouches for", async () => {
      await expect(registryFetch({ url: registry().secure.url }, "/v2/")).rejects.toThrow(/certificate/i);
    });

    it("keeps the private image from anonymous pulls", async () => {
      const { repository, tag } = image("private");
      const response = await registryFetch(anonymous(), `/v2/${repository}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
      expect(response.status).toBe(401);
    });
  });

  describe("test images", () => {
    const rows = [
      { key: "entrypointCmd", on: plain, mediaType: OCI_MANIFEST },
      { key: "cmdOnly", on: plain, mediaType: OCI_MANIFEST },
      { key: "entrypointOnly", on: plain, mediaType: OCI_MANIFEST },
      { key: "dockerV2", on: plain, mediaType: DOCKER_MANIFEST },
      { key: "private", on: secure, mediaType: OCI_MANIFEST },
      { key: "multiPlatform", on: plain, mediaType: OCI_INDEX },
    ];

    it.each(rows)("serves $key by tag, and as latest, with the recorded digest", async ({ key, on, mediaType }) => {
      const { repository, tag, digest } = image(key);
      for (const reference of [tag, "latest"]) {
        const response = await getManifest(on(), repository, reference, mediaType);
        expect(response.headers["content-type"]).toBe(mediaType);
        expect(response.headers["docker-content-digest"]).toBe(digest);
        expect(sha256(response.body)).toBe(digest);
      }
    });

    it.each(rows.filter((row) => row.mediaType !== OCI_INDEX))(
      "gives $key a config with the recorded ENTRYPOINT and CMD",
      async ({ key, on, mediaType }) => {
        const { repository, digest, entrypoint, cmd } = image(key);
        const manifest = json<Manifest>(await getManifest(on(), repository, digest, mediaType));
        const config = await getConfig(on(), repository, manifest);
        expect(config.config.Entrypoint ?? undefined).toEqual(entrypoint);
        expect(config.config.Cmd ?? undefined).toEqual(cmd);
      },
    );

    it("leads from the multiPlatform index to per-platform configs with different entrypoints", async () => {
      const { repository, tag, platforms = {} } = image("multiPlatform");
      const index = json<Index>(await getManifest(plain(), repository, tag, OCI_INDEX));
      const platformOf = (descriptor: Index["manifests"][number]) => `${descriptor.platform.os}/${descriptor.platform.architecture}`;
      expect(index.manifests.map(platformOf).sort()).toEqual(Object.keys(platforms).sort());
      for (const descriptor of index.manifests) {
        const manifest = json<Manifest>(await getManifest(plain(), repository, descriptor.digest, descriptor.mediaType));
        const config = await getConfig(plain(), repository, manifest);
        expect(`${descriptor.platform.os}/${config.architecture}`).toBe(platformOf(descriptor));
        expect(config.config.Entrypoint).toEqual(platforms[platformOf(descriptor)]?.entrypoint);
      }
      expect(platforms["linux/arm64"]?.entrypoint).toEqual(["/app/arm64"]);
      expect(platforms["linux/amd64"]?.entrypoint).toEqual(["/app/amd64"]);
    });
  });

  describe("pushing through the Distribution API", () => {
    it.each([
      { name: "A", on: plain },
      { name: "B", on: secure },
    ])("takes a new image on $name and serves it back", async ({ on }) => {
      const repository = `kustodia-test/smoke-${randomBytes(4).toString("hex")}`;
      const tar = Buffer.alloc(1024); // an empty tar archive: two zero blocks
      const gzipped = gzipSync(tar);
      const layer = await uploadBlob(on(), repository, gzipped);
      const configBody = JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: { Entrypoint: ["/smoke"], Cmd: ["--pushed"] },
        rootfs: { type: "layers", diff_ids: [sha256(tar)] },
      });
      const config = await uploadBlob(on(), repository, Buffer.from(configBody));
      const manifestBody = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config, size: Buffer.byteLength(configBody) },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer, size: gzipped.length }],
      });

      const put = await registryFetch(on(), `/v2/${repository}/manifests/smoke`, {
        method: "PUT",
        headers: { "content-type": OCI_MANIFEST },
        body: manifestBody,
      });
      expect(put.status, put.body.toString()).toBe(201);
      expect(put.headers["docker-content-digest"]).toBe(sha256(manifestBody));

      const pulled = await getManifest(on(), repository, "smoke", OCI_MANIFEST);
      expect(pulled.body.toString()).toBe(manifestBody);
      const pulledConfig = await getConfig(on(), repository, json<Manifest>(pulled));
      expect(pulledConfig.config).toEqual({ Entrypoint: ["/smoke"], Cmd: ["--pushed"] });
    });
  });
});
