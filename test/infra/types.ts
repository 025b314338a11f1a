// The shape of what the test infrastructure hands to tests: each service's coordinates.
import type { Daemon } from "./proc.ts";

/** Where a service started by `test/infra` can be reached. Everything is on loopback. */
export interface InfraCoordinates {
  openbao?: OpenBaoCoordinates;
  custodia?: CustodiaCoordinates;
  registry?: RegistryCoordinates;
  kube?: KubeCoordinates;
  helm?: HelmCoordinates;
  postgres?: PostgresCoordinates;
  node?: NodeCoordinates;
}

export type ServiceName = keyof InfraCoordinates;

export interface OpenBaoCoordinates {
  /** http://127.0.0.1:<port> */
  addr: string;
  /** Root token — for test setup only, never for code under test. */
  rootToken: string;
  version: string;
  binary: string;
  /** KV v2 mount (`secret`) and a KV v1 mount. */
  kvV2Mount: string;
  kvV1Mount: string;
  approleMount: string;
  /** Kubernetes auth mount, configured against the kube-apiserver (absent when kube is unavailable). */
  kubernetesAuthMount?: string;
  /** PKI engine with a root CA and a role that issues leaf certificates. */
  pki?: OpenBaoPki;
  /** Database engine configured against the test PostgreSQL (absent when postgres is unavailable). */
  database?: OpenBaoDatabase;
}

export interface OpenBaoPki {
  /** Mount path, e.g. `pki`: certificates are issued at `<mount>/issue/<role>`. */
  mount: string;
  /** A role allowing names under `allowedDomains` (and their subdomains), EC P-256 keys, max TTL 24h. */
  role: string;
  allowedDomains: string[];
  /** The root CA certificate (PEM). */
  caPem: string;
}

export interface OpenBaoDatabase {
  /** Mount path, e.g. `database`: credentials are issued at `<mount>/creds/<role>`. */
  mount: string;
  /** The connection (`<mount>/config/<name>`) to the test PostgreSQL; it allows every role. */
  connection: string;
  /** A role creating a LOGIN role with CONNECT on the database (default TTL 1h, max 24h). */
  role: string;
}

export interface PostgresCoordinates {
  /** 127.0.0.1 */
  host: string;
  port: number;
  /** Superuser and its password — test setup only (OpenBao's database engine connects with them). */
  superuser: string;
  password: string;
  database: string;
  /** Debian's psql. */
  psql: string;
  /** /usr/lib/postgresql/<major>/bin */
  binDir: string;
  version: string;
}

export interface CustodiaCoordinates {
  /** Absolute path of the unix socket. */
  socket: string;
  /** `http+unix://` URL form used by the shim. */
  url: string;
  version: string;
}

export interface RegistryImage {
  /** Repository name inside the registry, e.g. `kustodia-test/entrypoint-cmd`. */
  repository: string;
  tag: string;
  digest: string;
  /** The full image reference a pod would use: `<registry host>/<repository>:<tag>`. */
  reference: string;
  entrypoint?: string[];
  cmd?: string[];
}

export interface RegistryCoordinates {
  /** Plain-HTTP anonymous registry `127.0.0.1:<port>`. */
  plain: { host: string; url: string };
  /** TLS + basic-auth registry. */
  secure: { host: string; url: string; username: string; password: string; caFile: string };
  /** Test images, keyed by purpose: `entrypointCmd`, `cmdOnly`, `entrypointOnly`, `multiPlatform`, ... */
  images: Record<string, RegistryImage & { platforms?: Record<string, { entrypoint?: string[]; cmd?: string[] }> }>;
  version: string;
}

export interface KubeCoordinates {
  /** https://127.0.0.1:<port> */
  server: string;
  kubeconfig: string;
  caFile: string;
  /** Admin bearer token. */
  adminToken: string;
  etcdEndpoint: string;
  etcdctl: string;
  version: string;
  etcdVersion: string;
  /** Service-account issuer, for OpenBao kubernetes auth configuration. */
  serviceAccountIssuer: string;
  /** The client certificate the apiserver presents to admission webhooks (CN and DNS SAN `name`), and its own CA. */
  webhookClient: { caFile: string; certFile: string; keyFile: string; name: string };
}

/**
 * A real node (kubelet, containerd, runc) with its own control plane, all inside a network namespace
 * the infrastructure created. From the host, only `server` and `registry.pushHost` (loopback
 * forwarders) reach into it; anything else runs inside it through `inNetns`.
 */
export interface NodeCoordinates {
  /** https://127.0.0.1:<port>: the node cluster's apiserver, forwarded into the namespace. */
  server: string;
  /** Admin kubeconfig for `server` (kubectl, helm). */
  kubeconfig: string;
  caFile: string;
  adminToken: string;
  /** The apiserver as the kubelet and pods see it (the `kubernetes` Service's ClusterIP works too). */
  inClusterServer: string;
  serviceAccountIssuer: string;
  nodeName: string;
  /** The node IP: inside the namespace only. */
  nodeIp: string;
  podCidr: string;
  /** Command prefix that runs a program inside the node's network namespace. */
  inNetns: string[];
  /** A plain-HTTP anonymous registry: `host` is how pods and containerd name it, `pushHost` the loopback forward to it. */
  registry: { host: string; pushHost: string };
  /**
   * A bare OpenBao dev server (KV v2 at `secret/`, nothing else) for the pods: `inClusterAddr` is how
   * pods and the shim reach it, `addr` the loopback forward to it. Root token for test setup only.
   */
  openbao: { addr: string; inClusterAddr: string; rootToken: string; binary: string };
  pauseImage: string;
  /** etcd, inside the namespace (`inNetns` + etcdctl). */
  etcdEndpoint: string;
  etcdctl: string;
  kubectl: string;
  ctr: string;
  containerdSocket: string;
  versions: { kubernetes: string; containerd: string; runc: string; cniPlugins: string };
}

export interface HelmCoordinates {
  binary: string;
  version: string;
}

/** What one service module returns when it started its processes. */
export interface StartedService<C> {
  coordinates: C;
  daemons: Daemon[];
  /** Paths outside the run directory to remove when the infrastructure goes down. */
  cleanup?: string[];
}

/** Context for starting services: a scratch directory for this run's data and logs. */
export interface InfraContext {
  runDir: string;
  cacheDir: string;
}

export interface InfraState {
  runDir: string;
  startedAt: string;
  coordinates: InfraCoordinates;
  /** Services that could not be had, with the reason (install or start failure). */
  unavailable: Partial<Record<ServiceName, string>>;
  daemons: Daemon[];
  /** Paths outside runDir removed by `down` (see StartedService.cleanup). */
  cleanup?: string[];
}
