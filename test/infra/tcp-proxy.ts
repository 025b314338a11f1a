// A real TCP proxy on loopback for fault tests: forwards to a target (a TCP port or a unix socket),
// optionally delaying every chunk in both directions (latency, order kept), or refusing, resetting or
// swallowing connections. It can terminate TLS itself (a certificate of the test's choosing: expired,
// from another CA, for another name) in front of a plain-HTTP target. And it can inject HTTP faults
// into the next N requests that match a pattern: a canned answer (5xx bursts, 403, invalid JSON), a
// reset after the request, or the real answer truncated. Counts connections, bytes and faults, so that
// a test can see how much reached the target and how often a client retried.
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { createServer as createTlsServer } from "node:tls";

/**
 * - `forward`: pass traffic through (after `delayMs`).
 * - `refuse`: stop listening, so that connecting fails with ECONNREFUSED (the port stays reserved for `forward` again).
 * - `reset`: accept, then reset the connection (ECONNRESET at the client).
 * - `blackhole`: accept and never answer.
 */
export type ProxyMode = "forward" | "refuse" | "reset" | "blackhole";

/**
 * What happens to a request an HTTP fault applies to. Its connection is closed afterwards.
 * - `respond`: this answer instead of the target's (the request never reaches the target).
 * - `reset`: the request is read, then the connection is reset.
 * - `truncate`: the target's real answer, cut after `bodyBytes` bytes of its body. With its
 *   Content-Length kept the client sees the connection end early; with `dropLength` the header is
 *   removed, so the cut body looks complete (and is no longer valid JSON).
 */
export type HttpFaultAction =
  | { kind: "respond"; status: number; body?: string; headers?: Record<string, string> }
  | { kind: "reset" }
  | { kind: "truncate"; bodyBytes: number; dropLength?: boolean };

export type HttpFault = HttpFaultAction & {
  /** Requests the fault applies to, by their request line (`GET /v1/secret/data/x HTTP/1.1`); default: all. */
  match?: RegExp;
  /** How many matching requests get the fault before the proxy forwards again; default: all of them. */
  count?: number;
};

export interface TcpProxyOptions {
  targetHost?: string;
  targetPort?: number;
  /** A unix socket to forward to instead of targetHost:targetPort. */
  targetPath?: string;
  /** Added to every chunk in both directions. */
  delayMs?: number;
  mode?: ProxyMode;
  /** Defaults to a free port. */
  port?: number;
  /** Terminate TLS with this certificate and key (PEM files); the target is spoken to in plain text. */
  tls?: { certFile: string; keyFile: string };
}

export interface ProxyStats {
  /** Connections accepted (in any mode but `refuse`). */
  connections: number;
  /** Bytes forwarded to the target, and back from it. */
  bytesToTarget: number;
  bytesFromTarget: number;
  /** Requests an HTTP fault was applied to. */
  httpFaults: number;
  /** Request lines seen while an HTTP fault was set, in order. */
  requests: string[];
}

export interface TcpProxy {
  port: number;
  /** `127.0.0.1:<port>` */
  host: string;
  stats(): ProxyStats;
  resetStats(): void;
  setDelay(delayMs: number): void;
  setMode(mode: ProxyMode): Promise<void>;
  /** Injects `fault` into the requests of connections accepted from now on; undefined forwards them again. */
  setHttpFault(fault: HttpFault | undefined): void;
  close(): Promise<void>;
}

