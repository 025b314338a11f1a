import { readFileSync, writeFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { skipWithout } from "../infra/coords.ts";
import { bao, baseEnv, readPolicy, shimLines, startShim, suffix, tempDir, tokenFile, vaultTokenEnv } from "./harness.ts";

/** A long-running app: prints its start with the value, reports `traps` signals, exits 0 on SIGTERM. */
function app(onSignals: Record<string, string> = {}): string[] {
  const traps = Object.entries(onSignals)
    .map(([signal, action]) => `trap '${action}' ${signal};`)
    .join(" ");
  return ["sh", "-c", `echo "start [$PASSWORD]"; trap 'echo got TERM; exit 0' TERM; ${traps} while :; do sleep 0.05; done`];
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

// Rotation mode against the real OpenBao: the shim stays as the app's parent, re-reads every
// KUSTODIA_ROTATION_INTERVAL, restarts or signals the app on change, forwards signals and ends like the app.
describe.skipIf(skipWithout("openbao"))("rotation mode", () => {
  const id = suffix();
  const dir = tempDir();
  let env: Record<string, string>;

  beforeAll(async () => {
    env = {
      ...baseEnv(),
      ...vaultTokenEnv(await tokenFile(dir, [await readPolicy(`rot-${id}`, [`secret/data/rot-${id}/*`])])),
      KUSTODIA_ROTATION_INTERVAL: "1s",
    };
  });

  const write = (name: string, password: string) => bao("POST", `secret/data/rot-${id}/${name}`, { data: { password } });
  /** Writes `one` to a new secret and starts the shim in restart mode with `command`. */
  const startRestartingWith = async (name: string, command: string[], extra: Record<string, string>) => {
    await write(name, "one");
    return startShim({ ...env, ...extra, KUSTODIA_ROTATION: "restart", SECRET_PASSWORD: `rot-${id}/${name}#password` }, command);
  };
  const startRestarting = (name: string, command: string[]) => startRestartingWith(name, command, {});

  it("restart: a changed value restarts the app with the new env; SIGTERM then ends both with the app's code", async () => {
    const shim = await startRestarting("restart", app());
    await shim.waitFor((out) => out.includes("start [one]"));
    await write("restart", "two");
    await shim.waitFor((out) => out.includes("start [two]"), 10_000);
    expect(shim.stdout()).toBe("start [one]\ngot TERM\nstart [two]\n");
    expect(shimLines(shim.stderr())).toEqual([
      "kustodia-shim info: rotation: SECRET_PASSWORD changed",
      "kustodia-shim info: secrets changed; restarting the app (SIGTERM)",
      "kustodia-shim info: app exited (code 0); starting it again with the new secrets",
    ]);
    shim.child.kill("SIGTERM");
    expect(await shim.exited).toEqual({ code: 0, signal: null });
    expect(shim.stdout()).toBe("start [one]\ngot TERM\nstart [two]\ngot TERM\n");
  });

  it("signal: a changed value sends KUSTODIA_ROTATION_SIGNAL to the running app", async () => {
    await write("signal", "one");
    const shim = startShim(
      { ...env, KUSTODIA_ROTATION: "signal", KUSTODIA_ROTATION_SIGNAL: "SIGUSR2", SECRET_PASSWORD: `rot-${id}/signal#password` },
      app({ USR2: "echo got USR2" }),
    );
    await shim.waitFor((out) => out.includes("start [one]"));
    await write("signal", "two");
    await shim.waitFor((out) => out.includes("got USR2"), 10_000);
    expect(count(shim.stdout(), "start")).toBe(1);
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
  });

  it("signal: an app that exits on the rotation signal is started again with the new env", async () => {
    await write("reload", "one");
    const shim = startShim(
      { ...env, KUSTODIA_ROTATION: "signal", SECRET_PASSWORD: `rot-${id}/reload#password` },
      app({ HUP: "echo draining; exit 0" }),
    );
    await shim.waitFor((out) => out.includes("start [one]"));
    await write("reload", "two");
    await shim.waitFor((out) => out.includes("start [two]"), 10_000);
    expect(shim.stdout()).toBe("start [one]\ndraining\nstart [two]\n");
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
  });

  it("forwards SIGHUP, SIGINT, SIGQUIT, SIGUSR1 and SIGUSR2 to the app", async () => {
    await write("forward", "one");
    const signals = ["HUP", "INT", "QUIT", "USR1", "USR2"];
    const traps = Object.fromEntries(signals.map((signal) => [signal, `echo got ${signal}`]));
    const shim = startShim(
      { ...env, KUSTODIA_ROTATION: "restart", KUSTODIA_ROTATION_INTERVAL: "1h", SECRET_PASSWORD: `rot-${id}/forward#password` },
      app(traps),
    );
    await shim.waitFor((out) => out.includes("start [one]"));
    for (const signal of signals) {
      shim.child.kill(`SIG${signal}` as NodeJS.Signals);
      await shim.waitFor((out) => out.includes(`got ${signal}`));
    }
    shim.child.kill("SIGTERM");
    expect(await shim.exited).toEqual({ code: 0, signal: null });
    expect(shim.stdout()).toBe(`start [one]\n${signals.map((signal) => `got ${signal}\n`).join("")}got TERM\n`);
  });

  it("ends with the app's signal: SIGTERM reaches an app that does not handle it", async () => {
    const shim = await startRestarting("term", ["sh", "-c", 'echo "start [$PASSWORD]"; exec sleep 60']);
    await shim.waitFor((out) => out.includes("start [one]"));
    shim.child.kill("SIGTERM");
    expect(await shim.exited).toEqual({ code: null, signal: "SIGTERM" });
  });

  it("ends with the app's exit code (3)", async () => {
    const shim = await startRestarting("code", ["sh", "-c", 'echo "start [$PASSWORD]"; sleep 0.3; exit 3']);
    expect(await shim.exited).toEqual({ code: 3, signal: null });
    expect(shim.stdout()).toBe("start [one]\n");
  });

  it("keeps the app running with its values while the backend fails, and logs why", async () => {
    const shim = await startRestarting("flaky", app());
    await shim.waitFor((out) => out.includes("start [one]"));
    await bao("DELETE", `secret/metadata/rot-${id}/flaky`);
    const deadline = Date.now() + 10_000;
    while (!shim.stderr().includes("keeping the current values") && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(shimLines(shim.stderr())[0]).toMatch(
      /^kustodia-shim warn: rotation: SECRET_PASSWORD \(reference ".*"\): not found: .*; keeping the current values$/,
    );
    expect(shim.stdout()).toBe("start [one]\n");
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
  });

  it("logs in again when Vault refuses its token, reading the credential file anew", async () => {
    const file = await tokenFile(dir, [`rot-${id}`]);
    const shim = await startRestartingWith("relogin", app(), vaultTokenEnv(file));
    await shim.waitFor((out) => out.includes("start [one]"));
    const revoked = readFileSync(file, "utf8");
    writeFileSync(file, readFileSync(await tokenFile(dir, [`rot-${id}`]), "utf8"));
    await bao("POST", "auth/token/revoke", { token: revoked });
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await write("relogin", "two");
    await shim.waitFor((out) => out.includes("start [two]"), 10_000);
    expect(shim.stderr()).not.toContain("warn");
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
  }, 30_000);

  it("renews its Vault token while it stays resident", async () => {
    await write("renew", "one");
    const shortLived = await tokenFile(dir, [`rot-${id}`], "3s");
    const shim = startShim(
      {
        ...env,
        ...vaultTokenEnv(shortLived),
        KUSTODIA_ROTATION: "restart",
        KUSTODIA_LOG_LEVEL: "debug",
        SECRET_PASSWORD: `rot-${id}/renew#password`,
      },
      app(),
    );
    await shim.waitFor((out) => out.includes("start [one]"));
    await new Promise((resolve) => setTimeout(resolve, 6500));
    await write("renew", "two");
    await shim.waitFor((out) => out.includes("start [two]"), 10_000);
    expect(count(shim.stderr(), "vault token renewed for")).toBeGreaterThanOrEqual(2);
    expect(shim.stderr()).not.toContain("warn");
    shim.child.kill("SIGTERM");
    expect((await shim.exited).code).toBe(0);
  }, 30_000);
});
