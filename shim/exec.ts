// Finding and starting the app. A bare command name is looked up in PATH as execvp(3) and POSIX
// shells do: a name containing "/" is used as it is; otherwise each PATH entry is tried in order (an
// empty entry is the current directory), skipping entries that do not exist, directories and files
// that are not executable. Failures end like a shell's: 127 not found, 126 found but not executable,
// and are found before any backend is contacted.

import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { ShimError } from "./errors.ts";

/** glibc's execvp default when PATH is unset. */
export const DEFAULT_PATH = "/bin:/usr/bin";

export interface AppCommand {
  /** What to execute: the found file. */
  file: string;
  /** argv as the app sees it: argv[0] is the command as written. */
  argv: string[];
}

function executable(candidate: string): "yes" | "no" | "denied" {
  try {
    // PATH entries without the command are the common case: told without an exception (identity.ts says why).
    const stats = statSync(candidate, { throwIfNoEntry: false });
    if (stats === undefined) return "no";
    if (!stats.isFile()) return "denied";
    accessSync(candidate, constants.X_OK);
    return "yes";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "EACCES" || code === "EPERM" ? "denied" : "no";
  }
}

/** The command to run for `[command, ...args]`, or a ShimError (127 / 126) saying why there is none. */
export function findCommand(command: string, args: readonly string[], pathVar: string | undefined): AppCommand {
  const argv = [command, ...args];
  if (command === "") throw new ShimError("KUS_EXEC_NOT_FOUND", "the command is an empty string");
  if (command.includes("/")) {
    const found = executable(command);
    if (found === "no") throw new ShimError("KUS_EXEC_NOT_FOUND", `${command}: no such file`);
    if (found === "denied") throw new ShimError("KUS_EXEC_NOT_EXECUTABLE", `${command}: permission denied (not an executable file)`);
    return { file: command, argv };
  }
  let denied: string | undefined;
  for (const dir of (pathVar ?? DEFAULT_PATH).split(":")) {
    const candidate = join(dir === "" ? "." : dir, command);
    const found = executable(candidate);
    if (found === "yes") return { file: candidate, argv };
    if (found === "denied") denied ??= candidate;
  }
  if (denied !== undefined)
    throw new ShimError("KUS_EXEC_NOT_EXECUTABLE", `${command}: permission denied (${denied} is not an executable file)`);
  throw new ShimError("KUS_EXEC_NOT_FOUND", `${command}: command not found in PATH=${JSON.stringify(pathVar ?? DEFAULT_PATH)}`);
}

/** The ShimError for a failed execve/spawn of `file`. */
export function execFailure(file: string, error: NodeJS.ErrnoException): ShimError {
  const reason = error.code ?? error.message;
  if (error.code === "ENOENT" || error.code === "ENOTDIR") {
    return new ShimError("KUS_EXEC_NOT_FOUND", `${file}: no such file (or its interpreter is missing) [${reason}]`);
  }
  return new ShimError("KUS_EXEC_NOT_EXECUTABLE", `${file}: cannot execute [${reason}]`);
}

/**
 * Node ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: the app would start with them
 * ignored. Handled signals are reset to their default by execve, so handling them here gives the app
 * the defaults it would have had without the shim.
 */
function restoreDefaultSignals(): void {
  for (const signal of ["SIGPIPE", "SIGXFSZ"] as const) process.on(signal, () => undefined);
}

/**
 * Replaces the shim with the app (same PID). Returns only by throwing a ShimError. A file without a
 * `#!` line (ENOEXEC) is run by /bin/sh, as execvp and shells do. The app gets stdin, stdout and
 * stderr only: Node marks every descriptor it inherits above 2 close-on-exec at start, and opens its
 * own that way (test/shim/env-contract.test.ts proves it).
 */
export function execApp(command: AppCommand, env: Record<string, string>): never {
  const execve = process.execve?.bind(process);
  if (!execve)
    throw new ShimError("KUS_EXEC_NOT_EXECUTABLE", `this Node.js (${process.version}) has no process.execve (needs 22.15 or later)`);
  restoreDefaultSignals();
  try {
    execve(command.file, command.argv, env);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOEXEC") throw execFailure(command.file, error as NodeJS.ErrnoException);
  }
  try {
    execve("/bin/sh", ["sh", command.file, ...command.argv.slice(1)], env);
  } catch {
    throw new ShimError("KUS_EXEC_NOT_EXECUTABLE", `${command.file}: exec format error, and /bin/sh cannot run it as a script`);
  }
  throw new ShimError("KUS_EXEC_NOT_EXECUTABLE", `${command.file}: execve returned`);
}
