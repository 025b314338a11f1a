// `helm install` / `helm upgrade` / `helm uninstall` against the real kube-apiserver: the self-signed
// TLS pair survives an upgrade (the chart looks the Secret up), is re-issued when the certificate's
// names change, and the caBundle always matches the Secret. No controllers run here, so the
// Deployment never starts pods; the webhook is matched to no namespace so other tests are unaffected.
import { randomBytes, X509Certificate } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { kubeRequest } from "../infra/kube-api.ts";
import { helm, helmRelease, type Values } from "./chart.ts";

const suffix = randomBytes(3).toString("hex");
const release = `inst-${suffix}`;
const namespace = `chart-install-${suffix}`;
const isolated: Values = {
  webhook: { extraNamespaceSelectorExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [`nowhere-${suffix}`] }] },
};

function upgradeOrInstall(command: "install" | "upgrade", values: Values): Promise<string> {
  return helmRelease({ helm: service("helm").binary, kube: service("kube") }, command, release, namespace, { ...isolated, ...values });
}

async function tlsState() {
  const kube = service("kube");
  const secret = await kubeRequest<{ data: Record<string, string> }>(
    kube,
    "GET",
    `/api/v1/namespaces/${namespace}/secrets/${release}-kustodia-tls`,
  );
  expect(secret.status).toBe(200);
  const configuration = await kubeRequest<{ webhooks: { clientConfig: { caBundle: string } }[] }>(
    kube,
    "GET",
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${release}-kustodia`,
  );
  expect(configuration.status).toBe(200);
  return { secret: secret.body.data, caBundle: configuration.body.webhooks[0]?.clientConfig.caBundle };
}

describe.skipIf(skipWithout("kube", "helm"))("helm install / upgrade / uninstall on the kube-apiserver", () => {
  afterAll(async () => {
    await helm(service("helm").binary, ["uninstall", release, "--namespace", namespace], service("kube"));
  });

  it("installs, prints the next steps, and keeps its TLS pair across upgrades until its names change", async () => {
    const installed = await upgradeOrInstall("install", {});
    expect(installed).toContain("kubectl label namespace <your-namespace> kustodia.io/injection=enabled");
    expect(installed).toContain('kustodia.io/inject: "true"');
    expect(installed).toContain("kustodia.io/vault-role: <vault-role>");

    const first = await tlsState();
    expect(first.caBundle).toBe(first.secret["ca.crt"]);

    await upgradeOrInstall("upgrade", { replicaCount: 3, webhook: { ...(isolated.webhook as object), logLevel: "debug" } });
    const second = await tlsState();
    expect(second.secret).toEqual(first.secret);
    expect(second.caBundle).toBe(first.caBundle);

    await upgradeOrInstall("upgrade", { tls: { extraDnsNames: ["kustodia.example"] } });
    const renamed = await tlsState();
    expect(renamed.secret["tls.crt"]).not.toBe(first.secret["tls.crt"]);
    expect(renamed.caBundle).toBe(renamed.secret["ca.crt"]);
    const certificate = new X509Certificate(Buffer.from(renamed.secret["tls.crt"] as string, "base64"));
    expect(certificate.subjectAltName).toContain("DNS:kustodia.example");
    expect(certificate.subjectAltName).toContain(`DNS:${release}-kustodia.${namespace}.svc`);
    expect(certificate.checkIssued(new X509Certificate(Buffer.from(renamed.caBundle as string, "base64")))).toBe(true);
  });

  it("removes its cluster-wide objects on uninstall", async () => {
    const result = await helm(service("helm").binary, ["uninstall", release, "--namespace", namespace], service("kube"));
    expect(result.code, result.stderr).toBe(0);
    const kube = service("kube");
    const paths = [
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${release}-kustodia`,
      `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${release}-kustodia-injected`,
      `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${release}-kustodia-injected`,
    ];
    for (const path of paths) expect((await kubeRequest(kube, "GET", path)).status).toBe(404);
  });
});
