// Fresh images in the test registry for cold ENTRYPOINT lookups: each one a distinct tag with a
// distinct config (so no cache, by tag or by digest, knows it), pushed over the Distribution API.
import { randomBytes } from "node:crypto";
import { pushConfigOnlyImage } from "../../test/infra/oci-push.ts";
import type { RegistryEndpoint } from "../../test/infra/registry-http.ts";

export interface PushedImage {
  /** `<host>/<repository>:<tag>` */
  reference: string;
  entrypoint: string[];
}

/** Pushes `count` images with distinct ENTRYPOINTs into `<repository>` (tags i0, i1, ...). */
export async function pushFreshImages(endpoint: RegistryEndpoint & { host: string }, count: number): Promise<PushedImage[]> {
  const repository = `kustodia-bench/cold-${randomBytes(4).toString("hex")}`;
  const images: PushedImage[] = [];
  // A few at a time: the registry is on the same two cores as everything else.
  for (let start = 0; start < count; start += 8) {
    const batch = Array.from({ length: Math.min(8, count - start) }, (_, offset) => start + offset);
    images.push(
      ...(await Promise.all(
        batch.map(async (index) => {
          const entrypoint = [`/app/server-${index}`, "--serve"];
          const tag = `i${index}`;
          await pushConfigOnlyImage({ endpoint, repository }, tag, {
            config: { Entrypoint: entrypoint, Cmd: ["--port", "8080"], Env: ["PATH=/usr/local/bin:/usr/bin:/bin"] },
          });
          return { reference: `${endpoint.host}/${repository}:${tag}`, entrypoint };
        }),
      )),
    );
  }
  return images;
}
