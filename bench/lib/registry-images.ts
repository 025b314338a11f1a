// Fresh images in the test registry for cold ENTRYPOINT lookups: each one a distinct tag with a
// distinct config (so no cache, by tag or by digest, knows it), pushed over the Distribution API.
import { createHash, randomBytes } from "node:crypto";
import { type RegistryEndpoint, registryFetch } from "../../test/infra/registry.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

function digestOf(blob: Buffer): string {
  return `sha256:${createHash("sha256").update(blob).digest("hex")}`;
}

async function pushBlob(endpoint: RegistryEndpoint, repository: string, blob: Buffer): Promise<string> {
  const digest = digestOf(blob);
  const started = await registryFetch(endpoint, `/v2/${repository}/blobs/uploads/`, { method: "POST" });
  const location = started.headers.location;
  if (started.status !== 202 || typeof location !== "string") throw new Error(`blob upload to ${repository}: HTTP ${started.status}`);
  const target = `${location}${location.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}`;
  const put = await registryFetch(endpoint, target, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: blob });
  if (put.status !== 201) throw new Error(`blob PUT to ${repository}: HTTP ${put.status} ${put.body.toString()}`);
  return digest;
}

export interface PushedImage {
  /** `<host>/<repository>:<tag>` */
  reference: string;
  entrypoint: string[];
}

/** Pushes `count` images with distinct ENTRYPOINTs into `<repository>` (tags i0, i1, ...). */
export async function pushFreshImages(endpoint: RegistryEndpoint & { host: string }, count: number): Promise<PushedImage[]> {
  const repository = `kustodia-bench/cold-${randomBytes(4).toString("hex")}`;
  const images: PushedImage[] = [];
  // A few at a time: the registry is on the same two cores as everything else.
  for (let start = 0; start < count; start += 8) {
    const batch = Array.from({ length: Math.min(8, count - start) }, (_, offset) => start + offset);
    images.push(
      ...(await Promise.all(
        batch.map(async (index) => {
          const entrypoint = [`/app/server-${index}`, "--serve"];
          const config = Buffer.from(
            JSON.stringify({
              architecture: "amd64",
              os: "linux",
              config: { Entrypoint: entrypoint, Cmd: ["--port", "8080"], Env: ["PATH=/usr/local/bin:/usr/bin:/bin"] },
              rootfs: { type: "layers", diff_ids: [] },
            }),
          );
          const configDigest = await pushBlob(endpoint, repository, config);
          const manifest = Buffer.from(
            JSON.stringify({
              schemaVersion: 2,
              mediaType: OCI_MANIFEST,
              config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
              layers: [],
            }),
          );
          const tag = `i${index}`;
          const put = await registryFetch(endpoint, `/v2/${repository}/manifests/${tag}`, {
            method: "PUT",
            headers: { "content-type": OCI_MANIFEST },
            body: manifest,
          });
          if (put.status !== 201) throw new Error(`manifest PUT ${repository}:${tag}: HTTP ${put.status} ${put.body.toString()}`);
          return { reference: `${endpoint.host}/${repository}:${tag}`, entrypoint };
        }),
      )),
    );
  }
  return images;
}
