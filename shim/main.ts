// kustodia-shim: the entry point. `kustodia-shim [--] <command> [args...]` resolves the container's
// references and becomes the app; `kustodia-shim install <dir>` copies the runtime;
// `kustodia-shim --explain` prints what a start would do (78 when it would fail). Exit codes:
// 64 usage, 78 unresolved reference or bad setting, 69 backend unavailable, 126/127 app not
// executable / not found (like shells), 1 install failed.
import { writeSync } from "node:fs";
import { constants } from "node:os";
import { parseArgs, USAGE } from "./args.ts";
import { loadConfig } from "./config.ts";
import { ShimError, ShimExit } from "./errors.ts";
import { createLog, type Log } from "./log.ts";
import { writeTerminationMessage } from "./termination.ts";

/** EX_SOFTWARE: a bug in the shim. */
const INTERNAL_ERROR = 70;

async function main(argv: string[], log: { current: Log }): Promise<void> {
  const invocation = parseArgs(argv);
  if (invocation.kind === "help") {
    writeSync(1, `${USAGE}\n`);
    return;
  }
  if (invocation.kind === "version") {
    const { VERSION } = await import("../common/version.ts");
    writeSync(1, `kustodia-shim ${VERSION}\n`);
    return;
  }
  if (invocation.kind === "install") {
    const { installRuntime } = await import("./install.ts");
    try {
      await installRuntime(invocation.dir);
    } catch (error) {
      log.current.error(`install ${invocation.dir}: ${(error as Error).message}`);
      process.exit(ShimExit.installFailed);
    }
    return;
  }

  // Until the app runs, SIGUSR1 must not open Node's inspector (it could read the shim's token):
  // handle it with its default action's outcome instead. execve resets handled signals for the app.
  process.on("SIGUSR1", () => process.exit(128 + constants.signals.SIGUSR1));
  const loaded = loadConfig(process.env, invocation.settings);
  if (!loaded.ok) {
    for (const error of loaded.errors) log.current.error(error);
    throw new ShimError("KUS_SHIM_CONFIG", "not starting the app: invalid settings", loaded.errors);
  }
  log.current = createLog(loaded.config.logLevel);
  for (const warning of loaded.warnings) log.current.warn(warning);
  if (invocation.kind === "explain") {
    const { explain } = await import("./explain.ts");
    process.exitCode = explain({ config: loaded.config, env: loaded.env, write: (text) => writeSync(1, text) }, invocation);
    return;
  }
  const { runApp } = await import("./run.ts");
  await runApp({ config: loaded.config, env: loaded.env, log: log.current }, invocation.command, invocation.args);
}

const log = { current: createLog("info") };
try {
  await main(process.argv.slice(2), log);
} catch (error) {
  if (error instanceof ShimError && error.code === "KUS_SHIM_USAGE") {
    writeSync(2, `kustodia-shim: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  if (error instanceof ShimError) {
    log.current.error(error.message);
    writeTerminationMessage([...error.causes, error.message].map((line) => `kustodia-shim: ${line}`));
    process.exit(error.exitCode);
  }
  log.current.error(`internal error: ${(error as Error)?.stack ?? String(error)}`);
  writeTerminationMessage([`kustodia-shim: internal error: ${(error as Error)?.message ?? String(error)}`]);
  process.exit(INTERNAL_ERROR);
}
