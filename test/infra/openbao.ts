// OpenBao for the tests: the real `bao server -dev` (in-memory, unsealed) on loopback, configured over
// its HTTP API with the mounts the tests use: KV v2 at `secret/`, KV v1 at `kv1/`, AppRole at
// `approle/`, Kubernetes auth at `kubernetes/` (configured once the kube-apiserver is up), PKI at
// `pki/` (a root CA and a leaf role) and the database engine at `database/` (configured once the test
// PostgreSQL is up).
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runInstallScript } from "./install.ts";
import { asRoot, type OpenBaoTarget, openbaoApi } from "./openbao-api.ts";
import { freePort, startDaemon, stopDaemon, tcpOpen, waitUntil } from "./proc.ts";
import type { InfraContext, KubeCoordinates, OpenBaoCoordinates, OpenBaoPki, PostgresCoordinates, StartedService } from "./types.ts";

const KV_V2_MOUNT = "secret";
const KV_V1_MOUNT = "kv1";
const APPROLE_MOUNT = "approle";
const KUBERNETES_MOUNT = "kubernetes";
const PKI_MOUNT = "pki";
const PKI_ROLE = "kustodia-test";
const PKI_DOMAINS = ["svc", "cluster.local", "kustodia.test"];
const DATABASE_MOUNT = "database";
const DATABASE_CONNECTION = "postgres";
const DATABASE_ROLE = "kustodia-test";

/** A free port whose successor is free too: dev mode puts its cluster listener on port + 1. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (port < 65535 && !(await tcpOpen(port + 1))) return port;
  }
  throw new Error("no pair of free consecutive loopback ports found for OpenBao");
}

export async function startOpenBao(ctx: InfraContext): Promise<StartedService<OpenBaoCoordinates>> {
  const [binary] = await runInstallScript("install-openbao.sh", ctx.cacheDir);
  if (!binary) throw new Error("install-openbao.sh printed no binary path");

  const dir = join(ctx.runDir, "openbao");
  mkdirSync(dir, { recursive: true });
  const port = await freePortPair();
  const addr = `http://127.0.0.1:${port}`;
  const rootToken = `root-${randomBytes(16).toString("hex")}`;
  // The root token goes through the environment, not argv, so it does not show up in `ps`.
  const daemon = startDaemon({
    name: "openbao",
    command: binary,
    args: ["server", "-dev", `-dev-listen-address=127.0.0.1:${port}`, "-dev-no-store-token"],
    logFile: join(dir, "openbao.log"),
    cwd: dir,
    env: { ...process.env, BAO_DEV_ROOT_TOKEN_ID: rootToken, HOME: dir },
  });
  const root = asRoot({ addr, rootToken });

  try {
    await waitUntil(daemon, `${addr}/v1/sys/health`, async () => {
      const response = await fetch(`${addr}/v1/sys/health`);
      const health = (await response.json()) as { initialized?: boolean; sealed?: boolean };
      return response.status === 200 && health.initialized === true && health.sealed === false;
    });

    const mount = (await openbaoApi(root, "GET", `sys/mounts/${KV_V2_MOUNT}`))?.data as
      | { type?: string; options?: { version?: string } }
      | undefined;
    if (mount?.type !== "kv" || mount.options?.version !== "2") {
      throw new Error(`OpenBao dev mount ${KV_V2_MOUNT}/ is not KV v2: ${JSON.stringify(mount)}`);
    }
    await openbaoApi(root, "POST", `sys/mounts/${KV_V1_MOUNT}`, { type: "kv", options: { version: "1" } });
    await openbaoApi(root, "POST", `sys/auth/${APPROLE_MOUNT}`, { type: "approle" });
    await openbaoApi(root, "POST", `sys/auth/${KUBERNETES_MOUNT}`, { type: "kubernetes" });

    const pki = await configurePki(root);

    const sealStatus = (await openbaoApi(root, "GET", "sys/seal-status")) as { version?: string };
    if (!sealStatus.version) throw new Error("OpenBao sys/seal-status has no version");

    return {
      coordinates: {
        addr,
        rootToken,
        version: sealStatus.version,
        binary,
        kvV2Mount: KV_V2_MOUNT,
        kvV1Mount: KV_V1_MOUNT,
        approleMount: APPROLE_MOUNT,
        pki,
      },
      daemons: [daemon],
    };
  } catch (error) {
    await stopDaemon(daemon.pid);
    throw error;
  }
}

/**
 * The PKI engine: a root CA generated inside OpenBao (EC P-256, 10 years) and a role issuing EC P-256
 * leaf certificates for names under PKI_DOMAINS, localhost and IP SANs, TTL 1h by default, 24h at most.
 * Tests make roles of their own (shorter TTLs) on the same mount.
 */
