// The shim's Vault token: a login with the pod's identity (kubernetes / jwt: the ServiceAccount token
// file; approle: role_id and secret_id files; token: a token file), shared by every read, and — while
// the shim stays resident for rotation — renewed before it expires, or replaced by a new login when it
// cannot be renewed any more. Credentials are read from their files at each login (projected
// ServiceAccount tokens rotate) and kept only in memory. A token from a file is there at once: Vault's
// lookup-self, which confirms it (and tells its TTL), runs beside the first requests made with it
// instead of one round trip before them, and a refusal there is what those requests end with.
import { ShimEnv } from "../../common/contract.ts";
import type { VaultConfig } from "../config.ts";
import type { Log } from "../log.ts";
import { errorSummary } from "./http.ts";
import { SourceError } from "./source.ts";
import { readSettingFile, type VaultApi } from "./vault-api.ts";

interface Lease {
  token: string;
  /** Seconds; 0 = never expires. */
  ttl: number;
  renewable: boolean;
  issuedAt: number;
  /** When the token expires unless renewed (epoch ms); undefined: never. */
  expiresAt?: number;
}

const expiry = (ttl: number, from = Date.now()) => (ttl > 0 ? from + ttl * 1000 : undefined);

/** A token to make requests with. */
export interface SessionToken {
  token: string;
  /** When the shim got it (epoch ms). */
  issuedAt: number;
  /**
   * Vault's confirmation of the token, with its expiry: settled at once after a login; for a token
   * file, when lookup-self answers. Rejects with Vault's refusal, which then stands for whatever the
   * requests made with the token met.
   */
  confirmed: Promise<{ expiresAt?: number }>;
}

/** Shortest wait between renewal attempts, and the retry delay after a failed one. */
const RENEW_RETRY_MS = 10_000;

function readCredential(path: string, setting: string): string {
  const value = readSettingFile(path, setting).toString("utf8").trim();
  if (value === "") throw new SourceError("config", `${setting}=${JSON.stringify(path)}: the file is empty`);
  return value;
}

/** What a login is, for messages: `vault kubernetes login at auth/kubernetes, role "app"`. */
export function describeLogin(vault: VaultConfig): string {
  const role = vault.role && vault.authMethod !== "approle" ? `, role ${JSON.stringify(vault.role)}` : "";
  const at = vault.authMethod === "token" ? "" : ` at auth/${vault.authPath}`;
  return `vault ${vault.authMethod} login${at}${role}`;
}

export class VaultSession {
  readonly #api: VaultApi;
  readonly #vault: VaultConfig;
  readonly #log: Log;
  #session: Promise<SessionToken> | undefined;
  /** The confirmed lease of #session, once Vault has confirmed it. */
  #current: Lease | undefined;
  #renewal: NodeJS.Timeout | undefined;
  #resident = false;
  readonly #replaced: ((retiredAt: number) => void)[] = [];

  constructor(api: VaultApi, vault: VaultConfig, log: Log) {
    this.#api = api;
    this.#vault = vault;
    this.#log = log;
  }

