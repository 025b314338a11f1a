// A real Kubernetes node for the tests: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet, containerd + runc and a registry, all inside a network namespace of their
// own (test/infra/node-host.ts) with the node IP on its `lo`, and pods on a ptp network inside it.
// The host reaches the apiserver and the registry only through loopback listeners that forward into
// the namespace over unix sockets. One node per machine (a machine-wide lock).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { runInstallScript } from "./install.ts";
import { getJson, SERVICE_ACCOUNT_ISSUER } from "./kube.ts";
import {
  cniConfDir,
  cniConflist,
  containerdConfig,
  containerdSocket,
  kubeletConfig,
  NODE,
  type NodePaths,
  registryHostsDir,
  registryHostsToml,
} from "./node-config.ts";
import {
  acquireNodeLock,
  createNetns,
  createNodeCgroup,
  forgetNodeLockOwner,
  IN_NETNS,
  inNetns,
  NODE_ROOT,
  saveKernelTunables,
  startNodeDaemon,
  teardownNodeHost,
} from "./node-host.ts";
import { buildImage, pushImage } from "./oci-image.ts";
import { type Daemon, freePort, stopDaemon, waitUntil } from "./proc.ts";
import { makeCertificateAuthority, makeClientCertificate, makeLeafCertificate, makeRsaKeyPair } from "./tls.ts";
import type { InfraContext, NodeCoordinates, StartedService } from "./types.ts";

const execFileAsync = promisify(execFile);
const PAUSE_REPOSITORY = "kustodia-node/pause";
const KUBE_COMMANDS = ["kube-apiserver", "kubelet", "kubectl", "kube-scheduler", "kube-controller-manager"] as const;

interface Binaries {
  openbao: string;
  etcd: string;
  etcdctl: string;
  registry: string;
  skopeo: string;
  umoci: string;
  kube: Record<(typeof KUBE_COMMANDS)[number], string>;
  runtime: Record<"containerd" | "containerd-shim-runc-v2" | "ctr" | "runc" | "cni-bin-dir" | "pause", string>;
}

async function install(cacheDir: string): Promise<Binaries> {
  const [[openbao], [etcd, etcdctl], [registry, skopeo, umoci], kube, runtime] = await Promise.all([
    runInstallScript("install-openbao.sh", cacheDir),
    runInstallScript("install-etcd.sh", cacheDir),
    runInstallScript("install-registry.sh", cacheDir),
    runInstallScript("build-kube.sh", cacheDir, [...KUBE_COMMANDS]),
    runInstallScript("install-node.sh", cacheDir),
  ]);
  if (!openbao || !etcd || !etcdctl || !registry || !skopeo || !umoci)
    throw new Error("install-openbao.sh/install-etcd.sh/install-registry.sh printed too few paths");
  return {
    openbao,
    etcd,
    etcdctl,
    registry,
    skopeo,
    umoci,
    kube: Object.fromEntries(KUBE_COMMANDS.map((name, i) => [name, kube[i] as string])) as Binaries["kube"],
    runtime: Object.fromEntries(runtime.map((line) => line.split("=", 2))) as Binaries["runtime"],
  };
}

/** Everything started so far, for the failure path and for `down`. */
interface Starting {
  daemons: Daemon[];
  cgroupProcs: string[];
  dir: string;
}

function daemon(
  starting: Starting,
  name: string,
  command: string,
  args: string[],
  options: { netns?: boolean; env?: NodeJS.ProcessEnv } = {},
): Daemon {
  const started = startNodeDaemon(starting.cgroupProcs, { name, command, args, logFile: join(starting.dir, `${name}.log`), ...options });
  starting.daemons.push(started);
  return started;
}

/**
 * A loopback port on the host that reaches `target` inside the namespace: a socat on each side of a
 * unix socket (a socket file belongs to no network namespace).
 */
