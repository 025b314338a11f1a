// Prometheus metrics of the webhook (prom-client), on a registry of their own so that several
// servers (tests) never share counters.
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  /** decision: allowed (no patch), mutated, denied, error */
  admissions: Counter<"decision">;
  admissionDuration: Histogram<"decision">;
  /** result: ok, error */
  registryLookups: Counter<"result">;
  /** cache: tag (tag → digest), config (digest → image config) */
  registryCacheHits: Counter<"cache">;
}

export function createMetrics({ defaultMetrics = true } = {}): Metrics {
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry, prefix: "kustodia_webhook_" });
  return {
    registry,
    admissions: new Counter({
      name: "kustodia_admissions_total",
      help: "Admission requests answered, by decision (allowed = no patch, mutated, denied, error).",
      labelNames: ["decision"],
      registers: [registry],
    }),
    admissionDuration: new Histogram({
      name: "kustodia_admission_duration_seconds",
      help: "Time from request to response, including image lookups.",
      labelNames: ["decision"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    registryLookups: new Counter({
      name: "kustodia_registry_lookups_total",
      help: "Image ENTRYPOINT/CMD lookups, by result.",
      labelNames: ["result"],
      registers: [registry],
    }),
    registryCacheHits: new Counter({
      name: "kustodia_registry_cache_hits_total",
      help: "Image lookups answered from cache, by cache (tag: tag → digest, config: digest → config).",
      labelNames: ["cache"],
      registers: [registry],
    }),
  };
}
