// Calls to the Vault / OpenBao HTTP API (`/v1/...`) with the namespace header, the custom CA, and a
// token. Plain node http/https rather than the node-vault library: node-vault pulls axios and three
// more packages (~660 KB bundled, ~60 ms more start-up), reads VAULT_ADDR / VAULT_TOKEN /
// VAULT_NAMESPACE / VAULT_SKIP_VERIFY from the app's environment on its own (VAULT_SKIP_VERIFY would
// silently turn off TLS verification), and its `debug` logging prints request bodies — login JWTs
// and secret_ids — when DEBUG=node-vault is set. The shim needs five endpoints.
import { readFileSync } from "node:fs";
import { ShimEnv } from "../../common/contract.ts";
import type { VaultConfig } from "../config.ts";
import { createHttpClient, endpointFromUrl, type HttpAnswer, type HttpCall } from "./http.ts";
import { SourceError } from "./source.ts";

export interface VaultApi {
  call(method: HttpCall["method"], path: string, options: { token?: string; body?: unknown; timeoutMs: number }): Promise<HttpAnswer>;
  close(): void;
}

/** Reads a file the shim was pointed at by `setting`; a missing or unreadable file is a config error. */
export function readSettingFile(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    const reason = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new SourceError("config", `${setting}=${JSON.stringify(path)}: ${reason}`);
  }
}

export function createVaultApi(vault: VaultConfig & { addr: string }): VaultApi {
  const endpoint = endpointFromUrl(vault.addr);
  if (vault.caCertFile !== undefined) endpoint.ca = readSettingFile(vault.caCertFile, ShimEnv.vaultCaCert);
  const http = createHttpClient(endpoint, "vault");
  const namespace: Record<string, string> = vault.namespace === undefined ? {} : { "x-vault-namespace": vault.namespace };
  return {
    call: (method, path, { token, body, timeoutMs }) =>
      http.call({
        method,
        path: `/v1/${path}`,
        headers: { "x-vault-request": "true", ...namespace, ...(token === undefined ? {} : { "x-vault-token": token }) },
        body,
        timeoutMs,
      }),
    close: () => http.close(),
  };
}
