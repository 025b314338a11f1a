// kustodia-webhook: reads its settings, wires the pieces together and serves until SIGTERM.
import { VERSION } from "../common/version.ts";
import { createImageLookup } from "./images.ts";
import { createLogger } from "./logger.ts";
import { createMetrics } from "./metrics.ts";
import type { PullSecretReader } from "./pull-secrets.ts";
import { createRegistryClient } from "./registry/client.ts";
import { createApp, startServer } from "./server.ts";
import { loadSettings, SettingsError } from "./settings.ts";

const EX_CONFIG = 78;

async function main(): Promise<void> {
  let settings: ReturnType<typeof loadSettings>;
  try {
    settings = loadSettings(process.env, VERSION);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    process.stderr.write(`kustodia-webhook: ${error.message}\n`);
    process.exit(EX_CONFIG);
  }
  const log = createLogger(settings.logLevel);
  const metrics = createMetrics();

  let pullSecrets: PullSecretReader | undefined;
  if (settings.pullSecrets) {
    // Loaded only when used: the Kubernetes client is the larger part of the webhook's memory.
    const { connectEarly, createPullSecretReader, pullSecretKubeConfig } = await import("./pull-secrets.ts");
    try {
      const kubeConfig = pullSecretKubeConfig();
      pullSecrets = createPullSecretReader(kubeConfig);
      void connectEarly(kubeConfig);
    } catch (error) {
      log.warn({ error: (error as Error).message }, "pull-secret lookup is off: no usable Kubernetes client configuration");
    }
  } else {
    log.info(
      "pull-secret lookup is off (KUSTODIA_PULL_SECRETS is false, or auto without a cluster or KUBECONFIG); private images need kustodia.io/entrypoint.<container> or command:",
    );
  }

  const registry = createRegistryClient(settings.registry, metrics, log);
  let draining = false;
  const app = createApp({
    context: { settings, lookupImages: createImageLookup({ registry, pullSecrets }) },
    metrics,
    log,
    bodyLimitBytes: settings.bodyLimitBytes,
    isReady: () => !draining,
    ...(settings.clientAuth ? { clientAuth: { allowedNames: settings.clientAuth.allowedNames } } : {}),
  });
  if (pullSecrets && !settings.clientAuth)
    log.warn(
      "pull secrets will not be used: no KUSTODIA_CLIENT_CA_FILE, so no caller can prove it is the kube-apiserver (docs/security.md)",
    );
  const tls = { ...settings.tls, ...(settings.clientAuth ? { clientCaFile: settings.clientAuth.caFile } : {}) };
  const server = await startServer(app, { ...settings.listen, tls, log });
  log.info(
    { listen: `${settings.listen.host}:${server.port}`, version: VERSION, delivery: settings.delivery, shimImage: settings.shimImage },
    "kustodia webhook serving",
  );

  const shutdown = async (signal: string) => {
    if (draining) return;
    draining = true;
    log.info({ signal }, "draining");
    await server.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

await main();
