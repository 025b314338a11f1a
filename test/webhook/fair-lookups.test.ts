// #13 item 5 end to end: the webhook program, over HTTPS /mutate, with the real plain-HTTP registry
// behind two real TCP proxies — a slow one (every chunk delayed 1 s) that 40-container pods flood,
// and a normal one (50 ms) that a one-container pod's image lives on. The normal pod's whole
// admission (TLS, the review, the registry lookup, the patch) is timed before and during the flood.
import { describe, expect, it } from "vitest";
import { Annotations, SHIM_PATH } from "../../common/contract.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { startTcpProxy } from "../infra/tcp-proxy.ts";
import { applyResponse, podCreateReview, startWebhook } from "./harness.ts";

const FLOOD_CONTAINERS = 40;
const FLOOD_EVERY_MS = 400;

function pod(name: string, images: string[]) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, annotations: { [Annotations.inject]: "true" } },
    spec: {
      containers: images.map((image, index) => ({
        name: `c${index}`,
        image,
        env: [{ name: "SECRET_DB_PASSWORD", value: "app/db#password" }],
      })),
    },
  };
}

const p99 = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.ceil(0.99 * samples.length) - 1] ?? 0;

describe.skipIf(skipWithout("registry"))("registry lookups shared fairly between admissions (#13 item 5)", () => {
  it(`#13.5 keeps a normal pod's admission p99 through /mutate within 2x of its unloaded value while ${FLOOD_CONTAINERS}-container pods flood a slow registry every ${FLOOD_EVERY_MS / 1000} s`, async () => {
    const registry = service("registry");
    const [host = "", port] = registry.plain.host.split(":");
    const slow = await startTcpProxy({ targetHost: host, targetPort: Number(port), delayMs: 1000 });
    const normal = await startTcpProxy({ targetHost: host, targetPort: Number(port), delayMs: 50 });
    // The chart's defaults for the slots; a lookup timeout that fits the flood's rounds in a short test.
    const webhook = await startWebhook({
      env: {
        KUSTODIA_REGISTRY_PLAIN_HTTP: `${slow.host},${normal.host}`,
        KUSTODIA_REGISTRY_ALLOWED_NETWORKS: "127.0.0.0/8",
        KUSTODIA_REGISTRY_CONCURRENCY: "16",
        KUSTODIA_REGISTRY_HOST_CONCURRENCY: "8",
        KUSTODIA_REGISTRY_ADMISSION_CONCURRENCY: "4",
        KUSTODIA_REGISTRY_TIMEOUT: "4s",
        KUSTODIA_REGISTRY_CACHE_TTL: "1ms", // every normal admission asks the registry for its tag again
        KUSTODIA_LOG_LEVEL: "info",
      },
    });
    const image = registry.images.entrypointCmd as { repository: string; tag: string; entrypoint: string[] };
    const normalPod = pod("normal", [`${normal.host}/${image.repository}:${image.tag}`]);
    const admitNormal = async () => {
      const started = performance.now();
      const answer = await webhook.post("/mutate", podCreateReview(normalPod, "tenant-b").body);
      const took = performance.now() - started;
      const response = answer.json?.response;
      expect(response?.allowed, answer.text).toBe(true);
      expect(applyResponse(normalPod, response).spec.containers[0]).toMatchObject({ command: [SHIM_PATH, "--", ...image.entrypoint] });
      return took;
    };
    const measure = async (count: number) => {
      const took: number[] = [];
      for (let i = 0; i < count; i++) {
        took.push(await admitNormal());
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      return p99(took);
    };

    let round = 0;
    const floods: Promise<unknown>[] = [];
    let flood: NodeJS.Timeout | undefined;
    try {
      await admitNormal(); // connections up, config cached: what is left is the normal work of an admission
      const unloaded = await measure(20);
      flood = setInterval(() => {
        round++;
        const images = Array.from({ length: FLOOD_CONTAINERS }, (_, index) => `${slow.host}/flood/app${index}:r${round}`);
        floods.push(webhook.post("/mutate", podCreateReview(pod(`flood-${round}`, images), "tenant-a").body).catch(() => undefined));
      }, FLOOD_EVERY_MS);
      await new Promise((resolve) => setTimeout(resolve, 2000)); // the slow registry's slots are all taken by now
      const loaded = await measure(20);
      console.info(`[#13.5] normal admission p99: unloaded ${unloaded.toFixed(0)} ms, under the flood ${loaded.toFixed(0)} ms`);
      expect(slow.stats().connections, "the flood reached the slow registry").toBeGreaterThan(0);
      expect(loaded).toBeLessThanOrEqual(2 * unloaded);
    } finally {
      clearInterval(flood);
      await Promise.all(floods);
      await webhook.stop();
      await Promise.all([slow.close(), normal.close()]);
    }
  }, 90_000);
});
