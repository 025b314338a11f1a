// HTTP to the test registries (node:http/https, since fetch cannot take a CA without undici).
import { readFileSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";

/** What it takes to talk to one of the registries: `coordinates.plain` and `coordinates.secure` are ones. */
export interface RegistryEndpoint {
  url: string;
  username?: string;
  password?: string;
  caFile?: string;
}

export interface RegistryResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP request to a registry (node:http/https, since fetch cannot take a CA without undici).
 * `path` may be absolute, e.g. an upload's `Location`. Basic auth when the endpoint has a username.
 */
export async function registryFetch(
  endpoint: RegistryEndpoint,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<RegistryResponse> {
  const url = new URL(path, endpoint.url);
  const headers: Record<string, string> = { ...init.headers };
  if (endpoint.username !== undefined) {
    headers.authorization = `Basic ${Buffer.from(`${endpoint.username}:${endpoint.password ?? ""}`).toString("base64")}`;
  }
  if (init.body !== undefined) headers["content-length"] = String(Buffer.byteLength(init.body));
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const ca = endpoint.caFile ? readFileSync(endpoint.caFile) : undefined;
  return await new Promise((resolve, reject) => {
    const request = send(url, { method: init.method ?? "GET", headers, ca, timeout: 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`${init.method ?? "GET"} ${url}: timed out`)));
    request.on("error", reject);
    request.end(init.body);
  });
}
