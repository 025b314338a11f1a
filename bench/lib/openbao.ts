// Benchmark fixtures in the test OpenBao (root token, setup only): secrets at distinct KV v2 paths,
// a read policy for them and a token holding it — what both shims read with.
import { randomBytes } from "node:crypto";
import { asRoot, openbaoApi } from "../../test/infra/openbao-api.ts";
import type { OpenBaoCoordinates } from "../../test/infra/types.ts";

function api(openbao: OpenBaoCoordinates, method: string, path: string, body?: unknown) {
  return openbaoApi(asRoot(openbao), method, path, body);
}

export interface BenchSecrets {
  /** Under the KV v2 mount: `<prefix>/s<i>`, each with the field `value`. */
  prefix: string;
  mount: string;
  token: string;
  count: number;
}

/** `count` secrets at distinct paths, and a token (1 h) allowed to read exactly those. */
export async function createSecrets(openbao: OpenBaoCoordinates, count: number): Promise<BenchSecrets> {
  const prefix = `kbench-${randomBytes(4).toString("hex")}`;
  const mount = openbao.kvV2Mount;
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      api(openbao, "POST", `${mount}/data/${prefix}/s${i}`, { data: { value: `value-${i}-${randomBytes(12).toString("base64url")}` } }),
    ),
  );
  const policy = `${prefix}-read`;
  await api(openbao, "PUT", `sys/policies/acl/${policy}`, { policy: `path "${mount}/data/${prefix}/*" { capabilities = ["read"] }` });
  const created = await api(openbao, "POST", "auth/token/create", { policies: [policy], ttl: "1h" });
  const token = created.auth.client_token as string;
  return { prefix, mount, token, count };
}
