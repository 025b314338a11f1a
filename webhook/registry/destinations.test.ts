import { describe, expect, it } from "vitest";
import { createDestinationPolicy, parseNetwork } from "./destinations.ts";

describe("createDestinationPolicy", () => {
  const policy = createDestinationPolicy([]);

  it.each([
    ["127.0.0.1", "loopback"],
    ["127.200.0.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["192.168.1.1", "private"],
    ["fd00::1", "private"],
    ["100.64.0.1", "shared"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
  ])("refuses %s (%s)", (address, kind) => {
    expect(policy.refusal(address)).toContain(kind);
  });

  it.each(["1.1.1.1", "172.32.0.1", "2606:4700::1111"])("allows the public address %s", (address) => {
    expect(policy.refusal(address)).toBeUndefined();
  });

  it("allows a non-public address inside a listed network, and nothing around it", () => {
    const listed = createDestinationPolicy(["10.96.0.0/12", "127.0.0.1"]);
    expect(listed.refusal("10.96.0.10")).toBeUndefined();
    expect(listed.refusal("127.0.0.1")).toBeUndefined();
    expect(listed.refusal("10.0.0.1")).toContain("private");
    expect(listed.refusal("127.0.0.2")).toContain("loopback");
  });

  it("checks IP literals in URLs, bracketed IPv6 included", () => {
    expect(() => policy.checkLiteral(new URL("http://[::1]:5000/v2/"))).toThrow("loopback");
    expect(() => policy.checkLiteral(new URL("http://2130706433/"))).toThrow("loopback"); // 127.0.0.1 as one number
    expect(() => policy.checkLiteral(new URL("https://registry.example/v2/"))).not.toThrow();
  });
});

describe("parseNetwork", () => {
  it.each(["10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1/128"])("reads %s", (value) => {
    expect(parseNetwork(value).ok).toBe(true);
  });

  it.each(["10.0.0.0/33", "localhost", "10.0.0.0/8/1", "10.0.0.0/x", "::1/129", ""])("refuses %s", (value) => {
    expect(parseNetwork(value)).toMatchObject({ ok: false, error: expect.stringContaining("is not a network") });
  });
});
