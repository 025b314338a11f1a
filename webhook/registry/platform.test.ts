import { describe, expect, it } from "vitest";
import type { Platform } from "../image-facts.ts";
import { formatPlatform, normalizePlatform, selectPlatform } from "./platform.ts";

describe("normalizePlatform", () => {
  it.each([
    { given: "linux/x86_64", want: "linux/amd64" },
    { given: "linux/amd64/v1", want: "linux/amd64" },
    { given: "linux/amd64/v3", want: "linux/amd64/v3" },
    { given: "linux/aarch64", want: "linux/arm64" },
    { given: "linux/arm64/v8", want: "linux/arm64" },
    { given: "linux/arm64/8", want: "linux/arm64" },
    { given: "linux/arm64/9.0", want: "linux/arm64/v9" },
    { given: "linux/arm", want: "linux/arm/v7" },
    { given: "linux/arm/6", want: "linux/arm/v6" },
    { given: "linux/armhf", want: "linux/arm/v7" },
    { given: "linux/armel", want: "linux/arm/v6" },
    { given: "linux/i386", want: "linux/386" },
    { given: "Linux/AMD64", want: "linux/amd64" },
    { given: "macos/arm64", want: "darwin/arm64" },
  ])("reads $given as $want", ({ given, want }) => {
    const [os = "", architecture = "", variant] = given.split("/");
    expect(formatPlatform(normalizePlatform(variant ? { os, architecture, variant } : { os, architecture }))).toBe(want);
  });
});

describe("selectPlatform", () => {
  const entry = (platform: string) => {
    const [os = "", architecture = "", variant] = platform.split("/");
    return { name: platform, platform: (variant ? { os, architecture, variant } : { os, architecture }) as Platform };
  };
  const index = ["unknown/unknown", "linux/amd64", "linux/arm64/v8", "linux/arm/v6", "windows/amd64"].map(entry);

  it.each([
    { wanted: { os: "linux", architecture: "amd64" }, want: "linux/amd64" },
    { wanted: { os: "linux", architecture: "arm64" }, want: "linux/arm64/v8" },
    { wanted: { os: "linux", architecture: "arm64", variant: "v8" }, want: "linux/arm64/v8" },
    { wanted: { os: "linux", architecture: "arm", variant: "v7" }, want: "linux/arm/v6" },
    { wanted: { os: "windows", architecture: "amd64" }, want: "windows/amd64" },
    { wanted: { os: "linux", architecture: "arm", variant: "v5" }, want: undefined },
    { wanted: { os: "linux", architecture: "s390x" }, want: undefined },
  ])("picks $want for $wanted.os/$wanted.architecture/$wanted.variant", ({ wanted, want }) => {
    expect(selectPlatform(index, wanted)?.name).toBe(want);
  });

  it("takes the first of equal entries and skips entries without a platform", () => {
    const entries: { name: string; platform?: Platform }[] = [
      { name: "none" },
      entry("linux/amd64"),
      { ...entry("linux/amd64"), name: "second" },
    ];
    expect(selectPlatform(entries, { os: "linux", architecture: "amd64" })?.name).toBe("linux/amd64");
  });
});
