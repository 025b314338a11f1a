import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { bao, baseEnv, custodiaPut, readPolicy, runShim, serviceAccountToken, startShim, suffix, tempDir, writeFile } from "./harness.ts";

// DESIGN §6.1: no secret value and no credential in any line the shim writes — at debug level, on
// success, on failure and while rotating. The app prints the values itself, to stdout, between markers;
// everything else the process wrote must be free of them.
describe.skipIf(skipWithout("openbao", "kube", "custodia"))("no value or credential in the shim's output", () => {
  const id = suffix();
  const dir = tempDir();
  const values = [`leak-a-${id}-Zq9`, `leak-b-${id} with spaces`, `leak-c-${id}\nsecond line`, `{"json":"leak-d-${id}"}`];
  const custodiaValue = `leak-custodia-${id}`;
  let env: Record<string, string>;
  let credentials: string[];

  beforeAll(async () => {
    await bao("POST", `secret/data/leak-${id}/app`, { data: { a: values[0], b: values[1], c: values[2], d: values[3] } });
    await custodiaPut(`leak-${id}`, "key", custodiaValue);
    const policy = await readPolicy(`leak-${id}`, [`secret/data/leak-${id}/*`]);
    await bao("POST", `auth/kubernetes/role/leak-${id}`, {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [`leak-${id}`],
      token_policies: [policy],
    });
    const saTokenFile = writeFile(dir, "sa-token", await serviceAccountToken(`leak-${id}`, "app"));
    credentials = [readFileSync(saTokenFile, "utf8")];
    env = {
      ...baseEnv(),
      KUSTODIA_VAULT_ADDR: service("openbao").addr,
      KUSTODIA_VAULT_ROLE: `leak-${id}`,
      KUSTODIA_SA_TOKEN_FILE: saTokenFile,
      KUSTODIA_CUSTODIA_URL: service("custodia").url,
      KUSTODIA_LOG_LEVEL: "debug",
      SECRET_A: `leak-${id}/app#a`,
      SECRET_B: `leak-${id}/app#b`,
      SECRET_C: `leak-${id}/app#c`,
      SECRET_D: `leak-${id}/app#d`,
      SECRET_E: `custodia:leak-${id}/key`,
    };
  });

  const secrets = () => [...values, ...values.flatMap((value) => value.split("\n")), custodiaValue, ...credentials];
  /** The output without what the app printed on purpose between its markers. */
  const withoutAppOutput = (text: string) => text.replace(/<<app>>[\s\S]*?<<\/app>>/g, "");
  const expectClean = (text: string) => {
    for (const secret of secrets()) expect(withoutAppOutput(text)).not.toContain(secret);
  };
  const printAll = ["sh", "-c", 'printf "<<app>>%s|%s|%s|%s|%s<</app>>\\n" "$A" "$B" "$C" "$D" "$E"'];

  it("at debug level on success: the values reach the app and nothing else", async () => {
    const run = await runShim(env, printAll);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`<<app>>${values.join("|")}|${custodiaValue}<</app>>\n`);
    expect(run.stderr).toContain("kustodia-shim debug:");
    expectClean(run.stderr);
    expectClean(run.stdout);
  });

  it("at debug level when the start fails (a missing field next to resolved values)", async () => {
    const run = await runShim({ ...env, SECRET_MISSING: `leak-${id}/app#nope` }, printAll);
    expect(run.code).toBe(78);
    expect(run.stdout).toBe("");
    expectClean(run.stderr);
  });

  it("at debug level while rotating", async () => {
    const shim = startShim({ ...env, KUSTODIA_ROTATION: "restart", KUSTODIA_ROTATION_INTERVAL: "1s" }, [
      "sh",
      "-c",
      `${printAll[2]}; trap 'exit 0' TERM; while :; do sleep 0.05; done`,
    ]);
    await shim.waitFor((out) => out.includes("<</app>>"));
    const rotated = `leak-rotated-${id}`;
    values[0] = rotated;
    await bao("POST", `secret/data/leak-${id}/app`, { data: { a: rotated, b: values[1], c: values[2], d: values[3] } });
    await shim.waitFor((out) => out.includes(rotated), 10_000);
    shim.child.kill("SIGTERM");
    await shim.exited;
    expect(shim.stderr()).toContain("rotation: SECRET_A changed");
    expectClean(shim.stderr());
    expectClean(shim.stdout());
  });
});
