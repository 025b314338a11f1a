// Vault / OpenBao KV secrets. The KV version is detected per mount as the Vault CLI does it
// (`GET sys/internal/ui/mounts/<mount>` → options.version; a 404 there means an old server: v1), and
// the configured mount may lie below the real one (`KUSTODIA_VAULT_KV_MOUNT=secret/team` reads
// `secret/data/team/<path>` on a v2 mount `secret/`). Field values that are not strings are handed
// over as JSON (`3`, `true`, `{"a":1}`); null becomes the empty string.
import { ShimEnv } from "../../common/contract.ts";
import type { SecretReference } from "../../common/reference.ts";
import type { VaultConfig } from "../config.ts";
import type { Log } from "../log.ts";
import { errorSummary } from "./http.ts";
import { type ReadOptions, type SecretFields, type SecretSource, SourceError } from "./source.ts";
import { createVaultApi, type VaultApi } from "./vault-api.ts";
import { VaultSession } from "./vault-auth.ts";

interface KvMount {
  /** The real mount, e.g. `secret`. */
  mount: string;
  /** Path below the mount that the configured mount adds, e.g. `team/`, or "". */
  prefix: string;
  version: 1 | 2;
}

function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** How a KV field value reaches the env. */
export function fieldText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "";
  return JSON.stringify(value);
}

export class VaultSource implements SecretSource {
  readonly #api: VaultApi;
  readonly #session: VaultSession;
  readonly #vault: VaultConfig;
  readonly #log: Log;
  #kvMount: Promise<KvMount> | undefined;

  constructor(vault: VaultConfig & { addr: string }, log: Log) {
    this.#vault = vault;
    this.#log = log;
    this.#api = createVaultApi(vault);
    this.#session = new VaultSession(this.#api, vault, log);
  }

  readKey(reference: SecretReference): string {
    return `${reference.version ?? "latest"}:${reference.path}`;
  }

  describe(reference: SecretReference): string {
    const version = reference.version === undefined ? "" : ` version ${reference.version}`;
    return `vault secret ${JSON.stringify(reference.path)}${version} in mount ${this.#vault.kvMount}/`;
  }

  keepAlive(): () => void {
    return this.#session.keepAlive();
  }

  async read(reference: SecretReference, options: ReadOptions): Promise<SecretFields> {
    const started = Date.now();
    const first = await this.#session.token(options.timeoutMs);
    try {
      return await this.#readWith(first.token, reference, options);
    } catch (error) {
      // A token from before this read may have expired or been revoked: log in again, once.
      const stale = first.issuedAt < started;
      if (!(error instanceof SourceError && error.kind === "denied" && stale)) throw error;
      this.#session.forget(first.token);
      const second = await this.#session.token(options.timeoutMs);
      return this.#readWith(second.token, reference, options);
    }
  }

  async #readWith(token: string, reference: SecretReference, options: ReadOptions): Promise<SecretFields> {
    const kv = await this.#mount(token, options.timeoutMs);
    if (reference.version !== undefined && kv.version === 1) {
      throw new SourceError("malformed", `mount ${kv.mount}/ is KV version 1, which has no versions: drop "@${reference.version}"`);
    }
    const secretPath = encodePath(`${kv.prefix}${reference.path}`);
    const path =
      kv.version === 2
        ? `${kv.mount}/data/${secretPath}${reference.version === undefined ? "" : `?version=${reference.version}`}`
        : `${kv.mount}/${secretPath}`;
    const answer = await this.#api.call("GET", path, { token, timeoutMs: options.timeoutMs });
    const where = `${this.describe(reference)} (KV v${kv.version})`;
    if (answer.status === 404) throw new SourceError("missing", `not found: ${where}`);
    if (answer.status === 403 || answer.status === 401) {
      throw new SourceError("denied", `permission denied: ${where}, for the token of the ${this.#session.describe()}`);
    }
    if (answer.status !== 200)
      throw new SourceError("malformed", `${where}: HTTP ${answer.status}${errorSummary(answer.json, answer.text)}`);
    const data = (answer.json as { data?: unknown } | undefined)?.data;
    const fields = kv.version === 2 ? (data as { data?: unknown } | undefined)?.data : data;
    if (fields === null && kv.version === 2) throw new SourceError("missing", `not found: ${where} is deleted or destroyed`);
    if (typeof fields !== "object" || fields === null) throw new SourceError("malformed", `${where}: the answer has no data`);
    const result = new Map<string, string>();
    for (const [field, value] of Object.entries(fields)) {
      const text = fieldText(value);
      this.#log.redact(text);
      result.set(field, text);
    }
    this.#log.debug(`read ${where}: ${result.size} field(s)`);
    return result;
  }

  #mount(token: string, timeoutMs: number): Promise<KvMount> {
    this.#kvMount ??= this.#detectMount(token, timeoutMs).catch((error: unknown) => {
      this.#kvMount = undefined;
      throw error;
    });
    return this.#kvMount;
  }

  async #detectMount(token: string, timeoutMs: number): Promise<KvMount> {
    const configured = this.#vault.kvMount;
    const answer = await this.#api.call("GET", `sys/internal/ui/mounts/${encodePath(configured)}`, { token, timeoutMs });
    if (answer.status === 404) return { mount: configured, prefix: "", version: 1 };
    const data = (answer.json as { data?: { path?: unknown; options?: { version?: unknown } | null } } | undefined)?.data;
    if (answer.status !== 200 || data === undefined) {
      const kind = answer.status === 403 || answer.status === 401 ? "denied" : "config";
      throw new SourceError(
        kind,
        `KV mount ${configured}/ (${ShimEnv.vaultKvMount}): HTTP ${answer.status}${errorSummary(answer.json, answer.text)}`,
      );
    }
    const mount = typeof data.path === "string" && data.path !== "" ? data.path.replace(/\/+$/, "") : configured;
    const prefix = configured.startsWith(`${mount}/`) ? `${configured.slice(mount.length + 1)}/` : "";
    const version = data.options?.version === "2" ? 2 : 1;
    this.#log.debug(`KV mount ${mount}/ is version ${version}${prefix ? `, secrets under ${prefix}` : ""}`);
    return { mount, prefix, version };
  }
}
