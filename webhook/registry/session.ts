// One repository on one registry endpoint for the length of a lookup: requests go out with the
// authorization that worked last, a 401 runs the auth flow (every matching credential in turn),
// and every failure becomes a LookupError. What the pod's author sees names only what they can fix
// (their pull secrets); how the network failed (refused, TLS, 404, timeout, a refused address)
// goes to the webhook's log (for the cluster admin), so that denials cannot be used to scan the cluster's network.
import { type Attempt, type Authenticator, TokenEndpointError } from "./auth.ts";
import type { RegistryCredential } from "./credentials.ts";
import { ALLOW_NETWORK_HINT, DestinationRefusedError } from "./destinations.ts";
import { BodyTooLargeError, type HttpResponse, type Transport } from "./http.ts";

/** A failure of one lookup: `message` is what the pod's author sees, `detail` what the debug log gets. */
export class LookupError extends Error {
  override name = "LookupError";
  readonly detail: string;
  constructor(message: string, detail: string = message) {
    super(message);
    this.detail = detail;
  }
}

/** The denial for every failure whose cause is the network or the registry's answer. */
export const UNREADABLE = "could not read the image's configuration from its registry (the webhook's log has the cause)";

/** A lookup error that shows the pod's author nothing but UNREADABLE. */
export function unreadable(detail: string): LookupError {
  return new LookupError(UNREADABLE, detail);
}

export interface SessionContext {
  transport: Transport;
  authenticator: Authenticator;
  signal: AbortSignal;
  timeoutMs: number;
  maxBytes: number;
  plainHttp: readonly string[];
}

export interface FetchOptions {
  method?: "GET" | "HEAD";
  accept?: string;
  followRedirects?: boolean;
  /** Statuses besides 200 that are returned rather than thrown. */
  allow?: readonly number[];
}

export interface Session {
  readonly host: string;
  /** The response when the registry answered 200 (or a status in `allow`); otherwise throws LookupError. `what` names the object in messages. */
  fetch(path: string, what: string, options?: FetchOptions): Promise<HttpResponse>;
}

export function createSession(
  context: SessionContext,
  host: string,
  repository: string,
  candidates: readonly RegistryCredential[],
): Session {
  const base = `${context.plainHttp.includes(host) ? "http" : "https"}://${host}`;
  const scope = `repository:${repository}:pull`;
  let authorization = context.authenticator.preauthorize(host, scope, candidates);

  const send = (url: URL, options: FetchOptions, auth: string | undefined) => {
    const headers: Record<string, string> = {};
    if (options.accept) headers.accept = options.accept;
    if (auth) headers.authorization = auth;
    const followRedirects = options.followRedirects ?? false;
    return context.transport.send({
      method: options.method ?? "GET",
      url,
      headers,
      signal: context.signal,
      maxBytes: context.maxBytes,
      followRedirects,
    });
  };

  /** Runs the auth flow after a 401; the first attempt the registry accepts becomes the session's authorization. */
  const authenticate = async (url: URL, options: FetchOptions, challenged: HttpResponse, what: string): Promise<HttpResponse> => {
    if (authorization) context.authenticator.forget(authorization);
    authorization = undefined;
    const tried: Attempt[] = [];
    for await (const attempt of context.authenticator.attempts(host, challenged, scope, candidates, context.signal)) {
      if (attempt.authorization === undefined) {
        tried.push(attempt);
        continue;
      }
      const response = await send(url, options, attempt.authorization);
      if (response.status !== 401 && response.status !== 403) {
        authorization = attempt.authorization;
        return response;
      }
      context.authenticator.forget(attempt.authorization);
      tried.push(attempt);
    }
    throw new LookupError(unauthorized(host, what, candidates, tried));
  };

  return {
    host,
    async fetch(path, what, options = {}) {
      const url = new URL(path, base);
      try {
        let response = await send(url, options, authorization);
        if (response.status === 401) response = await authenticate(url, options, response, what);
        if (response.status !== 200 && !options.allow?.includes(response.status)) throw unreadable(statusMessage(host, what, response));
        return response;
      } catch (error) {
        throw asLookupError(error, host, what, context);
      }
    },
  };
}