  /** What the login is, for messages: `kubernetes login at auth/kubernetes, role "app"`. */
  describe(): string {
    return describeLogin(this.#vault);
  }

  /** The current token, logging in first when there is none. A refused login or token is forgotten. */
  token(timeoutMs: number): Promise<SessionToken> {
    if (this.#session) return this.#session;
    const session = this.#open(timeoutMs);
    this.#session = session;
    const forgetIfRefused = () => {
      if (this.#session === session) this.#session = undefined;
    };
    session.then((opened) => opened.confirmed.catch(forgetIfRefused), forgetIfRefused);
    return session;
  }

  async #open(timeoutMs: number): Promise<SessionToken> {
    if (this.#vault.authMethod !== "token") {
      const lease = await this.#login(timeoutMs);
      return { token: lease.token, issuedAt: lease.issuedAt, confirmed: this.#adopt(Promise.resolve(lease)) };
    }
    const token = readCredential(this.#vault.tokenFile ?? "", ShimEnv.vaultTokenFile);
    this.#log.redact(token);
    return { token, issuedAt: Date.now(), confirmed: this.#adopt(this.#lookupToken(token, timeoutMs)) };
  }

  /** The lease becomes the current one (renewed while resident) once it is confirmed. */
  #adopt(lease: Promise<Lease>): Promise<Lease> {
    const adopted = lease.then((confirmed) => {
      this.#current = confirmed;
      this.#schedule(confirmed);
      return confirmed;
    });
    adopted.catch(() => {}); // handled by token() and by whoever awaits the confirmation
    return adopted;
  }

  /** Drops `token` after Vault refused it (expired or revoked), so the next call logs in again. */
  forget(token: string): void {
    if (this.#current?.token !== token) return;
    this.#current = undefined;
    this.#session = undefined;
    this.#retired(Date.now());
  }

  /** `listener` learns when the token is replaced: leases issued under the old one end at `retiredAt`. */
  onReplaced(listener: (retiredAt: number) => void): void {
    this.#replaced.push(listener);
  }

  #retired(at: number): void {
    for (const listener of this.#replaced) listener(at);
  }

  /** Keeps the token alive until the returned function is called. */
  keepAlive(): () => void {
    this.#resident = true;
    if (this.#current) this.#schedule(this.#current);
    return () => {
      this.#resident = false;
      clearTimeout(this.#renewal);
    };
  }

  async #login(timeoutMs: number): Promise<Lease> {
    const vault = this.#vault;
    let body: Record<string, string>;
    if (vault.authMethod === "approle") {
      body = { role_id: readCredential(vault.roleIdFile ?? "", ShimEnv.vaultRoleIdFile) };
      if (vault.secretIdFile !== undefined) body.secret_id = readCredential(vault.secretIdFile, ShimEnv.vaultSecretIdFile);
    } else {
      body = { role: vault.role ?? "", jwt: readCredential(vault.saTokenFile, ShimEnv.saTokenFile) };
    }
    for (const [name, credential] of Object.entries(body)) if (name !== "role") this.#log.redact(credential);
    const answer = await this.#api.call("POST", `auth/${vault.authPath}/login`, { body, timeoutMs });
    const auth = (answer.json as { auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } } | undefined)?.auth;
    if (answer.status === 200 && typeof auth?.client_token === "string") {
      this.#log.redact(auth.client_token);
      this.#log.debug(`${this.describe()}: ok, token ttl ${String(auth.lease_duration)} s`);
      const ttl = Number(auth.lease_duration) || 0;
      return { token: auth.client_token, ttl, renewable: auth.renewable === true, issuedAt: Date.now(), expiresAt: expiry(ttl) };
    }
    if (answer.status === 404 || answer.status === 405) {
      throw new SourceError("config", `${this.describe()}: no auth method is mounted there (${ShimEnv.vaultAuthPath})`);
    }
    throw new SourceError("denied", `${this.describe()} refused: HTTP ${answer.status}${errorSummary(answer.json, answer.text)}`);
  }

  /** A token from a file: looked up for its TTL (renewal), refused when Vault does not know it. */
  async #lookupToken(token: string, timeoutMs: number): Promise<Lease> {
    const answer = await this.#api.call("GET", "auth/token/lookup-self", { token, timeoutMs });
    const data = (answer.json as { data?: { ttl?: unknown; renewable?: unknown } } | undefined)?.data;
    if (answer.status !== 200 || data === undefined) {
      throw new SourceError(
        "denied",
        `${this.describe()} (${ShimEnv.vaultTokenFile}) refused: HTTP ${answer.status}${errorSummary(answer.json, answer.text)}`,
      );
    }
    const ttl = Number(data.ttl) || 0;
    return { token, ttl, renewable: data.renewable === true, issuedAt: Date.now(), expiresAt: expiry(ttl) };
  }

  #schedule(lease: Lease, delayMs = (lease.ttl * 1000 * 2) / 3): void {
    clearTimeout(this.#renewal);
    if (!this.#resident || lease.ttl <= 0) return;
    this.#renewal = setTimeout(() => void this.#refresh(lease), Math.max(delayMs, 1000));
    this.#renewal.unref();
  }

  /** Renews the token when Vault allows it for (about) its full TTL again; otherwise logs in anew. */
  async #refresh(lease: Lease): Promise<void> {
    const timeoutMs = RENEW_RETRY_MS;
    try {
      if (lease.renewable) {
        const answer = await this.#api.call("POST", "auth/token/renew-self", { token: lease.token, body: {}, timeoutMs });
        const ttl = Number((answer.json as { auth?: { lease_duration?: unknown } } | undefined)?.auth?.lease_duration);
        if (answer.status === 200 && ttl * 2 >= lease.ttl) {
          this.#log.debug(`vault token renewed for ${ttl} s`);
          const renewed = { ...lease, ttl, expiresAt: expiry(ttl) };
          if (this.#current === lease) this.#current = renewed;
          this.#schedule(renewed);
          return;
        }
      }
      this.#session = undefined;
      await (await this.token(timeoutMs)).confirmed;
      this.#log.debug("vault token replaced by a new login");
      this.#retired(lease.expiresAt ?? Date.now());
    } catch (error) {
      this.#log.warn(`vault token renewal failed, retrying in ${RENEW_RETRY_MS / 1000} s: ${(error as Error).message}`);
      this.#schedule(lease, RENEW_RETRY_MS);
    }
  }
}
