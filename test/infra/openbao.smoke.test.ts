// Proves the OpenBao of the test infrastructure is the real server: KV v2 keeps versions, KV v1 does
// not, and the process answering is the installed `bao` binary.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";
import { asRoot, type BaoBody, openbaoCall } from "./openbao-api.ts";

function bao(method: string, path: string, body?: unknown) {
  return openbaoCall(asRoot(service("openbao")), method, path, body);
}

describe.skipIf(skipWithout("openbao"))("OpenBao (test infrastructure)", () => {
  it("is the installed bao binary, unsealed", async () => {
    const { addr, binary, version } = service("openbao");
    const health = (await (await fetch(`${addr}/v1/sys/health`)).json()) as BaoBody;
    expect(health).toMatchObject({ initialized: true, sealed: false, version });
    expect(execFileSync(binary, ["version"], { encoding: "utf8" })).toContain(`OpenBao v${version}`);
  });

  it("keeps versions of a KV v2 secret", async () => {
    const { kvV2Mount } = service("openbao");
    const path = `smoke/${randomUUID()}`;

    const first = await bao("POST", `${kvV2Mount}/data/${path}`, { data: { password: "one" } });
    expect(first.status).toBe(200);
    expect(first.body.data.version).toBe(1);
    const second = await bao("POST", `${kvV2Mount}/data/${path}`, { data: { password: "two" } });
    expect(second.body.data.version).toBe(2);

    const latest = await bao("GET", `${kvV2Mount}/data/${path}`);
    expect(latest.status).toBe(200);
    expect(latest.body.data.data).toEqual({ password: "two" });
    expect(latest.body.data.metadata).toMatchObject({ version: 2, destroyed: false });

    const v1 = await bao("GET", `${kvV2Mount}/data/${path}?version=1`);
    expect(v1.body.data.data).toEqual({ password: "one" });
    expect(v1.body.data.metadata.version).toBe(1);

    const metadata = await bao("GET", `${kvV2Mount}/metadata/${path}`);
    expect(metadata.body.data.current_version).toBe(2);
  });

  it("stores a KV v1 secret without versions", async () => {
    const { kvV1Mount } = service("openbao");
    const path = `smoke/${randomUUID()}`;

    const mount = await bao("GET", `sys/mounts/${kvV1Mount}`);
    expect(mount.body.data).toMatchObject({ type: "kv", options: { version: "1" } });

    expect((await bao("POST", `${kvV1Mount}/${path}`, { password: "v1-value" })).status).toBe(204);
    const read = await bao("GET", `${kvV1Mount}/${path}`);
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({ password: "v1-value" });
    expect(read.body.data.metadata).toBeUndefined();
    expect((await bao("GET", `${kvV1Mount}/smoke/${randomUUID()}`)).status).toBe(404);
  });

  it("has AppRole and Kubernetes auth enabled", async () => {
    const { approleMount } = service("openbao");
    const auth = await bao("GET", "sys/auth");
    expect(auth.body.data[`${approleMount}/`]?.type).toBe("approle");
    expect(auth.body.data["kubernetes/"]?.type).toBe("kubernetes");
  });
});
