// The pod's identity in the demo, without a cluster: a ServiceAccount token shaped like the ones the
// kube-apiserver issues (issuer, audience, `system:serviceaccount:<ns>:<name>` subject, the
// kubernetes.io claims), signed with a key the demo makes. OpenBao's jwt auth method verifies it
// with the public key — what it does in a cluster with the apiserver's service-account signing keys.
import { generateKeyPairSync, randomUUID, sign } from "node:crypto";

export const DEMO_ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface Issuer {
  /** PEM, for OpenBao's `jwt_validation_pubkeys`. */
  publicKeyPem: string;
  /** A token for `namespace/serviceAccount`, valid for `ttlSeconds`. */
  token(namespace: string, serviceAccount: string, pod: string, ttlSeconds?: number): string;
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

export function createIssuer(): Issuer {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    token(namespace, serviceAccount, pod, ttlSeconds = 600) {
      const now = Math.floor(Date.now() / 1000);
      const header = base64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
      const claims = base64url(
        JSON.stringify({
          iss: DEMO_ISSUER,
          aud: [DEMO_ISSUER],
          sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
          iat: now,
          nbf: now,
          exp: now + ttlSeconds,
          jti: randomUUID(),
          "kubernetes.io": {
            namespace,
            serviceaccount: { name: serviceAccount, uid: randomUUID() },
            pod: { name: pod, uid: randomUUID() },
          },
        }),
      );
      const signature = sign("sha256", Buffer.from(`${header}.${claims}`), privateKey);
      return `${header}.${claims}.${base64url(signature)}`;
    },
  };
}
