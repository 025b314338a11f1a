// The pod both webhooks review: what the kube-apiserver sends for a Deployment's pod after its own
// admission plugins ran (generateName, ownerReferences, the projected ServiceAccount token volume,
// default tolerations), with three containers that each read secrets. The same pod for both tools,
// except for how a secret reference is spelled: kustodia's `SECRET_<NAME>: path#field`, Bank-Vaults'
// `<NAME>: vault:secret/data/path#field`.
import { podCreateReview } from "../../test/webhook/harness.ts";

export type ReferenceStyle = "kustodia" | "bank-vaults";

export interface ContainerSpec {
  name: string;
  image: string;
  /** Unset: the webhook must read the image's ENTRYPOINT/CMD from its registry. */
  command?: string[];
  args?: string[];
  secrets: { name: string; path: string; field: string }[];
}

function reference(style: ReferenceStyle, secret: { name: string; path: string; field: string }): { name: string; value: string } {
  return style === "kustodia"
    ? { name: `SECRET_${secret.name}`, value: `${secret.path}#${secret.field}` }
    : { name: secret.name, value: `vault:secret/data/${secret.path}#${secret.field}` };
}

function container(style: ReferenceStyle, spec: ContainerSpec, port: number): Record<string, unknown> {
  return {
    name: spec.name,
    image: spec.image,
    ...(spec.command ? { command: spec.command } : {}),
    ...(spec.args ? { args: spec.args } : {}),
    ports: [{ name: "http", containerPort: port, protocol: "TCP" }],
    env: [
      { name: "LOG_FORMAT", value: "json" },
      { name: "POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
      { name: "POD_IP", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "status.podIP" } } },
      ...spec.secrets.map((secret) => reference(style, secret)),
    ],
    resources: { limits: { memory: "256Mi" }, requests: { cpu: "100m", memory: "128Mi" } },
    livenessProbe: {
      httpGet: { path: "/healthz", port, scheme: "HTTP" },
      initialDelaySeconds: 5,
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    },
    readinessProbe: {
      httpGet: { path: "/readyz", port, scheme: "HTTP" },
      periodSeconds: 5,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    },
    volumeMounts: [
      { name: "config", mountPath: "/etc/app", readOnly: true },
      { name: "kube-api-access-x7k2p", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
    ],
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 10001,
    },
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    imagePullPolicy: "IfNotPresent",
  };
}

/** The three containers of the realistic pod, with `command` set. */
export function commandContainers(): ContainerSpec[] {
  return [
    {
      name: "app",
      image: "registry.example.com/shop/checkout:1.14.2",
      command: ["/app/checkout"],
      args: ["--listen=:8080", "--config=/etc/app/config.yaml"],
      secrets: [
        { name: "DB_PASSWORD", path: "shop/checkout/db", field: "password" },
        { name: "STRIPE_API_KEY", path: "shop/checkout/stripe", field: "api-key" },
      ],
    },
    {
      name: "worker",
      image: "registry.example.com/shop/checkout-worker:1.14.2",
      command: ["/app/worker"],
      args: ["--queue=orders"],
      secrets: [{ name: "AMQP_PASSWORD", path: "shop/checkout/amqp", field: "password" }],
    },
    {
      name: "metrics",
      image: "registry.example.com/observability/exporter:0.9.1",
      command: ["/bin/exporter"],
      args: ["--web.listen-address=:9100"],
      secrets: [{ name: "EXPORTER_TOKEN", path: "shop/checkout/exporter", field: "token" }],
    },
  ];
}

/** A Deployment's pod as the apiserver hands it to mutating webhooks. */
export function realisticPod(style: ReferenceStyle, containers: ContainerSpec[]): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "checkout-7d9c6b5f4-",
      namespace: "shop",
      labels: {
        app: "checkout",
        "app.kubernetes.io/name": "checkout",
        "app.kubernetes.io/part-of": "shop",
        "app.kubernetes.io/version": "1.14.2",
        "pod-template-hash": "7d9c6b5f4",
      },
      annotations: {
        "kustodia.io/inject": "true",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9100",
        "kubectl.kubernetes.io/restartedAt": "2026-11-20T10:12:44Z",
      },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "checkout-7d9c6b5f4",
          uid: "3b0e8a8e-5c1f-4f3e-9d61-0d2b2f0f7a11",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      volumes: [
        { name: "config", configMap: { name: "checkout-config", defaultMode: 420 } },
        {
          name: "kube-api-access-x7k2p",
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
              { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
              { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
            ],
            defaultMode: 420,
          },
        },
      ],
      containers: containers.map((spec, index) => container(style, spec, 8080 + index)),
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      serviceAccountName: "checkout",
      serviceAccount: "checkout",
      securityContext: { fsGroup: 10001, seccompProfile: { type: "RuntimeDefault" } },
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: { labelSelector: { matchLabels: { app: "checkout" } }, topologyKey: "kubernetes.io/hostname" },
            },
          ],
        },
      },
      schedulerName: "default-scheduler",
      tolerations: [
        { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
        { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: "PreemptLowerPriority",
    },
  };
}

/** An AdmissionReview v1 for creating `pod` in `namespace`, as JSON text: what the ReplicaSet controller's create makes. */
export function admissionReview(pod: Record<string, unknown>, namespace: string): string {
  return podCreateReview(pod, namespace, {
    userInfo: {
      username: "system:serviceaccount:kube-system:replicaset-controller",
      uid: "6a1c9d1e-2f9e-4a7b-8f4e-1b2c3d4e5f60",
      groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
    },
  }).body;
}
