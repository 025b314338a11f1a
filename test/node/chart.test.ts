// The user's path on a real node: the project's images (npm run images, no Docker) pushed to the
// node's registry, `helm install charts/kustodia` with them; the webhook then runs as its two real
// pods behind its Service with its self-managed TLS, the apiserver calls it through that Service, and
// the ValidatingAdmissionPolicy guards what it would let through. Then the README's cluster
// quickstart, its blocks run as written where the node allows (see `quickstartEnv`).
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type BuiltImages, IMAGE_TAG } from "../../scripts/images.ts";
import { repoRoot } from "../chart/chart.ts";
import { shellBlocks } from "../docs/markdown.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { kubectl } from "../infra/kubectl.ts";
import { buildImage, busyboxImage, pushImage } from "../infra/oci-image.ts";
import type { NodeCoordinates } from "../infra/types.ts";
import { bao } from "./openbao-auth.ts";
import { type Cluster, helmRelease, nodeImage, nodeValues, pushProjectImages, removeRelease } from "./release.ts";

const cluster = (): Cluster => ({ node: service("node"), helm: service("helm").binary });
const execFileAsync = promisify(execFile);
const release = "kustodia";
const releaseNamespace = "kustodia";
/** The namespace of examples/pod.yaml and of the README's OpenBao role. */
const appNamespace = "demo";

interface Pod {
  metadata: { annotations?: Record<string, string> };
  spec: {
    containers: { name: string; image: string; command?: string[] }[];
    initContainers?: { name: string; image: string }[];
  };
}

/** examples/pod.yaml, as the README applies it. */
function examplePod(): Pod & { metadata: { namespace: string; name: string } } {
  return parse(readFileSync(join(repoRoot, "examples", "pod.yaml"), "utf8"));
}

/** The linux/amd64 manifest digest behind `repository@digest` in the node's registry (an index or a manifest). */
async function amd64ManifestOf(node: NodeCoordinates, imageId: string): Promise<string> {
  const [name, digest] = imageId.replace(`${node.registry.host}/`, "").split("@");
  const response = await fetch(`http://${node.registry.pushHost}/v2/${name}/manifests/${digest}`, {
    headers: { accept: "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json" },
  });
  const body = (await response.json()) as { manifests?: { digest: string; platform?: { architecture: string } }[] };
  return body.manifests?.find((entry) => entry.platform?.architecture === "amd64")?.digest ?? String(digest);
}

/** The shell block of `page` that contains `marker`. */
function block(page: string, marker: string): string {
  const found = shellBlocks(page, readFileSync(join(repoRoot, page), "utf8")).find((candidate) => candidate.code.includes(marker));
  if (!found) throw new Error(`${page} has no shell block with ${JSON.stringify(marker)}`);
  return found.code;
}

/**
 * What a reader's shell has: kubectl and bao on PATH, KUBECONFIG for the node's cluster, and
 * BAO_ADDR/BAO_TOKEN of an OpenBao administrator (the node's OpenBao, through its loopback forward).
 */
