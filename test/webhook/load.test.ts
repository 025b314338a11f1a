import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "../infra/coords.ts";
import { makeCertificateAuthority, makeLeafCertificate } from "../infra/tls.ts";
import { startWebhook } from "./harness.ts";

const execFileAsync = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const SECONDS = Number(process.env.KUSTODIA_LOAD_SECONDS ?? 60);
const RATE = Number(process.env.KUSTODIA_LOAD_RATE ?? 100);

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

function pod(name: string, container: Record<string, unknown>, inject = true) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, annotations: inject ? { "kustodia.io/inject": "true" } : {} },
    spec: { containers: [{ name: "app", env: [{ name: "SECRET_DB_PASSWORD", value: "app/db#password" }], ...container }] },
  };
}

describe.skipIf(skipWithout("registry"))("webhook under load", () => {
  it(
    `answers ${RATE}/s for ${SECONDS} s from another process with zero errors, bounded memory, and a certificate rotated midway`,
    async () => {
      const registry = service("registry");
      const image = registry.images.entrypointCmd;
      if (!image) throw new Error("no entrypointCmd test image");
      const webhook = await startWebhook({
        env: {
          KUSTODIA_REGISTRY_PLAIN_HTTP: registry.plain.host,
          KUSTODIA_REGISTRY_ALLOWED_NETWORKS: "127.0.0.0/8",
          KUSTODIA_LOG_LEVEL: "info",
        },
      });
      const dir = mkdtempSync(join(tmpdir(), "kustodia-load-"));
      try {
        const nextCa = await makeCertificateAuthority(dir, "next");
        const nextLeaf = await makeLeafCertificate(nextCa, dir, "webhook", ["IP:127.0.0.1"]);
        const configFile = join(dir, "load.json");
        writeFileSync(
          configFile,
          JSON.stringify({
            url: webhook.url,
            caFiles: [webhook.caFile, nextCa.certFile],
            ratePerSecond: RATE,
            durationSeconds: SECONDS,
            closeEvery: 50,
            pods: [
              pod("with-command", { image: "example/app:1", command: ["/app/server"], args: ["--port", "8080"] }),
              pod("from-registry", { image: image.reference }),
              pod("not-opted-in", { image: "example/app:1" }, false),
            ],
          }),
        );
        const rssStart = rssMiB(webhook.process.pid as number);
        const load = execFileAsync(process.execPath, [join(here, "load-client.ts"), configFile], { maxBuffer: 1 << 20 });
        await new Promise((resolve) => setTimeout(resolve, (SECONDS * 1000) / 2));
        copyFileSync(nextLeaf.keyFile, webhook.keyFile);
        copyFileSync(nextLeaf.certFile, webhook.certFile);
        const result = JSON.parse((await load).stdout);
        const rssEnd = rssMiB(webhook.process.pid as number);
        console.log(`load: ${JSON.stringify({ ...result, rssStartMiB: Math.round(rssStart), rssEndMiB: Math.round(rssEnd) })}`);

        expect(result.firstErrors).toEqual([]);
        expect(result.errors).toBe(0);
        expect(result.completed).toBe(result.sent);
        expect(result.sent).toBe(RATE * SECONDS);
        const seen = Object.keys(result.certificates).filter((key) => key !== "reused connection");
        expect(seen, "connections before and after the rotation saw both certificates").toHaveLength(2);
        expect(rssEnd, "resident memory stays bounded").toBeLessThan(Math.max(256, rssStart * 2));
      } finally {
        await webhook.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    (SECONDS + 60) * 1000,
  );
});
