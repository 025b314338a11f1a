// Gathers the image facts a mutation needs: pull-secret credentials for the pod, then one
// ENTRYPOINT/CMD lookup per container, concurrently. Failures come back as values.
import type { LookupAccess } from "./admission.ts";
import type { ImageLookupResult, ImageNeed } from "./image-facts.ts";
import type { JsonObject } from "./pod.ts";
import type { PullSecretReader } from "./pull-secrets.ts";
import type { RegistryClient } from "./registry/client.ts";
import { credentialsFromPullSecrets } from "./registry/credentials.ts";

export interface ImageLookupOptions {
  registry: RegistryClient;
  pullSecrets: PullSecretReader | undefined;
}

const UNVERIFIED_CALLER =
  "pull secrets are used only for the kube-apiserver, and this request came without its client certificate (docs/security.md)";

export function createImageLookup({ registry, pullSecrets }: ImageLookupOptions) {
  return async (needs: ImageNeed[], pod: JsonObject, namespace: string, access: LookupAccess): Promise<Map<string, ImageLookupResult>> => {
    const read = !pullSecrets
      ? { secrets: [], problems: [] }
      : access.pullSecrets
        ? await pullSecrets.read(pod, namespace)
        : { secrets: [], problems: [UNVERIFIED_CALLER] };
    const credentials = credentialsFromPullSecrets(read.secrets);
    const admission = {}; // this admission's lookups share its registry slots
    const results = await Promise.all(
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
    return new Map(results);
  };
}
