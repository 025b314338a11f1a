// webhook/Dockerfile cannot be built here (no container engine). What can be proven is checked: the
// build stage's COPY lines bring in everything `npm run build` needs to bundle the webhook (the
// stage is replayed in a temporary directory), that bundle serves on its own — copied with its chunks
// (main.js*) into an empty directory, as the runtime stage does, run by the pinned Node with the
// ENTRYPOINT's Node flags and the chart's env — and the Dockerfile runs that file as the non-root user the chart expects, on the Node
// pinned in package.json.
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { entrypointFlags, parseFinalStage } from "../../scripts/dockerfile.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { firstStage, replayCopyLines } from "../infra/dockerfile.ts";
import { freePort } from "../infra/proc.ts";
import { makeCertificateAuthority, makeLeafCertificate } from "../infra/tls.ts";
import { startWebhook } from "../webhook/harness.ts";
import { findObject, localWebhookEnv, renderChart, repoRoot } from "./chart.ts";

const execFileAsync = promisify(execFile);
const dockerfile = readFileSync(join(repoRoot, "webhook", "Dockerfile"), "utf8");
const BUNDLE = "dist/webhook/main.js";
const NODE_FLAGS = entrypointFlags(parseFinalStage(dockerfile), BUNDLE);

describe("webhook/Dockerfile", () => {
  it("runs the bundle `npm run build` writes, as 65532, with no version of its own", () => {
    expect(readFileSync(join(repoRoot, "scripts", "build.ts"), "utf8")).toContain(`outfile: "${BUNDLE}"`);
    expect(dockerfile).toMatch(/^RUN npm run build\b/m);
    // `node [Node flags] <bundle>`; the flags are read from here by the benchmark too (bench/lib/webhooks.ts).
    expect(parseFinalStage(dockerfile).entrypoint).toEqual(["/usr/local/bin/node", ...NODE_FLAGS, BUNDLE]);
    for (const flag of NODE_FLAGS) expect(flag).toMatch(/^--[a-z-]+(=\S+)?$/);
    expect(dockerfile).toMatch(/^USER 65532:65532$/m);
    // The Node version comes from package.json's `node` devDependency, never written twice.
    expect(dockerfile).toContain(`require("./package.json").devDependencies.node`);
    expect(dockerfile).not.toMatch(/node-linux-[a-z0-9]+@[0-9]/);
    // Both base images are build arguments, so CI can pin them by digest.
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual([
      expect.stringMatching(/^FROM --platform=\$BUILDPLATFORM \$\{BUILD_IMAGE\} AS build$/),
      expect.stringMatching(/^FROM \$\{RUNTIME_IMAGE\}$/),
    ]);
  });
});

/** The build stage's context as its COPY lines make it; a link to node_modules stands in for `npm ci`. */
function buildStageContext(into: string): void {
  replayCopyLines(firstStage(dockerfile), repoRoot, into);
}

describe.skipIf(skipWithout("helm"))("the webhook image's build and runtime stages, outside Docker", () => {
  it("builds the bundle from the build stage's files alone, and serves it from an otherwise empty directory with the chart's env", async () => {
    const root = mkdtempSync(join(tmpdir(), "kustodia-image-"));
    try {
      const source = join(root, "src");
      buildStageContext(source);
      await execFileAsync("npm", ["run", "build"], { cwd: source });
      expect(readdirSync(join(source, "dist"))).toEqual(["webhook"]);

      const app = join(root, "app");
      mkdirSync(join(app, "dist", "webhook"), { recursive: true });
      // What the runtime stage copies: `main.js*`, the bundle and the chunks it loads on use.
      for (const name of readdirSync(join(source, "dist", "webhook")).filter((name) => name.startsWith("main.js")))
        copyFileSync(join(source, "dist", "webhook", name), join(app, "dist", "webhook", name));
      const ca = await makeCertificateAuthority(root, "image");
      const leaf = await makeLeafCertificate(ca, root, "image", ["IP:127.0.0.1"]);
      const objects = await renderChart(service("helm").binary, { release: "kustodia", namespace: "kustodia", kubeVersion: "1.30.0" });
      const configFile = join(root, "config.yaml");
      writeFileSync(configFile, findObject(objects, "ConfigMap").data["config.yaml"]);
      const before = readdirSync(app, { recursive: true }).sort();
      const webhook = await startWebhook({
        env: localWebhookEnv(objects, configFile, await freePort()),
        tls: { caFile: ca.certFile, certFile: leaf.certFile, keyFile: leaf.keyFile },
        program: { file: BUNDLE, cwd: app, nodeFlags: NODE_FLAGS },
      });
      expect((await webhook.get("/healthz")).status).toBe(200);
      // The image's Node flags are taken (a flag this Node rejects would have stopped it before /healthz).
      const argv = readFileSync(`/proc/${webhook.process.pid}/cmdline`, "utf8").split("\0");
      expect(argv.slice(1, 2 + NODE_FLAGS.length)).toEqual([...NODE_FLAGS, BUNDLE]);
      expect((await webhook.get("/readyz")).status).toBe(200);
      expect(await webhook.stop()).toBe(0);
      expect(readdirSync(app, { recursive: true }).sort()).toEqual(before);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