function unauthorized(host: string, what: string, candidates: readonly RegistryCredential[], tried: readonly Attempt[]): string {
  const at = `unauthorized at ${host} for ${what}`;
  const rejected = [
    ...new Set(tried.flatMap((attempt) => (attempt.credential ? [attempt.credential.source ?? attempt.credential.registry] : []))),
  ];
  if (rejected.length > 0) {
    return `${at}: the registry rejected the credentials of imagePullSecret ${rejected.join(", ")}; check that they are current and may pull this repository`;
  }
  if (candidates.length > 0) {
    return `${at}: the imagePullSecret credentials for ${host} have no username/password or token the registry's auth scheme can use`;
  }
  return `${at}: the repository needs credentials (or does not exist); add an imagePullSecret (type kubernetes.io/dockerconfigjson) for ${host} to the pod or its ServiceAccount`;
}

function statusMessage(host: string, what: string, response: HttpResponse): string {
  if (response.status === 404) return `registry ${host} answered 404 for ${what} (does the image exist?)`;
  if (response.status === 403) return `registry ${host} answered 403 (forbidden) for ${what}: the credentials may not pull this repository`;
  if (response.status === 429)
    return `registry ${host} answered 429 (too many requests) for ${what}: its rate limit is reached; a registry mirror avoids this`;
  return `registry ${host} answered ${response.status} for ${what}${registryErrorDetail(response.body)}`;
}

/** Distribution's error body: `{"errors":[{"code":"…","message":"…"}]}`. */
function registryErrorDetail(body: Buffer): string {
  try {
    const first = (JSON.parse(body.toString("utf8")) as { errors?: { code?: unknown; message?: unknown }[] }).errors?.[0];
    const text = [first?.code, first?.message].filter((part) => typeof part === "string").join(" ");
    return text ? `: ${text.slice(0, 200)}` : "";
  } catch {
    return "";
  }
}

const TLS_TRUST_CODES = /^(CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_SELF_SIGNED_CERT|ERR_TLS_CERT_ALTNAME_INVALID)/;
const NOT_TLS_CODES = ["EPROTO", "ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_PACKET_LENGTH_TOO_LONG"];

function asLookupError(error: unknown, host: string, what: string, context: SessionContext): LookupError {
  if (error instanceof LookupError) return error;
  if (context.signal.aborted) return unreadable(`timed out after ${context.timeoutMs} ms contacting ${host} (${what})`);
  const { message, code = "" } = error as { message?: string; code?: string };
  if (error instanceof BodyTooLargeError)
    return unreadable(`registry ${host} sent more than ${context.maxBytes} bytes for ${what}; refusing it`);
  if (error instanceof TokenEndpointError) return unreadable(`cannot authenticate at ${host} for ${what}: ${message}`);
  if (error instanceof DestinationRefusedError)
    return unreadable(`refused to connect for ${host} (${what}): ${message}; ${ALLOW_NETWORK_HINT}`);
  if (code === "ECONNREFUSED") return unreadable(`cannot connect to ${host}: connection refused (${what})`);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return unreadable(`cannot resolve the registry host ${host} (${code})`);
  if (TLS_TRUST_CODES.test(code)) {
    return unreadable(
      `the TLS certificate of ${host} is not trusted (${code}); give kustodia the registry's CA in KUSTODIA_REGISTRY_CA_FILE`,
    );
  }
  if (NOT_TLS_CODES.includes(code))
    return unreadable(`${host} does not answer TLS (${code}); if it is a plain-HTTP registry, list it in KUSTODIA_REGISTRY_PLAIN_HTTP`);
  return unreadable(`cannot reach ${host} for ${what}: ${code || message || String(error)}`);
}
