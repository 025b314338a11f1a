// The transport's own HTTP behaviour (redirects, size cap, destination policy, stale kept-alive sockets)
// against plain node:http servers on loopback: what is tested is HTTP itself, not a registry.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { createDestinationPolicy, DestinationRefusedError } from "./destinations.ts";
import { BodyTooLargeError, createTransport, type HttpRequest, type Transport } from "./http.ts";

const servers: Server[] = [];
const transports: Transport[] = [];
afterEach(async () => {
  for (const transport of transports.splice(0)) transport.close();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function serve(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  host = "127.0.0.1",
): Promise<{ url: string; server: Server; port: number }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://${host}:${port}`, server, port };
}

/** The servers here are on loopback, which the policy refuses unless listed. */
function transport(allowedNetworks = ["127.0.0.0/8"]): Transport {
  const created = createTransport({ destinations: createDestinationPolicy(allowedNetworks) });
  transports.push(created);
  return created;
}

const get = (url: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method: "GET",
  url: new URL(url),
  signal: AbortSignal.timeout(5000),
  maxBytes: 1024,
  ...extra,
});

describe("createTransport", () => {
  it("follows a redirect to another origin without the Authorization header, and keeps it on the same origin", async () => {
    const seen: Record<string, string | undefined> = {};
    const storage = await serve((request, response) => {
      seen.storage = request.headers.authorization;
      response.end("blob");
    });
    const registry = await serve((request, response) => {
      if (request.url === "/same") {
        seen.same = request.headers.authorization;
        response.writeHead(307, { location: "/other" }).end();
      } else if (request.url === "/other") response.writeHead(302, { location: `${storage.url}/blob` }).end();
    });
    const answer = await transport().send(get(`${registry.url}/same`, { headers: { authorization: "Bearer t" }, followRedirects: true }));
    expect([answer.status, answer.body.toString(), answer.url.href]).toEqual([200, "blob", `${storage.url}/blob`]);
    expect(seen).toEqual({ same: "Bearer t", storage: undefined });
  });

  it("returns a redirect as it is unless asked to follow", async () => {
    const registry = await serve((_request, response) => response.writeHead(302, { location: "/x" }).end());
    expect((await transport().send(get(registry.url))).status).toBe(302);
  });

  it.each([
    { name: "announced by Content-Length", chunked: false },
    { name: "streamed without a length", chunked: true },
  ])("refuses a body over maxBytes $name", async ({ chunked }) => {
    const big = Buffer.alloc(4096, "x");
    const registry = await serve((_request, response) => {
      if (chunked) {
        response.write(big.subarray(0, 1000));
        setTimeout(() => response.end(big.subarray(1000)), 10);
      } else response.end(big);
    });
    await expect(transport().send(get(registry.url))).rejects.toBeInstanceOf(BodyTooLargeError);
  });

  it("sends a request again when the server closed the kept-alive connection meanwhile", async () => {
    const registry = await serve((_request, response) => response.end("ok"));
    const client = transport();
    await client.send(get(registry.url));
    // Close idle connections from the server side without telling the client's agent first.
    registry.server.closeIdleConnections();
    const answer = await client.send(get(registry.url));
    expect(answer.body.toString()).toBe("ok");
  });

  it("stops at the signal's deadline", async () => {
    const registry = await serve(() => {
      /* never answers */
    });
    await expect(transport().send(get(registry.url, { signal: AbortSignal.timeout(50) }))).rejects.toThrow(/abort/i);
  });
});

describe("createTransport's destination policy", () => {
  const counted = async (host = "127.0.0.1") => {
    let requests = 0;
    const server = await serve((_request, response) => {
      requests++;
      response.end("ok");
    }, host);
    return { ...server, requests: () => requests };
  };

  it("refuses a loopback IP unless its network is allowed, before connecting", async () => {
    const target = await counted();
    await expect(transport([]).send(get(target.url))).rejects.toBeInstanceOf(DestinationRefusedError);
    await expect(transport(["127.0.0.1/32"]).send(get(target.url))).resolves.toMatchObject({ status: 200 });
    expect(target.requests()).toBe(1);
  });

  it("checks a name on its DNS answer: localhost is loopback", async () => {
    const target = await counted();
    await expect(transport([]).send(get(`http://localhost:${target.port}/`))).rejects.toThrow(
      /localhost resolves only to refused addresses/,
    );
    expect(target.requests()).toBe(0);
  });

  it("refuses an IPv4-mapped IPv6 loopback literal", async () => {
    const target = await counted();
    await expect(transport([]).send(get(`http://[::ffff:127.0.0.1]:${target.port}/`))).rejects.toBeInstanceOf(DestinationRefusedError);
    expect(target.requests()).toBe(0);
  });

  it("refuses a redirect to an address outside the allowed networks", async () => {
    const inside = await counted("127.0.0.2");
    const registry = await serve((_request, response) => response.writeHead(307, { location: `${inside.url}/blob` }).end());
    await expect(transport(["127.0.0.1/32"]).send(get(registry.url, { followRedirects: true }))).rejects.toBeInstanceOf(
      DestinationRefusedError,
    );
    expect(inside.requests()).toBe(0);
  });
});
