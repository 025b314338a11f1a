// Rotation mode (KUSTODIA_ROTATION=restart|signal): the shim stays as the app's parent instead of
// exec'ing it. It forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2, ends the way the app
// ended (same exit code, or the same signal re-raised on itself), and re-reads the secrets every
// interval. When a value changed:
// - restart: SIGTERM to the app, SIGKILL after a grace period if it is still running, then the app is
//   started again with the new env;
// - signal: the configured signal (default SIGHUP) is sent, and nothing else is forced. An app's env
//   cannot change while it runs, so the signal means "your secrets changed": an app that handles it by
//   exiting (its graceful-shutdown signal, e.g. SIGQUIT for nginx) is started again with the new env;
//   an app that keeps running keeps its old env until its next exit, which then restarts it with the
//   newest one. The shim never writes values anywhere for the app to re-read.
// Issued secrets are renewed and re-issued on their own schedule (leases.ts), which pushes a new env
// through `attach`'s control, or stops the app for good when its credentials die.
// Zombie reaping is tini's job (PID 1 in front of the shim); nothing here depends on it.
import type { ChildProcess } from "node:child_process";
import { constants } from "node:os";
import type { RotationConfig } from "./config.ts";
import { type AppCommand, execFailure } from "./exec.ts";
import type { Log } from "./log.ts";

export const FORWARDED_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;
/** Signals after which an app exit is the end, not a rotation restart. */
const STOPPING_SIGNALS = new Set<NodeJS.Signals>(["SIGTERM", "SIGINT", "SIGQUIT"]);
/** How long a restarted app may take to stop before SIGKILL (Kubernetes' default grace period). */
export const RESTART_GRACE_MS = 30_000;

export type AppExit = { code: number } | { signal: NodeJS.Signals };

/** What the shim may do to the running app from outside the refresh loop. */
export interface SupervisorControl {
  /** The app's new env: restart or signal it, as for a changed value. */
  rotate(env: Record<string, string>): void;
  /** Stops the app (SIGTERM, SIGKILL after the grace period) and ends the shim with `exit`. */
  stop(exit: AppExit): void;
}

export interface SupervisorOptions {
  command: AppCommand;
  env: Record<string, string>;
  rotation: RotationConfig;
  /** Re-reads the secrets: the app's new env when a value changed, undefined otherwise. */
  refresh: () => Promise<Record<string, string> | undefined>;
  log: Log;
  graceMs?: number;
  /** Receives the controls once the app has been started. */
  attach?: (control: SupervisorControl) => void;
}

/** Runs the app under the shim until it ends for good; resolves with how it ended. */
export function supervise(options: SupervisorOptions): Promise<AppExit> {
  const { command, rotation, log } = options;
  return new Promise((resolve) => {
    let child: ChildProcess | undefined;
    let pendingEnv: Record<string, string> | undefined;
    let stopping = false;
    let finished = false;
    /** Set by control.stop: how the shim ends, whatever the app does. */
    let forcedExit: AppExit | undefined;
    let refreshTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;

    const finish = (exit: AppExit) => {
      if (finished) return;
      finished = true;
      clearTimeout(refreshTimer);
      clearTimeout(killTimer);
      for (const signal of FORWARDED_SIGNALS) process.removeListener(signal, forward);
      resolve(exit);
    };

    function forward(signal: NodeJS.Signals) {
      if (STOPPING_SIGNALS.has(signal)) stopping = true;
      if (child) child.kill(signal);
      else if (stopping) finish({ signal });
    }

    // Loaded here, not imported: an ESM import of node:child_process would cost every start (exec mode too).
    const { spawn } = process.getBuiltinModule("node:child_process");
    const start = (env: Record<string, string>) => {
      const app = spawn(command.file, command.argv.slice(1), { argv0: command.argv[0], env, stdio: "inherit" });
      child = app;
      app.on("error", (error: NodeJS.ErrnoException) => {
        if (app.pid !== undefined) return;
        const failure = execFailure(command.file, error);
        log.error(failure.message);
        finish({ code: failure.exitCode });
      });
      app.on("exit", (code, signal) => {
        if (child === app) child = undefined;
        clearTimeout(killTimer);
        if (pendingEnv && !stopping) {
          const next = pendingEnv;
          pendingEnv = undefined;
          log.info(`app exited (${signal ?? `code ${code}`}); starting it again with the new secrets`);
          start(next);
          return;
        }
        finish(forcedExit ?? (signal ? { signal } : { code: code ?? 0 }));
      });
    };

    const terminate = (app: ChildProcess) => {
      app.kill("SIGTERM");
      clearTimeout(killTimer);
      killTimer = setTimeout(() => {
        log.warn(`app did not stop within ${(options.graceMs ?? RESTART_GRACE_MS) / 1000} s; sending SIGKILL`);
        app.kill("SIGKILL");
      }, options.graceMs ?? RESTART_GRACE_MS);
    };

    const rotate = (env: Record<string, string>) => {
      if (stopping) return;
      pendingEnv = env;
      if (!child) return;
      if (rotation.mode === "signal") {
        log.info(`secrets changed; sending ${rotation.signal} to the app`);
        child.kill(rotation.signal);
        return;
      }
      log.info("secrets changed; restarting the app (SIGTERM)");
      terminate(child);
    };

    const stop = (exit: AppExit) => {
      if (finished || forcedExit) return;
      stopping = true;
      forcedExit = exit;
      pendingEnv = undefined;
      if (child) terminate(child);
      else finish(exit);
    };

    const scheduleRefresh = () => {
      refreshTimer = setTimeout(async () => {
        const env = await options.refresh().catch((error: unknown) => {
          log.warn(`refreshing secrets failed: ${(error as Error).message}`);
          return undefined;
        });
        if (finished) return;
        if (env && !stopping) rotate(env);
        scheduleRefresh();
      }, rotation.intervalMs);
    };

    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    start(options.env);
    scheduleRefresh();
    options.attach?.({ rotate, stop });
  });
}

/**
 * Ends the shim the way the app ended. A signal is re-raised with its default action restored; where
 * that cannot end the process (Node ignores SIGPIPE; SIGUSR1 would open Node's inspector), the shell
 * convention 128 + signal number is the exit code.
 */
export function endLike(exit: AppExit): void {
  if ("code" in exit) process.exit(exit.code);
  const code = 128 + (constants.signals[exit.signal] ?? 0);
  if (exit.signal !== "SIGUSR1") {
    process.removeAllListeners(exit.signal);
    process.kill(process.pid, exit.signal);
  }
  setTimeout(() => process.exit(code), 100);
}
