// Reads the image pull secrets that apply to a pod: the pod's own `imagePullSecrets` and its
// ServiceAccount's, through the Kubernetes API. Only their registry credentials are used, only
// for the ENTRYPOINT lookup, and they are never logged. Only in namespaces that opted in
// (`kustodia.io/injection: enabled`, read from the Namespace itself and cached briefly), and what
// could not be read is reported without saying whether it exists.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from "../common/contract.ts";
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

/**
 * The same words whether the object is missing, forbidden to the webhook or the API failed: a denial
 * must not tell a pod's author which Secrets or ServiceAccounts exist.
 */
const UNREADABLE = "not readable (it does not exist, or the webhook's RBAC does not cover this namespace: registry.pullSecrets.namespaces)";

/** How long a namespace's opt-in label is trusted before it is read again. */
export const NAMESPACE_OPT_IN_TTL_MS = 10_000;

export function createPullSecretReader(kubeConfig: KubeConfig, now: () => number = Date.now): PullSecretReader {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const optIns = new Map<string, { optedIn: boolean; at: number }>();
  const optedIn = async (namespace: string): Promise<boolean> => {
    const cached = optIns.get(namespace);
    if (cached && now() - cached.at < NAMESPACE_OPT_IN_TTL_MS) return cached.optedIn;
    let labelled = false;
    try {
      const found = await api.readNamespace({ name: namespace });
      labelled = found.metadata?.labels?.[NAMESPACE_LABEL] === NAMESPACE_LABEL_VALUE;
    } catch {
      // Unreadable counts as not opted in.
    }
    if (optIns.size > 10_000) optIns.clear();
    optIns.set(namespace, { optedIn: labelled, at: now() });
    return labelled;
  };
  return {
    async read(pod, namespace) {
      if (!(await optedIn(namespace))) {
        return {
          secrets: [],
          problems: [
            `namespace ${namespace} has not opted in (${NAMESPACE_LABEL}: ${NAMESPACE_LABEL_VALUE}), so its pull secrets are not read`,
          ],
        };
      }
      const problems: string[] = [];
      const names = new Set(secretNames(objectAt(pod, "spec")));
      const serviceAccount = stringAt(objectAt(pod, "spec"), "serviceAccountName") ?? "default";
      try {
        const account = await api.readNamespacedServiceAccount({ name: serviceAccount, namespace });
        for (const name of secretNames(account)) names.add(name);
      } catch {
        problems.push(`ServiceAccount ${namespace}/${serviceAccount}: ${UNREADABLE}`);
      }
      const secrets = await Promise.all(
        [...names].map(async (name): Promise<PullSecret | undefined> => {
          try {
            const secret = await api.readNamespacedSecret({ name, namespace });
            return { name, type: secret.type ?? "", data: secret.data ?? {} };
          } catch {
            problems.push(`imagePullSecret ${namespace}/${name}: ${UNREADABLE}`);
            return undefined;
          }
        }),
      );
      return { secrets: secrets.filter((secret): secret is PullSecret => secret !== undefined), problems };
    },
  };
}
