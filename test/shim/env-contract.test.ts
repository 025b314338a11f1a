import { beforeAll, describe, expect, it } from "vitest";
import { skipWithout } from "../infra/coords.ts";
import { bao, baseEnv, readPolicy, runDirect, runShim, SHIM, suffix, tempDir, tokenFile, vaultTokenEnv, withoutAudit } from "./harness.ts";

/** `env -0` output as a map. */
function parseEnv0(output: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const entry of output.split("\0")) {
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    vars.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return vars;
}

// DESIGN §3 and §6.2: the app receives <NAME>=<value>, every other var exactly as it was, and no
// reference var, KUSTODIA_* setting or token. And it *is* the shim: same PID, fds, signal dispositions.
describe.skipIf(skipWithout("openbao"))("the app's environment and process", () => {
  const id = suffix();
  const value = `p@ss=wörd\nline 2 ✓ "quoted" $HOME \`tick\``;
  let shimEnv: Record<string, string>;

  beforeAll(async () => {
    await bao("POST", `secret/data/env-${id}`, { data: { password: value, empty: "" } });
    const file = await tokenFile(tempDir(), [await readPolicy(`env-${id}`, [`secret/data/env-${id}`])]);
    shimEnv = { ...baseEnv(), ...vaultTokenEnv(file), KUSTODIA_LOG_LEVEL: "warn", KUSTODIA_TIMEOUT: "20s" };
  });

  it("passes every other var byte-for-byte and adds only the resolved values", async () => {
    const untouched = {
      WITH_EQUALS: "a=b=c==",
      MULTILINE: "first\nsecond\r\nthird\n",
      UNICODE: "héllo wörld ✓ 日本語 🚀",
      EMPTY: "",
      SPACES: "  leading and trailing  ",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell-looking value that must arrive unexpanded
      SHELLISH: "$(rm -rf /) `x` ${Y} 'q' \"d\" \\",
      SECRET_KEY: "django-plain-value",
      SECRETS_DIR: "/not/a/reference",
      VAULT_TOKEN: "the app's own var",
    };
    const env = {
      ...shimEnv,
      ...untouched,
      KUSTODIA_PASSTHROUGH: "SECRET_KEY",
      SECRET_PASSWORD: `env-${id}#password`,
      SECRET_EMPTY_VALUE: `env-${id}#empty`,
    };
    const run = await runShim(env, ["env", "-0"]);
    expect(withoutAudit(run.stderr)).toBe("");
    expect(run.code).toBe(0);
    const expected = new Map<string, string>([
      ...Object.entries(baseEnv()),
      ...Object.entries(untouched),
      ["PASSWORD", value],
      ["EMPTY_VALUE", ""],
    ]);
    expect(parseEnv0(run.stdout)).toEqual(expected);
  });

  it("runs the app as the shim's own process: the app's $$ is the PID that was spawned", async () => {
    const run = await runShim({ ...shimEnv, SECRET_PASSWORD: `env-${id}#password` }, ["sh", "-c", "echo $$"]);
    expect(run.code).toBe(0);
    expect(Number(run.stdout.trim())).toBe(run.pid);
  });

  it("leaks no file descriptor to the app and leaves no signal ignored or blocked", async () => {
    // The app inspects itself with shell builtins only. A child reading /proc/<shell>/ would race the
    // shell: its pipe ends come and go around a pipeline, and it blocks every signal while it forks.
    // The glob's directory handle is closed again before `[ -e ]` runs, so it is not listed.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    const probe = [
      "sh",
      "-c",
      'for f in /proc/$$/fd/*; do [ -e "$f" ] && printf "%s " "${f##*/}"; done; echo; while read -r line; do case $line in SigIgn:* | SigBlk:*) echo "$line" ;; esac; done </proc/$$/status',
    ];
    // The test worker hands its children descriptors that come and go with other tests' activity; a
    // container runtime starts the shim with stdin, stdout and stderr only. So does this: bash closes
    // everything above 2, opens fd 7 as a parent could (a socket-activation-style hand-over) and execs
    // the shim. The app must then have exactly 0, 1 and 2: Node marks the descriptors it inherits
    // close-on-exec and opens its own that way (docs/security.md).
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    const closeInherited =
      'for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null; done; exec 7</dev/null; exec "$@"';
    const run = await runDirect({ ...shimEnv, SECRET_PASSWORD: `env-${id}#password` }, [
      "bash",
      "-c",
      closeInherited,
      "bash",
      process.execPath,
      SHIM,
      "--",
      ...probe,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect((run.stdout.split("\n")[0] ?? "").trim().split(" ")).toEqual(["0", "1", "2"]);
    expect(run.stdout).toMatch(/SigIgn:\s+0+\n/);
    expect(run.stdout).toMatch(/SigBlk:\s+0+\n/);
  });

  it("strips every KUSTODIA_* var, even unknown ones, with a warning for the unknown", async () => {
    const run = await runShim({ ...shimEnv, KUSTODIA_FUTURE_SETTING: "x", SECRET_PASSWORD: `env-${id}#password` }, ["env", "-0"]);
    expect(run.code).toBe(0);
    expect([...parseEnv0(run.stdout).keys()].filter((name) => name.startsWith("KUSTODIA_") || name.startsWith("SECRET_"))).toEqual([]);
    expect(run.stderr).toContain("unknown setting KUSTODIA_FUTURE_SETTING ignored");
  });

  it("honours KUSTODIA_PREFIX: only vars with that prefix are references", async () => {
    const run = await runShim(
      { ...shimEnv, KUSTODIA_PREFIX: "VAULT_REF_", VAULT_REF_PASSWORD: `env-${id}#password`, SECRET_OTHER: "stays" },
      ["env", "-0"],
    );
    expect(run.code).toBe(0);
    const vars = parseEnv0(run.stdout);
    expect(vars.get("PASSWORD")).toBe(value);
    expect(vars.get("SECRET_OTHER")).toBe("stays");
    expect(vars.has("VAULT_REF_PASSWORD")).toBe(false);
  });

  it("starts the app with the same env when there is no reference at all (no backend contacted)", async () => {
    const run = await runShim({ ...baseEnv(), KUSTODIA_VAULT_ADDR: "http://127.0.0.1:1", PLAIN: "x" }, ["env", "-0"]);
    expect(run.code).toBe(0);
    expect(parseEnv0(run.stdout)).toEqual(new Map([...Object.entries(baseEnv()), ["PLAIN", "x"]]));
  });
});
