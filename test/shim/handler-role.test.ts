// The shim in front of a wrapped exec probe or lifecycle hook (KUSTODIA_ROLE=probe|hook, written by
// the webhook as words before `--` for kustodia.io/wrap-exec): the real shim process against the real
// OpenBao, with the container env an app start would have.
import { beforeAll, describe, expect, it } from "vitest";
import { skipWithout } from "../infra/coords.ts";
import {
  auditRecords,
  bao,
  baseEnv,
  readPolicy,
  runDirect,
  SHIM,
  shimLines,
  suffix,
  tempDir,
  tokenFile,
  vaultTokenEnv,
} from "./harness.ts";

describe.skipIf(skipWithout("openbao"))("kustodia-shim KUSTODIA_ROLE=probe|hook -- <handler>", () => {
  const id = suffix();
  const value = `probe-value-${id}`;
  let env: Record<string, string>;

  beforeAll(async () => {
    await bao("POST", `secret/data/handler-${id}`, { data: { password: value } });
    const policy = await readPolicy(`handler-${id}`, [`secret/data/handler-${id}`]);
    env = { ...baseEnv(), ...vaultTokenEnv(await tokenFile(tempDir(), [policy])), SECRET_PASSWORD: `handler-${id}#password` };
  });

  /** The shim as a wrapped handler runs it: setting words, `--`, the handler. */
  const run = (words: string[], handler: string[], extraEnv: Record<string, string> = {}) =>
    runDirect({ ...env, ...extraEnv }, [process.execPath, SHIM, ...words, "--", ...handler]);

  it("gives the probe the secret, writes nothing of its own, and ends with the probe's own exit code", async () => {
    const probe = ["sh", "-c", `test "$PASSWORD" = "${value}" || exit 9; env | grep -c '^KUSTODIA_\\|^SECRET_' ; exit 3`];
    const result = await run(["KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=500ms"], probe);
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("0");
    expect(result.code).toBe(3);
  });

  it("is a probe that fails when the backend does not have the secret: the shim's exit code and its lines saying why", async () => {
    const result = await run(["KUSTODIA_ROLE=probe"], ["true"], { SECRET_PASSWORD: `handler-${id}#missing` });
    expect(result.code).toBe(78);
    expect(shimLines(result.stderr)).toEqual([expect.stringContaining("SECRET_PASSWORD"), expect.stringContaining("not starting")]);
    expect(auditRecords(result.stderr)).toEqual([]);
  });

  it("writes the audit record of every run when KUSTODIA_HANDLER_AUDIT asks, as a probe or hook event", async () => {
    const probe = await run(["KUSTODIA_ROLE=probe"], ["true"], { KUSTODIA_HANDLER_AUDIT: "true" });
    const hook = await run(["KUSTODIA_ROLE=hook"], ["true"], { KUSTODIA_HANDLER_AUDIT: "true" });
    expect([probe.code, hook.code]).toEqual([0, 0]);
    expect(auditRecords(probe.stderr)).toEqual([expect.objectContaining({ event: "probe", outcome: "ok" })]);
    expect(auditRecords(hook.stderr)).toEqual([expect.objectContaining({ event: "hook", outcome: "ok" })]);
    expect(probe.stderr + hook.stderr).not.toContain(value);
  });

  it("expands a probe's $(NAME) of a resolved var, as the kubelet would have, and leaves a hook's as written", async () => {
    const handler = ["sh", "-c", 'printf "%s|%s" "$1" "$2"', "sh", "-p$(PASSWORD)", "$(HOME)"];
    const probe = await run(["KUSTODIA_ROLE=probe"], handler);
    const hook = await run(["KUSTODIA_ROLE=hook"], handler);
    expect(probe.stdout).toBe(`-p${value}|$(HOME)`);
    expect(hook.stdout).toBe("-p$(PASSWORD)|$(HOME)");
  });

  it("execs the handler (same PID) even when the container's env asks for rotation", async () => {
    const result = await run(["KUSTODIA_ROLE=probe"], ["sh", "-c", "echo $$"], { KUSTODIA_ROTATION: "restart" });
    expect(result.code).toBe(0);
    expect(Number(result.stdout.trim())).toBe(result.pid);
  });

  it("keeps to the deadline of its words, not the env's: an unreachable backend ends the probe with 69 in time", async () => {
    const result = await run(["KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUT=300ms"], ["true"], {
      KUSTODIA_VAULT_ADDR: "http://127.0.0.1:9",
      KUSTODIA_TIMEOUT: "30s",
    });
    expect(result.code).toBe(69);
    expect(result.durationMs).toBeLessThan(3000);
  });

  it("refuses a setting word it does not know, with the usage exit code, before asking the backend", async () => {
    const result = await run(["KUSTODIA_ROLE=probe", "KUSTODIA_TIMEOUTS=1s"], ["true"]);
    expect(result.code).toBe(64);
    expect(result.stderr).toContain('unknown setting "KUSTODIA_TIMEOUTS"');
  });
});
