// DESIGN §6.1 and §6.2 over the full flow, with a distinctive secret value: the real webhook at debug
// level, registered with the real kube-apiserver by URL; pods created through the apiserver and stored
// in etcd; their containers started from the stored pods as a kubelet would, the shim at debug level
// resolving from the real OpenBao with the pod's ServiceAccount token. The value must reach the app's
// environment — and nothing else: no log line of the webhook or the shim, no admission response, no
// byte in etcd, no argv (/proc/<pid>/cmdline) of the app after exec or of the shim in rotation mode,
// no file the run wrote, and not the env of the pod's other container, which did not reference it.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Annotations, SHIM_PATH } from "../../common/contract.ts";
import { createObject, ensureObject, type KubeObject, namespaceObject, podObject, statusMessage } from "../chart/chart.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { bao, type RunningShim, readPolicy, tempDir } from "../shim/harness.ts";
import { podCreateReview, type RunningWebhook, startWebhook } from "../webhook/harness.ts";
import { containerOf, etcdctl, filesBelow, kubeletEnv, registerWebhook, startInjected, storedPod, unregisterWebhook } from "./cluster.ts";

const id = randomBytes(3).toString("hex");
const namespace = `leak-${id}`;
const role = `leak-${id}`;
const configurationName = `kustodia-leak-${id}`;
/** The secret: in OpenBao only, and — through the shim — in the app's environment. */
const secretValue = `Lk9-${randomBytes(16).toString("hex")}-zW`;
const secretBytes = Buffer.from(secretValue);
const reference = `leak-${id}/db#password`;
const expectedSha = createHash("sha256").update(secretValue).digest("hex");

/** The app proves it got the value without printing it (its sha-256), then stays up until SIGTERM. */
const APP = [
  "/bin/sh",
  "-c",
  `printf 'sha=%s\\n' "$(printf %s "$DB_PASSWORD" | sha256sum | cut -d' ' -f1)"; printf 'leaked=%s\\n' "$(env | grep -c -e '^SECRET_' -e '^KUSTODIA_')"; echo ready; trap 'exit 0' TERM; while :; do sleep 0.05; done`,
];
/** The second container: references nothing, prints its environment. */
const SIDECAR = ["/bin/sh", "-c", "env; echo ready; trap 'exit 0' TERM; while :; do sleep 0.05; done"];

function leakPod(name: string, annotations: Record<string, string> = {}): KubeObject {
  const pod = podObject(
    name,
    { [Annotations.inject]: "true", [Annotations.vaultRole]: role, ...annotations },
    { command: APP, env: [{ name: "SECRET_DB_PASSWORD", value: reference }] },
  );
  pod.metadata.namespace = namespace;
  pod.spec.containers.push({
    name: "sidecar",
    image: "registry.example/team/sidecar:1",
    command: SIDECAR,
    env: [{ name: "GREETING", value: "hello" }],
  });
  return pod;
}

/** Where in `haystack` the value occurs, as `<where>` strings (empty: nowhere). */
function hits(where: string, haystack: string | Buffer): string[] {
  const bytes = typeof haystack === "string" ? Buffer.from(haystack) : haystack;
  return bytes.includes(secretBytes) ? [where] : [];
}

function procFile(pid: number, name: "cmdline" | "environ"): Buffer {
  return readFileSync(`/proc/${pid}/${name}`);
}

function childrenOf(pid: number): number[] {
  const tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
  return tasks === "" ? [] : tasks.split(/\s+/).map(Number);
}

