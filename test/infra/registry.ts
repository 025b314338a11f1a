// Two real OCI registries (distribution, from Debian's docker-registry) with tiny test images:
// A is plain HTTP and anonymous; B has TLS (a CA of its own) and htpasswd basic auth. The images are
// built fresh each run with umoci into an OCI layout in the run directory and pushed with skopeo.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { runInstallScript } from "./install.ts";
import { putManifestBytes } from "./oci-push.ts";
import { type Daemon, freePort, startDaemon, stopDaemon, waitUntil } from "./proc.ts";
import { type RegistryEndpoint, registryFetch } from "./registry-http.ts";
import type { InfraContext, RegistryCoordinates, StartedService } from "./types.ts";

const execFileAsync = promisify(execFile);

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const ANY_MANIFEST = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ");
const REF_NAME = "org.opencontainers.image.ref.name";

type Platform = { architecture: string; variant?: string };
type RegistryName = "plain" | "secure";

interface ImageSpec {
  key: string;
  repository: string;
  registry: RegistryName;
  entrypoint?: string[];
  cmd?: string[];
  /** skopeo's `--format`: v2s2 converts the OCI image to a Docker schema2 manifest on push. */
  format?: "v2s2";
  /** Pushed as an OCI image index with one manifest (and config) per platform. */
  platforms?: (Platform & { entrypoint: string[] })[];
}

const IMAGES: ImageSpec[] = [
  {
    key: "entrypointCmd",
    repository: "kustodia-test/entrypoint-cmd",
    registry: "plain",
    entrypoint: ["/app/server", "--serve"],
    cmd: ["--port", "8080"],
  },
  { key: "cmdOnly", repository: "kustodia-test/cmd-only", registry: "plain", cmd: ["/bin/sh", "-c", "echo hi"] },
  {
    key: "entrypointOnly",
    repository: "kustodia-test/entrypoint-only",
    registry: "plain",
    entrypoint: ["/usr/bin/tini", "--", "/app/run"],
  },
  {
    key: "multiPlatform",
    repository: "kustodia-test/multi-platform",
    registry: "plain",
    platforms: [
      { architecture: "amd64", entrypoint: ["/app/amd64"] },
      { architecture: "arm64", variant: "v8", entrypoint: ["/app/arm64"] },
    ],
  },
  {
    key: "dockerV2",
    repository: "kustodia-test/docker-v2",
    registry: "plain",
    format: "v2s2",
    entrypoint: ["/app/docker-v2"],
    cmd: ["--from", "docker"],
  },
  { key: "private", repository: "kustodia-test/private", registry: "secure", entrypoint: ["/private/app"] },
];
/** Every image is pushed under this tag, and under `latest` too (for image references without a tag). */
const TAG = "v1";

interface Tools {
  registry: string;
  skopeo: string;
  umoci: string;
}

interface Registry {
  daemon: Daemon;
  endpoint: RegistryEndpoint & { host: string };
}

