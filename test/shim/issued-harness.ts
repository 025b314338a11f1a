// Set-up for the issued-secret tests: PKI and database roles on the real OpenBao (root token, test
// set-up only), policies for the shim's token, a pod with a bound ServiceAccount token in the real
// kube-apiserver, and checks of what the app received (node:crypto, Debian's psql).
import { execFile } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { service, skipWithout } from "../infra/coords.ts";
import { ensureServiceAccount, kubeRequest, serviceAccountToken } from "../infra/kube-api.ts";
import { databaseCreationStatement } from "../infra/openbao.ts";
import { bao, suffix, writeFile } from "./harness.ts";

const execFileAsync = promisify(execFile);

/**
 * skipWithout("openbao") for tests of the PKI engine: true also when the OpenBao running was started
 * before test/infra configured PKI (a reused `npm run infra -- up`) — outside CI only, like skipWithout.
 */
export function skipWithoutPki(): boolean {
  if (skipWithout("openbao")) return true;
  if (service("openbao").pki || process.env.CI === "true" || process.env.CI === "1") return false;
  console.warn("skipping: the running test OpenBao has no PKI mount; restart it: npm run infra -- down && npm run infra -- up");
  return true;
}

/** A policy granting `capabilities` on each path; returns its name. */
export async function policy(name: string, rules: Record<string, string[]>): Promise<string> {
  const text = Object.entries(rules)
    .map(([path, capabilities]) => `path "${path}" { capabilities = ${JSON.stringify(capabilities)} }`)
    .join("\n");
  await bao("PUT", `sys/policies/acl/${name}`, { policy: text });
  return name;
}

/** A PKI role on the test mount (EC keys, names under the test domains); returns its issue path. */
export async function pkiRole(name: string, options: { ttl?: string; maxTtl?: string } = {}): Promise<string> {
  const { pki } = service("openbao");
  if (!pki) throw new Error("the test OpenBao has no PKI mount");
  await bao("POST", `${pki.mount}/roles/${name}`, {
    allowed_domains: pki.allowedDomains,
    allow_subdomains: true,
    allowed_uri_sans: ["spiffe://kustodia.test/*"],
    key_type: "ec",
    key_bits: 256,
    ttl: options.ttl ?? "1h",
    max_ttl: options.maxTtl ?? "24h",
  });
  return `${pki.mount}/issue/${name}`;
}

/** A database role against the test PostgreSQL; returns its creds path. */
export async function databaseRole(name: string, options: { defaultTtl: string; maxTtl: string }): Promise<string> {
  const { database } = service("openbao");
  if (!database) throw new Error("the test OpenBao has no database engine");
  await bao("POST", `${database.mount}/roles/${name}`, {
    db_name: database.connection,
    creation_statements: [databaseCreationStatement(service("postgres").database)],
    default_ttl: options.defaultTtl,
    max_ttl: options.maxTtl,
  });
  return `${database.mount}/creds/${name}`;
}

/** The env an app needs to reach the test PostgreSQL with psql, but for PGUSER and PGPASSWORD. */
export function postgresEnv(): Record<string, string> {
  const postgres = service("postgres");
  return { PGHOST: postgres.host, PGPORT: String(postgres.port), PGDATABASE: postgres.database, PGCONNECT_TIMEOUT: "5" };
}

/** An app command that runs `sql` with Debian's psql as whoever PGUSER/PGPASSWORD say. */
export function psqlCommand(sql: string): string {
  return `${service("postgres").psql} -X -A -t -v ON_ERROR_STOP=1 -c "${sql}"`;
}

/** Whether `user` can log in to the test PostgreSQL with `password` (psql from the test process). */
export async function canLogIn(user: string, password: string): Promise<boolean> {
  const postgres = service("postgres");
  try {
    await execFileAsync(postgres.psql, ["-X", "-A", "-t", "-c", "select 1"], {
      env: { PATH: process.env.PATH, ...postgresEnv(), PGUSER: user, PGPASSWORD: password },
    });
    return true;
  } catch {
    return false;
  }
}

/** A lease as OpenBao knows it (root token), or undefined when it is gone. */
export async function lookupLease(leaseId: string): Promise<{ ttl: number; expire_time: string } | undefined> {
  try {
    return (await bao("PUT", "sys/leases/lookup", { lease_id: leaseId })).data;
  } catch {
    return undefined;
  }
}

/** What the app wrote of each var into `dir/<NAME>` (see `writeVars`). */
export function readVar(dir: string, name: string): string {
  return readFileSync(join(dir, name), "utf8");
}

/** A shell snippet by which the app writes the named vars into files of `dir`, then prints `marker`. */
export function writeVars(dir: string, names: string[], marker = "written"): string {
  return `${names.map((name) => `printf '%s' "$${name}" > ${dir}/${name}`).join("; ")}; echo ${marker}`;
}

export interface CertificateCheck {
  certificate: X509Certificate;
  /** CN of the subject. */
  commonName: string | undefined;
  dnsNames: string[];
}

/** The certificate the app received, checked against the key it received and the test root CA. */
export function checkCertificate(pem: string, keyPem: string): CertificateCheck & { keyMatches: boolean; signedByRoot: boolean } {
  const certificate = new X509Certificate(pem);
  const { pki } = service("openbao");
  const root = new X509Certificate(pki?.caPem ?? "");
  const commonName = /(?:^|\n)CN=([^\n]*)/.exec(certificate.subject)?.[1];
  const dnsNames = (certificate.subjectAltName ?? "")
    .split(", ")
    .filter((name) => name.startsWith("DNS:"))
    .map((name) => name.slice(4));
  return {
    certificate,
    commonName,
    dnsNames,
    keyMatches: certificate.checkPrivateKey(createPrivateKey(keyPem)),
    signedByRoot: certificate.verify(root.publicKey),
  };
}

/**
 * A pod object in the real kube-apiserver (it is never scheduled) and a TokenRequest token bound to
 * it: what the kubelet mounts into the pod's containers, with the pod's name in its claims.
 */
export async function boundPodToken(dir: string, namespace: string, serviceAccount: string, pod: string): Promise<string> {
  const kube = service("kube");
  await ensureServiceAccount(kube, namespace, serviceAccount);
  const created = await kubeRequest<{ metadata: { uid: string } }>(kube, "POST", `/api/v1/namespaces/${namespace}/pods`, {
    metadata: { name: pod },
    spec: { serviceAccountName: serviceAccount, containers: [{ name: "app", image: "example.invalid/app:1" }] },
  });
  if (created.status !== 201) throw new Error(`creating pod ${namespace}/${pod}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const token = await serviceAccountToken(kube, namespace, serviceAccount, { boundPod: { name: pod, uid: created.body.metadata.uid } });
  return writeFile(dir, `sa-token-${suffix()}`, token);
}
