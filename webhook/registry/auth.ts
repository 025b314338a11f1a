// Registry authentication: `WWW-Authenticate` challenges, the Distribution token flow (Bearer:
// a token endpoint gives a token for a repository scope, with Basic credentials, an OAuth2 refresh
// token, or anonymously) and Basic auth. Tokens are cached per endpoint, scope and credential until
// they expire; hosts' challenges are remembered so that later lookups can send a token at once.
// The registry names its token endpoint (the realm), so a realm is followed only over https (or a
// host listed as plain HTTP) and only on the registry's own host, Docker Hub's auth host for the
// Docker Hub, or a host the operator listed: else a hostile registry points it anywhere.
import { createHash } from "node:crypto";
import { createLru, createTtlLru } from "./cache.ts";
import type { RegistryCredential } from "./credentials.ts";
import type { HttpResponse, Transport } from "./http.ts";
import { tokenRealmOf } from "./image-name.ts";

export interface Challenge {
  /** Lower case: `bearer`, `basic`. */
  scheme: string;
  params: Record<string, string>;
}

/** An Authorization header to try, and the credential it stands for (none: anonymous); no header when the token endpoint rejected the credential. */
export interface Attempt {
  authorization?: string;
  credential?: RegistryCredential;
}

/** Parses `WWW-Authenticate` (several challenges may be joined by commas). */
export function parseChallenges(header: string | undefined): Challenge[] {
  const challenges: Challenge[] = [];
  // A scheme is a bare token; a parameter is token=token or token="quoted string".
  const item = /\s*,?\s*([^\s=,]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?/y;
  for (let match = item.exec(header ?? ""); match; match = item.exec(header ?? "")) {
    const [, name = "", value] = match;
    const current = challenges.at(-1);
    if (value === undefined) challenges.push({ scheme: name.toLowerCase(), params: {} });
    else if (current) current.params[name.toLowerCase()] = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, "$1") : value;
  }
  return challenges;
}

export class TokenEndpointError extends Error {
  override name = "TokenEndpointError";
}

export interface Authenticator {
  /** What to send on the first request to `host` for `scope`, from an earlier challenge and a cached token. */
  preauthorize(host: string, scope: string, candidates: readonly RegistryCredential[]): string | undefined;
  /** After a 401: the Authorization headers to try, in order; an empty list when nothing can be tried. */
  attempts(
    host: string,
    response: HttpResponse,
    scope: string,
    candidates: readonly RegistryCredential[],
    signal: AbortSignal,
  ): AsyncGenerator<Attempt>;
  /** The registry rejected this header: never send it again. */
  forget(authorization: string): void;
}

export interface AuthenticatorOptions {
  transport: Transport;
  cacheSize: number;
  /** Hosts reached over plain HTTP: the only plain-HTTP token endpoints credentials are sent to. */
  plainHttp: readonly string[];
  /** Token endpoint hosts allowed besides the registry's own (`gitlab.com` for `registry.gitlab.com`). */
  tokenRealmHosts: readonly string[];
  maxBytes: number;
}

