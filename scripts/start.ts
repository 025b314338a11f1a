// `npm start`: the whole idea on this machine, no cluster. A real OpenBao (dev server, installed by
// test/infra/install-openbao.sh when missing) holds `myapp/password`; the real webhook program, over
// HTTPS with a throwaway CA, answers an AdmissionReview for examples/pod.yaml; the stored container
// then runs through the real shim, which logs in with the pod's ServiceAccount token (jwt auth), reads
// the secret and execs the app. Side by side: what Kubernetes stores (references only) and what the
// app sees (the value). Everything started here is stopped before exiting.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { Annotations, ShimEnv } from "../common/contract.ts";
import { VERSION } from "../common/version.ts";
import { startOpenBao } from "../test/infra/openbao.ts";
import { stopDaemon } from "../test/infra/proc.ts";
import type { OpenBaoCoordinates } from "../test/infra/types.ts";
import { cacheDir } from "../test/infra/up.ts";
import { applyResponse, podCreateReview, type RunningWebhook, startWebhook } from "../test/webhook/harness.ts";
import { asAdmittedByApiserver } from "../webhook/check.ts";
import type { JsonObject } from "../webhook/pod.ts";
import { configureOpenBao, type DemoBackend } from "./demo/backend.ts";
import { createIssuer } from "./demo/identity.ts";
import { chooseShim, removeScratch, runContainer } from "./demo/kubelet.ts";
import { containerLines, patchLines, sideBySide } from "./demo/render.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const POD_FILE = join(repoRoot, "examples", "pod.yaml");
/** Width of the stored-pod column; longer lines are cut (the whole pod is in examples/pod.yaml). */
const LEFT_COLUMN = 58;

const out = (line = "") => process.stdout.write(`${line}\n`);
const step = (title: string, detail = "") => out(`▸ ${title.padEnd(10)} ${detail}`.trimEnd());
const indent = (lines: string[], by = "    ") => lines.map((line) => `${by}${line}`);

/** What `npm start` started, so that it can all be stopped whatever happens. */
const started: { openbao?: { pid: number }; webhook?: RunningWebhook; dirs: string[] } = { dirs: [] };

async function stopAll(): Promise<void> {
  await started.webhook?.stop().catch(() => undefined);
  if (started.openbao) await stopDaemon(started.openbao.pid);
  for (const dir of started.dirs) removeScratch(dir);
}

function readExamplePod(): JsonObject {
  const pod = parseYaml(readFileSync(POD_FILE, "utf8")) as JsonObject;
  const container = ((pod.spec as JsonObject).containers as JsonObject[])[0] as JsonObject;
  const reference = (container.env as JsonObject[]).find((item) => item.name === "SECRET_PASSWORD")?.value;
  if (reference !== "myapp/password") throw new Error(`${POD_FILE}: expected SECRET_PASSWORD: myapp/password in its first container`);
  return pod;
}

async function startBackend(
  scratch: string,
  backend: DemoBackend,
  identity: { publicKeyPem: string; namespace: string; serviceAccount: string },
) {
  const openbao: OpenBaoCoordinates = await startOpenBao({ runDir: scratch, cacheDir: cacheDir() }).then((service) => {
    started.openbao = service.daemons[0];
    return service.coordinates;
  });
  await configureOpenBao(openbao, backend, identity);
  step("backend", `OpenBao ${openbao.version} (\`bao server -dev\`) at ${openbao.addr}`);
  out(`    stored   ${openbao.kvV2Mount}/${backend.secret}  ${backend.field}=${backend.value}`);
  out(`    policy   ${backend.policy}: read ${openbao.kvV2Mount}/data/${backend.secret}`);
  out(
    `    auth     ${backend.authPath}/ role ${backend.role}: ServiceAccount ${identity.namespace}/${identity.serviceAccount} → policy ${backend.policy}`,
  );
  return openbao;
}

async function admitExample(pod: JsonObject, namespace: string, webhookEnv: Record<string, string>) {
  started.webhook = await startWebhook({ env: webhookEnv });
  step("webhook", `${started.webhook.url}/mutate, TLS from a throwaway CA (node webhook/main.ts)`);
  // The apiserver's ServiceAccount admission plugin mounts the token before mutating webhooks run.
  const admitted = asAdmittedByApiserver(pod);
  const review = podCreateReview(admitted, namespace);
  const answer = await started.webhook.post("/mutate", review.body);
  const response = answer.json?.response as { allowed?: boolean; patch?: string; patchType?: string; warnings?: string[] } | undefined;
  if (answer.status !== 200 || !response?.allowed)
    throw new Error(`the webhook did not allow the pod: HTTP ${answer.status} ${answer.text}`);
  const operations = JSON.parse(Buffer.from(response.patch ?? "", "base64").toString("utf8")) as JsonObject[];
  out();
  step("admission", `AdmissionReview for ${relative(repoRoot, POD_FILE)} → allowed with a JSON Patch of ${operations.length} operations:`);
  for (const line of indent(patchLines(operations))) out(line);
  for (const warning of response.warnings ?? []) out(`    warning: ${warning}`);
  return { stored: applyResponse(admitted, response), patchText: JSON.stringify(operations), uid: review.uid };
}

