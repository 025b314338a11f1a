import { describe, expect, it } from "vitest";
import { parseArgs } from "./args.ts";
import { ShimError } from "./errors.ts";

describe("parseArgs", () => {
  it.each([
    { name: "a command after --", argv: ["--", "/app", "--flag", "x"], want: { kind: "run", command: "/app", args: ["--flag", "x"] } },
    { name: "a command without --", argv: ["app", "x"], want: { kind: "run", command: "app", args: ["x"] } },
    { name: "install", argv: ["install", "/mnt/kustodia"], want: { kind: "install", dir: "/mnt/kustodia" } },
    { name: "a command named install after --", argv: ["--", "install", "x"], want: { kind: "run", command: "install", args: ["x"] } },
    { name: "--version", argv: ["--version"], want: { kind: "version" } },
    { name: "--help", argv: ["--help"], want: { kind: "help" } },
    { name: "--explain", argv: ["--explain"], want: { kind: "explain", args: [] } },
    { name: "--explain a command", argv: ["--explain", "app", "-x"], want: { kind: "explain", command: "app", args: ["-x"] } },
    { name: "--explain -- a command", argv: ["--explain", "--", "-app", "x"], want: { kind: "explain", command: "-app", args: ["x"] } },
  ])("parses $name", ({ argv, want }) => {
    expect(parseArgs(argv)).toEqual(want);
  });

  it.each([
    { name: "nothing", argv: [] },
    { name: "nothing after --", argv: ["--"] },
    { name: "install without a directory", argv: ["install"] },
    { name: "install with two directories", argv: ["install", "a", "b"] },
    { name: "an unknown option", argv: ["-x", "app"] },
    { name: "an option after --explain", argv: ["--explain", "-x"] },
  ])("is a usage error (64) for $name", ({ argv }) => {
    let error: unknown;
    try {
      parseArgs(argv);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ShimError);
    expect((error as ShimError).exitCode).toBe(64);
    expect((error as ShimError).message).toContain("usage: kustodia-shim [--] <command> [args...]");
  });
});
