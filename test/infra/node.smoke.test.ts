import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";
import { kubectl } from "./kubectl.ts";
import { acquireNodeLock } from "./node-host.ts";
import { buildImage, pushImage } from "./oci-image.ts";

const execFileAsync = promisify(execFile);

describe.skipIf(skipWithout("node"))("a real node: kubelet + containerd + runc inside the run's network namespace", () => {
  const work = mkdtempSync(join(tmpdir(), "kustodia-node-smoke-"));
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

  it("schedules a pod from an image in its registry, runs it, and serves its log to kubectl logs", async () => {
    const node = service("node");
    const { stdout: busybox } = await execFileAsync("sh", ["-c", "command -v busybox"]);
    const layout = join(work, "images");
    await buildImage("umoci", layout, "hello", {
      files: { "/bin/busybox": busybox.trim(), "/bin/sh": { symlink: "busybox" } },
      entrypoint: ["/bin/sh", "-c"],
    });
    const reference = `${node.registry.host}/kustodia-test/hello:v1`;
    await pushImage("skopeo", layout, "hello", reference.replace(node.registry.host, node.registry.pushHost));

    const name = `hello-${randomBytes(3).toString("hex")}`;
    const marker = randomBytes(8).toString("hex");
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "default" },
      spec: {
        containers: [
          {
            name: "hello",
            image: reference,
            args: [`echo "hello ${marker} from $(/bin/busybox hostname)"; exec /bin/busybox sleep 3600`],
            securityContext: { seccompProfile: { type: "RuntimeDefault" }, allowPrivilegeEscalation: false },
          },
        ],
        terminationGracePeriodSeconds: 1,
      },
    };
    await kubectl(node, ["apply", "-f", "-"], JSON.stringify(pod));
    try {
      await kubectl(node, ["wait", "--for=condition=Ready", `pod/${name}`, "--timeout=120s"]);
      const running = JSON.parse(await kubectl(node, ["get", "pod", name, "-o", "json"])) as {
        spec: { nodeName: string };
        status: { podIP: string };
      };
      expect(running.spec.nodeName).toBe(node.nodeName);
      expect(running.status.podIP).toMatch(new RegExp(`^${node.podCidr.split(".").slice(0, 3).join("\\.")}\\.`));
      const logs = await kubectl(node, ["logs", name]);
      expect(logs).toContain(`hello ${marker} from ${name}`);
    } finally {
      await kubectl(node, ["delete", "pod", name, "--wait=false"]);
    }
  });

  it("refuses a second node on this machine, naming the run that holds it", async () => {
    await expect(acquireNodeLock(work)).rejects.toThrow(/the test node is in use by run \S+ \(checkout .*, node-lock pid \d+/);
  });
});
