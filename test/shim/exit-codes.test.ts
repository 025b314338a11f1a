// The shim's exit codes and problem lines, against the real OpenBao. One FAKE here, on purpose: a TCP
// listener that accepts connections and never answers, for a hung backend (a real OpenBao cannot be
// made to hang on demand). Loopback only.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { freePort } from "../infra/proc.ts";
import {
  bao,
  baseEnv,
  readPolicy,
  runShim,
  shimLines,
  startShim,
  suffix,
  tempDir,
  tokenFile,
  vaultTokenEnv,
  withoutAudit,
} from "./harness.ts";

// Fail closed (DESIGN §5, §6.4): the app never starts with an unresolved reference. 78 for what a
// retry cannot fix, 69 when the backend stays unreachable until KUSTODIA_TIMEOUT, one stderr line per
// problem naming the var, the reference and the reason. And shell-like exits for the command.
describe.skipIf(skipWithout("openbao"))("exit codes and problem lines", () => {
  const id = suffix();
  const dir = tempDir();
  const marker = join(dir, "app-started");
  /** An app that proves it started by creating the marker file. */
  const app = ["sh", "-c", `touch ${marker}; echo "[$PASSWORD]"`];
  let env: Record<string, string>;

  beforeAll(async () => {
    await bao("POST", `secret/data/exit-${id}/db`, { data: { password: "right" } });
    await bao("POST", `secret/data/forbidden-${id}`, { data: { password: "no" } });
    env = { ...baseEnv(), ...vaultTokenEnv(await tokenFile(dir, [await readPolicy(`exit-${id}`, [`secret/data/exit-${id}/*`])])) };
  });

  const expectNotStarted = () => expect(existsSync(marker)).toBe(false);

  it("exits 78 for missing secrets and fields, one line per problem, without starting the app", async () => {
    const run = await runShim(
      { ...env, SECRET_PASSWORD: `exit-${id}/db/password`, SECRET_A: `exit-${id}/nothing/here`, SECRET_B: `exit-${id}/db#nofield` },
      app,
    );
    expect(run.code).toBe(78);
    expectNotStarted();
    expect(run.stdout).toBe("");
    const lines = shimLines(run.stderr);
    expect(lines).toEqual([
      `kustodia-shim error: SECRET_A (reference "exit-${id}/nothing/here"): not found: vault secret "exit-${id}/nothing" in mount secret/ (KV v2)`,
      `kustodia-shim error: SECRET_B (reference "exit-${id}/db#nofield"): field "nofield" not found in vault secret "exit-${id}/db" in mount secret/`,
      "kustodia-shim error: not starting the app: 2 of 3 reference(s) unresolved",
    ]);
  });

  it("exits 78 when the policy denies the read", async () => {
    const run = await runShim({ ...env, SECRET_PASSWORD: `forbidden-${id}#password` }, app);
    expect(run.code).toBe(78);
    expectNotStarted();
    expect(shimLines(run.stderr)[0]).toMatch(
      /^kustodia-shim error: SECRET_PASSWORD \(reference "forbidden-.*#password"\): permission denied: vault secret/,
    );
  });

  it.each([
    { name: "no field", ref: "justone", reason: 'needs a secret and a field: "<secret>/<field>" or "<secret>#<field>"' },
    { name: "a path walking up", ref: "../etc/passwd", reason: `path "../etc/passwd" has an empty, "." or ".." segment` },
    { name: "an unknown backend", ref: "aws:db/pw", reason: 'unknown backend "aws"' },
    { name: "an empty value", ref: "", reason: "it is empty" },
  ])("exits 78 at once for a malformed reference: $name", async ({ ref, reason }) => {
    const run = await runShim({ ...env, KUSTODIA_VAULT_ADDR: "http://127.0.0.1:1", SECRET_PASSWORD: ref }, app);
    expect(run.code).toBe(78);
    expectNotStarted();
    expect(shimLines(run.stderr)[0]).toContain(`SECRET_PASSWORD (reference ${JSON.stringify(ref)}): invalid reference: ${reason}`);
  });

  it("exits 78 when a name collides with a var the container already sets", async () => {
    const run = await runShim({ ...env, PASSWORD: "already here", SECRET_PASSWORD: `exit-${id}/db/password` }, app);
    expect(run.code).toBe(78);
    expectNotStarted();
    expect(shimLines(run.stderr)[0]).toContain("SECRET_PASSWORD (reference");
    expect(shimLines(run.stderr)[0]).toContain("PASSWORD is already set in the container's env");
  });

  it("exits 69 after KUSTODIA_TIMEOUT when nothing listens at the backend's address", async () => {
    const port = await freePort();
    const run = await runShim(
      { ...env, KUSTODIA_VAULT_ADDR: `http://127.0.0.1:${port}`, KUSTODIA_TIMEOUT: "2s", SECRET_PASSWORD: `exit-${id}/db/password` },
      app,
    );
    expect(run.code).toBe(69);
    expectNotStarted();
    expect(run.durationMs).toBeGreaterThanOrEqual(2000);
    expect(run.durationMs).toBeLessThan(4500);
    expect(shimLines(run.stderr)[0]).toMatch(
      /SECRET_PASSWORD \(reference ".*"\): backend unreachable within [12]\.\d s \(\d+ attempts\): .*ECONNREFUSED/,
    );
  });

  describe("with a backend that accepts connections and never answers", () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer(() => undefined);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => {
      server.close();
    });

    it("exits 69 at the deadline: a hung request times out", async () => {
      const run = await runShim(
        { ...env, KUSTODIA_VAULT_ADDR: `http://127.0.0.1:${port}`, KUSTODIA_TIMEOUT: "1500ms", SECRET_PASSWORD: "a/b" },
        app,
      );
      expect(run.code).toBe(69);
      expect(run.durationMs).toBeGreaterThanOrEqual(1500);
      expect(run.durationMs).toBeLessThan(4000);
      expect(shimLines(run.stderr)[0]).toContain("no answer within");
    });

    it("ends on SIGUSR1 while resolving instead of opening Node's inspector (which could read the token)", async () => {
      const shim = startShim(
        { ...env, KUSTODIA_VAULT_ADDR: `http://127.0.0.1:${port}`, KUSTODIA_TIMEOUT: "10s", SECRET_PASSWORD: "a/b" },
        app,
      );
      await new Promise((resolve) => setTimeout(resolve, 700));
      shim.child.kill("SIGUSR1");
      expect(await shim.exited).toEqual({ code: 128 + 10, signal: null });
      expect(shim.stderr()).not.toContain("Debugger listening");
      expectNotStarted();
    });
  });

  it("leaves a missing secret's var unset with KUSTODIA_IGNORE_MISSING, and still fails for other problems", async () => {
    const refs = { SECRET_PASSWORD: `exit-${id}/db/password`, SECRET_OPTIONAL: `exit-${id}/nothing/here` };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
    const printBoth = ["sh", "-c", 'echo "[$PASSWORD] [${OPTIONAL-unset}]"'];
    const run = await runShim({ ...env, ...refs, KUSTODIA_IGNORE_MISSING: "true" }, printBoth);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("[right] [unset]\n");
    expect(shimLines(run.stderr)).toEqual([
      `kustodia-shim warn: SECRET_OPTIONAL (reference "exit-${id}/nothing/here"): not found: vault secret "exit-${id}/nothing" in mount secret/ (KV v2); left unset (KUSTODIA_IGNORE_MISSING)`,
    ]);

    const denied = await runShim({ ...env, ...refs, SECRET_NO: `forbidden-${id}#password`, KUSTODIA_IGNORE_MISSING: "true" }, app);
    expect(denied.code).toBe(78);
    expectNotStarted();
  });

  it("exits 78 for an invalid setting, naming the var", async () => {
    const run = await runShim(
      { ...env, KUSTODIA_TIMEOUT: "soon", KUSTODIA_VAULT_AUTH_METHOD: "ldap", SECRET_PASSWORD: `exit-${id}/db/password` },
      app,
    );
    expect(run.code).toBe(78);
    expectNotStarted();
    expect(shimLines(run.stderr)).toEqual([
      'kustodia-shim error: KUSTODIA_VAULT_AUTH_METHOD="ldap" is invalid; accepted: "kubernetes", "jwt", "approle", "token"',
      'kustodia-shim error: KUSTODIA_TIMEOUT="soon" is invalid; accepted: a duration of at least 1 ms, like 500ms, 30s, 5m or 1h30m',
      "kustodia-shim error: not starting the app: invalid settings",
    ]);
  });

  it("exits 78 when the backend a reference needs has no address", async () => {
    const { KUSTODIA_VAULT_ADDR: _addr, ...noAddr } = env;
    const run = await runShim({ ...noAddr, SECRET_PASSWORD: `exit-${id}/db/password` }, app);
    expect(run.code).toBe(78);
    expect(shimLines(run.stderr)[0]).toContain("vault backend: KUSTODIA_VAULT_ADDR is not set");
  });

  describe("the command", () => {
    const bin = join(dir, "bin");
    const notExecutable = join(dir, "noexec");
    beforeAll(() => {
      mkdirSync(bin);
      mkdirSync(notExecutable);
      mkdirSync(join(bin, "a-directory"));
      writeFileSync(join(notExecutable, "myapp"), "#!/bin/sh\necho wrong one\n", { mode: 0o644 });
      writeFileSync(join(bin, "myapp"), '#!/bin/sh\necho "myapp $1 [$PASSWORD]"\n', { mode: 0o755 });
      writeFileSync(join(bin, "noshebang"), 'echo "plain script $1"\n', { mode: 0o755 });
      writeFileSync(join(notExecutable, "only-here"), "#!/bin/sh\n", { mode: 0o644 });
      chmodSync(join(bin, "myapp"), 0o755);
    });

    it("is looked up in PATH like a shell does, skipping files that are not executable", async () => {
      const run = await runShim({ ...env, PATH: `${notExecutable}:${bin}:/usr/bin:/bin`, SECRET_PASSWORD: `exit-${id}/db/password` }, [
        "myapp",
        "arg",
      ]);
      expect(withoutAudit(run.stderr)).toBe("");
      expect(run.stdout).toBe("myapp arg [right]\n");
    });

    it("runs a script without #! line with /bin/sh, as execvp does", async () => {
      const run = await runShim({ ...env, PATH: `${bin}:/usr/bin:/bin` }, ["noshebang", "x"]);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe("plain script x\n");
    });

    it.each([
      { name: "not found in PATH", command: "no-such-command", code: 127, message: "no-such-command: command not found in PATH=" },
      { name: "found but not executable", command: "only-here", code: 126, message: "only-here: permission denied" },
      { name: "a directory", command: "a-directory", code: 126, message: "a-directory: permission denied" },
      { name: "a missing path", command: "/nonexistent/app", code: 127, message: "/nonexistent/app: no such file" },
    ])("exits $code when the command is $name, before contacting any backend", async ({ command, code, message }) => {
      const run = await runShim(
        { ...env, KUSTODIA_VAULT_ADDR: "http://127.0.0.1:1", PATH: `${notExecutable}:${bin}:/usr/bin:/bin`, SECRET_A: "x/y" },
        [command],
      );
      expect(run.code).toBe(code);
      expect(shimLines(run.stderr)[0]).toContain(message);
      expect(run.durationMs).toBeLessThan(3000);
    });

    it("exits 64 without a command", async () => {
      const run = await runShim(env, []);
      expect(run.code).toBe(64);
      expect(run.stderr).toContain("usage: kustodia-shim [--] <command> [args...]");
    });
  });

  it("uses the real OpenBao address the infrastructure gave (sanity)", () => {
    expect(service("openbao").addr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
