// Real app pods on the real node, admitted by the chart's webhook (its two pods, the project's
// images) and started by the kubelet with containerd and runc. Every pod is checked through the API
// — `kubectl logs`, where the app reports a hash of what it received (test/fixtures/node-app/report.c)
// — and in storage: the stored pod and etcd's raw bytes hold the reference, never the value.
// The shim logs in with the token the kubelet projects into the pod; the test mints none for it.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuiltImages } from "../../scripts/images.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { kubectl } from "../infra/kubectl.ts";
import type { NodeCoordinates } from "../infra/types.ts";
import { type AppImages, pushAppImages, reportLine } from "./apps.ts";
import { bao as baoAs, configureKubernetesAuth, type KubernetesAuth, removeKubernetesAuth } from "./openbao-auth.ts";
import { type Cluster, helmRelease, nodeImage, nodeValues, pushProjectImages, removeRelease } from "./release.ts";

const cluster = (): Cluster => ({ node: service("node"), helm: service("helm").binary });
const execFileAsync = promisify(execFile);
const release = "kustodia-pods";
const releaseNamespace = "kustodia-pods";
const namespace = "node-pods";
const restricted = "node-pods-restricted";
const authPath = "pods-k8s";
const role = "app";
const run = randomBytes(4).toString("hex");
const auth: KubernetesAuth = {
  path: authPath,
  role,
  serviceAccount: role,
  namespaces: [namespace, restricted],
  readPrefix: "node-pods",
  reviewerNamespace: namespace,
};
/** Values of this run: unique, with bytes a shell or a JSON encoder could mangle. */
const password = `pw-${run} "q" $HOME ✓`;
const apiKey = `key-${run}`;

// biome-ignore lint/suspicious/noExplicitAny: pods are read field by field
type Json = any;

let node: NodeCoordinates;
let images: BuiltImages;
let apps: AppImages;
const work = mkdtempSync(join(tmpdir(), "kustodia-node-pods-"));
/** Every pod this file created, for the etcd check at the end. */
const created: { namespace: string; name: string }[] = [];

async function bao(method: string, path: string, body?: unknown): Promise<Json> {
  return baoAs(node, method, path, body);
}

/** The kubelet's etcd, read inside the node's network namespace: the raw bytes under `key`. */
async function etcdGet(key: string, prefix = false): Promise<Buffer> {
  const [command, ...args] = node.inNetns;
  const { stdout } = await execFileAsync(
    command as string,
    [...args, node.etcdctl, `--endpoints=${node.etcdEndpoint}`, "get", key, ...(prefix ? ["--prefix"] : []), "--print-value-only"],
    { encoding: "buffer", maxBuffer: 256 * 1024 * 1024 },
  );
  return stdout;
}

interface PodOptions {
  name: string;
  namespace?: string;
  annotations?: Record<string, string>;
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  restartPolicy?: "Never" | "Always" | "OnFailure";
  /** Merged into the pod's spec (initContainers, securityContext, volumes, …). */
  spec?: Json;
  /** Merged into the app container. */
  container?: Json;
}

function podManifest(options: PodOptions): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: options.name,
      namespace: options.namespace ?? namespace,
      annotations: {
        "kustodia.io/inject": "true",
        "kustodia.io/vault-role": role,
        "kustodia.io/vault-auth-path": authPath,
        ...options.annotations,
      },
    },
    spec: {
      serviceAccountName: role,
      restartPolicy: options.restartPolicy ?? "Never",
      terminationGracePeriodSeconds: 20,
      containers: [
        {
          name: "app",
          image: options.image,
          ...(options.command ? { command: options.command } : {}),
          ...(options.args ? { args: options.args } : {}),
          env: Object.entries(options.env ?? { SECRET_PASSWORD: `node-pods/${run}#password` }).map(([name, value]) => ({ name, value })),
          ...options.container,
        },
      ],
      ...options.spec,
    },
  };
}

/** Creates the pod; returns kubectl's stderr (admission warnings). */
async function createPod(options: PodOptions): Promise<string> {
  const manifest = podManifest(options);
  created.push({ namespace: manifest.metadata.namespace, name: manifest.metadata.name });
  const child = execFileAsync(node.kubectl, [`--kubeconfig=${node.kubeconfig}`, "create", "-f", "-"]);
  child.child.stdin?.end(JSON.stringify(manifest));
  return (await child).stderr;
}

