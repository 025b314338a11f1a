// A real control plane for the tests: etcd (Debian) and kube-apiserver (built from the
// k8s.io/kubernetes Go module), on loopback. Admin access by a static bearer token; service-account
// tokens signed by a key made per run, so TokenRequest and TokenReview work.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { runInstallScript } from "./install.ts";
import { type Daemon, freePort, startDaemon, waitUntil } from "./proc.ts";
import { makeCertificateAuthority, makeLeafCertificate, makeRsaKeyPair } from "./tls.ts";
import type { InfraContext, KubeCoordinates, StartedService } from "./types.ts";

const execFileAsync = promisify(execFile);
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

async function startEtcd(ctx: InfraContext, etcd: string): Promise<{ daemon: Daemon; endpoint: string }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const daemon = startDaemon({
    name: "etcd",
    command: etcd,
    args: [
      "--name=kustodia-test",
      `--data-dir=${join(ctx.runDir, "etcd")}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=kustodia-test=${peer}`,
      "--log-level=warn",
    ],
    logFile: join(ctx.runDir, "etcd.log"),
  });
  await waitUntil(daemon, "etcd /health", async () => {
    const response = await fetch(`${endpoint}/health`);
    return response.ok && ((await response.json()) as { health?: string }).health === "true";
  });
  return { daemon, endpoint };
}

export function getJson(url: string, token: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` }, ca }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * The apiserver's client certificate for admission webhooks: an AdmissionConfiguration whose
 * kubeConfigFile gives it to every webhook (`*`), signed by a CA of its own that webhooks can trust.
 */
async function webhookClientIdentity(dir: string): Promise<{ configFile: string; identity: KubeCoordinates["webhookClient"] }> {
  const name = "kube-apiserver-webhook-client";
  const ca = await makeCertificateAuthority(dir, "webhook-client");
  const leaf = await makeLeafCertificate(ca, dir, name, [`DNS:${name}`], "clientAuth");
  const kubeconfig = join(dir, "webhook-client.kubeconfig");
  writeFileSync(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "users:",
      '- name: "*"',
      "  user:",
      `    client-certificate: ${leaf.certFile}`,
      `    client-key: ${leaf.keyFile}`,
      "",
    ].join("\n"),
  );
  const configFile = join(dir, "admission-config.yaml");
  const plugin = (pluginName: string) => [
    `- name: ${pluginName}`,
    "  configuration:",
    "    apiVersion: apiserver.config.k8s.io/v1",
    "    kind: WebhookAdmissionConfiguration",
    `    kubeConfigFile: ${kubeconfig}`,
  ];
  writeFileSync(
    configFile,
    [
      "apiVersion: apiserver.config.k8s.io/v1",
      "kind: AdmissionConfiguration",
      "plugins:",
      ...plugin("MutatingAdmissionWebhook"),
      ...plugin("ValidatingAdmissionWebhook"),
      "",
    ].join("\n"),
  );
  return { configFile, identity: { caFile: ca.certFile, certFile: leaf.certFile, keyFile: leaf.keyFile, name } };
}

function writeKubeconfig(file: string, server: string, caFile: string, token: string): void {
  const ca = readFileSync(caFile).toString("base64");
  writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: kustodia-test",
      "  cluster:",
      `    server: ${server}`,
      `    certificate-authority-data: ${ca}`,
      "users:",
      "- name: admin",
      "  user:",
      `    token: ${token}`,
      "contexts:",
      "- name: kustodia-test",
      "  context: {cluster: kustodia-test, user: admin}",
      "current-context: kustodia-test",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
}

export async function startKube(ctx: InfraContext): Promise<StartedService<KubeCoordinates>> {
  const [[etcd, etcdctl], [apiserver]] = await Promise.all([
    runInstallScript("install-etcd.sh", ctx.cacheDir),
    runInstallScript("build-kube.sh", ctx.cacheDir),
  ]);
  if (!etcd || !etcdctl || !apiserver) throw new Error("install scripts did not print the etcd/kube-apiserver paths");
  const dir = join(ctx.runDir, "kube");
  mkdirSync(dir, { recursive: true });

  const ca = await makeCertificateAuthority(dir, "kube");
  const [serving, serviceAccountKey, etcdStarted, port, webhookClient] = await Promise.all([
    makeLeafCertificate(ca, dir, "apiserver", ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes.default.svc"]),
    makeRsaKeyPair(dir, "service-account"),
    startEtcd(ctx, etcd),
    freePort(),
    webhookClientIdentity(dir),
  ]);
  const adminToken = randomBytes(24).toString("hex");
  const tokenFile = join(dir, "tokens.csv");
  writeFileSync(tokenFile, `${adminToken},kustodia-test-admin,kustodia-test-admin,system:masters\n`, { mode: 0o600 });
  const server = `https://127.0.0.1:${port}`;

  const daemon = startDaemon({
    name: "kube-apiserver",
    command: apiserver,
    args: [
      `--etcd-servers=${etcdStarted.endpoint}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${dir}`,
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${ca.certFile}`,
      `--token-auth-file=${tokenFile}`,
      `--admission-control-config-file=${webhookClient.configFile}`,
      "--authorization-mode=RBAC",
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${serviceAccountKey.publicKeyFile}`,
      `--service-account-signing-key-file=${serviceAccountKey.privateKeyFile}`,
      `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
      "--service-cluster-ip-range=10.96.0.0/16",
      "--allow-privileged=true",
      "--profiling=false",
      // Endpoints may not hold a loopback address; with no nodes there is nothing to reconcile.
      "--endpoint-reconciler-type=none",
      "--enable-priority-and-fairness=false",
      "--v=1",
    ],
    logFile: join(ctx.runDir, "kube-apiserver.log"),
  });
  const caPem = readFileSync(ca.certFile, "utf8");
  await waitUntil(
    daemon,
    "kube-apiserver /readyz",
    async () => (await getJson(`${server}/readyz`, adminToken, caPem)).status === 200,
    120_000,
  );

  const kubeconfig = join(dir, "kubeconfig");
  writeKubeconfig(kubeconfig, server, ca.certFile, adminToken);
  const version = JSON.parse((await getJson(`${server}/version`, adminToken, caPem)).body) as { gitVersion: string };
  const { stdout: etcdVersionOut } = await execFileAsync(etcd, ["--version"]);
  return {
    coordinates: {
      server,
      kubeconfig,
      caFile: ca.certFile,
      adminToken,
      etcdEndpoint: etcdStarted.endpoint,
      etcdctl,
      version: version.gitVersion,
      etcdVersion: /etcd Version: (\S+)/.exec(etcdVersionOut)?.[1] ?? etcdVersionOut.trim(),
      serviceAccountIssuer: SERVICE_ACCOUNT_ISSUER,
      webhookClient: webhookClient.identity,
    },
    daemons: [etcdStarted.daemon, daemon],
  };
}