/** The webhook's log line for admission `uid`: written right after the answer, so it may take a moment. */
async function admissionLogLine(webhook: RunningWebhook, uid: string): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const line = webhook.logs().find((entry) => entry.includes(uid));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`the webhook logged no line for admission ${uid}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The shim's audit record (one JSON line on stderr, never a value) in a few words, if it wrote one. */
function auditSummary(stderr: string): string | undefined {
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const record = JSON.parse(line) as {
        record?: string;
        outcome?: string;
        secrets?: { var?: string; reference?: string; backend?: string; kvVersion?: number }[];
      };
      if (record.record !== "kustodia.audit") continue;
      const secrets = (record.secrets ?? []).map(
        (secret) =>
          `${secret.var} ← ${secret.reference} (${secret.backend}${secret.kvVersion === undefined ? "" : `, KV version ${secret.kvVersion}`})`,
      );
      return `${record.outcome}: ${secrets.join(", ")}`;
    } catch {
      /* not the audit record */
    }
  }
  return undefined;
}

async function main(): Promise<number> {
  const began = Date.now();
  const pod = readExamplePod();
  const metadata = pod.metadata as JsonObject;
  const namespace = String(metadata.namespace ?? "default");
  const serviceAccount = String((pod.spec as JsonObject).serviceAccountName ?? "default");
  const role = String((metadata.annotations as JsonObject)[Annotations.vaultRole]);
  const scratch = mkdtempSync(join(tmpdir(), "kustodia-demo-"));
  started.dirs.push(scratch);
  const shim = chooseShim();
  const issuer = createIssuer();
  const backend: DemoBackend = {
    secret: "myapp",
    field: "password",
    value: `s3cr3t-${randomBytes(4).toString("hex")}`,
    policy: "myapp",
    authPath: "jwt",
    role,
  };

  out(`kustodia ${VERSION} demo: the real webhook, the real shim and a real OpenBao on this machine; no cluster.`);
  out();
  const openbao = await startBackend(scratch, backend, { publicKeyPem: issuer.publicKeyPem, namespace, serviceAccount });
  // The cluster admin's settings (helm: shim.defaults.*): where the backend is and how pods log in.
  const { stored, patchText, uid } = await admitExample(pod, namespace, {
    KUSTODIA_SHIM_IMAGE: `ghcr.io/kustodia/kustodia-shim:${VERSION}`,
    KUSTODIA_SHIM_BACKEND: "vault",
    KUSTODIA_SHIM_VAULT_ADDR: openbao.addr,
    KUSTODIA_SHIM_VAULT_AUTH_METHOD: "jwt",
    KUSTODIA_SHIM_VAULT_AUTH_PATH: backend.authPath,
    KUSTODIA_SHIM_TIMEOUT: "20s",
    KUSTODIA_PULL_SECRETS: "false",
    KUSTODIA_LOG_LEVEL: "info",
  });
  const logged = JSON.parse(await admissionLogLine(started.webhook as RunningWebhook, uid)) as Record<string, unknown>;
  out(`    webhook log: decision=${logged.decision} injected=${JSON.stringify(logged.injected)} duration_ms=${logged.duration_ms}`);

  const container = ((stored.spec as JsonObject).containers as JsonObject[])[0] as JsonObject;
  const tokenFile = join(scratch, "serviceaccount-token");
  writeFileSync(tokenFile, issuer.token(namespace, serviceAccount, String(metadata.name)), { mode: 0o600 });
  out();
  step("kubelet", `runs container "${container.name}" as stored; stand-ins for what a node would provide:`);
  out(`    /kustodia/kustodia-shim = ${shim.description}`);
  out(`    ServiceAccount token    = a JWT for ${namespace}/${serviceAccount} signed by the demo's issuer key (${ShimEnv.saTokenFile})`);
  const run = runContainer(stored, String(container.name), shim, tokenFile);
  if (run.status !== 0) {
    out(run.stderr.trimEnd());
    throw new Error(`the container exited with ${run.status}`);
  }

  const audit = auditSummary(run.stderr);
  if (audit) out(`    the shim's audit record (stderr): ${audit}`);
  out();
  const appLines = run.stdout.trimEnd().split("\n");
  for (const line of sideBySide(
    { title: "what Kubernetes stores (etcd, kubectl get pod -o yaml)", lines: containerLines(container) },
    { title: "what the app process prints", lines: [...appLines, `(exit ${run.status})`] },
    LEFT_COLUMN,
  ))
    out(`  ${line}`);

  out();
  const inApp = run.stdout.includes(backend.value);
  const leaks = [
    ["the JSON Patch", patchText],
    ["the stored pod", JSON.stringify(stored)],
    ["the webhook's log", (started.webhook as RunningWebhook).logs().join("\n")],
    ["the shim's output", run.stderr],
  ].filter(([, text]) => (text as string).includes(backend.value));
  if (!inApp || leaks.length > 0) {
    throw new Error(
      `the story does not hold: value in the app: ${inApp}; value found in: ${leaks.map(([where]) => where).join(", ") || "nothing else"}`,
    );
  }
  out(
    `✓ ${backend.field} reached the app's environment only: the patch, the stored pod, the webhook's log and the shim's output hold the reference ${backend.secret}/${backend.field}, never the value.`,
  );
  out(
    `  Done in ${((Date.now() - began) / 1000).toFixed(1)} s. Next: README.md (cluster quickstart), \`npx kustodia check -f examples/pod.yaml\`.`,
  );
  return 0;
}

let code = 1;
const interrupted = () => {
  void stopAll().finally(() => process.exit(130));
};
process.once("SIGINT", interrupted);
process.once("SIGTERM", interrupted);
try {
  code = await main();
} catch (error) {
  process.stderr.write(`\nkustodia demo failed: ${(error as Error).message}\n`);
} finally {
  await stopAll();
  out(code === 0 ? "  Stopped OpenBao and the webhook." : "");
}
process.exitCode = code;