async function getPod(name: string, ns = namespace): Promise<Json> {
  return JSON.parse(await kubectl(node, ["get", "pod", name, "-n", ns, "-o", "json"]));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const found = await probe();
      if (found !== undefined) return found;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function status(pod: Json, container = "app"): Json {
  return [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].find(
    (candidate: Json) => candidate.name === container,
  );
}

/** Waits until the pod ran to its end (phase Succeeded or Failed). */
async function finished(name: string, ns = namespace): Promise<Json> {
  return until(`pod ${ns}/${name} to finish`, async () => {
    const pod = await getPod(name, ns);
    return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed" ? pod : undefined;
  });
}

async function logs(name: string, container = "app", ns = namespace, previous = false): Promise<string> {
  return kubectl(node, ["logs", name, "-n", ns, "-c", container, ...(previous ? ["--previous"] : [])]);
}

/** Waits until the container's log contains `text`; returns the log. */
async function logContains(name: string, text: string, container = "app", ns = namespace, timeoutMs = 120_000): Promise<string> {
  return until(
    `"${text}" in the log of ${ns}/${name}/${container}`,
    async () => {
      const log = await logs(name, container, ns);
      return log.includes(text) ? log : undefined;
    },
    timeoutMs,
  );
}

/** The report of an app that got `value` as PASSWORD and no reference or setting. */
function receivedPassword(value = password): string {
  return `${reportLine("PASSWORD", value)}\nleaked=0`;
}

async function expectStoredWithoutValue(name: string, ns = namespace): Promise<Json> {
  const stored = await kubectl(node, ["get", "pod", name, "-n", ns, "-o", "json"]);
  expect(stored).not.toContain(password);
  expect(stored).toContain(`node-pods/${run}#password`);
  const raw = await etcdGet(`/registry/pods/${ns}/${name}`);
  expect(raw.length).toBeGreaterThan(0);
  expect(raw.includes(Buffer.from(password))).toBe(false);
  return JSON.parse(stored);
}

/**
 * Deletes the pod and returns the app container's terminated state as the kubelet reported it (a
 * watch sees it between the SIGTERM and the pod's removal; kubectl's watch prints one JSON event per line).
 */
async function deleteAndWatchExit(name: string, ns = namespace): Promise<{ exitCode: number; reason: string }> {
  const args = [`--kubeconfig=${node.kubeconfig}`, "get", "pod", name, "-n", ns, "--watch", "--output-watch-events", "-o", "json"];
  const watch = spawn(node.kubectl, args);
  let seen = "";
  watch.stdout.on("data", (chunk: Buffer) => {
    seen += chunk.toString("utf8");
  });
  const exited = () => {
    for (const event of seen.split("\n").slice(0, -1)) {
      const terminated = status(JSON.parse(event).object)?.state?.terminated;
      if (terminated) return { exitCode: terminated.exitCode as number, reason: terminated.reason as string };
    }
    return undefined;
  };
  try {
    await until(`a watch on ${ns}/${name}`, async () => (seen.length > 0 ? true : undefined), 30_000);
    await kubectl(node, ["delete", "pod", name, "-n", ns, "--wait=false"]);
    return await until(`the exit of ${ns}/${name}`, async () => exited(), 60_000);
  } finally {
    watch.kill();
  }
}

describe.skipIf(skipWithout("node", "helm"))("app pods on the real node", () => {
  beforeAll(async () => {
    node = service("node");
    [images, apps] = await Promise.all([pushProjectImages(node), pushAppImages(node, join(work, "apps"))]);
    await helmRelease(
      cluster(),
      "install",
      release,
      releaseNamespace,
      nodeValues(node, images, {
        shim: { vaultAddrAllowlist: [`http://${node.nodeIp}:8299`] },
        // The app images are in the node's own registry, on a private network the webhook refuses
        // unless the admin lists it (docs/webhook.md).
        registry: { allowedNetworks: [`${node.nodeIp}/32`] },
      }),
    );
    for (const ns of [namespace, restricted]) {
      await kubectl(node, ["create", "namespace", ns]);
      await kubectl(node, ["label", "namespace", ns, "kustodia.io/injection=enabled"]);
      await kubectl(node, ["create", "serviceaccount", role, "-n", ns]);
    }
    await kubectl(node, ["label", "namespace", restricted, "pod-security.kubernetes.io/enforce=restricted"]);

    await configureKubernetesAuth(node, auth);
    await bao("POST", `secret/data/node-pods/${run}`, { data: { password, "api-key": apiKey } });
  }, 900_000);

  afterAll(async () => {
    if (!node) return;
    await removeRelease(cluster(), release, releaseNamespace, [namespace, restricted]);
    await removeKubernetesAuth(node, auth);
    rmSync(work, { recursive: true, force: true });
  });

  describe("copy delivery: the runtime copied by the kustodia-install init container", () => {
    it("scratch (one static binary), no command: ENTRYPOINT and CMD from the registry", async () => {
      await createPod({ name: "scratch", image: apps.images.scratch });
      const pod = await finished("scratch");
      expect(await logs("scratch")).toContain(receivedPassword());
      expect(status(pod).state.terminated.exitCode).toBe(0);
      const stored = await expectStoredWithoutValue("scratch");
      expect(stored.spec.containers[0].command).toEqual(["/kustodia/kustodia-shim", "--", apps.program.scratch]);
      expect(stored.spec.containers[0].args).toEqual(["PASSWORD"]);
      expect(stored.spec.initContainers.map((container: Json) => container.image)).toEqual([nodeImage(node, images, "shim")]);
    });

    it("distroless-like (glibc, no shell), with command", async () => {
      await createPod({
        name: "distroless",
        image: apps.images.distroless,
        command: [apps.program.distroless, "PASSWORD", "API_KEY"],
        env: {
          SECRET_PASSWORD: `node-pods/${run}#password`,
          SECRET_API_KEY: `node-pods/${run}#api-key`,
        },
      });
      await finished("distroless");
      const log = await logs("distroless");
      expect(log).toContain(reportLine("PASSWORD", password));
      expect(log).toContain(`${reportLine("API_KEY", apiKey)}\nleaked=0 uid=65532`);
      await expectStoredWithoutValue("distroless");
    });

    it("Alpine-like (musl and busybox), a shell command line", async () => {
      await createPod({
        name: "alpine",
        image: apps.images.alpine,
        command: ["sh", "-c", `echo "shell sees \${#PASSWORD} characters"; exec ${apps.program.alpine} PASSWORD`],
      });
      await finished("alpine");
      const log = await logs("alpine");
      // busybox counts bytes
      expect(log).toContain(`shell sees ${Buffer.byteLength(password)} characters`);
      expect(log).toContain(receivedPassword());
      await expectStoredWithoutValue("alpine");
    });

    it("Debian-like, no command, through a multi-platform index: the node's platform is picked", async () => {
      await createPod({ name: "debian-index", image: apps.multiPlatform });
      await finished("debian-index");
      expect(await logs("debian-index")).toContain(receivedPassword());
      const stored = await expectStoredWithoutValue("debian-index");
      expect(stored.spec.containers[0].command).toEqual(["/kustodia/kustodia-shim", "--", apps.program.debian]);
    });

    it("a restricted namespace: runAsNonRoot with an arbitrary UID, readOnlyRootFilesystem, fsGroup", async () => {
      const hardened = {
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
      };
      const warnings = await createPod({
        name: "restricted",
        namespace: restricted,
        image: apps.images.alpine,
        command: [apps.program.alpine, "PASSWORD"],
        spec: { securityContext: { runAsUser: 40123, runAsGroup: 40124, fsGroup: 40125, seccompProfile: { type: "RuntimeDefault" } } },
        container: { securityContext: hardened },
      });
      expect(warnings).not.toMatch(/PodSecurity|violate/);
      await finished("restricted", restricted);
      expect(await logs("restricted", "app", restricted)).toContain(`${receivedPassword()} uid=40123 gid=40124`);
      await expectStoredWithoutValue("restricted", restricted);
    });

    it("an init container and a native sidecar that use secrets, beside the app", async () => {
      await createPod({
        name: "init-sidecar",
        image: apps.images.alpine,
        command: [apps.program.alpine, "--every", "1", "PASSWORD"],
        restartPolicy: "Always",
        spec: {
          initContainers: [
            {
              name: "migrate",
              image: apps.images.scratch,
              env: [{ name: "SECRET_API_KEY", value: `node-pods/${run}#api-key` }],
              args: ["API_KEY"],
            },
            {
              name: "proxy",
              image: apps.images.distroless,
              restartPolicy: "Always",
              command: [apps.program.distroless, "--every", "1", "PASSWORD", "API_KEY"],
              env: [
                { name: "SECRET_PASSWORD", value: `node-pods/${run}#password` },
                { name: "SECRET_API_KEY", value: `node-pods/${run}#api-key` },
              ],
            },
          ],
        },
      });
      expect(await logContains("init-sidecar", "leaked=0", "migrate")).toContain(reportLine("API_KEY", apiKey));
      const proxy = await logContains("init-sidecar", "leaked=0", "proxy");
      expect(proxy).toContain(reportLine("PASSWORD", password));
      expect(proxy).toContain(reportLine("API_KEY", apiKey));
      expect(await logContains("init-sidecar", "leaked=0", "app")).toContain(receivedPassword());
      const stored = await expectStoredWithoutValue("init-sidecar");
      const initNames = stored.spec.initContainers.map((container: Json) => container.name);
      expect(initNames[0]).toBe("kustodia-install");
      expect(initNames.slice(1)).toEqual(["migrate", "proxy"]);
      await kubectl(node, ["delete", "pod", "init-sidecar", "-n", namespace, "--wait=false"]);
    });
  });
  describe("rotation mode on the node", () => {
    for (const mode of ["restart", "signal"] as const) {
      it(`${mode}: a value changed in OpenBao reaches the running app; kubectl delete pod stops it gracefully`, async () => {
        const path = `node-pods/${run}-${mode}`;
        const first = `first-${mode}-${run}`;
        const second = `second-${mode}-${run}`;
        await bao("POST", `secret/data/${path}`, { data: { password: first } });
        await createPod({
          name: `rotate-${mode}`,
          image: apps.images.alpine,
          command: [apps.program.alpine, "--every", "1", "PASSWORD"],
          restartPolicy: "Always",
          env: { SECRET_PASSWORD: `${path}#password` },
          annotations: { "kustodia.io/rotation": mode, "kustodia.io/rotation-interval": "2s" },
        });
        await logContains(`rotate-${mode}`, reportLine("PASSWORD", first));
        await bao("POST", `secret/data/${path}`, { data: { password: second } });
        const log = await logContains(`rotate-${mode}`, reportLine("PASSWORD", second), "app", namespace, 60_000);
        if (mode === "signal") expect(log).toContain("hangup");
        const pod = await getPod(`rotate-${mode}`);
        expect(status(pod).restartCount).toBe(0);
        expect(pod.spec.containers[0].command.slice(0, 4)).toEqual(["/kustodia/tini", "--", "/kustodia/kustodia-shim", "--"]);
        const stored = await kubectl(node, ["get", "pod", `rotate-${mode}`, "-n", namespace, "-o", "json"]);
        expect(stored).not.toContain(second);
        expect((await etcdGet(`/registry/pods/${namespace}/rotate-${mode}`)).includes(Buffer.from(second))).toBe(false);
        // SIGTERM reaches tini, the shim and the app, which ends with 0; a kill after the grace period would be 137.
        expect(await deleteAndWatchExit(`rotate-${mode}`)).toEqual({ exitCode: 0, reason: "Completed" });
      });
    }
  });

  describe("failing closed, for real", () => {
    it("backend unreachable: the container exits 69, the kubelet restarts it, and the app never ran", async () => {
      // The app shares an emptyDir with a container that references nothing, to look for its marker.
      await createPod({
        name: "unreachable",
        image: apps.images.alpine,
        restartPolicy: "Always",
        annotations: { "kustodia.io/vault-addr": `http://${node.nodeIp}:8299` },
        spec: {
          volumes: [{ name: "shared", emptyDir: {} }],
          containers: [
            {
              name: "app",
              image: apps.images.alpine,
              command: [apps.program.alpine, "--marker", "/shared/ran", "PASSWORD"],
              env: [
                { name: "SECRET_PASSWORD", value: `node-pods/${run}#password` },
                { name: "KUSTODIA_TIMEOUT", value: "3s" },
              ],
              volumeMounts: [{ name: "shared", mountPath: "/shared" }],
            },
            {
              name: "watcher",
              image: apps.images.alpine,
              command: ["sleep", "3600"],
              volumeMounts: [{ name: "shared", mountPath: "/shared" }],
            },
          ],
        },
      });
      const pod = await until("a restart after exit 69", async () => {
        const current = await getPod("unreachable");
        const app = status(current);
        return app?.restartCount >= 1 && app.lastState?.terminated?.exitCode === 69 ? current : undefined;
      });
      const message = status(pod).lastState.terminated.message;
      expect(message).toContain(`backend unreachable within 3.0 s`);
      expect(message).toContain("not starting the app: 1 of 1 reference(s) unresolved");
      expect(await logs("unreachable", "app", namespace, true)).not.toContain("leaked=");
      expect(await kubectl(node, ["exec", "unreachable", "-n", namespace, "-c", "watcher", "--", "ls", "-a", "/shared"])).not.toContain(
        "ran",
      );
      await kubectl(node, ["delete", "pod", "unreachable", "-n", namespace, "--wait=false"]);
    });

    it("a missing secret: exit 78, the reason in kubectl logs and in the termination message", async () => {
      await createPod({ name: "missing", image: apps.images.scratch, env: { SECRET_PASSWORD: `node-pods/${run}-absent#password` } });
      const pod = await finished("missing");
      const terminated = status(pod).state.terminated;
      expect(terminated.exitCode).toBe(78);
      expect(terminated.message).toContain(`node-pods/${run}-absent`);
      expect(terminated.message).toContain("not starting the app: 1 of 1 reference(s) unresolved");
      expect(await logs("missing")).toContain(`node-pods/${run}-absent`);
      expect(await logs("missing")).not.toContain("leaked=");
    });

    it("the webhook scaled to 0: pod creation is denied; and with failurePolicy Ignore the policy denies the unmutated pod", async () => {
      const deployment = ["deployment", release, "-n", releaseNamespace];
      const webhookConfiguration = ["mutatingwebhookconfiguration", release];
      const failurePolicy = (value: string) => JSON.stringify([{ op: "replace", path: "/webhooks/0/failurePolicy", value }]);
      await kubectl(node, ["scale", ...deployment, "--replicas=0"]);
      try {
        await until("no webhook pod", async () => {
          const pods = JSON.parse(await kubectl(node, ["get", "pods", "-n", releaseNamespace, "-o", "json"]));
          return pods.items.length === 0 ? true : undefined;
        });
        await expect(createPod({ name: "webhook-down", image: apps.images.scratch })).rejects.toThrow(
          /failed calling webhook "inject\.kustodia\.io"/,
        );
        await kubectl(node, ["patch", ...webhookConfiguration, "--type=json", "-p", failurePolicy("Ignore")]);
        await expect(createPod({ name: "webhook-down", image: apps.images.scratch })).rejects.toThrow(
          new RegExp(`ValidatingAdmissionPolicy '${release}-injected'`),
        );
      } finally {
        await kubectl(node, ["patch", ...webhookConfiguration, "--type=json", "-p", failurePolicy("Fail")]);
        await kubectl(node, ["scale", ...deployment, "--replicas=2"]);
        await kubectl(node, ["rollout", "status", ...deployment, "--timeout=120s"]);
      }
      expect(created.filter((pod) => pod.name === "webhook-down")).toHaveLength(2);
      created.splice(0, created.length, ...created.filter((pod) => pod.name !== "webhook-down"));
    });
  });

  describe("image-volume delivery: the shim image mounted as a volume, nothing copied", () => {
    beforeAll(async () => {
      await helmRelease(
        cluster(),
        "upgrade",
        release,
        releaseNamespace,
        nodeValues(node, images, {
          shim: { delivery: "image-volume", vaultAddrAllowlist: [`http://${node.nodeIp}:8299`] },
          registry: { allowedNetworks: [`${node.nodeIp}/32`] },
        }),
      );
    }, 300_000);

    it("scratch, no command: no init container, an image volume of the shim image, the value received", async () => {
      await createPod({ name: "scratch-iv", image: apps.images.scratch });
      await finished("scratch-iv");
      expect(await logs("scratch-iv")).toContain(receivedPassword());
      const stored = await expectStoredWithoutValue("scratch-iv");
      expect(stored.spec.initContainers ?? []).toEqual([]);
      expect(stored.spec.volumes).toContainEqual(
        expect.objectContaining({ image: { reference: nodeImage(node, images, "shim"), pullPolicy: "IfNotPresent" } }),
      );
    });

    it("a restricted namespace with an arbitrary UID and readOnlyRootFilesystem", async () => {
      await createPod({
        name: "restricted-iv",
        namespace: restricted,
        image: apps.images.distroless,
        command: [apps.program.distroless, "PASSWORD"],
        spec: { securityContext: { runAsUser: 40123, runAsGroup: 40124, fsGroup: 40125, seccompProfile: { type: "RuntimeDefault" } } },
        container: {
          securityContext: {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"] },
          },
        },
      });
      await finished("restricted-iv", restricted);
      expect(await logs("restricted-iv", "app", restricted)).toContain(`${receivedPassword()} uid=40123 gid=40124`);
      await expectStoredWithoutValue("restricted-iv", restricted);
    });
  });

  it("left the value nowhere in etcd: not in any of this file's pods, nor under any key", async () => {
    for (const pod of created)
      expect((await etcdGet(`/registry/pods/${pod.namespace}/${pod.name}`)).includes(Buffer.from(password))).toBe(false);
    expect((await etcdGet("/", true)).includes(Buffer.from(password))).toBe(false);
  });
});
