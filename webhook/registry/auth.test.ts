import { describe, expect, it } from "vitest";
import { parseChallenges } from "./auth.ts";

describe("parseChallenges", () => {
  it.each([
    {
      name: "a Docker Hub Bearer challenge",
      header: 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      want: [
        {
          scheme: "bearer",
          params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/nginx:pull" },
        },
      ],
    },
    { name: "a Basic challenge", header: 'Basic realm="kustodia-test"', want: [{ scheme: "basic", params: { realm: "kustodia-test" } }] },
    {
      name: "two challenges in one header",
      header: 'Basic realm="a, b", Bearer realm="https://t/token",error="insufficient_scope"',
      want: [
        { scheme: "basic", params: { realm: "a, b" } },
        { scheme: "bearer", params: { realm: "https://t/token", error: "insufficient_scope" } },
      ],
    },
    {
      name: "unquoted values and spaces",
      header: "bearer  Realm = https://t/token , service=reg",
      want: [{ scheme: "bearer", params: { realm: "https://t/token", service: "reg" } }],
    },
    { name: "escapes in quoted values", header: 'Bearer realm="a\\"b"', want: [{ scheme: "bearer", params: { realm: 'a"b' } }] },
    { name: "a scheme without parameters", header: "Negotiate", want: [{ scheme: "negotiate", params: {} }] },
    { name: "an empty header", header: "", want: [] },
    { name: "no header", header: undefined, want: [] },
  ])("reads $name", ({ header, want }) => {
    expect(parseChallenges(header)).toEqual(want);
  });
});
