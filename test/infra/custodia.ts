// Custodia for the tests: Debian's `custodia` server on a unix socket, with a sqlite store mounted at
// `/secrets`.
//
// What a client must send: nothing but plain HTTP over the socket. Authentication is Custodia's
// SimpleCredsAuth, which reads the connecting process's uid/gid from the socket (SO_PEERCRED) and
// admits it when the uid OR the gid equals the test runner's own; no header is involved. A process
// with another uid and gid gets 403. Authorization is SimplePathAuthz on `/` and `/secrets`.
// Containers are created with `POST /secrets/<container>/` (trailing slash), keys are stored with
// `PUT /secrets/<container>/<key>` + `Content-Type: application/json` + `{"type":"simple","value":"..."}`
// (201; 409 when the key exists, 404 when the container does not) and read with `GET` (200 with
// `{"type":"simple","value":"..."}`, 404 when missing).
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { runInstallScript } from "./install.ts";
import { startDaemon, stopDaemon, waitUntil } from "./proc.ts";
import type { CustodiaCoordinates, InfraContext, StartedService } from "./types.ts";

/** sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** A GET over the unix socket; resolves with the status code. */
function probe(socketPath: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET", timeout: 2000 }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function packageVersion(): Promise<string> {
  // `custodia\t0.6.0-5`: the upstream version is the part before the Debian revision.
  const { stdout } = await promisify(execFile)("dpkg-query", ["-W", "custodia"]);
  return (stdout.trim().split("\t")[1] ?? "").replace(/-[^-]*$/, "");
}

/** configparser's ExtendedInterpolation treats `$` specially. */
const ini = (value: string) => value.replaceAll("$", "$$");

export async function startCustodia(ctx: InfraContext): Promise<StartedService<CustodiaCoordinates>> {
  const [binary] = await runInstallScript("install-custodia.sh", ctx.cacheDir);
  if (!binary) throw new Error("install-custodia.sh printed no binary path");

  const dir = join(ctx.runDir, "custodia");
  mkdirSync(dir, { recursive: true });
  let socket = join(dir, "custodia.sock");
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) socket = join(mkdtempSync("/tmp/kcu-"), "custodia.sock");

  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const configFile = join(dir, "custodia.conf");
  // The DEFAULT paths keep Custodia away from /var/{lib,log,run}/custodia. debug stays off: in debug
  // mode Custodia logs request bodies, i.e. secret values.
  writeFileSync(
    configFile,
    `[DEFAULT]
libdir = ${ini(dir)}
logdir = ${ini(dir)}
rundir = ${ini(dir)}
socketdir = ${ini(dir)}

[global]
server_socket = ${ini(socket)}
auditlog = ${ini(join(dir, "audit.log"))}
debug = false
makedirs = false

[store:sqlite]
handler = SqliteStore
dburi = ${ini(join(dir, "secrets.db"))}
table = secrets

[auth:creds]
handler = SimpleCredsAuth
uid = ${uid}
gid = ${gid}

[authz:paths]
handler = SimplePathAuthz
paths = /. /secrets

[/]
handler = Root

[/secrets]
handler = Secrets
store = sqlite
`,
  );

  const daemon = startDaemon({ name: "custodia", command: binary, args: [configFile], logFile: join(dir, "custodia.log"), cwd: dir });
  try {
    await waitUntil(daemon, `an HTTP answer on ${socket}`, async () => (await probe(socket, "/")) === 200, 30_000);
    return {
      coordinates: { socket, url: `http+unix://${socket}`, version: await packageVersion() },
      daemons: [daemon],
    };
  } catch (error) {
    await stopDaemon(daemon.pid);
    throw error;
  }
}
