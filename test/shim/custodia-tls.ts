// A second real Custodia for the `https://` transport: Debian's server on loopback TLS, verifying
// client certificates (tls_verify_client) and admitting them with SimpleClientCertAuth, which needs
// the `CUSTODIA_CERT_AUTH: true` header (Custodia's own CLI sends it too).
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { runInstallScript } from "../infra/install.ts";
import { type Daemon, freePort, startDaemon, stopDaemon, waitUntil } from "../infra/proc.ts";
import { makeCertificateAuthority, makeLeafCertificate } from "../infra/tls.ts";
import { cacheDir } from "../infra/up.ts";

export interface TlsCustodia {
  url: string;
  caFile: string;
  client: { certFile: string; keyFile: string };
  /** A client certificate from another CA: the TLS handshake refuses it. */
  stranger: { certFile: string; keyFile: string };
  put(container: string, key: string, value: string): Promise<void>;
  stop(): Promise<void>;
}

const ini = (value: string) => value.replaceAll("$", "$$");

function call(url: string, tls: { ca: Buffer; cert: Buffer; key: Buffer }, method: string, path: string, body?: unknown): Promise<number> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, url),
      {
        method,
        ...tls,
        headers: {
          CUSTODIA_CERT_AUTH: "true",
          ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
        },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

export async function startTlsCustodia(dir: string): Promise<TlsCustodia> {
  const [binary] = await runInstallScript("install-custodia.sh", cacheDir());
  if (!binary) throw new Error("install-custodia.sh printed no binary path");
  const ca = await makeCertificateAuthority(dir, "custodia");
  const server = await makeLeafCertificate(ca, dir, "custodia-server", ["IP:127.0.0.1", "DNS:localhost"]);
  const client = await makeLeafCertificate(ca, dir, "shim-client", ["DNS:shim"], "clientAuth");
  const otherCa = await makeCertificateAuthority(dir, "other");
  const stranger = await makeLeafCertificate(otherCa, dir, "stranger", ["DNS:stranger"], "clientAuth");
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const configFile = join(dir, "custodia-tls.conf");
  const sections: Record<string, Record<string, string>> = {
    DEFAULT: { libdir: dir, logdir: dir, rundir: dir, socketdir: dir },
    // debug stays off: in debug mode Custodia logs request bodies, i.e. values.
    global: {
      server_url: url,
      tls_certfile: server.certFile,
      tls_keyfile: server.keyFile,
      tls_cafile: ca.certFile,
      tls_verify_client: "true",
      auditlog: join(dir, "audit.log"),
      debug: "false",
      makedirs: "false",
    },
    "store:sqlite": { handler: "SqliteStore", dburi: join(dir, "secrets.db"), table: "secrets" },
    "auth:clientcert": { handler: "SimpleClientCertAuth" },
    "authz:paths": { handler: "SimplePathAuthz", paths: "/. /secrets" },
    "/": { handler: "Root" },
    "/secrets": { handler: "Secrets", store: "sqlite" },
  };
  const text = Object.entries(sections)
    .map(
      ([name, entries]) =>
        `[${name}]\n${Object.entries(entries)
          .map(([key, value]) => `${key} = ${ini(value)}\n`)
          .join("")}`,
    )
    .join("\n");
  writeFileSync(configFile, text);
  const daemon: Daemon = startDaemon({
    name: "custodia-tls",
    command: binary,
    args: [configFile],
    logFile: join(dir, "custodia.log"),
    cwd: dir,
  });
  const tls = { ca: readFileSync(ca.certFile), cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) };
  try {
    await waitUntil(daemon, `${url}/`, async () => (await call(url, tls, "GET", "/")) === 200, 30_000);
  } catch (error) {
    await stopDaemon(daemon.pid);
    throw error;
  }
  return {
    url,
    caFile: ca.certFile,
    client,
    stranger,
    put: async (container, key, value) => {
      const created = await call(url, tls, "POST", `/secrets/${container}/`);
      if (created !== 201 && created !== 409) throw new Error(`Custodia POST /secrets/${container}/: ${created}`);
      const stored = await call(url, tls, "PUT", `/secrets/${container}/${key}`, { type: "simple", value });
      if (stored !== 201) throw new Error(`Custodia PUT /secrets/${container}/${key}: ${stored}`);
    },
    stop: () => stopDaemon(daemon.pid),
  };
}
