// Runs the real shim (`node shim/main.ts`) as a process, and sets up what it reads: secrets in the
// real OpenBao and Custodia (written with the root token / the socket owner's credentials), policies,
// auth roles, ServiceAccount tokens from the real kube-apiserver, credential files.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { service } from "../infra/coords.ts";
import { ensureServiceAccount, serviceAccountToken as issueToken } from "../infra/kube-api.ts";
import { openbaoApi } from "../infra/openbao-api.ts";

export { repoRoot } from "../infra/repo-root.ts";

import { repoRoot } from "../infra/repo-root.ts";

export const SHIM = join(repoRoot, "shim", "main.ts");

/** The base env of every shim run: nothing of the test runner's own environment but PATH. */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin" };
}

export interface ShimRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
  durationMs: number;
}

export interface RunningShim {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once `predicate` holds for stdout (polled), rejects after `timeoutMs`. */
  waitFor: (predicate: (stdout: string) => boolean, timeoutMs?: number) => Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startShim(env: Record<string, string>, command: string[], cwd?: string): RunningShim {
  return startProcess([process.execPath, SHIM, "--", ...command], env, cwd);
}

/** `command` spawned exactly as the shim is spawned, for comparisons with a run under the shim. */
export async function runDirect(env: Record<string, string>, command: string[]): Promise<ShimRun> {
  const began = Date.now();
  const running = startProcess(command, env);
  const { code, signal } = await running.exited;
  return { code, signal, stdout: running.stdout(), stderr: running.stderr(), pid: running.pid, durationMs: Date.now() - began };
}

/** What a child with piped stdout and stderr has written so far, as text. */
export function collectOutput(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  return { stdout: () => stdout, stderr: () => stderr };
}

function startProcess(argv: string[], env: Record<string, string>, cwd?: string): RunningShim {
  const child = spawn(argv[0] as string, argv.slice(1), { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  const output = collectOutput(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  const waitFor = async (predicate: (text: string) => boolean, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(output.stdout())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for the app; stdout:\n${output.stdout()}\nstderr:\n${output.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return output.stdout();
  };
  if (child.pid === undefined) throw new Error("could not spawn the shim");
  return { child, pid: child.pid, ...output, waitFor, exited };
}

export async function runShim(env: Record<string, string>, command: string[], cwd?: string): Promise<ShimRun> {
  const began = Date.now();
  const running = startShim(env, command, cwd);
  const { code, signal } = await running.exited;
  return { code, signal, stdout: running.stdout(), stderr: running.stderr(), pid: running.pid, durationMs: Date.now() - began };
}

/** Lines the shim itself wrote (its stderr lines start with `kustodia-shim`). */
export function shimLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("kustodia-shim"));
}

export function suffix(): string {
  return randomBytes(4).toString("hex");
}

export function tempDir(prefix = "kustodia-shim-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `content` to a new file in `dir` (mode 0600) and returns its path. */
export function writeFile(dir: string, name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** An OpenBao API call to the test OpenBao, by default with the root token (test setup only). */
export function bao(method: string, path: string, body?: unknown, options: { token?: string; namespace?: string } = {}) {
  const openbao = service("openbao");
  return openbaoApi({ addr: openbao.addr, token: options.token ?? openbao.rootToken, namespace: options.namespace }, method, path, body);
}

/** A read policy for `paths` (ACL path globs), returns its name. */
export async function readPolicy(name: string, paths: string[], namespace?: string): Promise<string> {
  const policy = paths.map((path) => `path "${path}" { capabilities = ["read"] }`).join("\n");
  await bao("PUT", `sys/policies/acl/${name}`, { policy }, namespace ? { namespace } : {});
  return name;
}

/** A token with `policies`, in a file: the credential of `KUSTODIA_VAULT_AUTH_METHOD=token`. */
export async function tokenFile(dir: string, policies: string[], ttl = "10m"): Promise<string> {
  const created = await bao("POST", "auth/token/create", { policies, ttl, no_default_policy: false });
  return writeFile(dir, `token-${suffix()}`, created.auth.client_token as string);
}

/** The shim's Vault settings for token auth with `file`. */
export function vaultTokenEnv(file: string): Record<string, string> {
  return { KUSTODIA_VAULT_ADDR: service("openbao").addr, KUSTODIA_VAULT_AUTH_METHOD: "token", KUSTODIA_VAULT_TOKEN_FILE: file };
}

/** A namespace with a ServiceAccount in the real kube-apiserver, and a TokenRequest token for it. */
export async function serviceAccountToken(namespace: string, name: string, audiences?: string[]): Promise<string> {
  const kube = service("kube");
  await ensureServiceAccount(kube, namespace, name);
  return issueToken(kube, namespace, name, { audiences });
}

/** A request to Custodia over its unix socket (the test runner's uid is admitted). */
export function custodia(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const { socket } = service("custodia");
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        path,
        method,
        headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
      },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => {
          text += chunk.toString("utf8");
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** Stores a `simple` key in Custodia, creating its container first. */
export async function custodiaPut(container: string, key: string, value: string): Promise<void> {
  const created = await custodia("POST", `/secrets/${container}/`);
  if (created.status !== 201 && created.status !== 409)
    throw new Error(`Custodia POST /secrets/${container}/: ${created.status} ${created.text}`);
  const stored = await custodia("PUT", `/secrets/${container}/${key}`, { type: "simple", value });
  if (stored.status !== 201) throw new Error(`Custodia PUT /secrets/${container}/${key}: ${stored.status} ${stored.text}`);
}

/** The audit records (docs/audit.md) among the shim's stderr lines, parsed. */
export function auditRecords(stderr: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith('{"record":"kustodia.audit"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The `secrets` entries of an audit record (empty when there is none). */
export function auditSecrets<T = Record<string, unknown>>(record: Record<string, unknown> | undefined): T[] {
  return (record?.secrets ?? []) as T[];
}

/** stderr without the audit records: what the shim logged, and what the app wrote. */
export function withoutAudit(stderr: string): string {
  return stderr
    .split(/(?<=\n)/)
    .filter((line) => !line.startsWith('{"record":"kustodia.audit"'))
    .join("");
}
