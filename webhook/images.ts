// Gathers the image facts a mutation needs: pull-secret credentials for the pod, then one
// ENTRYPOINT/CMD lookup per container, concurrently. Failures come back as values. Pull secrets may be
// reused from a recent read (pull-secrets.ts): when a lookup made with reused ones fails, they are
// read afresh, and if they changed (a rotated password) the failed lookups are tried once more with
// the new ones. Unchanged ones are not tried again: a slow registry must not get a second deadline.
import type { LookupAccess } from "./admission.ts";
import type { ImageLookupResult, ImageNeed } from "./image-facts.ts";
import type { JsonObject } from "./pod.ts";
import type { PullSecretReader, PullSecretsResult } from "./pull-secrets.ts";
import type { RegistryClient } from "./registry/client.ts";
import { credentialsFromPullSecrets } from "./registry/credentials.ts";

export interface ImageLookupOptions {
  registry: RegistryClient;
  pullSecrets: PullSecretReader | undefined;
}

const UNVERIFIED_CALLER =
  "pull secrets are used only for the kube-apiserver, and this request came without its client certificate (docs/security.md)";

export function createImageLookup({ registry, pullSecrets }: ImageLookupOptions) {
  const lookUp = async (needs: ImageNeed[], read: PullSecretsResult): Promise<[string, ImageLookupResult][]> => {
    const credentials = credentialsFromPullSecrets(read.secrets);
    const admission = {}; // this admission's lookups share its registry slots
    return Promise.all(
      needs.map(async (need): Promise<[string, ImageLookupResult]> => {
        const result = await registry.imageConfig(need.image, {
          ...(need.architecture ? { architecture: need.architecture } : {}),
          credentials,
          admission,
        });
        if (!result.ok && read.problems.length > 0)
          return [need.container, { ok: false, error: `${result.error} (pull secrets not read: ${read.problems.join("; ")})` }];
        return [need.container, result];
      }),
    );
  };

  return async (needs: ImageNeed[], pod: JsonObject, namespace: string, access: LookupAccess): Promise<Map<string, ImageLookupResult>> => {
    const read = !pullSecrets
      ? { secrets: [], problems: [], reused: false }
      : access.pullSecrets
        ? await pullSecrets.read(pod, namespace)
        : { secrets: [], problems: [UNVERIFIED_CALLER], reused: false };
    const results = new Map(await lookUp(needs, read));
    const failed = needs.filter((need) => results.get(need.container)?.ok === false);
    if (pullSecrets && read.reused && failed.length > 0) {
      const fresh = await pullSecrets.read(pod, namespace, { fresh: true });
      if (secretsText(fresh) !== secretsText(read))
        for (const [container, result] of await lookUp(failed, fresh)) results.set(container, result);
    }
    return results;
  };
}

const secretsText = (read: PullSecretsResult) => JSON.stringify(read.secrets.map(({ name, type, data }) => [name, type, data]));
