import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCertificateAuthority, makeLeafCertificate } from "../infra/tls.ts";
import { applyResponse, podCreateReview, type RunningWebhook, startWebhook } from "./harness.ts";

const secretLookingValue = "plain-env-value-7c1e";

const podWithCommand = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "team-a", annotations: { "kustodia.io/inject": "true" } },
  spec: {
    containers: [
      {
        name: "app",
        image: "registry.invalid/app:1",
        command: ["/app/server"],
        args: ["--port", "8080"],
        env: [
          { name: "SECRET_DB_PASSWORD", value: "myapp/db#password" },
          { name: "GREETING", value: secretLookingValue },
        ],
      },
    ],
  },
};

describe("webhook server over HTTPS", () => {
  let webhook: RunningWebhook;

  beforeAll(async () => {
    webhook = await startWebhook({ env: { KUSTODIA_BODY_LIMIT: "256Ki" } });
  });
  afterAll(async () => {
    await webhook?.stop();
  });

  it("answers health, readiness and metrics", async () => {
    expect((await webhook.get("/healthz")).status).toBe(200);
    expect((await webhook.get("/readyz")).status).toBe(200);
    const metrics = await webhook.get("/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain("kustodia_admissions_total");
    expect(metrics.text).toContain("kustodia_admission_duration_seconds");
  });

  it("mutates an opted-in pod and logs one line per admission without env values", async () => {
    const { uid, body } = podCreateReview(podWithCommand, "team-a");
    const answer = await webhook.post("/mutate", body);
    expect(answer.status).toBe(200);
    expect(answer.json.apiVersion).toBe("admission.k8s.io/v1");
    expect(answer.json.response.uid).toBe(uid);
    expect(answer.json.response.allowed).toBe(true);
    const mutated = applyResponse(podWithCommand, answer.json.response);
    expect(mutated.spec.containers[0]?.command).toEqual(["/kustodia/kustodia-shim", "--", "/app/server"]);
    expect(mutated.spec.containers[0]?.args).toEqual(["--port", "8080"]);

    await expect.poll(() => webhook.logs().filter((line) => line.includes(uid))).toHaveLength(1);
    const line = JSON.parse(webhook.logs().find((l) => l.includes(uid)) as string);
    expect(line).toMatchObject({ uid, namespace: "team-a", pod: "web", decision: "mutated", injected: ["app"] });
    expect(typeof line.duration_ms).toBe("number");
    expect(webhook.logs().join("\n")).not.toContain(secretLookingValue);
    expect(webhook.logs().join("\n")).not.toContain("myapp/db#password");
  });

  it("answers a dry-run request with the same patch", async () => {
    const wet = await webhook.post("/mutate", podCreateReview(podWithCommand, "team-a").body);
    const dry = await webhook.post("/mutate", podCreateReview(podWithCommand, "team-a", { dryRun: true }).body);
    expect(dry.json.response.patch).toBe(wet.json.response.patch);
  });

  it.each([
    [
      "a Deployment",
      { kind: { group: "apps", version: "v1", kind: "Deployment" }, resource: { group: "apps", version: "v1", resource: "deployments" } },
    ],
    ["a pod UPDATE", { operation: "UPDATE" }],
    ["a pod DELETE", { operation: "DELETE", object: null }],
    ["the pods/ephemeralcontainers subresource", { subResource: "ephemeralcontainers", operation: "UPDATE" }],
    ["an excluded namespace", { namespace: "kube-system" }],
  ])("allows %s without a patch", async (_name, extra) => {
    const { uid, body } = podCreateReview(podWithCommand, "team-a", extra);
    const answer = await webhook.post("/mutate", body);
    expect(answer.status).toBe(200);
    expect(answer.json.response).toEqual({ uid, allowed: true });
  });

  it.each([
    ["not JSON", "{not json", { "content-type": "application/json" }, 400, "not valid JSON"],
    ["JSON that is not an object", "[1,2,3]", { "content-type": "application/json" }, 400, "must be a JSON object"],
    [
      "the wrong apiVersion",
      JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {} }),
      undefined,
      400,
      "apiVersion",
    ],
    [
      "a missing uid",
      JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { kind: {} } }),
      undefined,
      400,
      "uid",
    ],
    ["a wrong content type", "{}", { "content-type": "text/plain" }, 415, "content-type must be application/json"],
    ["a body over the limit", JSON.stringify({ pad: "x".repeat(300 * 1024) }), undefined, 413, "larger than the limit"],
  ])("rejects %s with a clear error and keeps serving", async (_name, body, headers, status, message) => {
    const answer = await webhook.post("/mutate", body, headers ?? { "content-type": "application/json" });
    expect(answer.status).toBe(status);
    expect(answer.json.error).toContain(message);
    expect((await webhook.get("/healthz")).status).toBe(200);
  });

  it("refuses TLS 1.1", async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${webhook.url}/healthz`, { rejectUnauthorized: false, maxVersion: "TLSv1.1", minVersion: "TLSv1" }, () =>
        resolve("connected"),
      );
      req.on("error", (error) => resolve(error.message));
      req.end();
    });
    expect(outcome).not.toBe("connected");
  });

  it("says once that pull-secret lookup is off without a kubeconfig", () => {
    expect(webhook.logs().filter((line) => line.includes("pull-secret lookup is off"))).toHaveLength(1);
  });
});

describe("webhook lifecycle", () => {
  it("reloads a rotated certificate without a restart and without failing requests in between", async () => {
    const webhook = await startWebhook();
    try {
      const dir = mkdtempSync(join(tmpdir(), "kustodia-rotate-"));
      const newCa = await makeCertificateAuthority(dir, "rotated");
      const newLeaf = await makeLeafCertificate(newCa, dir, "webhook", ["IP:127.0.0.1"]);
      copyFileSync(newLeaf.keyFile, webhook.keyFile);
      copyFileSync(newLeaf.certFile, webhook.certFile);
      const withNewCa = () =>
        new Promise<number>((resolve) => {
          const req = request(`${webhook.url}/healthz`, { ca: [readFileSync(newCa.certFile)] }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on("error", () => resolve(0));
          req.end();
        });
      await expect.poll(withNewCa, { timeout: 15_000, interval: 250 }).toBe(200);
      expect(webhook.logs().some((line) => line.includes("TLS certificate reloaded"))).toBe(true);
      rmSync(dir, { recursive: true, force: true });
    } finally {
      await webhook.stop();
    }
  });

  it("drains on SIGTERM and exits 0", async () => {
    const webhook = await startWebhook();
    const code = await webhook.stop("SIGTERM");
    expect(code).toBe(0);
    expect(webhook.logs().some((line) => line.includes('"msg":"stopped"'))).toBe(true);
  });

  it.each([
    ["no certificate", { KUSTODIA_TLS_CERT_FILE: "" }, "KUSTODIA_TLS_CERT_FILE is required"],
    ["a bad listen address", { KUSTODIA_LISTEN: "localhost" }, "KUSTODIA_LISTEN"],
    ["a bad delivery mode", { KUSTODIA_DELIVERY: "sideload" }, "KUSTODIA_DELIVERY"],
    ["a bad registry timeout", { KUSTODIA_REGISTRY_TIMEOUT: "soon" }, "KUSTODIA_REGISTRY_TIMEOUT"],
    ["a missing config file", { KUSTODIA_CONFIG_FILE: "/nonexistent/kustodia.yaml" }, "cannot read /nonexistent/kustodia.yaml"],
  ])("refuses to start with %s, naming the setting (exit 78)", (_name, env, message) => {
    const result = spawnSync(process.execPath, ["webhook/main.ts"], {
      env: {
        PATH: process.env.PATH,
        KUSTODIA_TLS_CERT_FILE: "/x.crt",
        KUSTODIA_TLS_KEY_FILE: "/x.key",
        KUSTODIA_SHIM_IMAGE: "shim:1",
        ...env,
      },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain(message);
  });
});
