// The chart installed on the real node as a user installs it: the project's images (npm run build,
// npm run images: no Docker) pushed to the node's registry, then `helm install charts/kustodia` with
// them. Shared by the files of the `node` vitest project, which run one at a time, and by
// bench/pod-start.ts (so nothing here reads vitest's provided coordinates).
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { type BuiltImages, buildImages, IMAGES_DIR, imagesStaleness, readBuiltImages } from "../../scripts/images.ts";
import { helmRelease as chartRelease, helm, repoRoot, type Values } from "../chart/chart.ts";
import { kubectl } from "../infra/kubectl.ts";
import type { NodeCoordinates } from "../infra/types.ts";

const execFileAsync = promisify(execFile);

/**
 * Builds the runtime and the images when this checkout's are stale (same inputs give the same
 * digests, so a rebuild is only time), and pushes both images to the node's registry.
 */
export async function pushProjectImages(node: NodeCoordinates): Promise<BuiltImages> {
  const built = spawnSync("node", ["scripts/build.ts"], { cwd: repoRoot, stdio: ["ignore", "ignore", "inherit"] });
  if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status})`);
  const images = imagesStaleness() === undefined ? readBuiltImages() : await buildImages({ log: () => {} });
  for (const image of Object.values(images.images)) {
    await execFileAsync("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--all",
      "--dest-no-creds",
      "--dest-tls-verify=false",
      `oci-archive:${join(IMAGES_DIR, image.archive)}`,
      `docker://${node.registry.pushHost}/${image.repository}:${image.tag}`,
    ]);
  }
  return images;
}

/** The image reference of `key` in the node's registry, by digest (what the chart's `digest` values make). */
export function nodeImage(node: NodeCoordinates, images: BuiltImages, key: "webhook" | "shim"): string {
  return `${node.registry.host}/${images.images[key].repository}@${images.images[key].digest}`;
}

/** Chart values that point the release at the pushed images, the node's OpenBao and its registry. */
export function nodeValues(node: NodeCoordinates, images: BuiltImages, extra: Values = {}): Values {
  const { shim: extraShim = {}, registry: extraRegistry = {}, ...rest } = extra as { shim?: Values; registry?: Values } & Values;
  const { defaults: extraDefaults = {}, ...shimRest } = extraShim as { defaults?: Values } & Values;
  return {
    image: { repository: `${node.registry.host}/${images.images.webhook.repository}`, digest: images.images.webhook.digest },
    shim: {
      image: { repository: `${node.registry.host}/${images.images.shim.repository}`, digest: images.images.shim.digest },
      defaults: {
        backend: "vault",
        vaultAddr: node.openbao.inClusterAddr,
        vaultAuthMethod: "kubernetes",
        vaultAuthPath: "kubernetes",
        ...extraDefaults,
      },
      ...shimRest,
    },
    registry: { plainHttp: [node.registry.host], ...extraRegistry },
    ...rest,
  };
}

/** The node's cluster and the helm binary that installs into it. */
export interface Cluster {
  node: NodeCoordinates;
  helm: string;
}

/** `helm <verb> <release> charts/kustodia --wait` into `namespace` with `values`; helm's stdout. */
export function helmRelease(
  { node, helm: helmBinary }: Cluster,
  verb: "install" | "upgrade",
  release: string,
  namespace: string,
  values: Values,
): Promise<string> {
  return chartRelease({ helm: helmBinary, kube: node }, verb, release, namespace, values, ["--wait", "--timeout=3m"]);
}

/** Uninstalls the release and deletes `namespaces` (without waiting for them to go). */
export async function removeRelease(
  { node, helm: helmBinary }: Cluster,
  release: string,
  namespace: string,
  namespaces: string[] = [],
): Promise<void> {
  await helm(helmBinary, ["uninstall", release, "--namespace", namespace, "--wait"], node);
  await kubectl(node, ["delete", "namespace", namespace, ...namespaces, "--wait=false", "--ignore-not-found"]);
}
