// What the registry sends, read strictly: image indexes (OCI index, Docker manifest list), image
// manifests (OCI, Docker schema 2) and image configs, each checked against the digest it was
// fetched by. Readers throw ContentError; the client turns it into the lookup's error.
import { createHash } from "node:crypto";
import type { ImageConfig, Platform } from "../image-facts.ts";
import { isObject } from "../pod.ts";

export const MediaTypes = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

export const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(", ");
const INDEX_TYPES: string[] = [MediaTypes.ociIndex, MediaTypes.dockerList];
const MANIFEST_TYPES: string[] = [MediaTypes.ociManifest, MediaTypes.dockerManifest];
const CONFIG_TYPES: string[] = [MediaTypes.ociConfig, MediaTypes.dockerConfig];
const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1\+(prettyjws|json)$/;

export class ContentError extends Error {
  override name = "ContentError";
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: Platform;
}

export type Manifest = { kind: "index"; manifests: Descriptor[] } | { kind: "manifest"; config: Descriptor };

/** Throws unless `body` hashes to `digest` (sha256, sha384 or sha512). */
export function verifyDigest(body: Buffer, digest: string, what: string): void {
  const [algorithm = "", expected] = digest.split(":");
  if (!["sha256", "sha384", "sha512"].includes(algorithm))
    throw new ContentError(`${what}: digest algorithm ${JSON.stringify(algorithm)} is not supported`);
  const actual = createHash(algorithm).update(body).digest("hex");
  if (actual !== expected)
    throw new ContentError(`${what} does not match its digest ${digest} (got ${algorithm}:${actual}); the registry sent wrong content`);
}

export function sha256Digest(body: Buffer): string {
  return `sha256:${createHash("sha256").update(body).digest("hex")}`;
}

/** Reads an index or a manifest; the media type comes from Content-Type, else from the body. */
export function readManifest(body: Buffer, contentType: string | undefined, what: string): Manifest {
  const json = parseJson(body, what);
  const headerType = contentType?.split(";")[0]?.trim();
  const mediaType =
    typeof json.mediaType === "string" ? json.mediaType : headerType && headerType !== "application/json" ? headerType : guessType(json);
  if (SCHEMA1.test(mediaType ?? "") || json.schemaVersion === 1) {
    throw new ContentError(
      `${what} is a Docker schema 1 manifest, which is deprecated and not supported; push the image again with a current tool`,
    );
  }
  if (INDEX_TYPES.includes(mediaType ?? "")) {
    if (!Array.isArray(json.manifests)) throw new ContentError(`${what} is an image index without a "manifests" list`);
    return { kind: "index", manifests: json.manifests.map((entry, index) => readDescriptor(entry, `${what}: manifests[${index}]`)) };
  }
  if (MANIFEST_TYPES.includes(mediaType ?? "")) {
    const config = readDescriptor(json.config, `${what}: config`);
    if (!CONFIG_TYPES.includes(config.mediaType)) {
      throw new ContentError(`${what} is not a container image: its config has media type ${JSON.stringify(config.mediaType)}`);
    }
    return { kind: "manifest", config };
  }
  throw new ContentError(`${what} has media type ${JSON.stringify(mediaType ?? "(none)")}, which is not an image manifest or index`);
}

/** Some registries send neither Content-Type nor mediaType; the fields then tell. */
function guessType(json: Record<string, unknown>): string | undefined {
  if (Array.isArray(json.manifests)) return MediaTypes.ociIndex;
  if (typeof json.config === "object" && json.config !== null) return MediaTypes.ociManifest;
  return undefined;
}

function readDescriptor(value: unknown, what: string): Descriptor {
  if (!isObject(value) || typeof value.digest !== "string" || typeof value.mediaType !== "string") {
    throw new ContentError(`${what} is not a descriptor with a mediaType and a digest`);
  }
  const descriptor: Descriptor = { mediaType: value.mediaType, digest: value.digest };
  const platform = value.platform;
  if (isObject(platform) && typeof platform.os === "string" && typeof platform.architecture === "string") {
    descriptor.platform = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === "string" && platform.variant !== "") descriptor.platform.variant = platform.variant;
  }
  return descriptor;
}

/** ENTRYPOINT and CMD from an image config; either may be missing or null. */
export function readImageConfig(body: Buffer, what: string): ImageConfig {
  const json = parseJson(body, what);
  const config = json.config ?? null;
  if (config === null) return {};
  if (!isObject(config)) throw new ContentError(`${what} has a "config" that is not an object`);
  const result: ImageConfig = {};
  const entrypoint = stringList(config.Entrypoint, `${what}: Entrypoint`);
  const cmd = stringList(config.Cmd, `${what}: Cmd`);
  if (entrypoint) result.entrypoint = entrypoint;
  if (cmd) result.cmd = cmd;
  return result;
}

function stringList(value: unknown, what: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) throw new ContentError(`${what} is not a list of strings`);
  return value;
}

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ContentError(`${what} is not JSON`);
  }
  if (!isObject(parsed)) throw new ContentError(`${what} is not a JSON object`);
  return parsed;
}
