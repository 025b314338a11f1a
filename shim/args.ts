// The shim's command line: `kustodia-shim [--] <command> [args...]` runs the app;
// `kustodia-shim install <dir>` copies the runtime (the init container's job);
// `kustodia-shim --explain [[--] <command> [args...]]` says what a start would do, without doing it.
import { ShimError } from "./errors.ts";

export const USAGE = `usage: kustodia-shim [--] <command> [args...]
       kustodia-shim --explain [[--] <command> [args...]]
       kustodia-shim install <dir>
       kustodia-shim --version`;

export type Invocation =
  | { kind: "run"; command: string; args: string[] }
  | { kind: "install"; dir: string }
  | { kind: "explain"; command?: string; args: string[] }
  | { kind: "version" }
  | { kind: "help" };

export function parseArgs(argv: readonly string[]): Invocation {
  const [first, ...rest] = argv;
  if (first === undefined) throw new ShimError("KUS_SHIM_USAGE", `no command given\n${USAGE}`);
  if (first === "--") {
    const [command, ...args] = rest;
    if (command === undefined) throw new ShimError("KUS_SHIM_USAGE", `no command after "--"\n${USAGE}`);
    return { kind: "run", command, args };
  }
  if (first === "install") {
    if (rest.length !== 1 || rest[0] === "") throw new ShimError("KUS_SHIM_USAGE", `install takes exactly one directory\n${USAGE}`);
    return { kind: "install", dir: rest[0] as string };
  }
  if (first === "--explain") {
    const [command, ...args] = rest[0] === "--" ? rest.slice(1) : rest;
    if (command === undefined) return { kind: "explain", args: [] };
    if (command.startsWith("-") && rest[0] !== "--")
      throw new ShimError("KUS_SHIM_USAGE", `unknown option ${JSON.stringify(command)}; put "--" before the command\n${USAGE}`);
    return { kind: "explain", command, args };
  }
  if (first === "--version" && rest.length === 0) return { kind: "version" };
  if ((first === "--help" || first === "-h") && rest.length === 0) return { kind: "help" };
  if (first.startsWith("-"))
    throw new ShimError("KUS_SHIM_USAGE", `unknown option ${JSON.stringify(first)}; put "--" before the command\n${USAGE}`);
  return { kind: "run", command: first, args: rest };
}
