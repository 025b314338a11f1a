// Custodia keys of the `simple` type: a reference `myapp/password` is the key
// `GET /secrets/myapp/password` → `{"type":"simple","value":...}`.
//
// Transport: `http+unix:///abs/path.sock`, where Custodia authenticates the shim by the uid/gid of
// the socket peer (nothing to send), or `https://host:port[/base]` with a client certificate
// (KUSTODIA_CUSTODIA_CLIENT_CERT / _KEY), announced with Custodia's `CUSTODIA_CERT_AUTH: true` header
// as its own CLI does, and an optional CA bundle (KUSTODIA_CUSTODIA_CACERT).
import { ShimEnv } from "../../common/contract.ts";
import type { SecretReference } from "../../common/reference.ts";
import type { CustodiaConfig } from "../config.ts";
import type { Log } from "../log.ts";
import { createHttpClient, endpointFromUrl, errorSummary, type HttpClient } from "./http.ts";
import { type ReadOptions, type Secret, type SecretSource, SourceError } from "./source.ts";
import { readSettingFile } from "./vault-api.ts";

/** Where a Custodia reference points, for messages: `custodia key /secrets/myapp/password`. */
export function describeCustodiaKey(reference: SecretReference): string {
  return `custodia key /secrets/${reference.path}/${reference.field}`;
}

export class CustodiaSource implements SecretSource {
  readonly #http: HttpClient;
  readonly #headers: Record<string, string>;
  readonly #log: Log;

  constructor(custodia: CustodiaConfig & { url: string }, log: Log) {
    this.#log = log;
    let endpoint: ReturnType<typeof endpointFromUrl>;
    try {
      endpoint = endpointFromUrl(custodia.url);
    } catch (error) {
      throw new SourceError("config", `${ShimEnv.custodiaUrl}: ${(error as Error).message}`);
    }
    if (custodia.caCertFile) endpoint.ca = readSettingFile(custodia.caCertFile, ShimEnv.custodiaCaCert);
    if (custodia.clientCertFile && custodia.clientKeyFile) {
      endpoint.cert = readSettingFile(custodia.clientCertFile, ShimEnv.custodiaClientCert);
      endpoint.key = readSettingFile(custodia.clientKeyFile, ShimEnv.custodiaClientKey);
    }
    this.#headers = endpoint.cert ? { CUSTODIA_CERT_AUTH: "true" } : {};
    this.#http = createHttpClient(endpoint, "custodia");
  }

  readKey(reference: SecretReference): string {
    return `${reference.path}/${reference.field}`;
  }

  describe(reference: SecretReference): string {
    return describeCustodiaKey(reference);
  }

  async read(reference: SecretReference, options: ReadOptions): Promise<Secret> {
    const key = `${reference.path}/${reference.field}`.split("/").map(encodeURIComponent).join("/");
    const answer = await this.#http.call({ method: "GET", path: `/secrets/${key}`, headers: this.#headers, timeoutMs: options.timeoutMs });
    const where = this.describe(reference);
    if (answer.status === 404) throw new SourceError("missing", `not found: ${where}`);
    if (answer.status === 401 || answer.status === 403) {
      throw new SourceError(
        "denied",
        `${where}: HTTP ${answer.status} (Custodia did not admit this process's uid/gid or client certificate)`,
      );
    }
    if (answer.status === 406) throw new SourceError("malformed", `${where} is not of the "simple" type`);
    if (answer.status !== 200)
      throw new SourceError("malformed", `${where}: HTTP ${answer.status}${errorSummary(answer.json, answer.text)}`);
    const stored = answer.json as { type?: unknown; value?: unknown } | undefined;
    if (stored?.type !== "simple" || typeof stored.value !== "string") {
      throw new SourceError("malformed", `${where}: expected {"type":"simple","value":"..."}`);
    }
    this.#log.redact(stored.value);
    return { fields: new Map([[reference.field, stored.value]]), info: { at: Date.now() } };
  }
}
