// A real TCP proxy on loopback for fault tests: forwards to a target, optionally delaying every
// chunk in both directions (latency, order kept), or refusing, resetting or swallowing connections.
// Counts connections and bytes, so that a test can see how much reached the target.
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

/**
 * - `forward`: pass traffic through (after `delayMs`).
 * - `refuse`: stop listening, so that connecting fails with ECONNREFUSED (the port stays reserved for `forward` again).
 * - `reset`: accept, then reset the connection (ECONNRESET at the client).
 * - `blackhole`: accept and never answer.
 */
export type ProxyMode = "forward" | "refuse" | "reset" | "blackhole";

export interface TcpProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Added to every chunk in both directions. */
  delayMs?: number;
  mode?: ProxyMode;
  /** Defaults to a free port. */
  port?: number;
}

export interface ProxyStats {
  /** Connections accepted (in any mode but `refuse`). */
  connections: number;
  /** Bytes forwarded to the target, and back from it. */
  bytesToTarget: number;
  bytesFromTarget: number;
}

export interface TcpProxy {
  port: number;
  /** `127.0.0.1:<port>` */
  host: string;
  stats(): ProxyStats;
  resetStats(): void;
  setDelay(delayMs: number): void;
  setMode(mode: ProxyMode): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  let delayMs = options.delayMs ?? 0;
  let mode: ProxyMode = options.mode ?? "forward";
  let stats: ProxyStats = { connections: 0, bytesToTarget: 0, bytesFromTarget: 0 };
  const sockets = new Set<Socket>();

  const server = createServer((client) => {
    stats.connections++;
    track(client);
    if (mode === "reset") client.resetAndDestroy();
    else if (mode === "forward") {
      const upstream = track(tcpConnect({ host: options.targetHost, port: options.targetPort }));
      pipeDelayed(
        client,
        upstream,
        () => delayMs,
        (bytes) => (stats.bytesToTarget += bytes),
      );
      pipeDelayed(
        upstream,
        client,
        () => delayMs,
        (bytes) => (stats.bytesFromTarget += bytes),
      );
    }
  });
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    return socket;
  };
  const closeSockets = () => {
    for (const socket of sockets) socket.destroy();
  };

  const port = await listen(server, options.port ?? 0);
  if (mode === "refuse") await stopListening(server);
  return {
    port,
    host: `127.0.0.1:${port}`,
    stats: () => ({ ...stats }),
    resetStats() {
      stats = { connections: 0, bytesToTarget: 0, bytesFromTarget: 0 };
    },
    setDelay(ms) {
      delayMs = ms;
    },
    async setMode(next) {
      if (next === mode) return;
      const wasRefusing = mode === "refuse";
      mode = next;
      closeSockets();
      if (next === "refuse") await stopListening(server);
      else if (wasRefusing) await listen(server, port);
    },
    async close() {
      closeSockets();
      if (server.listening) await stopListening(server);
    },
  };
}

/** Forwards `from` to `to`, each chunk `delay()` ms after it arrived (timers of equal delay fire in order), and the end likewise. */
function pipeDelayed(from: Socket, to: Socket, delay: () => number, count: (bytes: number) => void): void {
  const later = (action: () => void) => {
    const ms = delay();
    if (ms > 0) setTimeout(action, ms);
    else action();
  };
  from.on("data", (chunk: Buffer) =>
    later(() => {
      if (to.destroyed) return;
      count(chunk.length);
      to.write(chunk);
    }),
  );
  from.on("end", () => later(() => to.end()));
  // An abrupt close (reset, error) is passed on; after a clean end, `to` closes once it has flushed.
  from.on("close", () => later(() => to.writableEnded || to.destroy()));
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

function stopListening(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
