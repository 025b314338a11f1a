// The transport's own HTTP behaviour (redirects, size cap, request cap, stale kept-alive sockets)
// against plain node:http servers on loopback: what is tested is HTTP itself, not a registry.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { BodyTooLargeError, createSemaphore, createTransport, type HttpRequest, type Transport } from "./http.ts";

const servers: Server[] = [];
const transports: Transport[] = [];
afterEach(async () => {
  for (const transport of transports.splice(0)) transport.close();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, server };
}

function transport(concurrency = 4): Transport {
  const created = createTransport({ concurrency });
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

  it("keeps at most `concurrency` requests in flight", async () => {
    let active = 0;
    let most = 0;
    const registry = await serve((_request, response) => {
      most = Math.max(most, ++active);
      setTimeout(() => {
        active--;
        response.end("ok");
      }, 20);
    });
    const client = transport(2);
    await Promise.all(Array.from({ length: 6 }, () => client.send(get(registry.url))));
    expect(most).toBe(2);
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

describe("createSemaphore", () => {
  it("lets a waiter go when its signal aborts, without taking a slot", async () => {
    const semaphore = createSemaphore(1);
    const release = await semaphore.acquire(AbortSignal.timeout(1000));
    const controller = new AbortController();
    const waiting = semaphore.acquire(controller.signal);
    controller.abort(new Error("gave up"));
    await expect(waiting).rejects.toThrow("gave up");
    release();
    const again = await semaphore.acquire(AbortSignal.timeout(1000));
    again();
  });
});
