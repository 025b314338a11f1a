// The shape of what the test infrastructure hands to tests: each service's coordinates.
import type { Daemon } from "./proc.ts";

/** Where a service started by `test/infra` can be reached. Everything is on loopback. */
export interface InfraCoordinates {
  openbao?: OpenBaoCoordinates;
  custodia?: CustodiaCoordinates;
  registry?: RegistryCoordinates;
  kube?: KubeCoordinates;
  helm?: HelmCoordinates;
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
}

export interface HelmCoordinates {
  binary: string;
  version: string;
}

/** What one service module returns when it started its processes. */
export interface StartedService<C> {
  coordinates: C;
  daemons: Daemon[];
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
}
