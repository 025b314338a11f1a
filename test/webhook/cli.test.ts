import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { skipWithout } from "../infra/coords.ts";
import { entrypointCmdImage, kustodia } from "./cli-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "kustodia-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    kustodia.io/inject: "true"
spec:
  containers:
    - name: app
      image: example/app:1
      command: ["/app/server"]
      env:
        - name: SECRET_PASSWORD
          value: myapp/password
`;

describe("kustodia mutate", () => {
  it("prints the mutated pod as YAML", () => {
    const result = kustodia(["mutate", "-f", "-"], pod);
    expect(result.status).toBe(0);
    const [out] = parseAllDocuments(result.stdout).map((d) => d.toJS());
    expect(out.spec.containers[0].command).toEqual(["/kustodia/kustodia-shim", "--", "/app/server"]);
    expect(out.spec.initContainers[0].name).toBe("kustodia-install");
    expect(out.spec.initContainers[0].image).toBe("example/shim:1");
    expect(out.metadata.annotations["kustodia.io/status"]).toMatch(/^injected /);
  });

  it("mutates the pod template of a Deployment and of a CronJob, leaving other objects as they are", () => {
    const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata:
      annotations: {kustodia.io/inject: "true"}
    spec:
      containers:
        - {name: app, image: a, command: [/a], env: [{name: SECRET_X, value: a/x}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 1 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {kustodia.io/inject: "true"}
        spec:
          restartPolicy: Never
          containers:
            - {name: job, image: j, command: [/j], env: [{name: SECRET_Y, value: j/y}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: untouched}
data: {a: b}
`;
    const file = join(dir, "workloads.yaml");
    writeFileSync(file, deployment);
    const result = kustodia(["mutate", "-f", file]);
    expect(result.status).toBe(0);
    const [deploy, cron, configMap] = parseAllDocuments(result.stdout).map((d) => d.toJS());
    expect(deploy.spec.template.spec.containers[0].command).toEqual(["/kustodia/kustodia-shim", "--", "/a"]);
    expect(cron.spec.jobTemplate.spec.template.spec.containers[0].command).toEqual(["/kustodia/kustodia-shim", "--", "/j"]);
    expect(configMap).toEqual({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "untouched" }, data: { a: "b" } });
  });

  it("prints only the JSON Patch with -o patch", () => {
    const result = kustodia(["mutate", "-f", "-", "-o", "patch"], pod);
    expect(result.status).toBe(0);
    const patch = JSON.parse(result.stdout);
    expect(Array.isArray(patch)).toBe(true);
    expect(patch.some((op: { path: string }) => op.path.startsWith("/spec/initContainers"))).toBe(true);
  });

  it("reports a denial on stderr with exit code 1", () => {
    const noCommand = pod.replace('      command: ["/app/server"]\n', "").replace("example/app:1", "127.0.0.1:1/none:1");
    const result = kustodia(["mutate", "-f", "-"], noCommand, {
      KUSTODIA_REGISTRY_PLAIN_HTTP: "127.0.0.1:1",
      KUSTODIA_REGISTRY_TIMEOUT: "2s",
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("Denied: Pod default/web");
    expect(result.stderr).toContain("kustodia.io/entrypoint.app");
    // The denial leaves the network cause out; the command line prints it for whoever runs it.
    expect(result.stderr).toContain("Lookup: 127.0.0.1:1/none:1: refused to connect for 127.0.0.1:1");
  });

  it("prints warnings on stderr", () => {
    const result = kustodia(["mutate", "-f", "-"], pod.replace("myapp/password", "../etc/passwd"));
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('Warning: Pod default/web: container "app" env SECRET_PASSWORD: invalid reference');
  });

  it("explains its usage on a bad command line (exit 2)", () => {
    const result = kustodia(["mutat"]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("usage: kustodia mutate -f");
  });
});

describe.skipIf(skipWithout("registry"))("kustodia mutate with the registry", () => {
  it("looks up the image ENTRYPOINT/CMD like the webhook", () => {
    const { image, env } = entrypointCmdImage();
    const noCommand = pod.replace('      command: ["/app/server"]\n', "").replace("example/app:1", image.reference);
    const result = kustodia(["mutate", "-f", "-"], noCommand, env);
    expect(result.stderr).not.toMatch(/Denied|invalid/);
    expect(result.status).toBe(0);
    const [out] = parseAllDocuments(result.stdout).map((d) => d.toJS());
    expect(out.spec.containers[0].command).toEqual(["/kustodia/kustodia-shim", "--", ...(image.entrypoint ?? [])]);
    expect(out.spec.containers[0].args).toEqual(image.cmd);
  });
});
