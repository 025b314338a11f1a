// Vault / OpenBao KV secrets. The KV version is detected per mount as the Vault CLI does it
// (`GET sys/internal/ui/mounts/<mount>` → options.version; a 404 there means an old server: v1), and
// the configured mount may lie below the real one (`KUSTODIA_VAULT_KV_MOUNT=secret/team` reads
// `secret/data/team/<path>` on a v2 mount `secret/`). Field values that are not strings are handed
// over as JSON (`3`, `true`, `{"a":1}`); null becomes the empty string.
//
// Issued references (`issue:pki/issue/web?...#certificate`) are served by vault-issue.ts, loaded only
// when a reference asks for one; leases are renewed with the same token, and the token is revoked on
// `release` (when the shim logged in itself), which ends every lease issued under it.
import { ShimEnv } from "../../common/contract.ts";
import type { IssuedReference, SecretReference } from "../../common/reference.ts";
import type { VaultConfig } from "../config.ts";
import type { Log } from "../log.ts";
import { errorSummary } from "./http.ts";
import { type Lease, type LeaseIssuer, type ReadOptions, type Secret, type SecretSource, SourceError } from "./source.ts";
import { createVaultApi, type VaultApi } from "./vault-api.ts";
import { type SessionToken, VaultSession } from "./vault-auth.ts";
import { encodePath, fieldText } from "./vault-encoding.ts";

type VaultAnswer = Awaited<ReturnType<VaultApi["call"]>>;

interface KvMount {
  /** The real mount, e.g. `secret`. */
  mount: string;
  /** Path below the mount that the configured mount adds, e.g. `team/`, or "". */
  prefix: string;
  version: 1 | 2;
}

/** Where a KV reference points, for messages: `vault secret "myapp/db" version 3 in mount secret/`. */
export function describeKvSecret(reference: SecretReference, kvMount: string): string {
  const version = reference.version === undefined ? "" : ` version ${reference.version}`;
  return `vault secret ${JSON.stringify(reference.path)}${version} in mount ${kvMount}/`;
}

/** Whether a read answered as a KV v2 mount answers: the fields beside metadata with a version. */
function isKvV2Answer(answer: VaultAnswer): boolean {
  if (answer.status !== 200) return false;
  const data = (answer.json as { data?: { data?: unknown; metadata?: { version?: unknown } | null } } | undefined)?.data;
  return typeof data?.data === "object" && typeof data.metadata?.version === "number";
}

interface Confirmed<T> {
  value: T;
  /** When the token that `value` was had with expires unless renewed (epoch ms). */
  tokenExpiresAt?: number;
}

/**
 * `call` with the token, beside Vault's confirmation of the token. Vault's refusal of the token is the
 * error whatever `call` met: it is what the call would have met had it waited for the confirmation.
 */
async function confirmedCall<T>(session: SessionToken, call: (token: string) => Promise<T>): Promise<Confirmed<T>> {
  const [outcome, confirmed] = await Promise.allSettled([call(session.token), session.confirmed]);
  if (confirmed.status === "rejected") throw confirmed.reason;
  if (outcome.status === "rejected") throw outcome.reason;
  return { value: outcome.value, ...(confirmed.value.expiresAt === undefined ? {} : { tokenExpiresAt: confirmed.value.expiresAt }) };
}

export class VaultSource implements SecretSource, LeaseIssuer {
  readonly #api: VaultApi;
  readonly #session: VaultSession;
  readonly #vault: VaultConfig;
  readonly #log: Log;
  #kvMount: Promise<KvMount> | undefined;
  /** The detected mount, once the detection has answered. */
  #kvMountKnown: KvMount | undefined;
  /** Whether a lease was issued under the shim's own login (release then revokes the token). */
  #leased = false;

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
    return describeKvSecret(reference, this.#vault.kvMount);
  }

  keepAlive(): () => void {
    return this.#session.keepAlive();
  }

  async read(reference: SecretReference, options: ReadOptions): Promise<Secret> {
    return (await this.#withToken(options, (token) => this.#readWith(token, reference, options))).value;
  }

  async issue(reference: IssuedReference, options: ReadOptions): Promise<Secret> {
    const { value: secret, tokenExpiresAt } = await this.#withToken(options, async (token) => {
      const { issue } = await import("./vault-issue.ts");
      return issue(this.#api, token, reference, options, this.#log);
    });
    if (!secret.info.lease) return secret;
    // Vault revokes a token's leases with the token.
    this.#leased = true;
    return tokenExpiresAt === undefined ? secret : { ...secret, info: { ...secret.info, tokenExpiresAt } };
  }

