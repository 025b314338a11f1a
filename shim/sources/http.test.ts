import { describe, expect, it } from "vitest";
import { endpointFromUrl, errorSummary } from "./http.ts";

describe("endpointFromUrl", () => {
  it.each([
    { url: "http://127.0.0.1:8200", want: { protocol: "http:", hostname: "127.0.0.1", port: "8200", basePath: "" } },
    { url: "https://vault.example/", want: { protocol: "https:", hostname: "vault.example", port: "", basePath: "" } },
    { url: "https://c.example:8443/custodia/", want: { protocol: "https:", hostname: "c.example", port: "8443", basePath: "/custodia" } },
    { url: "https://[::1]:8200", want: { protocol: "https:", hostname: "::1", port: "8200", basePath: "" } },
    {
      url: "http+unix:///run/custodia/c.sock",
      want: { protocol: "http:", hostname: "localhost", port: "", basePath: "", socketPath: "/run/custodia/c.sock" },
    },
    {
      url: "http+unix://%2Frun%2Fc.sock",
      want: { protocol: "http:", hostname: "localhost", port: "", basePath: "", socketPath: "/run/c.sock" },
    },
  ])("parses $url", ({ url, want }) => {
    expect(endpointFromUrl(url)).toEqual(want);
  });

  it("rejects a relative socket path", () => {
    expect(() => endpointFromUrl("http+unix://relative.sock")).toThrow("is not absolute");
  });
});

describe("errorSummary", () => {
  it.each([
    { name: "Vault errors", json: { errors: ["permission denied"] }, text: "", want: ": permission denied" },
    { name: "an empty body", json: undefined, text: "", want: "" },
    { name: "text", json: undefined, text: "  bad\n gateway ", want: ": bad gateway" },
  ])("summarizes $name", ({ json, text, want }) => {
    expect(errorSummary(json, text)).toBe(want);
  });
});
