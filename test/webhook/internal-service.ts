// A FAKE of an internal service (a cloud metadata endpoint, which cannot run here): on loopback, it
// hands a token to whoever asks and counts who connected. The registry-path SSRF tests (#13 item 4)
// point a real registry's token realm or blob redirect at it: any connection means the webhook followed.
import { createServer, type Server } from "node:http";

export interface InternalService {
  /** `<address>:<port>` */
  host: string;
  port: number;
  /** TCP connections accepted: anything above 0 means the webhook reached it. */
  connections(): number;
  close(): Promise<void>;
}

/** The token the internal service hands out. */
export const INTERNAL_TOKEN = "INTERNAL-METADATA-CREDENTIAL";

export async function startInternalService(address = "127.0.0.1"): Promise<InternalService> {
  let connections = 0;
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: INTERNAL_TOKEN }));
  });
  server.on("connection", () => connections++);
  const port = await listen(server, address);
  return { host: `${address}:${port}`, port, connections: () => connections, close: () => close(server) };
}

function listen(server: Server, address: string): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, address, () => {
      const bound = server.address();
      resolve(typeof bound === "object" && bound ? bound.port : 0);
    }),
  );
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
