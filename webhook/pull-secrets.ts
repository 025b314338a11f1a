// Reads the image pull secrets that apply to a pod: the pod's own `imagePullSecrets` and its
// ServiceAccount's, through the Kubernetes API. Only their registry credentials are used, only
// for the ENTRYPOINT lookup, and they are never logged. Only in namespaces that opted in
// (`kustodia.io/injection: enabled`, read from the Namespace itself and cached briefly), and what
// could not be read is reported without saying whether it exists.
//
// A ServiceAccount's pull-secret names and a pull secret's data are reused for PULL_SECRET_TTL_MS,
// keyed by namespace and name (a pod gets what its own namespace holds under the names it gives,
// exactly what a read would give it); what could not be read is never kept. A lookup that fails with
// reused credentials reads them afresh (images.ts), so a rotated password is used at once; a deleted
// pull secret is still lent for at most the TTL, as a namespace's opt-in label is trusted for its own.
import type { AgentOptions } from "node:https";
import { type Cluster, CoreV1Api, KubeConfig, VersionApi } from "@kubernetes/client-node";
import { NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE } from "../common/contract.ts";
import { arrayAt, type JsonObject, objectAt, stringAt } from "./pod.ts";
import { createTtlLru } from "./registry/cache.ts";

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
  /** Whether any of it was reused from an earlier read instead of read now. */
  reused: boolean;
}

export interface PullSecretReader {
  /** `fresh`: read everything now, reusing nothing (after a lookup with reused credentials failed). */
  read(pod: JsonObject, namespace: string, options?: { fresh?: boolean }): Promise<PullSecretsResult>;
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
/** How long a ServiceAccount's pull-secret names and a pull secret's data are reused. */
export const PULL_SECRET_TTL_MS = 10_000;
/** Reused reads kept at most (ServiceAccounts and Secrets together). */
const PULL_SECRET_CACHE_ENTRIES = 2_000;

/**
 * Reads through a short-lived cache: concurrent reads of one key share one request, a successful one
 * is reused for `ttlMs`, a failed one is forgotten at once.
 */
function reusedReads(ttlMs: number, now: () => number) {
  const reads = createTtlLru<Promise<unknown>>(PULL_SECRET_CACHE_ENTRIES, ttlMs, now);
  return async <T>(key: string, fresh: boolean, read: () => Promise<T>): Promise<{ value: T; reused: boolean }> => {
    const known = fresh ? undefined : (reads.get(key) as Promise<T> | undefined);
    if (known) return { value: await known, reused: true };
    const pending = read();
    reads.set(key, pending);
    pending.catch(() => {
      if (reads.get(key) === pending) reads.delete(key);
    });
    return { value: await pending, reused: false };
  };
}

/** The webhook's own Kubernetes client configuration (in-cluster, or KUBECONFIG). */
export function pullSecretKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  if (!kubeConfig.getCurrentCluster()) throw new Error("no cluster in the kubeconfig");
  return reuseConnections(kubeConfig);
}

/**
 * client-node 2.x makes a new undici Agent for every API call, so each pull-secret read opened a new
 * TLS connection to the apiserver (and left it behind): a handshake per admission that looks up an
 * image. One Agent per distinct TLS setting keeps the connections alive and reused. createDispatcher
 * is not in client-node's typings; should a release rename it, calls just go back to a new Agent each.
 */
function reuseConnections(kubeConfig: KubeConfig): KubeConfig {
  type CreateDispatcher = (cluster: Cluster | null, options: AgentOptions) => unknown;
  const internals = kubeConfig as unknown as { createDispatcher?: CreateDispatcher };
  const create = internals.createDispatcher?.bind(kubeConfig);
  if (!create) return kubeConfig;
  const dispatchers = new Map<string, unknown>();
  internals.createDispatcher = (cluster, options) => {
    const key = JSON.stringify([cluster?.name, kubeConfig.createDispatcherOptions(cluster, options)]);
    if (!dispatchers.has(key)) dispatchers.set(key, create(cluster, options));
    return dispatchers.get(key);
  };
  return kubeConfig;
}

/**
 * Opens the connection to the apiserver before the first admission needs it (a GET of /version, which
 * every authenticated client may read): the first image lookup would otherwise pay the TLS handshake
 * and the client's first request. Failures are ignored: the admissions that need the API say why.
 */
export async function connectEarly(kubeConfig: KubeConfig): Promise<void> {
  try {
    await kubeConfig.makeApiClient(VersionApi).getCode();
  } catch {
    // Told by the first pull-secret read instead.
  }
}

export function createPullSecretReader(kubeConfig: KubeConfig, now: () => number = Date.now): PullSecretReader {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const reuse = reusedReads(PULL_SECRET_TTL_MS, now);
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
    async read(pod, namespace, { fresh = false } = {}) {
      if (!(await optedIn(namespace))) {
        return {
          secrets: [],
          problems: [
            `namespace ${namespace} has not opted in (${NAMESPACE_LABEL}: ${NAMESPACE_LABEL_VALUE}), so its pull secrets are not read`,
          ],
          reused: false,
        };
      }
      const problems: string[] = [];
      let reused = false;
      const names = new Set(secretNames(objectAt(pod, "spec")));
      const serviceAccount = stringAt(objectAt(pod, "spec"), "serviceAccountName") ?? "default";
      try {
        const account = await reuse(JSON.stringify(["ServiceAccount", namespace, serviceAccount]), fresh, async () =>
          secretNames(await api.readNamespacedServiceAccount({ name: serviceAccount, namespace })),
        );
        reused ||= account.reused;
        for (const name of account.value) names.add(name);
      } catch {
        problems.push(`ServiceAccount ${namespace}/${serviceAccount}: ${UNREADABLE}`);
      }
      const secrets = await Promise.all(
        [...names].map(async (name): Promise<PullSecret | undefined> => {
          try {
            const secret = await reuse(JSON.stringify(["Secret", namespace, name]), fresh, async () => {
              const read = await api.readNamespacedSecret({ name, namespace });
              return { name, type: read.type ?? "", data: read.data ?? {} };
            });
            reused ||= secret.reused;
            return secret.value;
          } catch {
            problems.push(`imagePullSecret ${namespace}/${name}: ${UNREADABLE}`);
            return undefined;
          }
        }),
      );
      return { secrets: secrets.filter((secret): secret is PullSecret => secret !== undefined), problems, reused };
    },
  };
}
