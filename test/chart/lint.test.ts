import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { service, skipWithout } from "../infra/coords.ts";
import { chartDir, helm, repoRoot, type Values, valuesArgs } from "./chart.ts";
import { everythingValues } from "./values.ts";

async function lint(values: Values) {
  const file = valuesArgs(values);
  cleanups.push(file.cleanup);
  return helm(service("helm").binary, ["lint", chartDir, "--strict", "--kube-version", "1.30.0", ...file.args]);
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe.skipIf(skipWithout("helm"))("helm lint charts/kustodia", () => {
  it("passes --strict with the default values", async () => {
    const result = await lint({});
    expect(result.stderr + result.stdout).toContain("0 chart(s) failed");
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it("passes --strict with every option set", async () => {
    const result = await lint(everythingValues("team-a"));
    expect(result.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(result.code).toBe(0);
  });

  it.each([
    { name: "an unknown top-level key", values: { replicas: 2 }, message: "replicas" },
    {
      name: "a failurePolicy (fail closed is not configurable)",
      values: { webhook: { failurePolicy: "Ignore" } },
      message: "failurePolicy",
    },
    { name: "a webhook timeout over 10 s", values: { webhook: { timeoutSeconds: 30 } }, message: "/webhook/timeoutSeconds" },
    { name: "an unknown TLS mode", values: { tls: { mode: "manual" } }, message: "/tls/mode" },
    {
      name: "a reference prefix that is no env var name",
      values: { shim: { referencePrefix: "SECRET-" } },
      message: "/shim/referencePrefix",
    },
    {
      name: "an unknown auth method",
      values: { shim: { defaults: { vaultAuthMethod: "ldap" } } },
      message: "/shim/defaults/vaultAuthMethod",
    },
    {
      name: "a backend address without scheme",
      values: { shim: { defaults: { vaultAddr: "vault:8200" } } },
      message: "/shim/defaults/vaultAddr",
    },
    { name: "a registry timeout that is no duration", values: { registry: { timeout: "5 seconds" } }, message: "/registry/timeout" },
    { name: "an image digest that is a tag", values: { image: { digest: "latest" } }, message: "/image/digest" },
    { name: "an unknown delivery", values: { shim: { delivery: "hostPath" } }, message: "/shim/delivery" },
  ])("rejects $name through values.schema.json", async ({ values, message }) => {
    const result = await lint(values as Values);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain(message);
  });
});

describe("Chart.yaml", () => {
  it("carries package.json's version as version and appVersion (the webhook writes it into kustodia.io/status)", () => {
    const chart = parseYaml(readFileSync(join(chartDir, "Chart.yaml"), "utf8")) as { version: string; appVersion: string };
    const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
    expect(chart.appVersion).toBe(version);
    expect(chart.version).toBe(version);
  });
});
