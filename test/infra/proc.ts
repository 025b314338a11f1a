// Process plumbing for the test infrastructure: free ports, spawning daemons with their output in a
// log file, waiting until they answer, and stopping them.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Daemon {
  name: string;
  pid: number;
  logFile: string;
}

export interface DaemonOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts a long-running process detached from ours (its own process group), stdout+stderr to logFile. */
export function startDaemon(options: DaemonOptions): Daemon {
  const fd = openSync(options.logFile, "a");
  try {
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", fd, fd],
      detached: true,
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`${options.name}: could not spawn ${options.command}`);
    return { name: options.name, pid: child.pid, logFile: options.logFile };
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the daemon's process group, SIGKILL after a grace period. */
export async function stopDaemon(pid: number, graceMs = 5000): Promise<void> {
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
  };
  signalGroup("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) signalGroup("SIGKILL");
}

export function logTail(logFile: string, lines = 30): string {
  if (!existsSync(logFile)) return "(no log)";
  return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
}

/** Polls `probe` until it returns true; throws with the daemon's log tail when it dies or times out. */
export async function waitUntil(daemon: Daemon, what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(daemon.pid)) {
      throw new Error(`${daemon.name} exited before ${what}; log ${daemon.logFile}:\n${logTail(daemon.logFile)}`);
    }
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(
    `${daemon.name}: timed out after ${timeoutMs} ms waiting for ${what}; log ${daemon.logFile}:\n${logTail(daemon.logFile)}`,
  );
}

export async function tcpOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
