import { describe, expect, it } from "vitest";
import { parseArgs } from "./args.ts";
import { ShimError } from "./errors.ts";

describe("parseArgs", () => {
  it.each([
    {
      name: "a command after --",
      argv: ["--", "/app", "--flag", "x"],
      want: { kind: "run", command: "/app", args: ["--flag", "x"], settings: {} },
    },
    { name: "a command without --", argv: ["app", "x"], want: { kind: "run", command: "app", args: ["x"], settings: {} } },
    { name: "install", argv: ["install", "/mnt/kustodia"], want: { kind: "install", dir: "/mnt/kustodia" } },
    {
      name: "a command named install after --",
      argv: ["--", "install", "x"],
      want: { kind: "run", command: "install", args: ["x"], settings: {} },
    },
    { name: "--version", argv: ["--version"], want: { kind: "version" } },
    { name: "--help", argv: ["--help"], want: { kind: "help" } },
    { name: "--explain", argv: ["--explain"], want: { kind: "explain", args: [], settings: {} } },
    {
      name: "--explain a command",
      argv: ["--explain", "app", "-x"],
      want: { kind: "explain", command: "app", args: ["-x"], settings: {} },
    },
    {
      name: "--explain -- a command",
      argv: ["--explain", "--", "-app", "x"],
      want: { kind: "explain", command: "-app", args: ["x"], settings: {} },
    },
    {
      name: "settings words before -- and a command",
      argv: ["KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=500ms", "--", "sh", "-c", "KUSTODIA_X=1 true"],
      want: {
        kind: "run",
        command: "sh",
        args: ["-c", "KUSTODIA_X=1 true"],
        settings: { KUSTODIA_ROLE: "probe", KUSTODIA_TIMEOUT: "500ms" },
      },
    },
    {
      name: "a settings word with = in its value",
      argv: ["KUSTODIA_PASSTHROUGH=A=B", "--", "app"],
      want: { kind: "run", command: "app", args: [], settings: { KUSTODIA_PASSTHROUGH: "A=B" } },
    },
    {
      name: "settings words before --explain",
      argv: ["KUSTODIA_ROLE=hook", "--explain"],
      want: { kind: "explain", args: [], settings: { KUSTODIA_ROLE: "hook" } },
    },
    {
      name: "a command that only looks like a setting",
      argv: ["FOO=bar", "x"],
      want: { kind: "run", command: "FOO=bar", args: ["x"], settings: {} },
    },
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
    { name: "an unknown setting word", argv: ["KUSTODIA_ROLL=probe", "--", "app"] },
    { name: "a setting word before install", argv: ["KUSTODIA_ROLE=probe", "install", "/mnt/kustodia"] },
    { name: "only setting words", argv: ["KUSTODIA_ROLE=probe"] },
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
