// A FAKE token server (no real Docker token server is installed here): a minimal one after the Docker
// token spec, written for the registry client's tests. It checks Basic credentials or a refresh token
// and signs ES256 JWTs. The registry that validates its tokens is the real distribution, started here
// with `auth: token`, holding two images pushed with a token of its own. Loopback only.
import { execFile } from "node:child_process";
import { randomBytes, sign, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { runInstallScript } from "./install.ts";
import { pushConfigOnlyImage } from "./oci-push.ts";
import { freePort, startDaemon, stopDaemon, waitUntil } from "./proc.ts";
import { registryFetch } from "./registry-http.ts";
import { cacheDir } from "./up.ts";

const execFileAsync = promisify(execFile);
const TOKEN_SERVICE = "kustodia-token-test";
const TOKEN_ISSUER = "kustodia-token-test-issuer";
export const TOKEN_USER = {
  username: "bearer-user",
  password: randomBytes(12).toString("base64url"),
  refreshToken: randomBytes(12).toString("hex"),
};

export interface TokenRegistry {
  host: string;
  tokenHost: string;
  /** Token requests so far, by who asked: a username, `refresh` or `anonymous`. */
  requests: string[];
  /** expires_in of the tokens handed out from now on. */
  setExpiresIn(seconds: number): void;
  /** A token for `repository`, as a registrytoken in a docker config would carry it. */
  issue(repository: string): string;
  close(): Promise<void>;
}

/** The token registry's images, tag `v1`: `public/app` anyone may pull, `private/app` only TOKEN_USER. */
export const BEARER_IMAGES = { public: "public/app", private: "private/app" };

/** dir/key.pem and dir/cert.pem: the key tokens are signed with, and the certificate distribution checks them against. */
async function createTokenSigningKey(dir: string): Promise<void> {
  await execFileAsync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"].concat([
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-subj",
      "/CN=kustodia-token-test",
    ]),
  );
}

/** A real registry (distribution, token auth) whose Bearer challenges name `realm` as the token endpoint. */
export async function startRealmRegistry(realm: string): Promise<{ host: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "kustodia-realm-registry-"));
  await createTokenSigningKey(dir);
  const daemon = await startDistribution(dir, realm);
  return {
    host: daemon.host,
    async close() {
      await stopDaemon(daemon.pid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startTokenRegistry(): Promise<TokenRegistry> {
  const dir = mkdtempSync(join(tmpdir(), "kustodia-token-registry-"));
  await createTokenSigningKey(dir);
  const signer = {
    key: readFileSync(join(dir, "key.pem"), "utf8"),
    x5c: new X509Certificate(readFileSync(join(dir, "cert.pem"))).raw.toString("base64"),
  };
  let expiresIn = 300;
  const requests: string[] = [];
  const issue = (subject: string, access: object[]) => signToken(signer, subject, access, expiresIn);
  const server = createServer((request, response) =>
    answerTokenRequest(
      request,
      response,
      requests,
      (subject, access) => issue(subject, access),
      () => expiresIn,
    ),
  );
  const tokenPort = await freePort();
  await new Promise<void>((resolve) => server.listen(tokenPort, "127.0.0.1", resolve));
  const daemon = await startDistribution(dir, `http://127.0.0.1:${tokenPort}/token`);
  const tokenRegistry: TokenRegistry = {
    host: daemon.host,
    tokenHost: `127.0.0.1:${tokenPort}`,
    requests,
    setExpiresIn: (seconds) => {
      expiresIn = seconds;
    },
    issue: (repository) => issue(TOKEN_USER.username, [{ type: "repository", name: repository, actions: ["pull"] }]),
    async close() {
      await stopDaemon(daemon.pid);
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const pushToken = `Bearer ${issue(
    TOKEN_USER.username,
    Object.values(BEARER_IMAGES).map((name) => ({ type: "repository", name, actions: ["pull", "push"] })),
  )}`;
  for (const [visibility, repository] of Object.entries(BEARER_IMAGES)) {
    const target = { endpoint: { url: `http://${daemon.host}` }, repository, headers: { authorization: pushToken } };
    await pushConfigOnlyImage(target, "v1", { config: { Entrypoint: [`/${visibility}`] } });
  }
  return tokenRegistry;
}

function signToken(signer: { key: string; x5c: string }, subject: string, access: object[], expiresIn: number): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const header = encode({ typ: "JWT", alg: "ES256", x5c: [signer.x5c] });
  const claims = encode({
    iss: TOKEN_ISSUER,
    sub: subject,
    aud: TOKEN_SERVICE,
    iat: now,
    nbf: now - 10,
    exp: now + expiresIn,
    jti: randomBytes(8).toString("hex"),
    access,
  });
  const signature = sign("sha256", Buffer.from(`${header}.${claims}`), { key: signer.key, dsaEncoding: "ieee-p1363" }).toString(
    "base64url",
  );
  return `${header}.${claims}.${signature}`;
}

/** GET with Basic (or no) credentials, or POST with a refresh token; grants pull of `public/*` to anyone, all to TOKEN_USER. */
function answerTokenRequest(
  request: IncomingMessage,
  response: ServerResponse,
  requests: string[],
  issue: (subject: string, access: object[]) => string,
  expiresIn: () => number,
): void {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const url = new URL(request.url ?? "/", "http://token");
    const form = request.method === "POST" ? new URLSearchParams(Buffer.concat(chunks).toString()) : url.searchParams;
    const who = whoAsks(request, form);
    requests.push(who);
    if (who === "rejected" || form.get("service") !== TOKEN_SERVICE) {
      response.writeHead(401, { "content-type": "application/json" }).end('{"details":"incorrect username or password"}');
      return;
    }
    const [type, name = "", actions = ""] = (form.get("scope") ?? "").split(":");
    const granted = who !== "anonymous" || name.startsWith("public/") ? actions.split(",").filter((action) => action === "pull") : [];
    const token = issue(who, [{ type, name, actions: granted }]);
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ token, access_token: token, expires_in: expiresIn(), issued_at: new Date().toISOString() }));
  });
}

