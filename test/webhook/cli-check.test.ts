import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { skipWithout } from "../infra/coords.ts";
import { entrypointCmdImage, kustodia } from "./cli-harness.ts";

interface CheckJson {
  problems: number;
  pods: {
    object: string;
    outcome: string;
    summary: string;
    problems: string[];
    notes: string[];
    installContainer?: string;
    containers: {
      list: string;
      name: string;
      selected: boolean;
      why: string;
      runs?: string[];
      settings: string[];
      references: { name: string; kind: string; text: string }[];
    }[];
  }[];
}

function checkJson(
  input: string,
  env: Record<string, string> = {},
  extra: string[] = [],
): { status: number | null; report: CheckJson; stderr: string } {
  const result = kustodia(["check", "-f", "-", "-o", "json", ...extra], input, env);
  return { status: result.status, report: JSON.parse(result.stdout) as CheckJson, stderr: result.stderr };
}

const pod = (annotations: string, containers: string, extra = "") => `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
${annotations}
spec:
${extra}  containers:
${containers}`;

const app = `    - name: app
      image: example/app:1
      command: ["/app/server"]
      env:
        - name: SECRET_PASSWORD
          value: myapp/password
`;
const optedIn = `    kustodia.io/inject: "true"`;

describe("kustodia check", () => {
  it("explains examples/pod.yaml container by container and exits 0", () => {
    const result = kustodia(["check", "-f", "examples/pod.yaml"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe('Pod demo/myapp: mutated: the shim runs first in "app"');
    expect(lines).toContain("  container app: selected (declares SECRET_PASSWORD)");
    expect(result.stdout).toContain(`    runs: /kustodia/kustodia-shim -- sh -c 'echo "app sees PASSWORD=$PASSWORD";`);
    expect(lines).toContain('    SECRET_PASSWORD → PASSWORD from vault KV mount "secret", secret "myapp", field "password"');
    expect(lines).toContain("    shim settings: KUSTODIA_VAULT_ROLE=myapp");
    expect(lines).toContain("  + initContainer kustodia-install, put first: copies the shim into the volume mounted at /kustodia");
    expect(lines).toContain("The webhook is called only in namespaces labelled kustodia.io/injection=enabled.");
    expect(lines.at(-2)).toBe("1 pod(s) checked, no problems");
  });

  it("gives the same report as JSON with -o json", () => {
    const { status, report } = checkJson(pod(optedIn, app));
    expect(status).toBe(0);
    expect(report.problems).toBe(0);
    const [web] = report.pods;
    expect(web?.object).toBe("Pod default/web");
    expect(web?.outcome).toBe("mutated");
    expect(web?.installContainer).toBe("kustodia-install");
    expect(web?.containers).toEqual([
      {
        list: "containers",
        name: "app",
        selected: true,
        why: "declares SECRET_PASSWORD",
        runs: ["/kustodia/kustodia-shim", "--", "/app/server"],
        settings: [],
        references: [
          { name: "SECRET_PASSWORD", kind: "reference", text: '→ PASSWORD from vault KV mount "secret", secret "myapp", field "password"' },
        ],
      },
    ]);
  });

  it("reads backend, KV mount and versions the way the shim will: annotations over cluster defaults", () => {
    const containers = `    - name: app
      image: example/app:1
      command: ["/app"]
      env:
        - {name: SECRET_A, value: "team/db#password@4"}
        - {name: SECRET_B, value: "custodia:legacy/token"}
        - {name: SECRET_C, value: "vault:x/y"}
`;
    const { report } = checkJson(pod(`${optedIn}\n    kustodia.io/vault-kv-mount: kv`, containers), { KUSTODIA_SHIM_BACKEND: "custodia" });
    const texts = report.pods[0]?.containers[0]?.references.map((reference) => reference.text);
    expect(texts).toEqual([
      `the pod's backend is custodia, and Custodia keys have no versions: "@4" would be ignored`,
      "→ B from custodia key /secrets/legacy/token",
      '→ C from vault KV mount "kv", secret "x", field "y"',
    ]);
    expect(report.pods[0]?.problems).toEqual([
      `container "app" env SECRET_A: the pod's backend is custodia, and Custodia keys have no versions: "@4" would be ignored`,
    ]);
    const vault = checkJson(pod(`${optedIn}\n    kustodia.io/backend: vault`, containers), { KUSTODIA_SHIM_BACKEND: "custodia" });
    expect(vault.report.pods[0]?.containers[0]?.references[0]?.text).toBe(
      '→ A from vault KV mount "secret", secret "team/db", field "password", version 4',
    );
  });

  it("reports an invalid reference, a collision, a misspelt annotation and an unknown container with exit 1", () => {
    const result = kustodia(["check", "-f", "examples/broken-pod.yaml"]);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(
      '    ✗ SECRET_TOKEN invalid reference "../../sys/token": path "../../sys/token" has an empty, "." or ".." segment',
    );
    expect(result.stdout).toContain(
      "  problem: unknown annotation kustodia.io/vault_role; the webhook ignores it (did you mean kustodia.io/vault-role?)",
    );
    expect(result.stdout).toContain(
      '  problem: kustodia.io/containers names "worker", which is not a container or initContainer of this pod',
    );
    expect(result.stdout).toContain(
      '  problem: container "app" env SECRET_PASSWORD: the container already sets PASSWORD; the container will fail to start',
    );
    expect(result.stdout).toContain("1 pod(s) checked, 4 problem(s)");
  });

  it("says why a container is not selected", () => {
    const sidecar = `    - name: sidecar
      image: example/sidecar:1
      env: [{name: SECRET_X, value: a/x}]
    - name: metrics
      image: example/metrics:1
`;
    const named = checkJson(pod(`${optedIn}\n    kustodia.io/containers: app`, app + sidecar));
    expect(named.report.pods[0]?.containers.map((c) => [c.name, c.selected, c.why])).toEqual([
      ["app", true, "named in kustodia.io/containers"],
      ["sidecar", false, "not named in kustodia.io/containers"],
      ["metrics", false, "not named in kustodia.io/containers"],
    ]);
    expect(named.report.pods[0]?.notes).toContain(
      'container "sidecar" declares references but is not selected: it would see the reference text',
    );

    const passthrough = checkJson(pod(`${optedIn}\n    kustodia.io/passthrough: SECRET_X`, app + sidecar));
    expect(passthrough.report.pods[0]?.containers.map((c) => c.why)).toEqual([
      "declares SECRET_PASSWORD",
      "its SECRET_ vars are all passthrough",
      "declares no SECRET_<NAME> var",
    ]);
  });

  it("reports a pod that declares references but is not opted in, or is opted in with a wrong value", () => {
    const notOptedIn = checkJson(pod(`    team: a`, app));
    expect(notOptedIn.status).toBe(1);
    expect(notOptedIn.report.pods[0]?.summary).toBe('not mutated: not opted in (kustodia.io/inject is not "true")');
    expect(notOptedIn.report.pods[0]?.problems[0]).toMatch(
      /declare SECRET_ references but the pod is not opted in: the app would see the reference text/,
    );

    const yes = checkJson(pod(`    kustodia.io/inject: "yes"`, app));
    expect(yes.report.pods[0]?.problems).toEqual(['kustodia.io/inject is "yes"; only "true" opts a pod in']);

    const plain = checkJson(pod(`    team: a`, `    - {name: web, image: nginx}\n`));
    expect(plain.status).toBe(0);
  });

  it("shows a denial as a problem", () => {
    const { status, report } = checkJson(pod(`${optedIn}\n    kustodia.io/rotation: sometimes`, app));
    expect(status).toBe(1);
    expect(report.pods[0]?.outcome).toBe("denied");
    expect(report.pods[0]?.problems).toEqual([
      'kustodia: annotation kustodia.io/rotation has the invalid value "sometimes"; accepted: "none", "restart", "signal"',
    ]);
    expect(report.pods[0]?.containers[0]?.selected).toBe(true);
    expect(report.pods[0]?.containers[0]?.runs).toBeUndefined();
  });

  it("needs no registry for containers with a command, and none at all with --offline", () => {
    const noCommand = app.replace('      command: ["/app/server"]\n', "").replace("example/app:1", "127.0.0.1:1/none:1");
    const registryEnv = { KUSTODIA_REGISTRY_PLAIN_HTTP: "127.0.0.1:1", KUSTODIA_REGISTRY_TIMEOUT: "2s" };
    const online = checkJson(pod(optedIn, noCommand), registryEnv);
    expect(online.status).toBe(1);
    expect(online.report.pods[0]?.outcome).toBe("denied");
    expect(online.report.pods[0]?.problems[0]).toMatch(/cannot read the ENTRYPOINT\/CMD of image "127.0.0.1:1\/none:1"/);

    const offline = checkJson(pod(optedIn, noCommand), registryEnv, ["--offline"]);
    expect(offline.status).toBe(0);
    expect(offline.report.pods[0]?.containers[0]?.runs).toEqual([
      "/kustodia/kustodia-shim",
      "--",
      "<ENTRYPOINT of the image>",
      "<CMD of the image>",
    ]);
    expect(offline.report.pods[0]?.notes).toContain(
      'container "app" has no command: the webhook reads the ENTRYPOINT/CMD of 127.0.0.1:1/none:1 from its registry (not asked: --offline)',
    );
  });

  it("tells, without counting it a problem, that the webhook mounts a token when the pod automounts none", () => {
    const { status, report } = checkJson(pod(optedIn, app, "  automountServiceAccountToken: false\n"));
    expect(status).toBe(0);
    expect(report.pods[0]?.notes.some((note) => note.includes("kustodia mounts a projected token for the shim"))).toBe(true);
    // With the token the apiserver mounts by default there is nothing to say.
    expect(checkJson(pod(optedIn, app)).report.pods[0]?.notes).toEqual([]);
  });

  it("reports an exec probe that reads a secret it will not see (exit 1), and shows what a wrapped one runs (exit 0)", () => {
    const containers = `${app}      readinessProbe:
        exec:
          command: [sh, -c, 'check --password "$PASSWORD"']
`;
    const unwrapped = kustodia(["check", "-f", "-"], pod(optedIn, containers));
    expect(unwrapped.status).toBe(1);
    expect(unwrapped.stdout).toContain(
      '  problem: container "app" readinessProbe reads PASSWORD, which only the app\'s process gets from kustodia: the handler sees no value and fails; run it through the shim with the annotation kustodia.io/wrap-exec: "readinessProbe" (or "true")',
    );
    const wrapped = kustodia(["check", "-f", "-"], pod(`${optedIn}\n    kustodia.io/wrap-exec: "true"`, containers));
    expect(wrapped.status).toBe(0);
    expect(wrapped.stdout).toContain(
      `    readinessProbe runs: /kustodia/kustodia-shim KUSTODIA_ROLE=probe KUSTODIA_TIMEOUT=500ms -- sh -c 'check --password "$PASSWORD"'`,
    );
  });

  it("checks the pod templates of workloads, and says which objects it did not check", () => {
    const result = kustodia(["check", "-f", "-"], `${pod(optedIn, app)}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n`);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("not a pod or a workload, not checked: ConfigMap default/settings");
    const deployment = kustodia(["check", "-f", "examples/deployment.yaml"]);
    expect(deployment.status).toBe(0);
    expect(deployment.stdout).toContain('Deployment team-a/shop: mutated: the shim runs first in "app"');
    expect(deployment.stdout).toContain("    runs: /kustodia/kustodia-shim -- /app/server --port 8080");
    expect(deployment.stdout).toContain("    SECRET_KEY is a plain value, passed on as it is (kustodia.io/passthrough)");
    expect(deployment.stdout).toContain("  container metrics: not selected (declares no SECRET_<NAME> var)");
  });

  it("reports pods in an excluded namespace", () => {
    const { status, report } = checkJson(pod(optedIn, app), {}, ["-n", "kube-system"]);
    expect(status).toBe(1);
    expect(report.pods[0]?.problems).toEqual(["namespace kube-system is excluded: the webhook never mutates pods there"]);
  });

  it("translates Bank-Vaults references and spots gustodia in a command", () => {
    const bankVaults = kustodia(["check", "-f", "examples/migration/bank-vaults.yaml"]);
    expect(bankVaults.status).toBe(1);
    expect(bankVaults.stdout).toContain(
      'problem: container "app" env DB_PASSWORD holds a Bank-Vaults reference; kustodia reads SECRET_<NAME> vars: write SECRET_DB_PASSWORD: payments/db#password (docs/migration.md)',
    );
    expect(bankVaults.stdout).toContain("write SECRET_API_KEY: payments/api#key@2 (docs/migration.md)");
    const otherMount = checkJson(
      pod(optedIn, `    - {name: app, image: a, command: [/a], env: [{name: TOKEN, value: "vault:kv/data/team/app#token"}]}\n`),
    );
    expect(otherMount.report.pods[0]?.problems).toContain(
      'container "app" env TOKEN holds a Bank-Vaults reference; kustodia reads SECRET_<NAME> vars: write SECRET_TOKEN: team/app#token with kustodia.io/vault-kv-mount: "kv" (docs/migration.md)',
    );
    // Under a pod whose default backend is Custodia the reference keeps "vault:".
    const custodiaDefault = checkJson(
      pod(
        `${optedIn}\n    kustodia.io/backend: custodia`,
        `    - {name: app, image: a, command: [/a], env: [{name: T, value: "vault:secret/data/x#t"}]}\n`,
      ),
    );
    expect(custodiaDefault.report.pods[0]?.problems[0]).toContain("write SECRET_T: vault:x#t (docs/migration.md)");
    const templated = checkJson(
      pod(
        optedIn,
        `    - {name: app, image: a, command: [/a], env: [{name: DSN, value: "postgres://u:\${vault:secret/data/db#pw}@db"}]}\n`,
      ),
    );
    expect(templated.report.pods[0]?.problems[0]).toContain(
      "holds a Bank-Vaults value (an inline template) that kustodia has no equivalent for",
    );

    const gustodia = kustodia(["check", "-f", "examples/migration/gustodia.yaml"]);
    expect(gustodia.status).toBe(1);
    expect(gustodia.stdout).toContain('problem: container "myapp" runs /var/run/custodia/gustodia: drop it from command');
  });

  it("passes every example meant to be used as it is", () => {
    const broken = new Set(["examples/broken-pod.yaml", "examples/migration/bank-vaults.yaml", "examples/migration/gustodia.yaml"]);
    const files = [
      ...readdirSync("examples").map((name) => join("examples", name)),
      ...readdirSync("examples/migration").map((name) => join("examples/migration", name)),
    ].filter((file) => file.endsWith(".yaml"));
    expect(files.length).toBeGreaterThan(6);
    for (const file of files) {
      const result = kustodia(["check", "-f", file]);
      expect({ file, status: result.status, stdout: result.status === (broken.has(file) ? 1 : 0) ? "" : result.stdout }).toEqual({
        file,
        status: broken.has(file) ? 1 : 0,
        stdout: "",
      });
    }
  });

  it("explains its usage on a bad command line (exit 2)", () => {
    for (const args of [["check"], ["check", "-f", "-", "-o", "yaml"], ["mutate", "-f", "-", "--offline"]]) {
      const result = kustodia(args, "");
      expect(result.status).toBe(2);
      expect(result.stderr).toContain("kustodia check  -f <file.yaml|->");
    }
    const help = kustodia(["check", "--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("--offline never asks a registry");
  });
});

describe.skipIf(skipWithout("registry"))("kustodia check with the registry", () => {
  it("shows the command made from the image's ENTRYPOINT and CMD", () => {
    const { image, env } = entrypointCmdImage();
    const { status, report } = checkJson(
      pod(optedIn, `    - {name: app, image: "${image.reference}", env: [{name: SECRET_A, value: a/b}]}\n`),
      env,
    );
    expect(status).toBe(0);
    expect(report.pods[0]?.containers[0]?.runs).toEqual([
      "/kustodia/kustodia-shim",
      "--",
      ...(image.entrypoint ?? []),
      ...(image.cmd ?? []),
    ]);
  });
});
