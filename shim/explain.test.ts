import { describe, expect, it } from "vitest";
import { parseArgs } from "./args.ts";
import { loadConfig } from "./config.ts";
import { explain } from "./explain.ts";

function run(env: Record<string, string>, argv: string[] = ["--explain"]): { code: number; text: string } {
  const loaded = loadConfig({ PATH: "/usr/bin:/bin", KUSTODIA_SA_TOKEN_FILE: "/nonexistent/token", ...env });
  if (!loaded.ok) throw new Error(loaded.errors.join("; "));
  const invocation = parseArgs(argv);
  if (invocation.kind !== "explain") throw new Error("not --explain");
  let text = "";
  const code = explain({ config: loaded.config, env: loaded.env, write: (chunk) => (text += chunk) }, invocation);
  return { code, text };
}

const vault = {
  KUSTODIA_VAULT_ADDR: "https://vault.example:8200",
  KUSTODIA_VAULT_ROLE: "web",
  KUSTODIA_POD_NAME: "web-0",
  KUSTODIA_POD_NAMESPACE: "shop",
  KUSTODIA_POD_SERVICE_ACCOUNT: "web",
};

describe("--explain", () => {
  it("names each var's reference, backend and issuance, and which vars share one — never a value", () => {
    const { code, text } = run({
      ...vault,
      KUSTODIA_CUSTODIA_URL: "http+unix:///run/custodia.sock",
      KUSTODIA_PASSTHROUGH: "SECRET_KEY",
      SECRET_KEY: "django-plain-value",
      SECRET_DB_PASSWORD: "myapp/db#password@3",
      SECRET_API_TOKEN: "custodia:myapp/token",
      SECRET_TLS_CRT: "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc&ttl=24h#certificate",
      SECRET_TLS_KEY: "issue:pki/issue/web?ttl=24h&common_name={pod.name}.{pod.namespace}.svc#private_key",
      SECRET_PGUSER: "issue:database/creds/app#username",
      SECRET_PGPASSWORD: "issue:database/creds/app#password",
    });
    expect(code).toBe(0);
    expect(text).toBe(`kustodia-shim --explain: what a start would do (no backend contacted, no value shown)

pod:      shop/web-0 (ServiceAccount web), from KUSTODIA_POD_NAMESPACE, KUSTODIA_POD_NAME, KUSTODIA_POD_SERVICE_ACCOUNT
mode:     exec: the shim replaces itself with the app

backends:
  custodia  http+unix:///run/custodia.sock
  vault     https://vault.example:8200, vault kubernetes login at auth/kubernetes, role "web", KV mount secret/

vars (6):
  API_TOKEN  <- SECRET_API_TOKEN="custodia:myapp/token"
      read custodia key /secrets/myapp/token
  DB_PASSWORD  <- SECRET_DB_PASSWORD="myapp/db#password@3"
      read vault secret "myapp/db" version 3 in mount secret/, field "password"
  PGPASSWORD  <- SECRET_PGPASSWORD="issue:database/creds/app#password"
      issuance #1: vault read database/creds/app, field "password"
      one response with PGUSER
  PGUSER  <- SECRET_PGUSER="issue:database/creds/app#username"
      issuance #1: vault read database/creds/app, field "username"
      one response with PGPASSWORD
  TLS_CRT  <- SECRET_TLS_CRT="issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc&ttl=24h#certificate"
      issuance #2: vault write pki/issue/web common_name=web-0.shop.svc ttl=24h, field "certificate"
      one response with TLS_KEY
  TLS_KEY  <- SECRET_TLS_KEY="issue:pki/issue/web?ttl=24h&common_name={pod.name}.{pod.namespace}.svc#private_key"
      issuance #2: vault write pki/issue/web common_name=web-0.shop.svc ttl=24h, field "private_key"
      one response with TLS_CRT

passed through as they are (KUSTODIA_PASSTHROUGH): SECRET_KEY
`);
    expect(text).not.toContain("django-plain-value");
  });

  it("shows the command it would run and the rotation mode", () => {
    const { text } = run({ ...vault, KUSTODIA_ROTATION: "signal", KUSTODIA_ROTATION_MARGIN: "10m", SECRET_A: "a/b" }, [
      "--explain",
      "--",
      "sh",
      "-c",
      "exit 0",
    ]);
    expect(text).toContain('command:  ["sh","-c","exit 0"] (runs /usr/bin/sh)');
    expect(text).toContain(
      "mode:     rotation: the shim stays as the app's parent; re-reads stored secrets every 300 s, renews or issues anew issued ones 600 s before they expire, and sends the app SIGHUP when a value changes",
    );
  });

  it("exits 78 and lists what would make the start fail", () => {
    const { code, text } = run({ SECRET_A: "nofield", SECRET_B: "issue:pki/issue/web?common_name={pod.name}#certificate" }, [
      "--explain",
      "no-such-command-here",
    ]);
    expect(code).toBe(78);
    expect(text).toContain("pod:      unknown");
    expect(text).toContain(`the start would fail:
  command: no-such-command-here: command not found in PATH="/usr/bin:/bin"
  SECRET_A (reference "nofield"): invalid reference: needs a secret and a field: "<secret>/<field>" or "<secret>#<field>"
  SECRET_B (reference "issue:pki/issue/web?common_name={pod.name}#certificate"): the pod's identity for {pod.name} is unknown`);
  });

  it("names the settings a backend lacks", () => {
    const { code, text } = run({ SECRET_A: "a/b" });
    expect(code).toBe(78);
    expect(text).toContain(
      "  vault backend: KUSTODIA_VAULT_ADDR is not set\n  vault backend: KUSTODIA_VAULT_ROLE is not set (needed by KUSTODIA_VAULT_AUTH_METHOD=kubernetes)",
    );
  });
});
