// JSON over HTTP(S) or a unix socket, with node's own http/https, loaded on first use with
// process.getBuiltinModule: `import "node:http"` costs ~40 ms more (building the ESM namespace reads
// every export, and some are lazy getters that load undici), and the shim pays for TLS only when a
// backend needs it. getBuiltinModule also works unchanged in the runtime's single executable.
// Connection failures, timeouts, 5xx, 429 and 2xx answers that are not JSON are `transient`
// SourceErrors; TLS failures are `config` (they do not heal by retrying); any other answer is returned
// for the backend to interpret.
import type { Agent as HttpAgent, IncomingMessage, RequestOptions } from "node:http";
import { SourceError } from "./source.ts";

export interface Endpoint {
  protocol: "http:" | "https:";
  hostname: string;
  port: string;
  /** Path prefix of every request, without a trailing slash. */
  basePath: string;
  socketPath?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface HttpCall {
  method: "GET" | "POST" | "PUT";
  /** Appended to the endpoint's basePath; already URL-encoded. */
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  json: unknown;
  text: string;
}

export interface HttpClient {
  call(call: HttpCall): Promise<HttpAnswer>;
  close(): void;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Connections per backend: all reads are issued at once, a pod start never opens more than this. */
const MAX_SOCKETS = 16;
/** TLS failures (untrusted or mismatching certificates, refused client certificates) do not heal by retrying. */
const TLS_FAILURE = /^ERR_SSL_|^ERR_TLS_|CERT|SELF_SIGNED|UNABLE_TO_/;
const TRANSIENT_STATUS = (status: number) => status === 429 || status >= 500;

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) response.destroy(new Error(`answer larger than ${MAX_BODY_BYTES} bytes`));
      else chunks.push(chunk);
    });
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", reject);
  });
}

export function createHttpClient(endpoint: Endpoint, name: string): HttpClient {
  let transport: { request: typeof import("node:http").request; agent: HttpAgent } | undefined;
  const load = () => {
    if (transport) return transport;
    const https = endpoint.protocol === "https:";
    const module = https ? process.getBuiltinModule("node:https") : process.getBuiltinModule("node:http");
    // Explicit: NODE_TLS_REJECT_UNAUTHORIZED=0 in the app's env (which the shim carries) must not turn checks off.
    const tls = https ? { ca: endpoint.ca, cert: endpoint.cert, key: endpoint.key, rejectUnauthorized: true } : {};
    transport = { request: module.request, agent: new module.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, ...tls }) };
    return transport;
  };

  const call = async (call: HttpCall): Promise<HttpAnswer> => {
    const { request, agent } = load();
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    const options: RequestOptions = {
      method: call.method,
      path: `${endpoint.basePath}${call.path}`,
      agent,
      headers: {
        accept: "application/json",
        ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }),
        ...call.headers,
      },
      ...(endpoint.socketPath ? { socketPath: endpoint.socketPath } : { hostname: endpoint.hostname, port: endpoint.port }),
    };
    const what = `${name} ${call.method} ${call.path.replace(/\?.*$/, "")}`;
    return new Promise<HttpAnswer>((resolve, reject) => {
      const req = request(options, (response) => {
        readBody(response).then((text) => {
          const status = response.statusCode ?? 0;
          const json = parseJson(text);
          if (TRANSIENT_STATUS(status)) reject(new SourceError("transient", `${what}: HTTP ${status}${errorSummary(json, text)}`));
          // A success whose body is garbled (cut short, or rewritten by a proxy) is retried like a dropped
          // connection. The body is never quoted: it may hold a value.
          else if (status >= 200 && status < 300 && json === undefined && text.trim() !== "")
            reject(
              new SourceError(
                "transient",
                `${what}: HTTP ${status} with an answer that is not valid JSON (${Buffer.byteLength(text)} bytes)`,
              ),
            );
          else resolve({ status, json, text });
        }, fail);
      });
      const timer = setTimeout(
        () => req.destroy(Object.assign(new Error(`no answer within ${call.timeoutMs} ms`), { code: "ETIMEDOUT" })),
        call.timeoutMs,
      );
      function fail(error: NodeJS.ErrnoException) {
        clearTimeout(timer);
        const code = error.code && !error.message.includes(error.code) ? `${error.code} ` : "";
        const kind = error.code && TLS_FAILURE.test(error.code) ? "config" : "transient";
        reject(new SourceError(kind, `${what}: ${code}${error.message}`));
      }
      req.on("error", fail);
      req.on("close", () => clearTimeout(timer));
      req.end(payload);
    });
  };

  return { call, close: () => transport?.agent.destroy() };
}

/** `: <first error message>` from a Vault-style `{"errors": [...]}` body, else from the text. */
export function errorSummary(json: unknown, text: string): string {
  const errors = (json as { errors?: unknown } | undefined)?.errors;
  const first = Array.isArray(errors) ? errors.find((item) => typeof item === "string" && item !== "") : undefined;
  const summary = (typeof first === "string" ? first : text).trim().replace(/\s+/g, " ");
  return summary === "" ? "" : `: ${summary.length > 200 ? `${summary.slice(0, 200)}…` : summary}`;
}

/**
 * An endpoint from a backend address: `http(s)://host:port[/base]`, or `http+unix:///abs/path.sock`
 * (also Custodia's own form with the socket path URL-encoded as the host: `http+unix://%2Frun%2Fc.sock`).
 */
export function endpointFromUrl(address: string): Endpoint {
  const url = new URL(address);
  const basePath = url.pathname.replace(/\/+$/, "");
  if (url.protocol === "http+unix:") {
    const socketPath = url.host !== "" ? decodeURIComponent(url.host) : decodeURIComponent(url.pathname);
    if (!socketPath.startsWith("/")) throw new Error(`socket path ${JSON.stringify(socketPath)} in ${address} is not absolute`);
    return { protocol: "http:", hostname: "localhost", port: "", basePath: url.host !== "" ? basePath : "", socketPath };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`unsupported scheme ${url.protocol} in ${address}`);
  return { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ""), port: url.port, basePath };
}
