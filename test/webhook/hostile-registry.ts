// A FAKE registry, on purpose: it lies the way an attacker's registry would (a real one cannot be
// made to), answering every request with 401 and a Bearer challenge whose realm points where the
// test says (the cloud metadata service, another host). Next to it, an "internal service" on
// loopback that hands out a token to whoever asks, and counts who connected. Loopback only.
import { createServer, type Server } from "node:http";

export interface HostileRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** Authorization headers the registry received (a leaked internal token would show up here). */
  authorizations: string[];
  close(): Promise<void>;
}

export interface InternalService {
  /** `127.0.0.1:<port>` */
  host: string;
  port: number;
  /** TCP connections accepted: anything above 0 means the webhook reached it. */
  connections(): number;
  close(): Promise<void>;
}

/** The token an internal service hands out: it must never reach the hostile registry. */
export const INTERNAL_TOKEN = "INTERNAL-METADATA-CREDENTIAL";

export async function startHostileRegistry(realm: () => string): Promise<HostileRegistry> {
  const authorizations: string[] = [];
  const server = createServer((request, response) => {
    if (request.headers.authorization) authorizations.push(request.headers.authorization);
    response.writeHead(401, { "www-authenticate": `Bearer realm="${realm()}",service="hostile"` }).end();
  });
  const port = await listen(server);
  return { host: `127.0.0.1:${port}`, authorizations, close: () => close(server) };
}

export async function startInternalService(): Promise<InternalService> {
  let connections = 0;
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: INTERNAL_TOKEN }));
  });
  server.on("connection", () => connections++);
  const port = await listen(server);
  return { host: `127.0.0.1:${port}`, port, connections: () => connections, close: () => close(server) };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    }),
  );
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
