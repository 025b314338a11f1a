// A minimal REST client for the test kube-apiserver: JSON over HTTPS with the admin token.
import { readFileSync } from "node:fs";
import { request } from "node:https";
import type { KubeCoordinates } from "./types.ts";

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

export function kubeRequest<T = Record<string, unknown>>(
  kube: Pick<KubeCoordinates, "server" | "caFile" | "adminToken">,
  method: string,
  path: string,
  body?: unknown,
  token = kube.adminToken,
): Promise<KubeResponse<T>> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, kube.server),
      {
        method,
        ca: readFileSync(kube.caFile),
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
          ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON: keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