const HEAD_END = Buffer.from("\r\n\r\n");
const MAX_HEAD_BYTES = 64 * 1024;
const STATUS_TEXT: Record<number, string> = { 200: "OK", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error" };

const emptyStats = (): ProxyStats => ({ connections: 0, bytesToTarget: 0, bytesFromTarget: 0, httpFaults: 0, requests: [] });

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  if (options.targetPath === undefined && (options.targetHost === undefined || options.targetPort === undefined))
    throw new Error("startTcpProxy: give targetHost and targetPort, or targetPath");
  let delayMs = options.delayMs ?? 0;
  let mode: ProxyMode = options.mode ?? "forward";
  let httpFault: HttpFault | undefined;
  let faultsLeft = Number.POSITIVE_INFINITY;
  let stats = emptyStats();
  const sockets = new Set<Socket>();

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    return socket;
  };
  const closeSockets = () => {
    for (const socket of sockets) socket.destroy();
  };
  const upstream = () =>
    track(
      options.targetPath !== undefined
        ? tcpConnect({ path: options.targetPath })
        : tcpConnect({ host: options.targetHost as string, port: options.targetPort as number }),
    );
  const toTarget = (bytes: number) => (stats.bytesToTarget += bytes);
  const fromTarget = (bytes: number) => (stats.bytesFromTarget += bytes);

  /** Plain forwarding of a whole connection, `first` being what the client already sent. */
  const forward = (client: Socket, first?: Buffer) => {
    const target = upstream();
    if (first && first.length > 0) {
      toTarget(first.length);
      target.write(first);
    }
    pipeDelayed(client, target, () => delayMs, toTarget);
    pipeDelayed(target, client, () => delayMs, fromTarget);
  };

  /** One request under an HTTP fault: read its head, then fault it or forward it (with `Connection: close`). */
  const handleHttp = (client: Socket, fault: HttpFault) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf(HEAD_END);
      if (end < 0) {
        if (buffered.length > MAX_HEAD_BYTES) client.destroy();
        return;
      }
      client.off("data", onData);
      client.pause();
      const head = buffered.subarray(0, end).toString("latin1");
      const rest = buffered.subarray(end + HEAD_END.length);
      const requestLine = head.split("\r\n")[0] ?? "";
      stats.requests.push(requestLine);
      const applies = (fault.match?.test(requestLine) ?? true) && faultsLeft > 0;
      if (applies) {
        faultsLeft--;
        stats.httpFaults++;
      }
      const closingHead = Buffer.from(`${withHeader(head, "connection", "close")}\r\n\r\n`, "latin1");
      if (!applies) {
        client.resume();
        forward(client, Buffer.concat([closingHead, rest]));
      } else if (fault.kind === "reset") client.resetAndDestroy();
      else if (fault.kind === "respond") {
        const body = Buffer.from(fault.body ?? "");
        const headers = {
          "content-type": "application/json",
          ...fault.headers,
          "content-length": String(body.length),
          connection: "close",
        };
        const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
        const status = `HTTP/1.1 ${fault.status} ${STATUS_TEXT[fault.status] ?? "Fault"}`;
        later(() => client.end(Buffer.concat([Buffer.from(`${[status, ...lines].join("\r\n")}\r\n\r\n`), body])), delayMs);
      } else {
        client.resume();
        truncateAnswer(client, Buffer.concat([closingHead, rest]), fault);
      }
    };
    client.on("data", onData);
  };

  /** Forwards one request and passes back its answer's head and the first `bodyBytes` of its body, then ends. */
  const truncateAnswer = (client: Socket, request: Buffer, fault: Extract<HttpFaultAction, { kind: "truncate" }>) => {
    const target = upstream();
    toTarget(request.length);
    target.write(request);
    client.on("data", (chunk: Buffer) => {
      toTarget(chunk.length);
      target.write(chunk);
    });
    let answer = Buffer.alloc(0);
    target.on("data", (chunk: Buffer) => {
      fromTarget(chunk.length);
      answer = Buffer.concat([answer, chunk]);
      const end = answer.indexOf(HEAD_END);
      if (end < 0) return;
      let head = answer.subarray(0, end).toString("latin1");
      if (fault.dropLength) head = withHeader(withoutHeader(head, "content-length"), "connection", "close");
      const body = answer.subarray(end + HEAD_END.length);
      const declared = Number(/\r\ncontent-length:\s*(\d+)/i.exec(answer.subarray(0, end).toString("latin1"))?.[1] ?? Number.NaN);
      // Wait for enough of the body to cut (or for all of it when it is shorter than the cut).
      if (body.length < fault.bodyBytes && !(body.length >= declared)) return;
      target.removeAllListeners("data");
      target.destroy();
      later(() => client.end(Buffer.concat([Buffer.from(`${head}\r\n\r\n`, "latin1"), body.subarray(0, fault.bodyBytes)])), delayMs);
    });
    target.on("end", () => client.end());
  };

  /** A connection ready for traffic (after the TLS handshake when the proxy terminates TLS). */
  const serve = (client: Socket) => {
    if (mode !== "forward") return; // blackhole: accepted, never answered
    if (httpFault) handleHttp(client, httpFault);
    else forward(client);
  };
  const server: Server = options.tls
    ? createTlsServer({ cert: readFileSync(options.tls.certFile), key: readFileSync(options.tls.keyFile) })
    : createServer();
  // Every TCP connection counts, also one whose TLS handshake then fails; `reset` acts before any handshake.
  server.on("connection", (socket: Socket) => {
    stats.connections++;
    track(socket);
    if (mode === "reset") socket.resetAndDestroy();
    else if (!options.tls) serve(socket);
  });
  if (options.tls) {
    server.on("secureConnection", (client: Socket) => serve(track(client)));
    // A client that refuses our certificate aborts the handshake: not an error of the proxy.
    server.on("tlsClientError", () => undefined);
  }

  const port = await listen(server, options.port ?? 0);
  if (mode === "refuse") await stopListening(server);
  return {
    port,
    host: `127.0.0.1:${port}`,
    stats: () => ({ ...stats, requests: [...stats.requests] }),
    resetStats() {
      stats = emptyStats();
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
    setHttpFault(fault) {
      httpFault = fault;
      faultsLeft = fault?.count ?? Number.POSITIVE_INFINITY;
    },
    async close() {
      closeSockets();
      if (server.listening) await stopListening(server);
    },
  };
}

function later(action: () => void, ms: number): void {
  if (ms > 0) setTimeout(action, ms);
  else action();
}

/** An HTTP head (request or status line + headers, no final CRLFCRLF) with `name` set to `value`. */
function withHeader(head: string, name: string, value: string): string {
  return `${withoutHeader(head, name)}\r\n${name}: ${value}`;
}

function withoutHeader(head: string, name: string): string {
  return head
    .split("\r\n")
    .filter((line, index) => index === 0 || line.slice(0, line.indexOf(":")).trim().toLowerCase() !== name)
    .join("\r\n");
}

/** Forwards `from` to `to`, each chunk `delay()` ms after it arrived (timers of equal delay fire in order), and the end likewise. */
function pipeDelayed(from: Socket, to: Socket, delay: () => number, count: (bytes: number) => void): void {
  from.on("data", (chunk: Buffer) =>
    later(() => {
      if (to.destroyed) return;
      count(chunk.length);
      to.write(chunk);
    }, delay()),
  );
  from.on("end", () => later(() => to.end(), delay()));
  // An abrupt close (reset, error) is passed on; after a clean end, `to` closes once it has flushed.
  from.on("close", () => later(() => to.writableEnded || to.destroy(), delay()));
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