export async function startRegistry(ctx: InfraContext): Promise<StartedService<RegistryCoordinates>> {
  const [registry, skopeo, umoci] = await runInstallScript("install-registry.sh", ctx.cacheDir);
  if (!registry || !skopeo || !umoci) throw new Error(`install-registry.sh printed ${[registry, skopeo, umoci]} instead of three paths`);
  const tools: Tools = { registry, skopeo, umoci };
  const dir = join(ctx.runDir, "registry");
  mkdirSync(dir, { recursive: true });

  const started: Registry[] = [];
  try {
    const layout = join(dir, "images");
    const starting = [startPlain(tools, dir, started), startSecure(tools, dir, started), buildImages(tools.umoci, layout)] as const;
    // Let every one settle before any failure is thrown, so that no daemon is still starting while the others are stopped.
    await Promise.allSettled(starting);
    const [plain, secure] = await Promise.all(starting);
    const images = await pushImages(tools.skopeo, layout, { plain, secure: secure.registry }, secure.skopeo);
    const { host, url, username = "", password = "", caFile = "" } = secure.registry.endpoint;
    return {
      coordinates: {
        plain: { host: plain.endpoint.host, url: plain.endpoint.url },
        secure: { host, url, username, password, caFile },
        images,
        version: (await run(tools.registry, ["--version"])).trim().replace(/^\S*\//, ""),
      },
      daemons: started.map((one) => one.daemon),
    };
  } catch (error) {
    await Promise.all(started.map((one) => stopDaemon(one.daemon.pid)));
    throw error;
  }
}

// ---- the registries ----------------------------------------------------------------------------

async function startPlain(tools: Tools, dir: string, started: Registry[]): Promise<Registry> {
  const port = await freePort();
  const endpoint = { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}` };
  return await launch(tools.registry, join(dir, "plain"), endpoint, {}, 200, started);
}

/** How skopeo reaches the secure registry: a docker-style auth file (keeps the password off its argv), and a cert dir with the CA only. */
interface SkopeoAccess {
  authFile: string;
  certDir: string;
}

async function startSecure(tools: Tools, dir: string, started: Registry[]): Promise<{ registry: Registry; skopeo: SkopeoAccess }> {
  const home = join(dir, "secure");
  mkdirSync(home, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const [username, password] = ["kustodia", randomBytes(18).toString("base64url")];
  const { caFile, certFile, keyFile } = await makeCertificates(join(home, "tls"));
  const htpasswd = join(home, "htpasswd");
  writeFileSync(htpasswd, `${username}:${await bcrypt(password)}\n`);
  const skopeo = skopeoAccess(join(home, "skopeo"), host, `${username}:${password}`, caFile);

  const endpoint = { host, url: `https://${host}`, username, password, caFile };
  const extra = {
    http: { tls: { certificate: certFile, key: keyFile } },
    auth: { htpasswd: { realm: "kustodia-test", path: htpasswd } },
  };
  // Unauthenticated, the real answer is 401 with `WWW-Authenticate: Basic`, which proves TLS and auth are up.
  const registry = await launch(tools.registry, home, { host, url: endpoint.url, caFile }, extra, 401, started);
  return { registry: { ...registry, endpoint }, skopeo };
}

function skopeoAccess(dir: string, host: string, credentials: string, caFile: string): SkopeoAccess {
  // A cert dir's *.key files are taken for client keys, so the server's own TLS dir would not do.
  const certDir = join(dir, "certs");
  mkdirSync(certDir, { recursive: true });
  writeFileSync(join(certDir, "ca.crt"), readFileSync(caFile));
  const authFile = join(dir, "auth.json");
  writeFileSync(authFile, JSON.stringify({ auths: { [host]: { auth: Buffer.from(credentials).toString("base64") } } }));
  return { authFile, certDir };
}

/** Writes the config, starts the daemon (recorded in `started` at once) and waits until `GET /v2/` answers `ready`. */
async function launch(
  binary: string,
  home: string,
  endpoint: RegistryEndpoint & { host: string },
  extra: { http?: object; auth?: object },
  ready: number,
  started: Registry[],
): Promise<Registry> {
  mkdirSync(home, { recursive: true });
  const configFile = join(home, "config.yml");
  // JSON is valid YAML, and JSON.stringify quotes every path correctly.
  const config = {
    version: "0.1",
    log: { level: "info", formatter: "text" },
    storage: { filesystem: { rootdirectory: join(home, "data") }, delete: { enabled: true } },
    http: { addr: endpoint.host, secret: randomBytes(16).toString("hex"), ...extra.http },
    ...(extra.auth ? { auth: extra.auth } : {}),
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const name = `registry-${endpoint.url.startsWith("https:") ? "secure" : "plain"}`;
  // REGISTRY_* variables would override the config file (distribution's env overrides).
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("REGISTRY_")));
  const daemon = startDaemon({ name, command: binary, args: ["serve", configFile], logFile: join(home, "registry.log"), env });
  const registry = { daemon, endpoint };
  started.push(registry);
  await waitUntil(daemon, `GET /v2/ to answer ${ready}`, async () => (await registryFetch(endpoint, "/v2/")).status === ready, 30_000);
  return registry;
}

/** A CA of its own and a server certificate for 127.0.0.1 and localhost, signed by it. */
async function makeCertificates(dir: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  mkdirSync(dir, { recursive: true });
  // Run in `dir` with relative file names, so that splitting each command line on spaces is safe.
  const openssl = (line: string) => run("openssl", line.split(" "), { cwd: dir });
  const ec = "-nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
  const serial = `0x${randomBytes(8).toString("hex")}`;
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    `req -x509 -new ${ec} -keyout ca.key -out ca.crt -days 7 -subj /CN=kustodia-test-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign`,
  );
  await openssl(`req -new ${ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1`);
  await openssl(`x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial ${serial} -days 7 -extfile server.ext -out server.crt`);
  return { caFile: join(dir, "ca.crt"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
}

/** distribution's htpasswd auth accepts bcrypt only; libcrypt makes it through perl's crypt(). */
async function bcrypt(password: string): Promise<string> {
  const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const salt = [...randomBytes(22)].map((byte) => alphabet[byte % 64]).join("");
  const hash = (
    await run("perl", ["-e", "print crypt($ENV{KUSTODIA_PASSWORD}, $ARGV[0])", `$2b$05$${salt}`], { env: { KUSTODIA_PASSWORD: password } })
  ).trim();
  if (!hash.startsWith("$2b$05$")) throw new Error(`perl crypt() made no bcrypt hash (got "${hash}")`);
  return hash;
}

// ---- the images ----------------------------------------------------------------------------------

/** One OCI layout holding every test image, tagged `<key>` (and `<key>-<arch>` for multi-platform parts). */
async function buildImages(umoci: string, layout: string): Promise<void> {
  await run(umoci, ["init", "--layout", layout]);
  await run(umoci, ["new", "--image", `${layout}:base`]);
  const root = join(`${layout}.rootfs`, "kustodia-test");
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "README"), "a tiny layer for kustodia's registry tests\n");
  const tar = `${layout}.layer.tar`;
  await run("tar", ["-C", `${layout}.rootfs`, "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-cf", tar, "."]);
  await run(umoci, ["raw", "add-layer", "--image", `${layout}:base`, tar]);

  for (const spec of IMAGES) {
    if (!spec.platforms) {
      await configure(umoci, layout, spec.key, { architecture: "amd64" }, spec.entrypoint, spec.cmd);
      continue;
    }
    for (const platform of spec.platforms) {
      await configure(umoci, layout, `${spec.key}-${platform.architecture}`, platform, platform.entrypoint);
    }
    addIndex(layout, spec.key, spec.platforms);
  }
}