/** Tokens live as long as the endpoint says, less this margin; 60 s when it does not say (the token spec's default). */
const EXPIRY_MARGIN_S = 10;
const DEFAULT_EXPIRES_IN_S = 60;

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const tokens = createTtlLru<string>(options.cacheSize, DEFAULT_EXPIRES_IN_S * 1000);
  const challenges = createLru<Challenge>(options.cacheSize);
  /** Authorization header → its cache key, to forget a token the registry rejects. */
  const tokenKeys = createLru<string>(options.cacheSize);

  const cachedToken = (challenge: Challenge, scope: string, credential: RegistryCredential | undefined) =>
    tokens.get(tokenKey(challenge, scope, credential));

  return {
    preauthorize(host, scope, candidates) {
      const challenge = challenges.get(host);
      if (challenge?.scheme === "basic") return candidates.map(basicHeader).find(Boolean);
      if (challenge?.scheme !== "bearer") return undefined;
      const credential = candidates.find(usableForBearer);
      if (credential?.registryToken) return `Bearer ${credential.registryToken}`;
      const token = cachedToken(challenge, scope, credential);
      return token ? `Bearer ${token}` : undefined;
    },

    async *attempts(host, response, scope, candidates, signal) {
      const offered = parseChallenges(headerValue(response.headers["www-authenticate"]));
      const challenge = offered.find((one) => one.scheme === "bearer") ?? offered.find((one) => one.scheme === "basic");
      if (!challenge) return;
      challenges.set(host, challenge);
      if (challenge.scheme === "basic") {
        for (const credential of candidates) {
          const authorization = basicHeader(credential);
          if (authorization) yield { authorization, credential };
        }
        return;
      }
      const usable = candidates.filter(usableForBearer);
      for (const credential of usable.length > 0 ? usable : [undefined]) {
        const token =
          credential?.registryToken ??
          cachedToken(challenge, scope, credential) ??
          (await fetchToken(host, challenge, scope, credential, signal));
        const authorization = token === undefined ? {} : { authorization: `Bearer ${token}` };
        yield credential ? { ...authorization, credential } : authorization;
      }
    },

    forget(authorization) {
      const key = tokenKeys.get(authorization);
      if (key) tokens.delete(key);
    },
  };

  /** A token for the scope, or undefined when the endpoint rejected the credential. */
  async function fetchToken(
    host: string,
    challenge: Challenge,
    scope: string,
    credential: RegistryCredential | undefined,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const realm = tokenEndpoint(host, challenge);
    const response = await options.transport.send({
      ...tokenRequest(realm, challenge, scope, credential),
      signal,
      maxBytes: options.maxBytes,
    });
    if (response.status === 401 || response.status === 403) return undefined;
    if (response.status !== 200)
      throw new TokenEndpointError(`the token endpoint ${realm.origin}${realm.pathname} answered ${response.status}`);
    const { token, expiresInS } = readToken(response.body, realm);
    const key = tokenKey(challenge, scope, credential);
    tokens.setUntil(key, token, Date.now() + Math.max(expiresInS - EXPIRY_MARGIN_S, 1) * 1000);
    tokenKeys.set(`Bearer ${token}`, key);
    return token;
  }

  function tokenEndpoint(host: string, challenge: Challenge): URL {
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm ?? "");
    } catch {
      throw new TokenEndpointError(`the registry's Bearer challenge has no usable realm (${JSON.stringify(challenge.params.realm ?? "")})`);
    }
    const plainAllowed = realm.protocol === "http:" && options.plainHttp.includes(realm.host);
    if (realm.protocol !== "https:" && !plainAllowed) {
      throw new TokenEndpointError(
        `the token endpoint ${realm.origin} is not https (list ${realm.host} in KUSTODIA_REGISTRY_PLAIN_HTTP if it is a trusted plain-HTTP endpoint)`,
      );
    }
    const registryHost = new URL(`https://${host}`).hostname;
    const allowed = [registryHost, tokenRealmOf(registryHost), ...options.tokenRealmHosts];
    if (!allowed.includes(realm.hostname) && !options.tokenRealmHosts.includes(realm.host)) {
      throw new TokenEndpointError(
        `the token endpoint ${realm.origin} is not on the registry's host ${registryHost} (list ${realm.hostname} in KUSTODIA_REGISTRY_TOKEN_REALM_HOSTS if this registry's tokens come from there)`,
      );
    }
    return realm;
  }
}

function usableForBearer(credential: RegistryCredential): boolean {
  return Boolean(credential.username || credential.identityToken || credential.registryToken);
}

function basicHeader(credential: RegistryCredential): string | undefined {
  if (!credential.username) return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password ?? ""}`).toString("base64")}`;
}

/** Keyed by a hash of the credential, so that a token got with one pod's credential never serves another's. */
function tokenKey(challenge: Challenge, scope: string, credential: RegistryCredential | undefined): string {
  const identity = credential
    ? createHash("sha256")
        .update(JSON.stringify([credential.username, credential.password, credential.identityToken]))
        .digest("hex")
    : "anonymous";
  return JSON.stringify([challenge.params.realm, challenge.params.service ?? "", scope, identity]);
}

type TokenRequest = { method: "GET" | "POST"; url: URL; headers: Record<string, string>; body?: string };

/** GET with Basic credentials (or none); an identity token is an OAuth2 refresh token, POSTed as a form. */
function tokenRequest(realm: URL, challenge: Challenge, scope: string, credential: RegistryCredential | undefined): TokenRequest {
  const params = new URLSearchParams(realm.search);
  if (challenge.params.service) params.set("service", challenge.params.service);
  params.set("scope", scope);
  if (credential?.identityToken) {
    params.set("grant_type", "refresh_token");
    params.set("refresh_token", credential.identityToken);
    params.set("client_id", "kustodia");
    const url = new URL(realm.pathname, realm.origin);
    return { method: "POST", url, headers: { "content-type": "application/x-www-form-urlencoded" }, body: params.toString() };
  }
  const headers: Record<string, string> = {};
  const basic = credential ? basicHeader(credential) : undefined;
  if (basic) {
    params.set("account", credential?.username ?? "");
    headers.authorization = basic;
  }
  const url = new URL(realm.href);
  url.search = params.toString();
  return { method: "GET", url, headers };
}

function readToken(body: Buffer, realm: URL): { token: string; expiresInS: number } {
  let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new TokenEndpointError(`the token endpoint ${realm.origin}${realm.pathname} answered something that is not JSON`);
  }
  const token = typeof parsed.token === "string" && parsed.token ? parsed.token : parsed.access_token;
  if (typeof token !== "string" || token === "")
    throw new TokenEndpointError(`the token endpoint ${realm.origin}${realm.pathname} answered without a token`);
  const expiresIn = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_EXPIRES_IN_S;
  return { token, expiresInS: expiresIn };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}