async function configurePki(root: OpenBaoTarget): Promise<OpenBaoPki> {
  await openbaoApi(root, "POST", `sys/mounts/${PKI_MOUNT}`, { type: "pki", config: { max_lease_ttl: "87600h" } });
  const ca = (await openbaoApi(root, "POST", `${PKI_MOUNT}/root/generate/internal`, {
    common_name: "kustodia test root CA",
    key_type: "ec",
    key_bits: 256,
    ttl: "87600h",
  })) as { data?: { certificate?: string } };
  const caPem = ca.data?.certificate;
  if (!caPem?.startsWith("-----BEGIN CERTIFICATE-----"))
    throw new Error(`OpenBao ${PKI_MOUNT}/root/generate/internal returned no certificate`);
  await openbaoApi(root, "POST", `${PKI_MOUNT}/roles/${PKI_ROLE}`, {
    allowed_domains: PKI_DOMAINS,
    allow_subdomains: true,
    allow_localhost: true,
    allow_ip_sans: true,
    key_type: "ec",
    key_bits: 256,
    ttl: "1h",
    max_ttl: "24h",
  });
  return { mount: PKI_MOUNT, role: PKI_ROLE, allowedDomains: PKI_DOMAINS, caPem };
}

/**
 * The database engine against the test PostgreSQL: one connection (`database/config/postgres`, as the
 * superuser, every role allowed) and a role creating a LOGIN role that may connect to the database.
 * Revocation drops the role (the plugin's default). Tests make roles of their own (shorter TTLs).
 */
export async function configureDatabase(bao: OpenBaoCoordinates, postgres: PostgresCoordinates): Promise<OpenBaoCoordinates> {
  await openbaoApi(asRoot(bao), "POST", `sys/mounts/${DATABASE_MOUNT}`, { type: "database" });
  await openbaoApi(asRoot(bao), "POST", `${DATABASE_MOUNT}/config/${DATABASE_CONNECTION}`, {
    plugin_name: "postgresql-database-plugin",
    connection_url: `postgresql://{{username}}:{{password}}@${postgres.host}:${postgres.port}/${postgres.database}?sslmode=disable`,
    username: postgres.superuser,
    password: postgres.password,
    allowed_roles: "*",
    verify_connection: true,
  });
  await openbaoApi(asRoot(bao), "POST", `${DATABASE_MOUNT}/roles/${DATABASE_ROLE}`, {
    db_name: DATABASE_CONNECTION,
    creation_statements: [databaseCreationStatement(postgres.database)],
    default_ttl: "1h",
    max_ttl: "24h",
  });
  return { ...bao, database: { mount: DATABASE_MOUNT, connection: DATABASE_CONNECTION, role: DATABASE_ROLE } };
}

/** The SQL that creates a role's login (OpenBao fills in name, password and expiration). */
export function databaseCreationStatement(database: string): string {
  return `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT CONNECT ON DATABASE "${database}" TO "{{name}}";`;
}

/**
 * Points the Kubernetes auth mount at the kube-apiserver. Logins are checked with the TokenReview
 * API, called with `kube.adminToken` as the reviewer's bearer token; the login JWT is not verified
 * locally (no pem_keys). Issuer validation is off (the plugin's default, and its `issuer` option is
 * deprecated): TokenReview is the authority on whether a service-account token is valid.
 */
export async function configureKubernetesAuth(bao: OpenBaoCoordinates, kube: KubeCoordinates): Promise<OpenBaoCoordinates> {
  let caCert = readFileSync(kube.caFile, "utf8");
  if (!caCert.endsWith("\n")) caCert += "\n";
  const path = `auth/${KUBERNETES_MOUNT}/config`;
  await openbaoApi(asRoot(bao), "POST", path, {
    kubernetes_host: kube.server,
    kubernetes_ca_cert: caCert,
    token_reviewer_jwt: kube.adminToken,
    // OpenBao runs outside any pod here: never fall back to /var/run/secrets/kubernetes.io/serviceaccount.
    disable_local_ca_jwt: true,
    disable_iss_validation: true,
  });
  const read = (await openbaoApi(asRoot(bao), "GET", path)) as {
    data?: { kubernetes_host?: string; token_reviewer_jwt_set?: boolean };
  };
  if (read.data?.kubernetes_host !== kube.server || read.data.token_reviewer_jwt_set !== true) {
    throw new Error(`OpenBao ${path} did not keep the configuration: ${JSON.stringify(read.data)}`);
  }
  return { ...bao, kubernetesAuthMount: KUBERNETES_MOUNT };
}
