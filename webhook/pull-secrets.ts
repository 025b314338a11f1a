// Reads the image pull secrets that apply to a pod: the pod's own `imagePullSecrets` and its
// ServiceAccount's, through the Kubernetes API. Only their registry credentials are used, only
// for the ENTRYPOINT lookup, and they are never logged.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { arrayAt, type JsonObject, objectAt, stringAt } from "./pod.ts";

export interface PullSecret {
  name: string;
  type: string;
  /** The Secret's `data`, base64 values as stored. */
  data: Record<string, string>;
}

export interface PullSecretsResult {
  secrets: PullSecret[];
  /** What could not be read (a missing secret, RBAC), for the denial message when a lookup fails. */
  problems: string[];
}

export interface PullSecretReader {
  read(pod: JsonObject, namespace: string): Promise<PullSecretsResult>;
}

function secretNames(holder: unknown): string[] {
  return (arrayAt(holder, "imagePullSecrets") ?? []).map((ref) => stringAt(ref, "name")).filter((name): name is string => Boolean(name));
}

function describe(error: unknown): string {
  const code = (error as { code?: number }).code;
  if (code === 404) return "not found";
  if (code === 403) return "forbidden (the webhook's RBAC must allow get on secrets and serviceaccounts)";
  return (error as Error).message?.split("\n")[0] ?? String(error);
}

export function createPullSecretReader(kubeConfig: KubeConfig): PullSecretReader {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  return {
    async read(pod, namespace) {
      const problems: string[] = [];
      const names = new Set(secretNames(objectAt(pod, "spec")));
      const serviceAccount = stringAt(objectAt(pod, "spec"), "serviceAccountName") ?? "default";
      try {
        const account = await api.readNamespacedServiceAccount({ name: serviceAccount, namespace });
        for (const name of secretNames(account)) names.add(name);
      } catch (error) {
        problems.push(`ServiceAccount ${namespace}/${serviceAccount}: ${describe(error)}`);
      }
      const secrets = await Promise.all(
        [...names].map(async (name): Promise<PullSecret | undefined> => {
          try {
            const secret = await api.readNamespacedSecret({ name, namespace });
            return { name, type: secret.type ?? "", data: secret.data ?? {} };
          } catch (error) {
            problems.push(`imagePullSecret ${namespace}/${name}: ${describe(error)}`);
            return undefined;
          }
        }),
      );
      return { secrets: secrets.filter((secret): secret is PullSecret => secret !== undefined), problems };
    },
  };
}