describe.skipIf(skipWithout("kube", "openbao"))("no value leaks anywhere in the full flow", () => {
  const startedAt = Date.now() - 1000;
  const dir = tempDir("kustodia-flow-leak-");
  /** The shim's and the apps' reach: their TMPDIR, HOME and working directory. */
  const reach = join(dir, "reach");
  const base = () => ({ PATH: "/usr/local/bin:/usr/bin:/bin", TMPDIR: join(reach, "tmp"), HOME: join(reach, "home") });
  let webhook: RunningWebhook;
  const shimOutputs: { what: string; text: string }[] = [];
  const running: RunningShim[] = [];
  let created: { status: number; body: unknown };

  beforeAll(async () => {
    for (const sub of ["tmp", "home", "cwd"]) mkdirSync(join(reach, sub), { recursive: true });
    const kube = service("kube");
    const openbao = service("openbao");
    await ensureObject(kube, namespaceObject(namespace));
    await ensureObject(kube, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "app", namespace } });

    await bao("POST", `secret/data/leak-${id}/db`, { data: { password: secretValue } });
    const policy = await readPolicy(`leak-flow-${id}`, [`secret/data/leak-${id}/*`]);
    await bao("POST", `auth/${openbao.kubernetesAuthMount}/role/${role}`, {
      bound_service_account_names: ["app"],
      bound_service_account_namespaces: [namespace],
      token_policies: [policy],
      token_ttl: "5m",
    });

    webhook = await startWebhook({
      env: {
        KUSTODIA_LOG_LEVEL: "debug",
        KUSTODIA_SHIM_BACKEND: "vault",
        KUSTODIA_SHIM_VAULT_ADDR: openbao.addr,
        KUSTODIA_SHIM_VAULT_AUTH_METHOD: "kubernetes",
        KUSTODIA_SHIM_VAULT_AUTH_PATH: openbao.kubernetesAuthMount ?? "kubernetes",
        KUSTODIA_SHIM_VAULT_KV_MOUNT: openbao.kvV2Mount,
        KUSTODIA_SHIM_TIMEOUT: "20s",
        KUSTODIA_SHIM_LOG_LEVEL: "debug",
      },
    });
    await registerWebhook(configurationName, webhook, [namespace], leakPod("probe"));
    created = await createObject(kube, leakPod("app"));
    expect(created.status, statusMessage(created.body)).toBe(201);
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    for (const shim of running) if (shim.child.exitCode === null) shim.child.kill("SIGKILL");
    await unregisterWebhook(configurationName);
    await webhook?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the injected container `app` of the stored pod `name`; resolves once the app said ready. */
  async function startApp(name: string): Promise<RunningShim> {
    const shim = await startInjected(await storedPod(namespace, name), "app", { dir, base: base(), cwd: join(reach, "cwd") });
    running.push(shim);
    await shim.waitFor((out) => out.includes("ready\n"), 30_000);
    return shim;
  }

  async function stop(shim: RunningShim, what: string): Promise<void> {
    shim.child.kill("SIGTERM");
    await shim.exited;
    shimOutputs.push({ what: `${what} stderr`, text: shim.stderr() }, { what: `${what} stdout`, text: shim.stdout() });
  }

  it("stores the pod mutated, with the reference and without the value (the apiserver's answer and GET)", async () => {
    const pod = await storedPod(namespace, "app");
    expect(pod.metadata.annotations?.[Annotations.status]).toMatch(/^injected /);
    expect(containerOf(pod, "app").command.slice(0, 2)).toEqual([SHIM_PATH, "--"]);
    expect(containerOf(pod, "app").env).toContainEqual({ name: "SECRET_DB_PASSWORD", value: reference });
    expect(containerOf(pod, "app").env).toContainEqual({ name: "KUSTODIA_LOG_LEVEL", value: "debug" });
    expect(containerOf(pod, "sidecar").command).toEqual(SIDECAR);
    expect(hits("apiserver create answer", JSON.stringify(created.body))).toEqual([]);
    expect(hits("apiserver GET", JSON.stringify(pod))).toEqual([]);
  });

  it("keeps the value out of the admission response", async () => {
    const original = leakPod("app");
    const answer = await webhook.post("/mutate", podCreateReview(original, namespace).body);
    expect(answer.status).toBe(200);
    expect(answer.json.response.patch).toEqual(expect.any(String));
    const patch = Buffer.from(answer.json.response.patch, "base64").toString("utf8");
    expect(patch).toContain(SHIM_PATH);
    expect([...hits("admission response", answer.text), ...hits("decoded patch", patch)]).toEqual([]);
  });

  it("keeps the value out of etcd: the pod's raw bytes and every key", async () => {
    const { stdout: podBytes } = await etcdctl(["get", `/registry/pods/${namespace}/app`, "--print-value-only"]);
    expect(podBytes.includes(Buffer.from(reference)), "the stored pod holds the reference").toBe(true);
    expect(hits("etcd pod", podBytes)).toEqual([]);
    const { stdout: everything } = await etcdctl(["get", "", "--prefix"]);
    expect(everything.includes(Buffer.from(`/registry/pods/${namespace}/app`))).toBe(true);
    expect(hits("etcd (all keys)", everything)).toEqual([]);
  });

  it("hands the value to the app's env, not to its argv after exec", async () => {
    const shim = await startApp("app");
    const out = shim.stdout();
    expect(out).toContain(`sha=${expectedSha}\n`);
    expect(out).toContain("leaked=0\n");
    // execve: the app took over the shim's PID.
    expect(procFile(shim.pid, "cmdline").toString("utf8").split("\0").slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(
      procFile(shim.pid, "environ").includes(Buffer.from(`DB_PASSWORD=${secretValue}\0`)),
      "positive control: the value is in the app's env",
    ).toBe(true);
    expect(hits("app cmdline", procFile(shim.pid, "cmdline"))).toEqual([]);
    await stop(shim, "app (exec)");
    expect(shimOutputs.at(-2)?.text).toContain("kustodia-shim debug:");
  });

  it("in rotation mode: not in the shim's argv or env, not in the app's argv", async () => {
    const created = await createObject(
      service("kube"),
      leakPod("rotating", { [Annotations.rotation]: "restart", [Annotations.rotationInterval]: "1s" }),
    );
    expect(created.status, statusMessage(created.body)).toBe(201);
    const shim = await startApp("rotating");
    const [appPid] = childrenOf(shim.pid);
    expect(appPid, "the shim stays as the app's parent").toEqual(expect.any(Number));
    const shimArgv = procFile(shim.pid, "cmdline").toString("utf8");
    expect(shimArgv).toContain("shim/main.ts");
    expect(procFile(appPid as number, "environ").includes(Buffer.from(`DB_PASSWORD=${secretValue}\0`)), "positive control").toBe(true);
    expect([
      ...hits("shim cmdline (rotation)", procFile(shim.pid, "cmdline")),
      ...hits("shim environ (rotation)", procFile(shim.pid, "environ")),
      ...hits("app cmdline (rotation)", procFile(appPid as number, "cmdline")),
    ]).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // two rotation checks at debug level
    await stop(shim, "app (rotation)");
  });

  it("keeps the value out of the env of the pod's other container", async () => {
    const pod = await storedPod(namespace, "app");
    const sidecar = containerOf(pod, "sidecar");
    expect(sidecar.command[0]).not.toBe(SHIM_PATH);
    const child = spawn(sidecar.command[0] as string, sidecar.command.slice(1), {
      env: kubeletEnv(sidecar, base()),
      cwd: join(reach, "cwd"),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    const deadline = Date.now() + 10_000;
    while (!out.includes("ready\n") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    const environ = procFile(child.pid as number, "environ");
    child.kill("SIGTERM");
    expect(out).toContain("GREETING=hello\n");
    expect([...hits("sidecar env output", out), ...hits("sidecar environ", environ)]).toEqual([]);
  });

  it("keeps the value out of every log line of the webhook and the shim (both at debug level)", () => {
    expect(webhook.logs().some((line) => line.includes('"level":"debug"') || line.includes('"decision":"mutated"'))).toBe(true);
    expect(shimOutputs.map(({ what }) => what)).toEqual([
      "app (exec) stderr",
      "app (exec) stdout",
      "app (rotation) stderr",
      "app (rotation) stdout",
    ]);
    expect(shimOutputs[2]?.text).toContain("kustodia-shim debug:");
    const found = [
      ...webhook.logs().flatMap((line, index) => hits(`webhook log line ${index}`, line)),
      ...shimOutputs.flatMap(({ what, text }) => hits(what, text)),
    ];
    expect(found).toEqual([]);
  });

  it("wrote the value to no file: the run's TMPDIR, HOME, working directory, and anything new under /tmp", () => {
    const scanned: string[] = [];
    const found: string[] = [];
    const roots = [reach, "/tmp", webhook.dir];
    for (const root of roots) {
      for (const file of filesBelow(root)) {
        let info: ReturnType<typeof statSync>;
        try {
          info = statSync(file);
        } catch {
          continue; // gone meanwhile (another test's temporary file)
        }
        const inReach = file.startsWith(reach);
        if (!inReach && info.mtimeMs < startedAt) continue;
        if (info.size > 128 * 1024 * 1024) continue;
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch {
          continue;
        }
        scanned.push(file);
        found.push(...hits(file, bytes));
      }
    }
    expect(
      scanned.some((file) => file.startsWith(dir)),
      "the run's own files were scanned",
    ).toBe(true);
    expect(found).toEqual([]);
  });
});
