// The HTTPS edge: express routes for /mutate, health and metrics; TLS material reloaded from disk
// when it changes; graceful drain. Everything about admission itself lives in admission.ts.
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import type { TLSSocket } from "node:tls";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { type AdmissionContext, admit, parseReview, reviewResponse } from "./admission.ts";
import { type ClientAuth, isVerifiedCaller } from "./caller.ts";
import type { Metrics } from "./metrics.ts";

export interface AppOptions {
  context: AdmissionContext;
  metrics: Metrics;
  log: Logger;
  bodyLimitBytes: number;
  isReady: () => boolean;
  /** Set when the server asks for client certificates (TlsFiles.clientCaFile). */
  clientAuth?: ClientAuth;
}

function sendError(res: Response, status: number, message: string): void {
  res.status(status).json({ error: message });
}

export function createApp({ context, metrics, log, bodyLimitBytes, isReady, clientAuth }: AppOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok");
  });
  app.get("/readyz", (_req, res) => {
    if (isReady()) res.type("text/plain").send("ok");
    else res.status(503).type("text/plain").send("draining");
  });
  app.get("/metrics", async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.post(
    "/mutate",
    (req, res, next) => {
      if (!req.is("application/json")) {
        sendError(res, 415, `content-type must be application/json, got ${JSON.stringify(req.get("content-type") ?? "")}`);
        return;
      }
      next();
    },
    express.json({ limit: bodyLimitBytes, strict: true }),
    async (req, res) => {
      const started = performance.now();
      const parsed = parseReview(req.body);
      if (!parsed.ok) {
        metrics.admissions.inc({ decision: "error" });
        log.warn({ error: parsed.error }, "malformed AdmissionReview");
        sendError(res, 400, `malformed AdmissionReview: ${parsed.error}`);
        return;
      }
      const { request } = parsed;
      try {
        const verifiedCaller = isVerifiedCaller(req.socket as TLSSocket, clientAuth);
        const outcome = await admit(request, context, { pullSecrets: verifiedCaller });
        const seconds = (performance.now() - started) / 1000;
        metrics.admissions.inc({ decision: outcome.decision });
        metrics.admissionDuration.observe({ decision: outcome.decision }, seconds);
        log.info(
          {
            uid: request.uid,
            namespace: outcome.namespace,
            pod: outcome.pod,
            operation: request.operation,
            kind: request.kind.kind,
            dryRun: request.dryRun === true,
            verifiedCaller,
            decision: outcome.decision,
            ...(outcome.reason ? { reason: outcome.reason } : {}),
            ...(outcome.injected ? { injected: outcome.injected } : {}),
            warnings: outcome.response.warnings?.length ?? 0,
            duration_ms: Math.round(seconds * 1e6) / 1e3,
          },
          "admission",
        );
        res.json(reviewResponse(outcome.response));
      } catch (error) {
        // Nesting deep enough to exhaust the stack (structuredClone, the patch diff) is bad input, not a bug.
        if (error instanceof RangeError && /call stack/i.test(error.message)) {
          metrics.admissions.inc({ decision: "error" });
          log.warn({ uid: request.uid, error: error.message }, "malformed AdmissionReview");
          sendError(res, 400, "malformed AdmissionReview: request.object is nested too deeply to review");
          return;
        }
        // A bug, not a user error: answer 500 so the apiserver applies the failurePolicy (Fail).
        metrics.admissions.inc({ decision: "error" });
        log.error({ uid: request.uid, error: (error as Error).message }, "admission failed");
        sendError(res, 500, `internal error while reviewing ${request.uid}: ${(error as Error).message}`);
      }
    },
  );

  app.use((_req, res) => sendError(res, 404, "not found: the webhook serves POST /mutate, GET /healthz, /readyz and /metrics"));
  // express's body parser reports its failures as errors with a status (400, 413, 415).
  app.use((error: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = error.status ?? 500;
    const message =
      error.type === "entity.too.large"
        ? `request body larger than the limit of ${bodyLimitBytes} bytes`
        : error.type === "entity.parse.failed"
          ? `request body is not valid JSON: ${error.message}`
          : error.message;
    if (status >= 500) log.error({ error: error.message }, "request failed");
    else log.warn({ status, error: message }, "bad request");
    sendError(res, status, message);
  });
  return app;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA of the client certificates asked for (not required: health probes come without one). */
  clientCaFile?: string;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** Stops accepting, finishes in-flight requests (up to `graceMs`), then closes every connection. */
  close: (graceMs?: number) => Promise<void>;
}

function readTls(files: TlsFiles): { cert: Buffer; key: Buffer; ca?: Buffer; requestCert?: boolean; rejectUnauthorized?: boolean } {
  const pair = { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
  if (!files.clientCaFile) return pair;
  return { ...pair, ca: readFileSync(files.clientCaFile), requestCert: true, rejectUnauthorized: false };
}

/**
 * Serves `app` over HTTPS (TLS ≥ 1.2). The certificate and key are re-read when either file changes
 * (polled, which also sees Kubernetes' symlink swaps of mounted Secrets); a pair that does not load
 * keeps the previous one in service. In-flight connections are never interrupted by a reload.
 */
export async function startServer(
  app: express.Express,
  options: { host: string; port: number; tls: TlsFiles; log: Logger; reloadIntervalMs?: number },
): Promise<RunningServer> {
  const { log, tls } = options;
  const server = createServer({ ...readTls(tls), minVersion: "TLSv1.2" }, app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;

  const reload = () => {
    try {
      server.setSecureContext({ ...readTls(tls), minVersion: "TLSv1.2" });
      log.info({ certFile: tls.certFile }, "TLS certificate reloaded");
    } catch (error) {
      log.warn({ error: (error as Error).message }, "TLS certificate change not loaded; still serving the previous one");
    }
  };
  const interval = options.reloadIntervalMs ?? 2000;
  const watched = [tls.certFile, tls.keyFile, ...(tls.clientCaFile ? [tls.clientCaFile] : [])];
  for (const file of watched) watchFile(file, { interval, persistent: false }, reload);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const close = async (graceMs = 20_000) => {
    for (const file of watched) unwatchFile(file, reload);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
  };
  return { server, port, close };
}
