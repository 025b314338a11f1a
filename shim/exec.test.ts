import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ShimError } from "./errors.ts";
import { execApp, execFailure, findCommand } from "./exec.ts";

const root = mkdtempSync(join(tmpdir(), "kustodia-exec-"));
const dirs = { a: join(root, "a"), b: join(root, "b"), c: join(root, "c") };
for (const dir of Object.values(dirs)) mkdirSync(dir);
writeFileSync(join(dirs.a, "app"), "#!/bin/sh\n", { mode: 0o644 });
writeFileSync(join(dirs.b, "app"), "#!/bin/sh\n", { mode: 0o755 });
writeFileSync(join(dirs.a, "only-a"), "#!/bin/sh\n", { mode: 0o644 });
mkdirSync(join(dirs.a, "dir"));
writeFileSync(join(dirs.c, "dir"), "#!/bin/sh\n", { mode: 0o755 });

function failure(run: () => unknown): ShimError {
  try {
    run();
  } catch (error) {
    if (error instanceof ShimError) return error;
    throw error;
  }
  throw new Error("expected a ShimError");
}

describe("findCommand", () => {
  it("skips a file that is not executable and takes the next one in PATH", () => {
    expect(findCommand("app", ["x"], `${dirs.a}:${dirs.b}`)).toEqual({ file: join(dirs.b, "app"), argv: ["app", "x"] });
  });

  it("skips a directory with the command's name", () => {
    expect(findCommand("dir", [], `${dirs.a}:${dirs.c}`).file).toBe(join(dirs.c, "dir"));
  });

  it("uses a name containing a slash as it is", () => {
    expect(findCommand(join(dirs.b, "app"), [], "")).toEqual({ file: join(dirs.b, "app"), argv: [join(dirs.b, "app")] });
  });

  it("treats an empty PATH entry as the current directory", () => {
    const cwd = process.cwd();
    process.chdir(dirs.b);
    try {
      expect(findCommand("app", [], `/nonexistent::${dirs.a}`).file).toBe("app");
    } finally {
      process.chdir(cwd);
    }
  });

  it.each([
    { name: "a command not in PATH", command: "nope", path: dirs.b, code: "KUS_EXEC_NOT_FOUND", exit: 127 },
    { name: "an empty command", command: "", path: dirs.b, code: "KUS_EXEC_NOT_FOUND", exit: 127 },
    { name: "a missing path", command: "/nonexistent/x", path: dirs.b, code: "KUS_EXEC_NOT_FOUND", exit: 127 },
    { name: "only a directory of that name", command: "dir", path: dirs.a, code: "KUS_EXEC_NOT_EXECUTABLE", exit: 126 },
    { name: "a path to a directory", command: dirs.a, path: "", code: "KUS_EXEC_NOT_EXECUTABLE", exit: 126 },
  ])("fails for $name with $exit", ({ command, path, code, exit }) => {
    const error = failure(() => findCommand(command, [], path));
    expect(error.code).toBe(code);
    expect(error.exitCode).toBe(exit);
  });

  it("fails with 126 when the only match is not executable", () => {
    expect(failure(() => findCommand("only-a", [], dirs.a)).exitCode).toBe(126);
  });
});

describe("execFailure", () => {
  it.each([
    { code: "ENOENT", exit: 127 },
    { code: "ENOTDIR", exit: 127 },
    { code: "EACCES", exit: 126 },
    { code: "E2BIG", exit: 126 },
  ])("maps $code to $exit", ({ code, exit }) => {
    expect(execFailure("/app", Object.assign(new Error(code), { code })).exitCode).toBe(exit);
  });
});

describe("execApp", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    process.removeAllListeners("SIGPIPE");
    process.removeAllListeners("SIGXFSZ");
  });

  it("execs the file with argv and exactly the env given, after restoring SIGPIPE/SIGXFSZ", () => {
    const execve = vi.spyOn(process, "execve").mockImplementation((() => undefined) as never);
    expect(() => execApp({ file: "/bin/app", argv: ["app", "x"] }, { A: "1" })).toThrow("execve returned");
    expect(execve).toHaveBeenCalledWith("/bin/app", ["app", "x"], { A: "1" });
    expect(process.listenerCount("SIGPIPE")).toBe(1);
    expect(process.listenerCount("SIGXFSZ")).toBe(1);
  });

  it("runs a file without #! line with /bin/sh (ENOEXEC), as execvp does", () => {
    const execve = vi.spyOn(process, "execve").mockImplementationOnce(() => {
      throw Object.assign(new Error("exec format error"), { code: "ENOEXEC" });
    });
    execve.mockImplementationOnce((() => undefined) as never);
    expect(() => execApp({ file: "/bin/script", argv: ["script", "a"] }, {})).toThrow();
    expect(execve).toHaveBeenLastCalledWith("/bin/sh", ["sh", "/bin/script", "a"], {});
  });

  it("maps an execve failure to the shell's exit code", () => {
    vi.spyOn(process, "execve").mockImplementation(() => {
      throw Object.assign(new Error("no such file"), { code: "ENOENT" });
    });
    expect(failure(() => execApp({ file: "/bin/app", argv: ["app"] }, {})).exitCode).toBe(127);
  });
});
