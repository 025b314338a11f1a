// Named sets of chart values: the matrix that the lint and server-side dry-run tests go through.
import type { Values } from "./chart.ts";

export const CA_PEM = [
  "-----BEGIN CERTIFICATE-----",
  "MIIBdzCCAR2gAwIBAgIUFakeRegistryCaForRenderingOnly0wCgYIKoZIzj0EAwIw",
  "-----END CERTIFICATE-----",
].join("\n");

/** Every option set to a non-default value at once (`helm lint --strict` and the settings mapping test). */
export function everythingValues(namespace: string): Values {
  return {
    replicaCount: 3,
    image: { repository: "registry.example/kustodia/webhook", digest: `sha256:${"a".repeat(64)}`, pullPolicy: "Always" },
    imagePullSecrets: [{ name: "regcred" }],
    fullnameOverride: "kustodia-everything",
    shim: {
      image: { repository: "registry.example/kustodia/shim", tag: "9.9.9" },
      delivery: "copy",
      emptyDirSizeLimit: "128Mi",
      installResources: { requests: { cpu: "20m", memory: "48Mi" }, limits: { memory: "96Mi" } },
      installRunAsUser: 10001,
      referencePrefix: "VAULT_",
      defaults: {
        backend: "vault",
        vaultAddr: "https://vault.vault.svc:8200",
        vaultCaCert: "/etc/ssl/vault-ca.crt",
        vaultAuthMethod: "kubernetes",
        vaultAuthPath: "kubernetes",
        vaultRole: "default-app",
        vaultKvMount: "kv",
        custodiaUrl: "http+unix:///run/custodia/custodia.sock",
        timeout: "45s",
        logLevel: "debug",
      },
      vaultAddrAllowlist: ["https://vault-a.example:8200", "https://vault-b.example:8200"],
    },
    registry: {
      plainHttp: ["registry.local:5000"],
      mirrors: { "docker.io": ["mirror.local:5000", "mirror2.local:5000"] },
      timeout: "4s",
      cacheTtl: "10m",
      cacheSize: 500,
      concurrency: 8,
      defaultPlatform: "linux/arm64",
      caBundle: CA_PEM,
      pullSecrets: { enabled: true, namespaces: [namespace] },
    },
    webhook: {
      timeoutSeconds: 8,
      excludedNamespaces: ["kube-system", "kube-public"],
      extraNamespaceSelectorExpressions: [{ key: "team", operator: "In", values: ["a", "b"] }],
      listenHost: "0.0.0.0",
      bodyLimit: "4Mi",
      logLevel: "debug",
      extraEnv: [{ name: "NODE_OPTIONS", value: "--max-old-space-size=192" }],
      clientAuth: { caBundle: CA_PEM, allowedNames: ["kube-apiserver-webhook-client", "apiserver.example"] },
    },
    validatingAdmissionPolicy: { enabled: true },
    tls: { mode: "self-signed", selfSigned: { validityDays: 365 }, extraDnsNames: ["kustodia.example"], extraIpAddresses: ["10.0.0.10"] },
    service: { port: 8443 },
    serviceAccount: { create: true, name: "kustodia-sa", annotations: { "example.com/owner": "platform" } },
    podDisruptionBudget: { enabled: true, minAvailable: 2 },
    podAntiAffinity: "hard",
    topologySpreadConstraints: [
      {
        maxSkew: 1,
        topologyKey: "topology.kubernetes.io/zone",
        whenUnsatisfiable: "ScheduleAnyway",
        labelSelector: { matchLabels: { app: "x" } },
      },
    ],
    nodeSelector: { "kubernetes.io/os": "linux" },
    tolerations: [{ key: "dedicated", operator: "Equal", value: "system", effect: "NoSchedule" }],
    priorityClassName: "",
    podAnnotations: { "example.com/scrape": "true" },
    podLabels: { team: "platform" },
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "384Mi" } },
    networkPolicy: {
      enabled: true,
      ingressFrom: [{ ipBlock: { cidr: "10.0.0.0/8" } }],
      egress: {
        dns: true,
        registries: { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["169.254.169.254/32"] } }], ports: [443, 5000] },
        apiServer: { to: [{ ipBlock: { cidr: "10.96.0.1/32" } }], ports: [443] },
        extra: [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "registry" } } }], ports: [{ port: 8080 }] }],
      },
    },
    serviceMonitor: { enabled: true, interval: "15s", scrapeTimeout: "5s", labels: { release: "prometheus" } },
  };
}

export interface MatrixRow {
  name: string;
  values: (namespace: string) => Values;
}

export const matrix: MatrixRow[] = [
  { name: "defaults: self-signed TLS", values: () => ({}) },
  { name: "cert-manager TLS with the chart's own Issuer", values: () => ({ tls: { mode: "cert-manager" } }) },
  {
    name: "cert-manager TLS with an existing ClusterIssuer",
    values: () => ({
      tls: { mode: "cert-manager", certManager: { issuerRef: { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" } } },
    }),
  },
  {
    name: "pull secrets on, cluster-wide",
    values: () => ({ registry: { pullSecrets: { enabled: true } }, webhook: { clientAuth: { caBundle: CA_PEM } } }),
  },
  {
    name: "pull secrets on, listed namespaces",
    values: (namespace) => ({
      registry: { pullSecrets: { enabled: true, namespaces: [namespace] } },
      webhook: { clientAuth: { caBundle: CA_PEM, allowedNames: ["kube-apiserver-webhook-client"] } },
    }),
  },
  { name: "ServiceMonitor on", values: () => ({ serviceMonitor: { enabled: true } }) },
  {
    name: "NetworkPolicy with peers and extra egress",
    values: (namespace) => ({ networkPolicy: everythingValues(namespace).networkPolicy }),
  },
  {
    name: "NetworkPolicy off, one replica (no PDB), no policy",
    values: () => ({ networkPolicy: { enabled: false }, replicaCount: 1, validatingAdmissionPolicy: { enabled: false } }),
  },
  { name: "image-volume delivery", values: () => ({ shim: { delivery: "image-volume" } }) },
  {
    name: "custom shim defaults",
    values: () => ({
      shim: {
        referencePrefix: "VAULT_",
        defaults: {
          backend: "vault",
          vaultAddr: "https://vault.vault.svc:8200",
          vaultAuthMethod: "kubernetes",
          vaultAuthPath: "kubernetes",
          vaultKvMount: "secret",
          timeout: "20s",
        },
      },
    }),
  },
  { name: "everything at once", values: (namespace) => everythingValues(namespace) },
];
