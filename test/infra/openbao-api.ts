// The OpenBao HTTP API as the tests and benchmarks call it: one client for setup calls (which throw on
// an error answer) and for calls whose status a test asserts.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { OpenBaoCoordinates } from "./types.ts";

/** Whom a call goes to and as whom: the server, the token (empty: none) and an optional namespace. */
export interface OpenBaoTarget {
  addr: string;
  token: string;
  namespace?: string;
  /** The CA to trust for an https `addr` (else the system's). */
  ca?: Buffer;
}

// biome-ignore lint/suspicious/noExplicitAny: OpenBao's answers are deep JSON, read field by field by the callers
export type BaoBody = Record<string, any>;

/** The test OpenBao with its root token (setup only). */
export function asRoot(openbao: Pick<OpenBaoCoordinates, "addr" | "rootToken">): OpenBaoTarget {
  return { addr: openbao.addr, token: openbao.rootToken };
}

export interface BaoAnswer {
  status: number;
  /** The JSON answer; `{}` when empty or not JSON. */
  body: BaoBody;
  text: string;
}

/** A call whatever its answer (node:http/https, since fetch cannot take a CA without undici). */
export async function openbaoCall(target: OpenBaoTarget, method: string, path: string, body?: unknown): Promise<BaoAnswer> {
  const url = new URL(`/v1/${path}`, target.addr);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = {
    ...(target.token ? { "X-Vault-Token": target.token } : {}),
    ...(target.namespace ? { "X-Vault-Namespace": target.namespace } : {}),
    ...(payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(payload)) }),
  };
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const request = send(url, { method, headers, ca: target.ca }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(payload);
  });
  return { status, body: parseJson(text), text };
}

function parseJson(text: string): BaoBody {
  try {
    return text === "" ? {} : (JSON.parse(text) as BaoBody);
  } catch {
    return {};
  }
}

/** A setup call: the JSON body (`{}` when empty); throws with OpenBao's error messages on a non-2xx answer. */
export async function openbaoApi(target: OpenBaoTarget, method: string, path: string, body?: unknown): Promise<BaoBody> {
  const answer = await openbaoCall(target, method, path, body);
  if (answer.status < 200 || answer.status > 299)
    throw new Error(`OpenBao ${method} /v1/${path}: HTTP ${answer.status} ${answer.text.trim()}`);
  return answer.body;
}