/** TOKEN_USER's name, `refresh` (its refresh token), `anonymous`, or `rejected` for wrong credentials. */
function whoAsks(request: IncomingMessage, form: URLSearchParams): string {
  if (request.method === "POST")
    return form.get("grant_type") === "refresh_token" && form.get("refresh_token") === TOKEN_USER.refreshToken ? "refresh" : "rejected";
  const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? "")?.[1];
  if (!basic) return "anonymous";
  const [user, password] = Buffer.from(basic, "base64").toString().split(":");
  return user === TOKEN_USER.username && password === TOKEN_USER.password ? TOKEN_USER.username : "rejected";
}

/** A real registry (distribution) storing under `dir`: token auth with `realm` (dir/cert.pem checks the tokens), or anonymous. */
export async function startDistribution(
  dir: string,
  realm: string | undefined,
  extra: Record<string, unknown> = {},
): Promise<{ host: string; pid: number }> {
  const [binary = ""] = await runInstallScript("install-registry.sh", cacheDir());
  const host = `127.0.0.1:${await freePort()}`;
  const config = {
    version: "0.1",
    log: { level: "warn" },
    storage: { filesystem: { rootdirectory: join(dir, "data") } },
    http: { addr: host, secret: randomBytes(16).toString("hex") },
    ...(realm ? { auth: { token: { realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, rootcertbundle: join(dir, "cert.pem") } } } : {}),
    ...extra,
  };
  writeFileSync(join(dir, "config.yml"), JSON.stringify(config));
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("REGISTRY_")));
  const daemon = startDaemon({
    name: "registry-token",
    command: binary,
    args: ["serve", join(dir, "config.yml")],
    logFile: join(dir, "registry.log"),
    env,
  });
  await waitUntil(
    daemon,
    `GET /v2/ to answer ${realm ? 401 : 200}`,
    async () => (await registryFetch({ url: `http://${host}` }, "/v2/")).status === (realm ? 401 : 200),
    30_000,
  );
  return { host, pid: daemon.pid };
}
