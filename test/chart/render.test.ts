// What `helm template` produces, checked object by object: the admission configuration that the
// security invariants rest on (§6: 3 minimal RBAC, 4 fail closed), and the values → env mapping,
// proven by feeding the rendered env and config file to the webhook's own settings loader.
import { describe, expect, it } from "vitest";
import { VERSION } from "../../common/version.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { findObject, type KubeObject, renderChart, type Values, webhookSettings } from "./chart.ts";
import { CA_PEM, everythingValues } from "./values.ts";

const KUBE_VERSION = "1.30.0";

function render(values: Values = {}, namespace = "kustodia"): Promise<KubeObject[]> {
  return renderChart(service("helm").binary, { release: "kustodia", namespace, values, kubeVersion: KUBE_VERSION });
}

function webhookContainer(objects: KubeObject[]) {
  return findObject(objects, "Deployment").spec.template.spec.containers[0];
}

describe.skipIf(skipWithout("helm"))("helm template charts/kustodia", () => {
  it("renders the MutatingWebhookConfiguration fail-closed, for pod CREATE in enabled namespaces only", async () => {
    const objects = await render();
    const [webhook] = findObject(objects, "MutatingWebhookConfiguration").webhooks;
    expect(webhook).toMatchObject({
      failurePolicy: "Fail",
      sideEffects: "None",
      reinvocationPolicy: "IfNeeded",
      admissionReviewVersions: ["v1"],
      rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
      clientConfig: { service: { name: "kustodia", namespace: "kustodia", path: "/mutate", port: 443 } },
    });
    expect(webhook.timeoutSeconds).toBeLessThanOrEqual(10);
    expect(webhook.namespaceSelector).toEqual({
      matchLabels: { "kustodia.io/injection": "enabled" },
      matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", "kustodia"] }],
    });
    expect(webhook.matchConditions[0].expression).toContain("'kustodia.io/inject'");
    const secret = findObject(objects, "Secret");
    expect(webhook.clientConfig.caBundle).toBe(secret.data["ca.crt"]);
  });

  it("binds the ValidatingAdmissionPolicy with the webhook's namespaceSelector", async () => {
    const objects = await render({ webhook: { extraNamespaceSelectorExpressions: [{ key: "tier", operator: "Exists" }] } });
    const [webhook] = findObject(objects, "MutatingWebhookConfiguration").webhooks;
    const binding = findObject(objects, "ValidatingAdmissionPolicyBinding");
    expect(binding.spec.validationActions).toEqual(["Deny"]);
    expect(binding.spec.policyName).toBe(findObject(objects, "ValidatingAdmissionPolicy").metadata.name);
    expect(binding.spec.matchResources.namespaceSelector).toEqual(webhook.namespaceSelector);
    expect(webhook.namespaceSelector.matchExpressions).toContainEqual({ key: "tier", operator: "Exists" });
    expect(findObject(objects, "ValidatingAdmissionPolicy").spec.failurePolicy).toBe("Fail");
  });

  it("gives the webhook no Kubernetes API access at all when pull secrets are off", async () => {
    const objects = await render();
    expect(objects.filter((object) => /Role/.test(object.kind))).toEqual([]);
    expect(findObject(objects, "Deployment").spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(findObject(objects, "ServiceAccount").automountServiceAccountToken).toBe(false);
  });

  it("grants only get on secrets, serviceaccounts and namespaces when pull secrets are on", async () => {
    const clientAuth = { caBundle: CA_PEM };
    const clusterWide = await render({ registry: { pullSecrets: { enabled: true } }, webhook: { clientAuth } });
    expect(findObject(clusterWide, "ClusterRole").rules).toEqual([
      { apiGroups: [""], resources: ["secrets", "serviceaccounts", "namespaces"], verbs: ["get"] },
    ]);
    expect(findObject(clusterWide, "ClusterRoleBinding").subjects).toEqual([
      { kind: "ServiceAccount", name: "kustodia", namespace: "kustodia" },
    ]);
    expect(findObject(clusterWide, "Deployment").spec.template.spec.automountServiceAccountToken).toBe(true);
  });

  it("scopes pull-secret RBAC to the listed namespaces: a Role each, and get on those Namespaces only (#13 item 1)", async () => {
    const listed = await render({
      registry: { pullSecrets: { enabled: true, namespaces: ["team-a", "team-b"] } },
      webhook: { clientAuth: { caBundle: CA_PEM } },
    });
    expect(findObject(listed, "ClusterRole").rules).toEqual([
      { apiGroups: [""], resources: ["namespaces"], resourceNames: ["team-a", "team-b"], verbs: ["get"] },
    ]);
    const roles = listed.filter((object) => object.kind === "Role");
    expect(roles.map((object) => object.metadata.namespace)).toEqual(["team-a", "team-b"]);
    for (const role of roles) expect(role.rules).toEqual([{ apiGroups: [""], resources: ["secrets", "serviceaccounts"], verbs: ["get"] }]);
    const bindings = listed.filter((object) => object.kind === "RoleBinding");
    expect(bindings.map((object) => [object.metadata.namespace, object.roleRef.kind])).toEqual([
      ["team-a", "Role"],
      ["team-b", "Role"],
    ]);
  });

  it("refuses pull secrets without client certificate authentication of the kube-apiserver (#13 item 1)", async () => {
    await expect(render({ registry: { pullSecrets: { enabled: true } } })).rejects.toThrow(
      /registry.pullSecrets.enabled needs webhook.clientAuth.caBundle/,
    );
    const objects = await render({
      registry: { pullSecrets: { enabled: true } },
      webhook: { clientAuth: { caBundle: CA_PEM, allowedNames: ["kube-apiserver-webhook-client"] } },
    });
    expect(findObject(objects, "ConfigMap").data["client-ca.crt"]).toContain("BEGIN CERTIFICATE");
    expect(webhookSettings(objects).clientAuth).toEqual({
      caFile: "/etc/kustodia/config/client-ca.crt",
      allowedNames: ["kube-apiserver-webhook-client"],
    });
  });

  it("runs the webhook as a PSS-restricted, read-only, highly available Deployment", async () => {
    const objects = await render();
    const deployment = findObject(objects, "Deployment");
    const pod = deployment.spec.template.spec;
    expect(deployment.spec.replicas).toBe(2);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(webhookContainer(objects).securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(webhookContainer(objects).readinessProbe.httpGet).toEqual({ path: "/readyz", port: "https", scheme: "HTTPS" });
    expect(webhookContainer(objects).livenessProbe.httpGet).toEqual({ path: "/healthz", port: "https", scheme: "HTTPS" });
    expect(webhookContainer(objects).ports).toEqual([{ name: "https", containerPort: 8443, protocol: "TCP" }]);
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(findObject(objects, "PodDisruptionBudget").spec.minAvailable).toBe(1);
    const ingress = findObject(objects, "NetworkPolicy").spec.ingress;
    expect(ingress).toEqual([{ ports: [{ port: 8443, protocol: "TCP" }] }]);
  });

  it("maps the default values onto settings the webhook accepts", async () => {
    const objects = await render();
    const settings = webhookSettings(objects);
    expect(settings.listen).toEqual({ host: "0.0.0.0", port: 8443 });
    expect(settings.shimImage).toBe(`ghcr.io/kustodia/kustodia-shim:${VERSION}`);
    expect(settings.excludedNamespaces).toEqual(["kube-system", "kustodia"]);
    expect(settings.pullSecrets).toBe(false);
    expect(settings.shimDefaults).toEqual({});
    expect(settings.installResources).toEqual({ requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } });
  });

  it("maps every value onto the webhook's settings", async () => {
    const values = everythingValues("team-a");
    const objects = await render(values, "platform");
    const settings = webhookSettings(objects);
    const shim = values.shim as { defaults: Record<string, string>; installResources: unknown; vaultAddrAllowlist: string[] };
    expect(settings.shimDefaults).toEqual(shim.defaults);
    expect(settings).toMatchObject({
      listen: { host: "0.0.0.0", port: 8443 },
      tls: { certFile: "/etc/kustodia/tls/tls.crt", keyFile: "/etc/kustodia/tls/tls.key" },
      shimImage: "registry.example/kustodia/shim:9.9.9",
      delivery: "copy",
      emptyDirSizeLimit: "128Mi",
      installResources: shim.installResources,
      installRunAsUser: 10001,
      referencePrefix: "VAULT_",
      vaultAddrAllowlist: shim.vaultAddrAllowlist,
      registry: {
        plainHttp: ["registry.local:5000"],
        mirrors: { "docker.io": ["mirror.local:5000", "mirror2.local:5000"] },
        timeoutMs: 4000,
        cacheTtlMs: 600_000,
        cacheSize: 500,
        concurrency: 8,
        defaultPlatform: { os: "linux", architecture: "arm64" },
        caFile: "/etc/kustodia/config/registry-ca.crt",
      },
      excludedNamespaces: ["kube-system", "kube-public", "platform"],
      bodyLimitBytes: 4 * 1024 ** 2,
      logLevel: "debug",
      pullSecrets: true,
      clientAuth: { caFile: "/etc/kustodia/config/client-ca.crt", allowedNames: ["kube-apiserver-webhook-client", "apiserver.example"] },
    });
    const mounts = webhookContainer(objects).volumeMounts as { mountPath: string }[];
    expect(mounts.map((mount) => mount.mountPath)).toEqual(expect.arrayContaining(["/etc/kustodia/tls", "/etc/kustodia/config"]));
    expect(findObject(objects, "ConfigMap").data["registry-ca.crt"]).toContain("BEGIN CERTIFICATE");
    expect(findObject(objects, "Deployment").spec.template.spec.containers[0].image).toBe(
      `registry.example/kustodia/webhook@sha256:${"a".repeat(64)}`,
    );
  });

  it("puts the chart's prefix into the policy's CEL", async () => {
    const policy = findObject(await render({ shim: { referencePrefix: "VAULT_" } }), "ValidatingAdmissionPolicy");
    const targets = policy.spec.variables.find((variable: { name: string }) => variable.name === "targets");
    expect(targets.expression).toContain("e.name.startsWith('VAULT_') && e.name.size() > 6");
  });

  it("uses cert-manager's CA injection instead of a chart-made CA in cert-manager mode", async () => {
    const objects = await render({ tls: { mode: "cert-manager" } });
    expect(objects.some((object) => object.kind === "Secret")).toBe(false);
    const configuration = findObject(objects, "MutatingWebhookConfiguration");
    expect(configuration.metadata.annotations?.["cert-manager.io/inject-ca-from"]).toBe("kustodia/kustodia");
    expect(configuration.webhooks[0].clientConfig.caBundle).toBeUndefined();
    const certificate = findObject(objects, "Certificate");
    expect(certificate.spec.secretName).toBe("kustodia-tls");
    expect(certificate.spec.dnsNames).toContain("kustodia.kustodia.svc");
    expect(certificate.spec.issuerRef).toEqual({ name: "kustodia-selfsigned", kind: "Issuer", group: "cert-manager.io" });
  });

  it("points the webhook at webhook.url (for tests outside the cluster)", async () => {
    const objects = await render({ webhook: { url: "https://127.0.0.1:9443/mutate" }, tls: { extraIpAddresses: ["127.0.0.1"] } });
    const clientConfig = findObject(objects, "MutatingWebhookConfiguration").webhooks[0].clientConfig;
    expect(clientConfig.url).toBe("https://127.0.0.1:9443/mutate");
    expect(clientConfig.service).toBeUndefined();
    expect(clientConfig.caBundle).toBe(findObject(objects, "Secret").data["ca.crt"]);
  });
});