async function configure(
  umoci: string,
  layout: string,
  tag: string,
  platform: Platform,
  entrypoint?: string[],
  cmd?: string[],
): Promise<void> {
  const args = ["config", "--image", `${layout}:base`, "--tag", tag, `--architecture=${platform.architecture}`, "--os=linux"];
  for (const word of entrypoint ?? []) args.push(`--config.entrypoint=${word}`);
  for (const word of cmd ?? []) args.push(`--config.cmd=${word}`);
  await run(umoci, args);
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** umoci makes single-platform images only: the index over `<tag>-<arch>` is written into the layout here. */
function addIndex(layout: string, tag: string, platforms: Platform[]): void {
  const indexFile = join(layout, "index.json");
  const index = JSON.parse(readFileSync(indexFile, "utf8")) as { manifests: Descriptor[] };
  const manifests = platforms.map((platform) => {
    const found = index.manifests.find((descriptor) => descriptor.annotations?.[REF_NAME] === `${tag}-${platform.architecture}`);
    if (!found) throw new Error(`OCI layout ${layout} has no ${tag}-${platform.architecture}`);
    const { annotations: _, ...descriptor } = found;
    return {
      ...descriptor,
      platform: { architecture: platform.architecture, os: "linux", ...(platform.variant ? { variant: platform.variant } : {}) },
    };
  });
  const blob = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  const hex = createHash("sha256").update(blob).digest("hex");
  writeFileSync(join(layout, "blobs", "sha256", hex), blob);
  index.manifests.push({ mediaType: OCI_INDEX, digest: `sha256:${hex}`, size: blob.length, annotations: { [REF_NAME]: tag } });
  writeFileSync(indexFile, JSON.stringify(index));
}

type ImageEntry = RegistryCoordinates["images"][string];

async function pushImages(
  skopeo: string,
  layout: string,
  registries: Record<RegistryName, Registry>,
  access: SkopeoAccess,
): Promise<RegistryCoordinates["images"]> {
  const entries = await Promise.all(
    IMAGES.map(async (spec): Promise<[string, ImageEntry]> => {
      const { endpoint } = registries[spec.registry];
      const args = ["--insecure-policy", "copy", "--quiet", "--retry-times=2"];
      if (spec.platforms) args.push("--all");
      if (spec.format) args.push(`--format=${spec.format}`);
      args.push(
        ...(spec.registry === "secure"
          ? [`--dest-authfile=${access.authFile}`, `--dest-cert-dir=${access.certDir}`]
          : ["--dest-no-creds", "--dest-tls-verify=false"]),
      );
      await run(skopeo, [...args, `oci:${layout}:${spec.key}`, `docker://${endpoint.host}/${spec.repository}:${TAG}`]);
      const digest = await tagAsLatest(endpoint, spec.repository);
      return [spec.key, imageEntry(spec, digest, endpoint.host)];
    }),
  );
  return Object.fromEntries(entries);
}

/** Re-puts the manifest under `latest`; returns its digest as the registry reports it. */
async function tagAsLatest(endpoint: RegistryEndpoint, repository: string): Promise<string> {
  const path = `/v2/${repository}/manifests`;
  const got = await registryFetch(endpoint, `${path}/${TAG}`, { headers: { accept: ANY_MANIFEST } });
  const digest = got.headers["docker-content-digest"];
  if (got.status !== 200 || typeof digest !== "string") throw new Error(`GET ${path}/${TAG}: ${got.status} ${got.body.toString()}`);
  const put = await putManifestBytes({ endpoint, repository }, "latest", String(got.headers["content-type"]), got.body);
  if (put.digest !== digest) throw new Error(`PUT ${path}/latest: digest ${put.digest}, not ${digest}`);
  return digest;
}

function imageEntry(spec: ImageSpec, digest: string, host: string): ImageEntry {
  const image: ImageEntry = { repository: spec.repository, tag: TAG, digest, reference: `${host}/${spec.repository}:${TAG}` };
  if (spec.entrypoint) image.entrypoint = spec.entrypoint;
  if (spec.cmd) image.cmd = spec.cmd;
  if (spec.platforms) {
    image.platforms = Object.fromEntries(
      spec.platforms.map((platform) => [`linux/${platform.architecture}`, { entrypoint: platform.entrypoint }]),
    );
  }
  return image;
}

async function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  try {
    const env = { ...process.env, ...options.env };
    return (await execFileAsync(command, args, { cwd: options.cwd, env, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(" ")} failed: ${failure.stderr?.trim() || failure.message}`);
  }
}