function quickstartEnv(node: NodeCoordinates, binDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${binDir}:${process.env.PATH}`,
    KUBECONFIG: node.kubeconfig,
    BAO_ADDR: node.openbao.addr,
    BAO_TOKEN: node.openbao.rootToken,
  };
}

async function bash(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const { stdout } = await execFileAsync("bash", ["-euo", "pipefail", "-c", script], { env, cwd, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

describe.skipIf(skipWithout("node", "helm"))("helm install charts/kustodia on the real node, with the project's images", () => {
  const work = mkdtempSync(join(tmpdir(), "kustodia-node-chart-"));
  let images: BuiltImages;
  let installOutput = "";

  beforeAll(async () => {
    const node = service("node");
    images = await pushProjectImages(node);
    // A run that ended before its afterAll leaves the README's mount in the node's OpenBao.
    await bao(node, "DELETE", "sys/auth/kubernetes");
    installOutput = await helmRelease(cluster(), "install", release, releaseNamespace, nodeValues(node, images));
    // examples/pod.yaml runs `busybox:1.37`: the node sends docker.io to its own registry, where
    // Debian's static busybox stands in for it.
    await buildImage("umoci", join(work, "layout"), "busybox", busyboxImage(["sh", "env", "grep", "echo"], { cmd: ["sh"] }));
    await pushImage("skopeo", join(work, "layout"), "busybox", `${node.registry.pushHost}/library/busybox:1.37`);
    await kubectl(node, ["create", "namespace", appNamespace]);
    await kubectl(node, ["label", "namespace", appNamespace, "kustodia.io/injection=enabled"]);
    await kubectl(node, ["create", "serviceaccount", "myapp", "-n", appNamespace]);
  }, 600_000);

  afterAll(async () => {
    const node = service("node");
    await removeRelease(cluster(), release, releaseNamespace, [appNamespace]);
    await kubectl(node, ["delete", "clusterrolebinding", "openbao-reviewer", "--ignore-not-found"]);
    // The node's OpenBao outlives this file: leave no README mount behind for the next run.
    await bao(node, "DELETE", "sys/auth/kubernetes");
    await bao(node, "DELETE", "sys/policies/acl/myapp");
    rmSync(work, { recursive: true, force: true });
  });

  it("runs the webhook as two Ready pods of the pushed image, behind its Service", async () => {
    const node = service("node");
    expect(installOutput).toContain("kustodia.io/injection=enabled");
    const deployment = JSON.parse(await kubectl(node, ["get", "deployment", release, "-n", releaseNamespace, "-o", "json"]));
    expect(deployment.status.readyReplicas).toBe(2);
    const pods = JSON.parse(
      await kubectl(node, ["get", "pods", "-n", releaseNamespace, "-l", "app.kubernetes.io/name=kustodia", "-o", "json"]),
    ) as { items: { status: { podIP: string; containerStatuses: { imageID: string; ready: boolean }[] } }[] };
    expect(pods.items).toHaveLength(2);
    for (const pod of pods.items) {
      expect(pod.status.containerStatuses[0]?.ready).toBe(true);
      // containerd reports the first repo digest it recorded for this content: an earlier index
      // holding the same linux/amd64 manifest counts. What runs must be that manifest.
      const imageId = pod.status.containerStatuses[0]?.imageID ?? "";
      expect(await amd64ManifestOf(node, imageId)).toBe(images.images.webhook.platforms["linux/amd64"]);
    }
    const slices = JSON.parse(
      await kubectl(node, ["get", "endpointslices", "-n", releaseNamespace, "-l", `kubernetes.io/service-name=${release}`, "-o", "json"]),
    ) as { items: { endpoints: { addresses: string[]; conditions: { ready: boolean } }[] }[] };
    const ready = slices.items.flatMap((slice) =>
      slice.endpoints.filter((endpoint) => endpoint.conditions.ready).flatMap((e) => e.addresses),
    );
    expect(ready.sort()).toEqual(pods.items.map((pod) => pod.status.podIP).sort());
  });

  it("is called by the apiserver through its Service with its own TLS: the README's pod comes back mutated", async () => {
    const node = service("node");
    const configuration = JSON.parse(await kubectl(node, ["get", "mutatingwebhookconfiguration", release, "-o", "json"])) as {
      webhooks: { clientConfig: { service?: { name: string; namespace: string }; caBundle?: string } }[];
    };
    expect(configuration.webhooks[0]?.clientConfig.service).toMatchObject({ name: release, namespace: releaseNamespace });
    expect(configuration.webhooks[0]?.clientConfig.caBundle).toBeTruthy();

    const mutated = JSON.parse(
      await kubectl(node, ["create", "--dry-run=server", "-o", "json", "-f", "-"], JSON.stringify(examplePod())),
    ) as Pod;
    expect(mutated.metadata.annotations?.["kustodia.io/status"]).toBe(`injected ${IMAGE_TAG}`);
    expect(mutated.spec.containers[0]?.command?.slice(0, 2)).toEqual(["/kustodia/kustodia-shim", "--"]);
    expect(mutated.spec.initContainers?.map((container) => container.image)).toContain(nodeImage(node, images, "shim"));
  });

  it("has its ValidatingAdmissionPolicy deny a pod that claims injection but does not run the shim", async () => {
    const node = service("node");
    const forged = examplePod();
    forged.metadata.annotations = { ...forged.metadata.annotations, "kustodia.io/status": `injected ${IMAGE_TAG}` };
    await expect(kubectl(node, ["create", "--dry-run=server", "-o", "json", "-f", "-"], JSON.stringify(forged))).rejects.toThrow(
      /ValidatingAdmissionPolicy 'kustodia-injected'/,
    );
  });

  it("README quickstart: OpenBao's kubernetes auth configured against this cluster, as docs/backends.md and the README write it", async () => {
    const node = service("node");
    const binDir = join(work, "bin");
    await execFileAsync("mkdir", ["-p", binDir]);
    await execFileAsync("ln", ["-sf", node.kubectl, join(binDir, "kubectl")]);
    await execFileAsync("ln", ["-sf", node.openbao.binary, join(binDir, "bao")]);
    const script = [
      block("docs/backends.md", "REVIEWER_JWT=$(kubectl create token"),
      // OpenBao runs inside the node's network namespace: it reaches the apiserver at its in-cluster
      // address, not at the loopback forward the kubeconfig names.
      `KUBE_HOST=${node.inClusterServer}`,
      block("README.md", "bao auth enable kubernetes"),
    ].join("\n");
    await bash(script, quickstartEnv(node, binDir), work);
    const role = await bash("bao read -format=json auth/kubernetes/role/myapp", quickstartEnv(node, binDir), work);
    expect(JSON.parse(role).data.bound_service_account_namespaces).toEqual([appNamespace]);
  });

  it("README quickstart: examples/pod.yaml runs, kubectl logs shows the value, the stored pod only the reference", async () => {
    const node = service("node");
    const env = quickstartEnv(node, join(work, "bin"));
    const [apply, ...look] = block("README.md", "kubectl apply -f examples/pod.yaml").split("\n");
    await bash(apply as string, env, repoRoot);
    const pod = examplePod();
    // The app prints and exits: wait until it has run once.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const status = JSON.parse(await kubectl(node, ["get", "pod", pod.metadata.name, "-n", pod.metadata.namespace, "-o", "json"])).status;
      const app = status.containerStatuses?.[0];
      if (app?.state?.terminated || app?.lastState?.terminated) break;
      if (Date.now() > deadline) throw new Error(`the pod did not run: ${JSON.stringify(status)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const output = await bash(look.join("\n"), env, repoRoot);
    expect(output).toContain("app sees PASSWORD=s3cr3t");
    expect(output).toContain("no SECRET_* or KUSTODIA_* var");
    expect(output).toMatch(/- name: SECRET_PASSWORD\n\s+value: myapp\/password/);
    const stored = await kubectl(node, ["get", "pod", pod.metadata.name, "-n", pod.metadata.namespace, "-o", "json"]);
    expect(stored).not.toContain("s3cr3t");
  });
});
