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

type KubeClient = Pick<KubeCoordinates, "server" | "caFile" | "adminToken">;

/** Creates the namespace and the ServiceAccount in it; either existing already (409) is fine. */
export async function ensureServiceAccount(kube: KubeClient, namespace: string, name: string): Promise<void> {
  for (const [collection, object] of [
    ["/api/v1/namespaces", namespace],
    [`/api/v1/namespaces/${namespace}/serviceaccounts`, name],
  ] as const) {
    const created = await kubeRequest(kube, "POST", collection, { metadata: { name: object } });
    if (created.status !== 201 && created.status !== 409) throw new Error(`creating ${collection}/${object}: HTTP ${created.status}`);
  }
}

export interface TokenRequestSpec {
  /** 600 unless given. */
  expirationSeconds?: number;
  audiences?: string[];
  /** A pod the token is bound to: its claims name the pod, and it dies with it. */
  boundPod?: { name: string; uid: string };
}

/** A token of an existing ServiceAccount, by TokenRequest (what the kubelet mounts into a pod). */
export async function serviceAccountToken(kube: KubeClient, namespace: string, name: string, spec: TokenRequestSpec = {}): Promise<string> {
  const { expirationSeconds = 600, audiences, boundPod } = spec;
  const issued = await kubeRequest<{ status: { token: string } }>(
    kube,
    "POST",
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        expirationSeconds,
        ...(audiences ? { audiences } : {}),
        ...(boundPod ? { boundObjectRef: { kind: "Pod", apiVersion: "v1", ...boundPod } } : {}),
      },
    },
  );
  if (issued.status !== 201) throw new Error(`TokenRequest for ${namespace}/${name}: HTTP ${issued.status} ${JSON.stringify(issued.body)}`);
  return issued.body.status.token;
}