  async renew(lease: Lease, incrementS: number, options: ReadOptions): Promise<number> {
    const renewed = await this.#withToken(options, async (token) => {
      const { renewLease } = await import("./vault-issue.ts");
      return renewLease(this.#api, token, lease, incrementS, options);
    });
    return renewed.value;
  }

  async release(options: ReadOptions): Promise<void> {
    if (!this.#leased || this.#vault.authMethod === "token") return;
    const { token, confirmed } = await this.#session.token(options.timeoutMs);
    await confirmed;
    const answer = await this.#api.call("POST", "auth/token/revoke-self", { token, body: {}, timeoutMs: options.timeoutMs });
    if (answer.status !== 204 && answer.status !== 200)
      throw new SourceError("denied", `revoking the shim's vault token: HTTP ${answer.status}`);
    this.#log.debug("vault token revoked, and with it every lease issued under it");
  }

  onCredentialReplaced(listener: (retiredAt: number) => void): void {
    this.#session.onReplaced(listener);
  }

  /** Runs `call` with the session's token; a token from before the call that Vault refuses is replaced by a new login, once. */
  async #withToken<T>(options: ReadOptions, call: (token: string) => Promise<T>): Promise<Confirmed<T>> {
    const started = Date.now();
    const first = await this.#session.token(options.timeoutMs);
    try {
      return await confirmedCall(first, call);
    } catch (error) {
      // A token from before this call may have expired or been revoked: log in again, once.
      const stale = first.issuedAt < started;
      if (!(error instanceof SourceError && error.kind === "denied" && stale)) throw error;
      this.#session.forget(first.token);
      const second = await this.#session.token(options.timeoutMs);
      return confirmedCall(second, call);
    }
  }

  async #readWith(token: string, reference: SecretReference, options: ReadOptions): Promise<Secret> {
    const known = this.#kvMountKnown;
    if (known) return this.#secretFrom(await this.#get(token, known, reference, options.timeoutMs), known, reference);
    // The mount is not known yet. The read of the common case (a KV v2 mount exactly at the configured
    // path) goes out first and the detection beside it, instead of one after the other: an answer
    // shaped as KV v2 answers (data.data beside data.metadata.version) settles it one round trip
    // sooner. Any other answer waits for the detection, and is used only if the detection agrees.
    const guess: KvMount = { mount: this.#vault.kvMount, prefix: "", version: 2 };
    const speculative = this.#get(token, guess, reference, options.timeoutMs).catch((error: unknown) => error as Error);
    const detection = this.#mount(token, options.timeoutMs);
    detection.catch(() => {}); // awaited below only when the guess did not settle it
    const early = await speculative;
    if (!(early instanceof Error) && isKvV2Answer(early)) return this.#secretFrom(early, guess, reference);
    const kv = await detection;
    if (reference.version !== undefined && kv.version === 1) {
      throw new SourceError("malformed", `mount ${kv.mount}/ is KV version 1, which has no versions: drop "@${reference.version}"`);
    }
    const guessed = kv.mount === guess.mount && kv.prefix === "" && kv.version === 2;
    const answer = guessed ? early : await this.#get(token, kv, reference, options.timeoutMs);
    if (answer instanceof Error) throw answer;
    return this.#secretFrom(answer, kv, reference);
  }

  #get(token: string, kv: KvMount, reference: SecretReference, timeoutMs: number): Promise<VaultAnswer> {
    const secretPath = encodePath(`${kv.prefix}${reference.path}`);
    const path =
      kv.version === 2
        ? `${kv.mount}/data/${secretPath}${reference.version === undefined ? "" : `?version=${reference.version}`}`
        : `${kv.mount}/${secretPath}`;
    return this.#api.call("GET", path, { token, timeoutMs });
  }

  #secretFrom(answer: VaultAnswer, kv: KvMount, reference: SecretReference): Secret {
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
    const version = kv.version === 2 ? (data as { metadata?: { version?: unknown } } | undefined)?.metadata?.version : undefined;
    return { fields: result, info: { at: Date.now(), ...(typeof version === "number" ? { version } : {}) } };
  }

  #mount(token: string, timeoutMs: number): Promise<KvMount> {
    this.#kvMount ??= this.#detectMount(token, timeoutMs).then(
      (mount) => {
        this.#kvMountKnown = mount;
        return mount;
      },
      (error: unknown) => {
        this.#kvMount = undefined;
        throw error;
      },
    );
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
