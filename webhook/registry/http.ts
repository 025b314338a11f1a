// HTTP for the registry client: node:http/https with keep-alive agents (the system's CAs, Node's
// and an extra bundle), connections only where the destination policy allows (registries, token
// endpoints and redirects alike), a cap on body sizes, abort signals, and redirects (registries send
// blobs from storage elsewhere). How many lookups run at once is the lookup slots' business (slots.ts).
import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { createSecureContext, getCACertificates } from "node:tls";
import type { DestinationPolicy } from "./destinations.ts";

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST";
  url: URL;
  headers?: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  maxBytes: number;
  /** Follow redirects; the Authorization header is dropped when one leaves the origin. */
  followRedirects?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The URL that answered (after redirects). */
  url: URL;
}

export interface Transport {
  send(request: HttpRequest): Promise<HttpResponse>;
  close(): void;
}

/** Thrown when a response body is larger than the request's `maxBytes`. */
export class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

const MAX_REDIRECTS = 5;
const USER_AGENT = "kustodia-webhook";

export function createTransport(options: { destinations: DestinationPolicy; caFile?: string }): Transport {
  const { lookup } = options.destinations;
  const agents: Agents = {
    "http:": new HttpAgent({ keepAlive: true, lookup }),
    // One secure context for all connections: parsing hundreds of CAs per connection would cost milliseconds each time.
    "https:": new HttpsAgent({ keepAlive: true, lookup, secureContext: createSecureContext({ ca: trustedCertificates(options.caFile) }) }),
  };
  return {
    send: (request) => sendFollowing(request, agents, options.destinations),
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}

/** Node's CAs and the system's (registries behind a corporate CA), plus the configured bundle. */
function trustedCertificates(caFile: string | undefined): string[] {
  const certificates = new Set(getCACertificates("default"));
  try {
    for (const certificate of getCACertificates("system")) certificates.add(certificate);
  } catch {
    // no system store on this platform: Node's own list stands
  }
  if (caFile) {
    try {
      certificates.add(readFileSync(caFile, "utf8"));
    } catch (error) {
      throw new Error(`registry CA file ${caFile} (KUSTODIA_REGISTRY_CA_FILE) cannot be read: ${(error as Error).message}`);
    }
  }
  return [...certificates];
}

type Agents = Record<"http:" | "https:", HttpAgent>;

async function sendFollowing(request: HttpRequest, agents: Agents, destinations: DestinationPolicy): Promise<HttpResponse> {
  let current = request;
  for (let hop = 0; ; hop++) {
    destinations.checkLiteral(current.url);
    const response = await sendRetryingStale(current, agents);
    const location = response.headers.location;
    if (!current.followRedirects || !isRedirect(response.status) || location === undefined || hop === MAX_REDIRECTS) return response;
    const next = new URL(location, current.url);
    if (next.protocol !== "http:" && next.protocol !== "https:") return response;
    const headers = { ...current.headers };
    if (next.origin !== current.url.origin) delete headers.authorization;
    current = { ...current, url: next, headers, method: current.method === "POST" ? "GET" : current.method };
  }
}

function isRedirect(status: number): boolean {
  return [301, 302, 303, 307, 308].includes(status);
}

/** A kept-alive socket the server closed meanwhile fails at once; such a request is sent again once. */
async function sendRetryingStale(request: HttpRequest, agents: Agents): Promise<HttpResponse> {
  try {
    return await sendOnce(request, agents);
  } catch (error) {
    if (!(error as { reusedSocket?: boolean }).reusedSocket || request.signal.aborted) throw error;
    return await sendOnce(request, agents);
  }
}

function sendOnce(request: HttpRequest, agents: Agents): Promise<HttpResponse> {
  const { url, signal } = request;
  const send = url.protocol === "http:" ? httpRequest : httpsRequest;
  const headers: Record<string, string> = { "user-agent": USER_AGENT, ...request.headers };
  if (request.body !== undefined) headers["content-length"] = String(Buffer.byteLength(request.body));
  return new Promise((resolve, reject) => {
    const outgoing = send(url, { method: request.method, headers, agent: agents[url.protocol as keyof Agents], signal }, (response) => {
      readBody(response, request.maxBytes).then(
        (body) => resolve({ status: response.statusCode ?? 0, headers: response.headers, body, url }),
        (error: Error) => {
          outgoing.destroy();
          reject(error);
        },
      );
    });
    outgoing.on("error", (error) => reject(Object.assign(error, { reusedSocket: outgoing.reusedSocket })));
    outgoing.end(request.body);
  });
}

function readBody(response: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => new BodyTooLargeError(`the response is larger than ${maxBytes} bytes`);
  return new Promise((resolve, reject) => {
    if (Number(response.headers["content-length"] ?? 0) > maxBytes) {
      response.destroy();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        response.destroy();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    response.on("end", () => resolve(Buffer.concat(chunks)));
    response.on("error", reject);
  });
}
