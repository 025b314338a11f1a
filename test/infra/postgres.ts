// PostgreSQL for the tests: Debian's server, a private cluster made with initdb for this run and
// started on a free loopback port (TCP only, no unix socket), with password (SCRAM) authentication
// for the superuser `postgres`. OpenBao's database engine is configured against it (openbao.ts), and
// tests connect with Debian's `psql`.
//
// PostgreSQL refuses to run as root. As root, initdb and the server run as the `postgres` system
// user (runuser), and the cluster lives in its own directory under the temp dir, owned by that user,
// because the run directory is private to root; `down` removes it (StartedService.cleanup).
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { runInstallScript } from "./install.ts";
import { freePort, startDaemon, stopDaemon, waitUntil } from "./proc.ts";
import type { InfraContext, PostgresCoordinates, StartedService } from "./types.ts";

const execFileAsync = promisify(execFile);
const SUPERUSER = "postgres";
const DATABASE = "postgres";
const SYSTEM_USER = "postgres";

/** `[command, args]` that runs `file args` as the postgres system user when we are root. */
function asServerUser(file: string, args: string[], root: boolean): [string, string[]] {
  return root ? ["runuser", ["-u", SYSTEM_USER, "--", file, ...args]] : [file, args];
}

async function systemUserIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all(["-u", "-g"].map(async (flag) => Number((await execFileAsync("id", [flag, SYSTEM_USER])).stdout)));
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`no system user "${SYSTEM_USER}" to run PostgreSQL as`);
  return { uid: uid as number, gid: gid as number };
}

/** Runs `psql -c sql` as the superuser and returns its unaligned, tuples-only output. */
export async function psql(postgres: PostgresCoordinates, sql: string, user = postgres.superuser, password = postgres.password) {
  const { stdout } = await execFileAsync(postgres.psql, ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], {
    env: {
      PATH: process.env.PATH,
      PGHOST: postgres.host,
      PGPORT: String(postgres.port),
      PGDATABASE: postgres.database,
      PGUSER: user,
      PGPASSWORD: password,
    },
  });
  return stdout.trim();
}

export async function startPostgres(ctx: InfraContext): Promise<StartedService<PostgresCoordinates>> {
  const [binDir] = await runInstallScript("install-postgres.sh", ctx.cacheDir);
  if (!binDir) throw new Error("install-postgres.sh printed no bin directory");
  const root = process.getuid?.() === 0;
  const home = root ? mkdtempSync(join(tmpdir(), "kustodia-pg-")) : join(ctx.runDir, "postgres");
  mkdirSync(home, { recursive: true });
  try {
    const owner = root ? await systemUserIds() : undefined;
    if (owner) chownSync(home, owner.uid, owner.gid);
    const dataDir = join(home, "data");
    const password = `pg-${randomUUID()}`;
    const passwordFile = join(home, "superuser-password");
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    if (owner) chownSync(passwordFile, owner.uid, owner.gid);
    const initdb = asServerUser(
      join(binDir, "initdb"),
      ["-D", dataDir, "-U", SUPERUSER, `--pwfile=${passwordFile}`, "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"],
      root,
    );
    await execFileAsync(...initdb, { cwd: home });
    rmSync(passwordFile);

    const port = await freePort();
    const [command, args] = asServerUser(
      join(binDir, "postgres"),
      [
        "-D",
        dataDir,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `port=${port}`,
        "-c",
        "unix_socket_directories=",
        "-c",
        "fsync=off",
        "-c",
        "max_connections=100",
      ],
      root,
    );
    const logDir = join(ctx.runDir, "postgres-log");
    mkdirSync(logDir, { recursive: true });
    const daemon = startDaemon({ name: "postgres", command, args, logFile: join(logDir, "postgres.log"), cwd: home });
    const coordinates: PostgresCoordinates = {
      host: "127.0.0.1",
      port,
      superuser: SUPERUSER,
      password,
      database: DATABASE,
      psql: join(binDir, "psql"),
      binDir,
      version: "",
    };
    try {
      await waitUntil(daemon, `PostgreSQL on 127.0.0.1:${port}`, async () => (await psql(coordinates, "select 1")) === "1");
      coordinates.version = await psql(coordinates, "show server_version");
    } catch (error) {
      await stopDaemon(daemon.pid);
      throw error;
    }
    return { coordinates, daemons: [daemon], ...(root ? { cleanup: [home] } : {}) };
  } catch (error) {
    if (root) rmSync(home, { recursive: true, force: true });
    throw error;
  }
}
