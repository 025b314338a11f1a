// The test node's configuration, as pure functions of its paths: addresses, the kubelet's
// configuration, containerd's, the CNI network and the registry hosts file. Every address here lives
// inside the node's own network namespace (test/infra/node-host.ts), never on the host's interfaces.

/** Addresses and names of the one test node. All of them exist only inside its network namespace. */
export const NODE = {
  name: "kustodia-node",
  /** A /32 on the namespace's `lo`: the kubelet refuses a loopback node IP. */
  ip: "10.99.0.1",
  podCidr: "10.244.0.0/24",
  serviceCidr: "10.96.0.0/16",
  /** The `kubernetes` Service's ClusterIP; a DNAT rule sends it to the apiserver (there is no kube-proxy). */
  kubernetesServiceIp: "10.96.0.1",
  apiserverPort: 6443,
  registryPort: 5000,
  /** OpenBao's dev listener; it takes the next port for its cluster listener. */
  openbaoPort: 8200,
  etcdClientPort: 2379,
  etcdPeerPort: 2380,
  kubeletPort: 10250,
} as const;

/** The node's cgroup (in every cgroup v1 hierarchy): its daemons in `daemons`, the pods below the kubelet's cgroupRoot. */
export const NODE_CGROUP = "kustodia-node";

export interface NodePaths {
  /** Runtime state that must be on a real filesystem: containerd's root and state, kubelet's root, etc. */
  root: string;
  /** Configuration, certificates and logs (the run directory). */
  dir: string;
  cniBinDir: string;
  runc: string;
}

export const containerdSocket = (paths: NodePaths) => `${paths.root}/containerd/containerd.sock`;
export const cniConfDir = (paths: NodePaths) => `${paths.dir}/cni/net.d`;
export const registryHostsDir = (paths: NodePaths) => `${paths.dir}/containerd/certs.d`;

/** containerd 2.3's configuration (version 4), with every path of its own and the settings this VM needs. */
export function containerdConfig(paths: NodePaths, sandboxImage: string): string {
  const root = `${paths.root}/containerd`;
  return `version = 4
root = ${toml(`${root}/root`)}
state = ${toml(`${root}/state`)}
temp = ${toml(`${root}/tmp`)}
imports = []

[plugins.'io.containerd.server.v1.grpc']
  address = ${toml(containerdSocket(paths))}

[plugins.'io.containerd.server.v1.ttrpc']
  address = ${toml(`${root}/containerd.sock.ttrpc`)}

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.internal.v1.opt']
  path = ${toml(`${root}/opt`)}

[plugins.'io.containerd.transfer.v1.local']
  config_path = ${toml(registryHostsDir(paths))}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = ${toml(sandboxImage)}

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = ${toml(registryHostsDir(paths))}

[plugins.'io.containerd.cri.v1.runtime']
  # The VM lacks CAP_SYS_RESOURCE: containers may not get an oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = [${toml(`${root}/cdi`)}]

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = ${toml(paths.runc)}
  Root = ${toml(`${root}/runc`)}
  SystemdCgroup = false

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = [${toml(paths.cniBinDir)}]
  conf_dir = ${toml(cniConfDir(paths))}
`;
}

/** Plain HTTP for the node's own registry (containerd would otherwise try HTTPS first). */
export function registryHostsToml(host: string): string {
  return `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`;
}

/** ptp + host-local: each pod a veth to the node's namespace, routes only, no bridge, no iptables. */
export function cniConflist(paths: NodePaths): object {
  return {
    cniVersion: "1.0.0",
    name: "kustodia-node",
    plugins: [
      {
        type: "ptp",
        ipMasq: false,
        ipam: {
          type: "host-local",
          dataDir: `${paths.root}/cni/networks`,
          ranges: [[{ subnet: NODE.podCidr }]],
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
    ],
  };
}

/** The kubelet's configuration (JSON is YAML): cgroup v1 allowed, evictions and host-wide changes off. */
export function kubeletConfig(paths: NodePaths, clientCaFile: string): object {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: NODE.ip,
    port: NODE.kubeletPort,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: 10248,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: clientCaFile } },
    authorization: { mode: "Webhook" },
    containerRuntimeEndpoint: `unix://${containerdSocket(paths)}`,
    cgroupDriver: "cgroupfs",
    cgroupRoot: `/${NODE_CGROUP}`,
    failCgroupV1: false,
    // runc cannot lower oom_score_adj below 0 here (no CAP_SYS_RESOURCE in the VM).
    oomScoreAdj: 0,
    failSwapOn: false,
    makeIPTablesUtilChains: false,
    evictionHard: {},
    evictionSoft: {},
    enforceNodeAllocatable: [],
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    podLogsDir: `${paths.root}/pod-logs`,
    volumePluginDir: `${paths.root}/volume-plugins`,
    staticPodPath: "",
    serializeImagePulls: false,
    registerNode: true,
    resolvConf: "",
    syncFrequency: "10s",
    nodeStatusUpdateFrequency: "5s",
    fileCheckFrequency: "5s",
  };
}

function toml(value: string): string {
  return JSON.stringify(value);
}
