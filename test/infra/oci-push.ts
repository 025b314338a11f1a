// Pushing images to a registry over the Distribution API, as `docker push` does: blobs (skipped when
// the registry has them), manifests and indexes by tag or by digest. Used by the tests and benchmarks
// that need images of a precise shape in the real test registries.
import { createHash } from "node:crypto";
import { type RegistryEndpoint, type RegistryResponse, registryFetch } from "./registry-http.ts";

export const MEDIA = {
  oci: {
    index: "application/vnd.oci.image.index.v1+json",
    manifest: "application/vnd.oci.image.manifest.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layer: "application/vnd.oci.image.layer.v1.tar+gzip",
  },
  docker: {
    index: "application/vnd.docker.distribution.manifest.list.v2+json",
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    config: "application/vnd.docker.container.image.v1+json",
    layer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  },
} as const;

export type ImageFormat = keyof typeof MEDIA;

export const sha256 = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** Where pushes go: a registry, a repository in it, and headers for every request (e.g. a Bearer token). */
export interface PushTarget {
  endpoint: RegistryEndpoint;
  repository: string;
  headers?: Record<string, string>;
}

async function expectStatus(what: string, pending: Promise<RegistryResponse>, status: number): Promise<RegistryResponse> {
  const answer = await pending;
  if (answer.status !== status) throw new Error(`${what}: the registry answered ${answer.status} ${answer.body.toString().slice(0, 300)}`);
  return answer;
}

export async function pushBlob(target: PushTarget, blob: Buffer, mediaType: string): Promise<Descriptor> {
  const { endpoint, repository, headers = {} } = target;
  const digest = sha256(blob);
  const head = await registryFetch(endpoint, `/v2/${repository}/blobs/${digest}`, { method: "HEAD", headers });
  if (head.status !== 200) {
    const started = await expectStatus(
      `upload to ${repository}`,
      registryFetch(endpoint, `/v2/${repository}/blobs/uploads/`, { method: "POST", headers }),
      202,
    );
    const location = new URL(String(started.headers.location), endpoint.url);
    location.searchParams.set("digest", digest);
    const put = registryFetch(endpoint, location.toString(), {
      method: "PUT",
      headers: { ...headers, "content-type": "application/octet-stream" },
      body: blob,
    });
    await expectStatus(`upload of ${digest} to ${repository}`, put, 201);
  }
  return { mediaType, digest, size: blob.length };
}

/** PUTs manifest or index bytes under `tag`, or under their own digest when there is no tag (index children). */
export async function putManifestBytes(target: PushTarget, tag: string | undefined, mediaType: string, body: Buffer): Promise<Descriptor> {
  const { endpoint, repository, headers = {} } = target;
  const digest = sha256(body);
  const put = registryFetch(endpoint, `/v2/${repository}/manifests/${tag ?? digest}`, {
    method: "PUT",
    headers: { ...headers, "content-type": mediaType },
    body,
  });
  const answer = await expectStatus(`push of ${repository}:${tag ?? digest}`, put, 201);
  if (answer.headers["docker-content-digest"] !== digest)
    throw new Error(`${repository}:${tag ?? digest}: the registry reports another digest than ${digest}`);
  return { mediaType, digest, size: body.length };
}

/** A manifest or index document: its `mediaType` field is the content type it is PUT with. */
export interface ManifestDocument {
  mediaType: string;
  [field: string]: unknown;
}

export function pushManifest(target: PushTarget, tag: string | undefined, document: ManifestDocument): Promise<Descriptor> {
  return putManifestBytes(target, tag, document.mediaType, Buffer.from(JSON.stringify(document)));
}

/** An OCI image with no layers, only `config` (the image config JSON, e.g. `{ config: { Entrypoint } }`), under `tag`. */
export async function pushConfigOnlyImage(target: PushTarget, tag: string, config: object): Promise<Descriptor> {
  const blob = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, ...config }));
  const configDescriptor = await pushBlob(target, blob, MEDIA.oci.config);
  return await pushManifest(target, tag, { schemaVersion: 2, mediaType: MEDIA.oci.manifest, config: configDescriptor, layers: [] });
}
