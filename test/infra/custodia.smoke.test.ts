// Proves the Custodia of the test infrastructure is the real server on its unix socket: containers,
// simple secrets, 404 for what is missing, 409 for overwriting.
import { randomUUID } from "node:crypto";
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { service, skipWithout } from "./coords.ts";

function custodia(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> =
    payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) };
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: service("custodia").socket, method, path, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

describe.skipIf(skipWithout("custodia"))("Custodia (test infrastructure)", () => {
  it("advertises its socket as an http+unix URL", () => {
    const { socket, url } = service("custodia");
    expect(url).toBe(`http+unix://${socket}`);
  });

  it("stores a simple secret in a container and reads it back", async () => {
    const container = `smoke-${randomUUID()}`;
    expect((await custodia("POST", `/secrets/${container}/`)).status).toBe(201);

    const secret = { type: "simple", value: "custodia-value" };
    expect((await custodia("PUT", `/secrets/${container}/password`, secret)).status).toBe(201);
    expect((await custodia("PUT", `/secrets/${container}/password`, secret)).status).toBe(409);

    const read = await custodia("GET", `/secrets/${container}/password`);
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body)).toEqual(secret);

    const listing = await custodia("GET", `/secrets/${container}/`);
    expect(JSON.parse(listing.body)).toEqual(["password"]);
  });

  it("answers 404 for a missing key and for a key in a missing container", async () => {
    const container = `smoke-${randomUUID()}`;
    expect((await custodia("POST", `/secrets/${container}/`)).status).toBe(201);
    expect((await custodia("GET", `/secrets/${container}/missing`)).status).toBe(404);
    expect((await custodia("GET", `/secrets/missing-${randomUUID()}/key`)).status).toBe(404);
  });
});
