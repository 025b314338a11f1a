// `kustodia-shim --explain` as a process. One FAKE here, on purpose: a TCP listener in the backend's
// place that only counts connections, to prove --explain makes none. Loopback only.
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { baseEnv, runDirect, SHIM } from "./harness.ts";

/** `kustodia-shim --explain [args]` as a process. */
const explain = (env: Record<string, string>, args: string[] = []) => runDirect(env, [process.execPath, SHIM, "--explain", ...args]);

// `kustodia-shim --explain` as a user runs it in a container: the real shim process, a backend that
// would notice any connection, the container's own env.
describe("kustodia-shim --explain", () => {
  it("explains the start without contacting the backend, writing an audit record or starting the app", async () => {
    let connections = 0;
    const backend = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => backend.listen(0, "127.0.0.1", resolve));
    const address = backend.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const run = await explain(
      {
        ...baseEnv(),
        KUSTODIA_VAULT_ADDR: `http://127.0.0.1:${port}`,
        KUSTODIA_VAULT_ROLE: "web",
        KUSTODIA_POD_NAME: "web-0",
        KUSTODIA_POD_NAMESPACE: "shop",
        SECRET_TLS_CRT: "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc#certificate",
        SECRET_TLS_KEY: "issue:pki/issue/web?common_name={pod.name}.{pod.namespace}.svc#private_key",
        SECRET_DB_PASSWORD: "myapp/db#password",
      },
      ["--", "sh", "-c", "printf '\\101PP\\n'"],
    );
    backend.close();
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("");
    expect(connections).toBe(0);
    expect(run.stdout).not.toContain("APP");
    expect(run.stdout).toContain("pod:      shop/web-0, from KUSTODIA_POD_NAMESPACE, KUSTODIA_POD_NAME");
    expect(run.stdout).toContain(
      'issuance #1: vault write pki/issue/web common_name=web-0.shop.svc, field "certificate"\n      one response with TLS_KEY',
    );
    expect(run.stdout).toContain('read vault secret "myapp/db" in mount secret/, field "password"');
  });

  it("exits 78 and says why when the start would fail", async () => {
    const run = await explain({ ...baseEnv(), SECRET_A: "myapp/../etc#x", SECRET_B: "myapp/b" });
    expect(run.code).toBe(78);
    expect(run.stdout).toMatch(/the start would fail:\n {2}vault backend: KUSTODIA_VAULT_ADDR is not set\n/);
    expect(run.stdout).toContain(
      'SECRET_A (reference "myapp/../etc#x"): invalid reference: path "myapp/../etc" has an empty, "." or ".." segment',
    );
  });
});
