import { describe, expect, it } from "vitest";
import { MediaTypes, readImageConfig, readManifest, sha256Digest, verifyDigest } from "./manifest.ts";

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const descriptor = (mediaType: string, extra: object = {}) => ({ mediaType, digest: `sha256:${"a".repeat(64)}`, size: 1, ...extra });

describe("readManifest", () => {
  it.each([
    {
      name: "an OCI index",
      body: {
        mediaType: MediaTypes.ociIndex,
        manifests: [descriptor(MediaTypes.ociManifest, { platform: { os: "linux", architecture: "arm64", variant: "v8" } })],
      },
      kind: "index",
    },
    { name: "a Docker manifest list", body: { mediaType: MediaTypes.dockerList, manifests: [] }, kind: "index" },
    { name: "an OCI manifest", body: { mediaType: MediaTypes.ociManifest, config: descriptor(MediaTypes.ociConfig) }, kind: "manifest" },
    {
      name: "a Docker schema 2 manifest",
      body: { mediaType: MediaTypes.dockerManifest, config: descriptor(MediaTypes.dockerConfig) },
      kind: "manifest",
    },
    {
      name: "an OCI manifest without mediaType, by Content-Type",
      body: { config: descriptor(MediaTypes.ociConfig) },
      contentType: `${MediaTypes.ociManifest}; charset=utf-8`,
      kind: "manifest",
    },
    { name: "an index without any media type", body: { schemaVersion: 2, manifests: [] }, contentType: "application/json", kind: "index" },
  ])("reads $name", ({ body, contentType, kind }) => {
    expect(readManifest(json(body), contentType, "manifest x").kind).toBe(kind);
  });

  it("keeps the platform of index entries", () => {
    const manifest = readManifest(
      json({
        mediaType: MediaTypes.ociIndex,
        manifests: [descriptor(MediaTypes.ociManifest, { platform: { os: "linux", architecture: "arm64", variant: "v8" } })],
      }),
      undefined,
      "x",
    );
    expect(manifest).toMatchObject({ kind: "index", manifests: [{ platform: { os: "linux", architecture: "arm64", variant: "v8" } }] });
  });

  it.each([
    { name: "schema 1", body: { schemaVersion: 1, name: "x", fsLayers: [] }, why: "schema 1" },
    {
      name: "a non-image artifact",
      body: { mediaType: MediaTypes.ociManifest, config: descriptor("application/vnd.cncf.helm.config.v1+json") },
      why: "not a container image",
    },
    { name: "an unknown media type", body: { mediaType: "text/plain" }, why: 'media type "text/plain"' },
    { name: "an index without manifests", body: { mediaType: MediaTypes.ociIndex }, why: 'without a "manifests" list' },
    { name: "a manifest without a config", body: { mediaType: MediaTypes.ociManifest }, why: "config is not a descriptor" },
    { name: "a JSON array", body: [], why: "not a JSON object" },
  ])("rejects $name", ({ body, why }) => {
    expect(() => readManifest(json(body), undefined, "manifest x")).toThrow(why);
  });

  it("rejects what is not JSON", () => {
    expect(() => readManifest(Buffer.from("<html>"), "text/html", "manifest x")).toThrow("manifest x is not JSON");
  });
});

describe("readImageConfig", () => {
  it.each([
    { name: "both", config: { Entrypoint: ["/a"], Cmd: ["b"] }, want: { entrypoint: ["/a"], cmd: ["b"] } },
    { name: "null Entrypoint", config: { Entrypoint: null, Cmd: ["sh"] }, want: { cmd: ["sh"] } },
    { name: "null Cmd", config: { Entrypoint: ["/a"], Cmd: null }, want: { entrypoint: ["/a"] } },
    { name: "neither", config: {}, want: {} },
    { name: "a null config", config: null, want: {} },
  ])("reads $name", ({ config, want }) => {
    expect(readImageConfig(json({ architecture: "amd64", os: "linux", config }), "config")).toEqual(want);
  });

  it("rejects an Entrypoint that is not a list of strings", () => {
    expect(() => readImageConfig(json({ config: { Entrypoint: "/bin/sh -c" } }), "config x")).toThrow(
      "config x: Entrypoint is not a list of strings",
    );
  });
});

describe("verifyDigest", () => {
  const body = Buffer.from("content");

  it("accepts content that hashes to its digest", () => {
    expect(() => verifyDigest(body, sha256Digest(body), "blob")).not.toThrow();
  });

  it.each([
    { name: "other content", digest: sha256Digest(Buffer.from("other")), why: "does not match its digest" },
    { name: "an unknown algorithm", digest: `md5:${"a".repeat(32)}`, why: 'algorithm "md5" is not supported' },
  ])("rejects $name", ({ digest, why }) => {
    expect(() => verifyDigest(body, digest, "blob")).toThrow(why);
  });
});
