import { describe, expect, it } from "vitest";
import { formatImageName, manifestReference, parseImageName } from "./image-name.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("parseImageName", () => {
  it.each([
    {
      name: "official image",
      image: "nginx",
      want: { registry: "docker.io", apiHost: "registry-1.docker.io", repository: "library/nginx", tag: "latest" },
    },
    { name: "official image with tag", image: "nginx:1.27", want: { registry: "docker.io", repository: "library/nginx", tag: "1.27" } },
    { name: "user image", image: "user/app:tag", want: { registry: "docker.io", repository: "user/app", tag: "tag" } },
    { name: "explicit docker.io", image: "docker.io/nginx", want: { registry: "docker.io", repository: "library/nginx", tag: "latest" } },
    { name: "legacy index.docker.io", image: "index.docker.io/user/app", want: { registry: "docker.io", repository: "user/app" } },
    { name: "deep docker hub path", image: "a/b/c", want: { registry: "docker.io", repository: "a/b/c" } },
    {
      name: "host with port and digest",
      image: `host:5000/ns/app@${DIGEST}`,
      want: { registry: "host:5000", apiHost: "host:5000", repository: "ns/app", digest: DIGEST },
    },
    {
      name: "tag and digest",
      image: `app:tag@${DIGEST}`,
      want: { registry: "docker.io", repository: "library/app", tag: "tag", digest: DIGEST },
    },
    { name: "localhost", image: "localhost/app", want: { registry: "localhost", repository: "app", tag: "latest" } },
    { name: "localhost with port", image: "localhost:5000/app:v1", want: { registry: "localhost:5000", repository: "app", tag: "v1" } },
    { name: "bare localhost is a docker hub name", image: "localhost", want: { registry: "docker.io", repository: "library/localhost" } },
    {
      name: "domain host",
      image: "quay.io/prometheus/node-exporter:v1.8.0",
      want: { registry: "quay.io", repository: "prometheus/node-exporter" },
    },
    {
      name: "IPv4 host with port",
      image: "127.0.0.1:5000/kustodia-test/app:v1",
      want: { registry: "127.0.0.1:5000", repository: "kustodia-test/app" },
    },
    { name: "IPv6 host with port", image: "[::1]:5000/app:v1", want: { registry: "[::1]:5000", repository: "app", tag: "v1" } },
    { name: "IPv6 host without port", image: "[fe80::1]/app", want: { registry: "[fe80::1]", repository: "app", tag: "latest" } },
    { name: "upper-case first component is a host", image: "Registry/app", want: { registry: "Registry", repository: "app" } },
    { name: "separators in path", image: "gcr.io/a_b/c__d/e--f.g:T_1.x-y", want: { repository: "a_b/c__d/e--f.g", tag: "T_1.x-y" } },
  ])("reads $name ($image)", ({ image, want }) => {
    const parsed = parseImageName(image);
    expect(parsed).toMatchObject({ ok: true, name: want });
  });

  it.each([
    { name: "empty", image: "", why: "empty" },
    { name: "image ID", image: "ab".repeat(32), why: "image IDs" },
    { name: "upper-case repository", image: "docker.io/User/app", why: "must be lowercase" },
    { name: "upper-case official name", image: "Nginx", why: "must be lowercase" },
    { name: "empty tag", image: "nginx:", why: "the tag" },
    { name: "tag with bad character", image: "nginx:a+b", why: "the tag" },
    { name: "tag starting with a dot", image: "nginx:.x", why: "the tag" },
    { name: "tag too long", image: `nginx:${"x".repeat(129)}`, why: "the tag" },
    { name: "short digest", image: "nginx@sha256:abc", why: "the digest" },
    { name: "upper-case digest hex", image: `nginx@sha256:${"AB".repeat(32)}`, why: "the digest" },
    { name: "unknown digest algorithm", image: `nginx@md5:${"ab".repeat(16)}`, why: "not supported" },
    { name: "two @", image: `nginx@${DIGEST}@${DIGEST}`, why: 'more than one "@"' },
    { name: "empty path component", image: "host:5000//app", why: 'path component ""' },
    { name: "trailing slash", image: "host:5000/app/", why: 'path component ""' },
    { name: "bad separator", image: "user/app-", why: 'path component "app-"' },
    { name: "host without repository", image: "host:5000/", why: "repository name is empty" },
    { name: "bad port", image: "host:port/app", why: "registry host" },
    { name: "scheme", image: "https://host/app", why: "registry host" },
    { name: "whitespace", image: "nginx latest", why: "path component" },
    { name: "too long", image: `host.io/${"a".repeat(250)}`, why: "longer than 255" },
  ])("rejects $name", ({ image, why }) => {
    const parsed = parseImageName(image);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toContain(`image ${JSON.stringify(image)} is not a valid image reference`);
      expect(parsed.error).toContain(why);
    }
  });
});

describe("formatImageName", () => {
  it.each([
    { image: "nginx", want: "docker.io/library/nginx:latest", reference: "latest" },
    { image: "host:5000/app:v1", want: "host:5000/app:v1", reference: "v1" },
    { image: `app:tag@${DIGEST}`, want: `docker.io/library/app@${DIGEST}`, reference: DIGEST },
  ])("writes $image fully qualified as $want", ({ image, want, reference }) => {
    const parsed = parseImageName(image);
    if (!parsed.ok) throw new Error(parsed.error);
    expect(formatImageName(parsed.name)).toBe(want);
    expect(manifestReference(parsed.name)).toBe(reference);
  });
});
