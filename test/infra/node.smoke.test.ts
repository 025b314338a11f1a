import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";
import { kubectl } from "./kubectl.ts";
import { acquireNodeLock } from "./node-host.ts";
import { buildImage, busyboxImage, pushImage } from "./oci-image.ts";

const execFileAsync = promisify(execFile);

describe.skipIf(skipWithout("node"))("a real node: kubelet + containerd + runc inside the run's network namespace", () => {
  const work = mkdtempSync(join(tmpdir(), "kustodia-node-smoke-"));
  const image = () => `${service("node").registry.host}/kustodia-test/busybox:v1`;
  beforeAll(async () => {
    const node = service("node");
    const layout = join(work, "images");
    await buildImage(
      "umoci",
      layout,
      "busybox",
      busyboxImage(["sh", "echo", "hostname", "sleep", "printf", "nc"], { entrypoint: ["sh", "-c"] }),
    );
    await pushImage("skopeo", layout, "busybox", image().replace(node.registry.host, node.registry.pushHost));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("turns Ready, running the pinned kubelet and containerd, at an address inside its namespace", async () => {
    const node = service("node");
    const found = JSON.parse(await kubectl(node, ["get", "node", node.nodeName, "-o", "json"])) as {
      status: {
        conditions: { type: string; status: string }[];
        addresses: { type: string; address: string }[];
        nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string };
      };
    };
    expect(found.status.conditions.find((condition) => condition.type === "Ready")?.status).toBe("True");
    expect(found.status.nodeInfo.kubeletVersion).toBe(node.versions.kubernetes);
    expect(found.status.nodeInfo.containerRuntimeVersion).toBe(`containerd://${node.versions.containerd.replace(/^v/, "")}`);
    expect(found.status.addresses).toContainEqual({ type: "InternalIP", address: node.nodeIp });
    // The node IP lives in the namespace, not on the host.
    const { stdout: hostAddresses } = await execFileAsync("ip", ["-o", "addr", "show"]);
    expect(hostAddresses).not.toContain(node.nodeIp);
    const { stdout: namespaceAddresses } = await execFileAsync(node.inNetns[0] as string, [
      ...node.inNetns.slice(1),
      "ip",
      "-o",
      "addr",
      "show",
      "lo",
    ]);
    expect(namespaceAddresses).toContain(`${node.nodeIp}/32`);
  });

  /** A pod running `script` in the busybox image, then sleeping; its log once it matches `expected`. */
  async function podLog(name: string, script: string, expected: RegExp): Promise<{ log: string; podIP: string; nodeName: string }> {
    const node = service("node");
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "default" },
      spec: {
        containers: [
          {
            name: "main",
            image: image(),
            args: [`${script}; exec sleep 3600`],
            securityContext: { seccompProfile: { type: "RuntimeDefault" }, allowPrivilegeEscalation: false },
          },
        ],
        terminationGracePeriodSeconds: 1,
      },
    };
    await kubectl(node, ["apply", "-f", "-"], JSON.stringify(pod));
    try {
      await kubectl(node, ["wait", "--for=condition=Ready", `pod/${name}`, "--timeout=120s"]);
      const deadline = Date.now() + 30_000;
      let log = await kubectl(node, ["logs", name]);
      while (!expected.test(log) && Date.now() < deadline) {
        await sleep(200);
        log = await kubectl(node, ["logs", name]);
      }
      const running = JSON.parse(await kubectl(node, ["get", "pod", name, "-o", "json"]));
      return { log, podIP: running.status.podIP, nodeName: running.spec.nodeName };
    } finally {
      await kubectl(node, ["delete", "pod", name, "--wait=false"]);
    }
  }

  it("schedules a pod from an image in its registry, runs it, and serves its log to kubectl logs", async () => {
    const node = service("node");
    const name = `hello-${randomBytes(3).toString("hex")}`;
    const marker = randomBytes(8).toString("hex");
    const started = await podLog(name, `echo "hello ${marker} from $(hostname)"`, /hello/);
    expect(started.nodeName).toBe(node.nodeName);
    expect(started.podIP).toMatch(new RegExp(`^${node.podCidr.split(".").slice(0, 3).join("\\.")}\\.`));
    expect(started.log).toContain(`hello ${marker} from ${name}`);
  });

  it("lets a pod reach the apiserver at the kubernetes Service's ClusterIP (no kube-proxy: one DNAT rule in the namespace)", async () => {
    const name = `clusterip-${randomBytes(3).toString("hex")}`;
    // busybox's TLS cannot talk to the apiserver's ciphers; plain HTTP to its TLS port gets Go's own answer.
    const script = "printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT";
    const { log } = await podLog(name, script, /HTTPS server/);
    expect(log).toContain("Client sent an HTTP request to an HTTPS server.");
  });

  it("refuses a second node on this machine, naming the run that holds it", async () => {
    await expect(acquireNodeLock(work)).rejects.toThrow(/the test node is in use by run \S+ \(checkout .*, node-lock pid \d+/);
  });
});