async function forwardIntoNetns(starting: Starting, name: string, target: string): Promise<number> {
  const socket = join(NODE_ROOT, `${name}.sock`);
  const inside = daemon(starting, `forward-${name}-netns`, "socat", [`UNIX-LISTEN:${socket},fork,unlink-early,mode=600`, `TCP:${target}`]);
  await waitUntil(inside, `${socket} to exist`, async () => {
    await execFileAsync("test", ["-S", socket]);
    return true;
  });
  const port = await freePort();
  daemon(starting, `forward-${name}-host`, "socat", [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${socket}`], {
    netns: false,
  });
  return port;
}

type KubeconfigUser = { token: string } | { certFile: string; keyFile: string };

function writeKubeconfig(file: string, server: string, caFile: string, user: KubeconfigUser): void {
  const credentials = "token" in user ? { token: user.token } : { "client-certificate": user.certFile, "client-key": user.keyFile };
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: NODE.name, cluster: { server, "certificate-authority-data": readFileSync(caFile).toString("base64") } }],
    users: [{ name: "user", user: credentials }],
    contexts: [{ name: NODE.name, context: { cluster: NODE.name, user: "user" } }],
    "current-context": NODE.name,
  };
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

interface Pki {
  caFile: string;
  serving: { certFile: string; keyFile: string };
  kubelet: { certFile: string; keyFile: string };
  kubeletClient: { certFile: string; keyFile: string };
  serviceAccount: { privateKeyFile: string; publicKeyFile: string };
}

async function makePki(dir: string): Promise<Pki> {
  const ca = await makeCertificateAuthority(dir, "node-cluster");
  const sans = [
    "IP:127.0.0.1",
    `IP:${NODE.ip}`,
    `IP:${NODE.kubernetesServiceIp}`,
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
  ];
  const [serving, kubelet, kubeletClient, serviceAccount] = await Promise.all([
    makeLeafCertificate(ca, dir, "apiserver", sans),
    // The Node authorizer knows a kubelet by this name and group.
    makeClientCertificate(ca, dir, "kubelet", { commonName: `system:node:${NODE.name}`, organization: "system:nodes" }),
    // The apiserver's identity towards the kubelet (logs, exec).
    makeClientCertificate(ca, dir, "apiserver-kubelet-client", {
      commonName: "kube-apiserver-kubelet-client",
      organization: "system:masters",
    }),
    makeRsaKeyPair(dir, "service-account"),
  ]);
  return { caFile: ca.certFile, serving, kubelet, kubeletClient, serviceAccount };
}

export async function startNode(ctx: InfraContext): Promise<StartedService<NodeCoordinates>> {
  if (process.getuid?.() !== 0)
    throw new Error("the test node needs root (network namespace, cgroups, mounts); leave `node` out with KUSTODIA_INFRA_ONLY");
  const binaries = await install(ctx.cacheDir);
  const dir = join(ctx.runDir, "node");
  mkdirSync(dir, { recursive: true });
  const lock = await acquireNodeLock(dir);
  const starting: Starting = { daemons: [], cgroupProcs: [], dir };
  try {
    await teardownNodeHost(); // whatever a crashed run left behind
    createNetns(NODE.ip);
    starting.cgroupProcs = createNodeCgroup();
    const coordinates = await startCluster(binaries, starting);
    return { coordinates, daemons: [...starting.daemons, lock] };
  } catch (error) {
    await teardownNodeHost().catch((teardownError: Error) =>
      console.error(`[infra] node teardown after a failed start: ${teardownError.message}`),
    );
    forgetNodeLockOwner();
    await stopDaemon(lock.pid);
    throw error;
  }
}

async function startCluster(binaries: Binaries, starting: Starting): Promise<NodeCoordinates> {
  const { dir } = starting;
  const paths: NodePaths = { root: NODE_ROOT, dir, cniBinDir: binaries.runtime["cni-bin-dir"], runc: binaries.runtime.runc };
  const pki = await makePki(dir);
  const adminToken = randomBytes(24).toString("hex");
  const tokenFile = join(dir, "tokens.csv");
  writeFileSync(tokenFile, `${adminToken},kustodia-test-admin,kustodia-test-admin,system:masters\n`, { mode: 0o600 });
  // Pods reach the apiserver at the `kubernetes` Service's ClusterIP; without kube-proxy one DNAT rule does that.
  for (const chain of ["OUTPUT", "PREROUTING"]) {
    inNetns(
      "iptables",
      ["-t", "nat", "-A", chain, "-d", `${NODE.kubernetesServiceIp}/32`, "-p", "tcp", "--dport", "443"].concat([
        "-j",
        "DNAT",
        "--to-destination",
        `${NODE.ip}:${NODE.apiserverPort}`,
      ]),
    );
  }

  const etcdEndpoint = `http://127.0.0.1:${NODE.etcdClientPort}`;
  const etcdPeer = `http://127.0.0.1:${NODE.etcdPeerPort}`;
  daemon(starting, "etcd", binaries.etcd, [
    "--name=kustodia-node",
    `--data-dir=${join(NODE_ROOT, "etcd")}`,
    `--listen-client-urls=${etcdEndpoint}`,
    `--advertise-client-urls=${etcdEndpoint}`,
    `--listen-peer-urls=${etcdPeer}`,
    `--initial-advertise-peer-urls=${etcdPeer}`,
    `--initial-cluster=kustodia-node=${etcdPeer}`,
    "--log-level=warn",
  ]);
  const apiserver = daemon(starting, "kube-apiserver", binaries.kube["kube-apiserver"], [
    `--etcd-servers=${etcdEndpoint}`,
    "--bind-address=0.0.0.0",
    `--advertise-address=${NODE.ip}`,
    `--secure-port=${NODE.apiserverPort}`,
    `--cert-dir=${dir}`,
    `--tls-cert-file=${pki.serving.certFile}`,
    `--tls-private-key-file=${pki.serving.keyFile}`,
    `--client-ca-file=${pki.caFile}`,
    `--token-auth-file=${tokenFile}`,
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    `--kubelet-client-certificate=${pki.kubeletClient.certFile}`,
    `--kubelet-client-key=${pki.kubeletClient.keyFile}`,
    "--kubelet-preferred-address-types=InternalIP,Hostname",
    // Webhook Services are called at their endpoints (pod IPs, routed inside the namespace): no kube-proxy.
    "--enable-aggregator-routing=true",
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${pki.serviceAccount.publicKeyFile}`,
    `--service-account-signing-key-file=${pki.serviceAccount.privateKeyFile}`,
    `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-cluster-ip-range=${NODE.serviceCidr}`,
    "--allow-privileged=true",
    "--profiling=false",
    "--enable-priority-and-fairness=false",
    "--v=1",
  ]);

  const registryConfig = join(dir, "registry.yml");
  const registryHost = `${NODE.ip}:${NODE.registryPort}`;
  writeFileSync(
    registryConfig,
    JSON.stringify({
      version: "0.1",
      log: { level: "warn", formatter: "text" },
      storage: { filesystem: { rootdirectory: join(NODE_ROOT, "registry") }, delete: { enabled: true } },
      http: { addr: registryHost, secret: randomBytes(16).toString("hex") },
    }),
  );
  // REGISTRY_* variables would override the config file.
  const registryEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("REGISTRY_")));
  const registry = daemon(starting, "registry", binaries.registry, ["serve", registryConfig], { env: registryEnv });

  // docker.io too: `busybox:1.37` comes from the node's registry, and nothing is pulled from outside.
  for (const namespace of [registryHost, "docker.io"]) {
    mkdirSync(join(registryHostsDir(paths), namespace), { recursive: true });
    writeFileSync(join(registryHostsDir(paths), namespace, "hosts.toml"), registryHostsToml(registryHost));
  }
  mkdirSync(cniConfDir(paths), { recursive: true });
  writeFileSync(join(cniConfDir(paths), "10-kustodia.conflist"), JSON.stringify(cniConflist(paths), null, 2));
  const pauseImage = `${registryHost}/${PAUSE_REPOSITORY}:${/pause-(v[^/]+)/.exec(binaries.runtime.pause)?.[1] ?? "latest"}`;
  const containerdConfigFile = join(dir, "containerd.toml");
  writeFileSync(containerdConfigFile, containerdConfig(paths, pauseImage));
  // The OpenBao that pods use: a bare dev server (KV v2 at secret/), at the node IP.
  const openbaoToken = `root-${randomBytes(16).toString("hex")}`;
  const openbaoDir = join(NODE_ROOT, "openbao");
  mkdirSync(openbaoDir, { recursive: true });
  const openbao = daemon(
    starting,
    "openbao",
    binaries.openbao,
    ["server", "-dev", `-dev-listen-address=${NODE.ip}:${NODE.openbaoPort}`, "-dev-no-store-token"],
    { env: { ...process.env, BAO_DEV_ROOT_TOKEN_ID: openbaoToken, HOME: openbaoDir } },
  );
  const runtimePath = `${join(binaries.runtime.containerd, "..")}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`;
  const containerd = daemon(starting, "containerd", binaries.runtime.containerd, ["--config", containerdConfigFile], {
    env: { ...process.env, PATH: runtimePath },
  });

  const openbaoHost = `${NODE.ip}:${NODE.openbaoPort}`;
  const [apiPort, registryPort, openbaoPort] = await Promise.all([
    forwardIntoNetns(starting, "apiserver", `127.0.0.1:${NODE.apiserverPort}`),
    forwardIntoNetns(starting, "registry", registryHost),
    forwardIntoNetns(starting, "openbao", openbaoHost),
  ]);
  const openbaoAddr = `http://127.0.0.1:${openbaoPort}`;
  const server = `https://127.0.0.1:${apiPort}`;
  const pushHost = `127.0.0.1:${registryPort}`;
  const caPem = readFileSync(pki.caFile, "utf8");
  const api = (path: string) => getJson(`${server}${path}`, adminToken, caPem);

  const pauseLayout = join(dir, "images");
  await Promise.all([
    waitUntil(apiserver, "kube-apiserver /readyz", async () => (await api("/readyz")).status === 200, 120_000),
    waitUntil(registry, "GET /v2/", async () => (await fetch(`http://${pushHost}/v2/`)).ok, 30_000).then(async () => {
      await buildImage(binaries.umoci, pauseLayout, "pause", {
        files: { "/pause": binaries.runtime.pause },
        entrypoint: ["/pause"],
        user: "65535:65535",
      });
      await pushImage(binaries.skopeo, pauseLayout, "pause", pauseImage.replace(registryHost, pushHost));
    }),
    waitUntil(openbao, "OpenBao unsealed", async () => {
      const health = (await (await fetch(`${openbaoAddr}/v1/sys/health`)).json()) as { sealed?: boolean };
      return health.sealed === false;
    }),
    waitUntil(containerd, "containerd's socket", async () => {
      await execFileAsync(binaries.runtime.ctr, ["--address", containerdSocket(paths), "version"]);
      return true;
    }),
  ]);

  const adminInNetns = join(dir, "admin-in-netns.kubeconfig");
  writeKubeconfig(adminInNetns, `https://127.0.0.1:${NODE.apiserverPort}`, pki.caFile, { token: adminToken });
  const kubeletKubeconfig = join(dir, "kubelet.kubeconfig");
  writeKubeconfig(kubeletKubeconfig, `https://${NODE.ip}:${NODE.apiserverPort}`, pki.caFile, pki.kubelet);
  const kubeletConfigFile = join(dir, "kubelet.yaml");
  writeFileSync(kubeletConfigFile, JSON.stringify(kubeletConfig(paths, pki.caFile), null, 2));
  saveKernelTunables();
  const kubelet = daemon(starting, "kubelet", binaries.kube.kubelet, [
    `--config=${kubeletConfigFile}`,
    `--kubeconfig=${kubeletKubeconfig}`,
    `--root-dir=${join(NODE_ROOT, "kubelet")}`,
    // Its default is /var/lib/kubelet/pki whatever the root dir.
    `--cert-dir=${join(NODE_ROOT, "kubelet", "pki")}`,
    `--hostname-override=${NODE.name}`,
    `--node-ip=${NODE.ip}`,
    "--v=1",
  ]);
  daemon(starting, "kube-controller-manager", binaries.kube["kube-controller-manager"], [
    `--kubeconfig=${adminInNetns}`,
    `--authentication-kubeconfig=${adminInNetns}`,
    `--authorization-kubeconfig=${adminInNetns}`,
    "--bind-address=127.0.0.1",
    "--leader-elect=false",
    `--root-ca-file=${pki.caFile}`,
    `--service-account-private-key-file=${pki.serviceAccount.privateKeyFile}`,
    `--service-cluster-ip-range=${NODE.serviceCidr}`,
    "--allocate-node-cidrs=false",
    // Its default, /usr/libexec/kubernetes/..., would be created on the host.
    `--flex-volume-plugin-dir=${join(NODE_ROOT, "volume-plugins")}`,
    "--v=1",
  ]);
  daemon(starting, "kube-scheduler", binaries.kube["kube-scheduler"], [
    `--kubeconfig=${adminInNetns}`,
    `--authentication-kubeconfig=${adminInNetns}`,
    `--authorization-kubeconfig=${adminInNetns}`,
    "--bind-address=127.0.0.1",
    "--leader-elect=false",
    "--v=1",
  ]);

  await waitUntil(kubelet, `Node ${NODE.name} Ready, untainted, with the default ServiceAccount`, async () => nodeUsable(api), 180_000);
  const kubeconfig = join(dir, "kubeconfig");
  writeKubeconfig(kubeconfig, server, pki.caFile, { token: adminToken });
  return {
    server,
    kubeconfig,
    caFile: pki.caFile,
    adminToken,
    inClusterServer: `https://${NODE.ip}:${NODE.apiserverPort}`,
    serviceAccountIssuer: SERVICE_ACCOUNT_ISSUER,
    nodeName: NODE.name,
    nodeIp: NODE.ip,
    podCidr: NODE.podCidr,
    inNetns: [...IN_NETNS],
    registry: { host: registryHost, pushHost },
    openbao: { addr: openbaoAddr, inClusterAddr: `http://${openbaoHost}`, rootToken: openbaoToken, binary: binaries.openbao },
    pauseImage,
    etcdEndpoint,
    etcdctl: binaries.etcdctl,
    kubectl: binaries.kube.kubectl,
    ctr: binaries.runtime.ctr,
    containerdSocket: containerdSocket(paths),
    versions: await versions(binaries, api),
  };
}

/** Ready, without the `not-ready` taint (the controller-manager removes it), and pods admitted in `default`. */
async function nodeUsable(api: (path: string) => Promise<{ status: number; body: string }>): Promise<boolean> {
  const node = await api(`/api/v1/nodes/${NODE.name}`);
  if (node.status !== 200) return false;
  const { spec, status } = JSON.parse(node.body) as {
    spec: { taints?: { key: string }[] };
    status: { conditions?: { type: string; status: string }[] };
  };
  const ready = status.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True");
  const tainted = spec.taints?.some((taint) => taint.key.startsWith("node.kubernetes.io/"));
  return Boolean(ready) && !tainted && (await api("/api/v1/namespaces/default/serviceaccounts/default")).status === 200;
}

async function versions(binaries: Binaries, api: (path: string) => Promise<{ body: string }>): Promise<NodeCoordinates["versions"]> {
  const version = async (binary: string, args: string[], pattern: RegExp) =>
    pattern.exec((await execFileAsync(binary, args)).stdout)?.[1] ?? "?";
  return {
    kubernetes: (JSON.parse((await api("/version")).body) as { gitVersion: string }).gitVersion,
    containerd: await version(binaries.runtime.containerd, ["--version"], /\s(v\d\S*)/),
    runc: await version(binaries.runtime.runc, ["--version"], /runc version (\S+)/),
    cniPlugins: /cni-plugins-(v[^/]+)/.exec(binaries.runtime["cni-bin-dir"])?.[1] ?? "?",
  };
}

/** Stops the node and removes every trace of it from the host (see teardownNodeHost). */
export async function stopNode(): Promise<void> {
  await teardownNodeHost();
  forgetNodeLockOwner();
}
