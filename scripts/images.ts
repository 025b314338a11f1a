// `npm run images`: the webhook and shim images as OCI archives in dist/images/, without Docker,
// from the same build outputs and sources as webhook/Dockerfile and shim/Dockerfile:
//
//   kustodia-webhook  a distroless-cc-like base (the Debian packages of FROM ${RUNTIME_IMAGE} for the
//                     platform, a `nonroot` user 65532), then the layer of `COPY --from=build /rootfs/ /`:
//                     the pinned Node from the npm package node-linux-<arch>, Debian's libatomic1 for
//                     the platform and dist/webhook/main.js*.
//   kustodia-shim     one layer: the platform's runtime, dist/shim-runtime/linux-<arch>/, at the root
//                     and `kustodia -> .`.
//
// USER, WORKDIR, ENV, EXPOSE, ENTRYPOINT and CMD come from each Dockerfile's final stage
// (scripts/dockerfile.ts). Reproducible: the same dist/, npm and Debian packages give the same
// digests (scripts/oci.ts). Each archive holds an OCI image index with one manifest per platform of
// scripts/platforms.ts (linux/amd64, linux/arm64), tagged IMAGE_TAG: a reference to the index (tag
// or index digest) resolves to the pulling node's platform. dist/images/images.json records what
// was built. Packages are fetched into the cache by scripts/system/fetch-package.sh.
//
// Other code (tests, the real-node infrastructure) uses IMAGES (names, repositories, archive paths),
// IMAGE_TAG, readBuiltImages() (digests), imagesStaleness() and buildImages().
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { extract, type Header } from "tar-stream";
import { MOUNT_PATH } from "../common/contract.ts";
import packageJson from "../package.json" with { type: "json" };
import { parseManifest, RuntimeFile } from "../shim/runtime/layout.ts";
import { runtimeDir } from "./build-runtime.ts";
import { type FinalStage, parseFinalStage } from "./dockerfile.ts";
import {
  buildImage,
  buildLayer,
  type Layer,
  type LayerEntry,
  LayerTree,
  normalizePath,
  type PlatformImage,
  type RuntimeConfig,
  writeOciArchive,
} from "./oci.ts";
import { PLATFORMS, type TargetPlatform } from "./platforms.ts";
import { debianPackageFiles, npmPackageFile } from "./system/package-cache.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The tag inside each archive and the tag to push: the chart's appVersion (package.json's version). */
export const IMAGE_TAG: string = packageJson.version;
export const IMAGES_DIR = join(repo, "dist", "images");
/** What `npm run images` last built: {@link BuiltImages}. */
export const IMAGES_FILE = join(IMAGES_DIR, "images.json");

export type ImageKey = "webhook" | "shim";

export interface ImageInfo {
  /** The image's name, also the archive's basename. */
  name: string;
  /** The repository path under a registry host, as the chart's default `image.repository` ends. */
  repository: string;
  /** Absolute path of the `oci-archive`: `skopeo copy --all oci-archive:<archive> docker://…`. */
  archive: string;
  dockerfile: string;
}

function info(name: string, dockerfile: string): ImageInfo {
  return { name, repository: `kustodia/${name}`, archive: join(IMAGES_DIR, `${name}.oci.tar`), dockerfile: join(repo, dockerfile) };
}

export const IMAGES: Record<ImageKey, ImageInfo> = {
  webhook: info("kustodia-webhook", "webhook/Dockerfile"),
  shim: info("kustodia-shim", "shim/Dockerfile"),
};

/**
 * FROM ${RUNTIME_IMAGE} of webhook/Dockerfile (gcr.io/distroless/cc-debian12:nonroot) made from its
 * sources: glibc, libgcc, libstdc++ and the CA bundle from Debian, the users root, nobody and
 * nonroot (65532), a 1777 /tmp, and the base's runtime settings.
 */
export const RUNTIME_BASE = {
  debianPackages: ["libc6", "libgcc-s1", "gcc-12-base", "libstdc++6"],
  caBundle: "etc/ssl/certs/ca-certificates.crt",
  config: {
    User: "65532",
    WorkingDir: "/home/nonroot",
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
  },
} as const;

/** What webhook/Dockerfile's build stage puts into /rootfs (test/images checks it against the Dockerfile). */
export const WEBHOOK_ROOTFS = {
  /** From the npm package node-linux-<arch> at package.json's `node` version: package path → image path, mode. */
  node: [
    { from: "package/bin/node", to: "usr/local/bin/node", mode: 0o755 },
    { from: "package/LICENSE", to: "usr/local/share/doc/node/LICENSE", mode: 0o644 },
  ],
  debianPackages: ["libatomic1"],
  /** dist/webhook/main.js* → app/dist/webhook/. */
  app: { from: "dist/webhook", prefix: "main.js", to: "app/dist/webhook" },
} as const;

export interface BuiltImage {
  name: string;
  repository: string;
  tag: string;
  /** The archive's file name, beside images.json. */
  archive: string;
  /** The image index's digest: what `skopeo copy --all` pushes and the chart's `digest` takes. */
  digest: string;
  /** `linux/amd64`, `linux/arm64` → that platform's manifest digest. */
  platforms: Record<string, string>;
}

export interface BuiltImages {
  tag: string;
  images: Record<ImageKey, BuiltImage>;
  /** The exact inputs fetched from registries: npm packages and Debian .deb files. */
  inputs: string[];
}

export function readBuiltImages(file: string = IMAGES_FILE): BuiltImages {
  if (!existsSync(file)) throw new Error(`${file} does not exist: run \`npm run images\``);
  return JSON.parse(readFileSync(file, "utf8")) as BuiltImages;
}

/** What the images are made from in this checkout: when one is newer than images.json, the images are stale. */
const IMAGE_INPUTS = [
  "dist/webhook/main.js",
  ...PLATFORMS.map((platform) => relative(repo, join(runtimeDir(platform.key), RuntimeFile.manifest))),
  "webhook/Dockerfile",
  "shim/Dockerfile",
  "scripts/images.ts",
  "scripts/oci.ts",
  "scripts/dockerfile.ts",
  "scripts/platforms.ts",
  "package-lock.json",
];

/** Why the archives in `outDir` are out of date (missing, or older than an input), or undefined when they are current. */
export function imagesStaleness(outDir: string = IMAGES_DIR): string | undefined {
  const built = join(outDir, "images.json");
  if (!existsSync(built)) return `${built} does not exist`;
  const builtAt = statSync(built).mtimeMs;
  for (const input of IMAGE_INPUTS) {
    const file = join(repo, input);
    if (!existsSync(file)) return `${input} does not exist (npm run build)`;
    if (statSync(file).mtimeMs > builtAt) return `${input} changed since the images were built`;
  }
  return undefined;
}

class ImageBuildError extends Error {
  override name = "ImageBuildError";
}

function mustRun(command: string, args: string[], cwd?: string): Buffer {
  const result = spawnSync(command, args, { cwd, maxBuffer: 512 * 1024 * 1024 });
  if (result.error) throw new ImageBuildError(`${command}: ${result.error.message}`);
  if (result.status !== 0)
    throw new ImageBuildError(`${command} ${args.join(" ")} failed (exit ${result.status}):\n${result.stderr.toString().trim()}`);
  return result.stdout;
}

const hex = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

// ---- sources -----------------------------------------------------------------------------------

interface TarFile {
  header: Header;
  data: Buffer;
}

async function readTar(bytes: Buffer): Promise<TarFile[]> {
  const extractor = extract();
  const files: TarFile[] = [];
  const reading = (async () => {
    for await (const entry of extractor) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      files.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  extractor.end(bytes);
  await reading;
  return files;
}

function fetched<T>(fetch: () => T): T {
  try {
    return fetch();
  } catch (error) {
    throw new ImageBuildError((error as Error).message);
  }
}

/** An npm package's tarball, by `npm pack` (the Dockerfile's source), from the cache. */
function npmPackage(name: string, version: string, inputs: string[]): Buffer {
  const bytes = readFileSync(fetched(() => npmPackageFile(name, version)));
  inputs.push(`npm ${name}@${version} sha256:${hex(bytes)}`);
  return bytes;
}

/** `name:arch` → the cached .deb of every Debian package the images take files from (one look-up in apt's lists). */
type DebianSources = Map<string, string>;

/**
 * The Debian packages of every platform, by `apt-get download` (the Dockerfiles' source) at the
 * candidate versions of this machine's apt lists, from the cache (checked against their SHA256).
 */
function debianSources(): DebianSources {
  const names = [...RUNTIME_BASE.debianPackages, ...WEBHOOK_ROOTFS.debianPackages];
  const specs = [...PLATFORMS.flatMap((platform) => names.map((name) => `${name}:${platform.debian}`)), "ca-certificates:all"];
  const files = fetched(() => debianPackageFiles(specs));
  return new Map(specs.map((spec, i) => [spec, files[i] as string]));
}

async function debianPackage(sources: DebianSources, name: string, arch: string, inputs: string[]): Promise<TarFile[]> {
  const file = sources.get(`${name}:${arch}`);
  if (!file) throw new ImageBuildError(`${name}:${arch} is not among the Debian packages fetched for the images`);
  inputs.push(`debian ${basename(file)} sha256:${hex(readFileSync(file))}`);
  return await readTar(mustRun("dpkg-deb", ["--fsys-tarfile", file]));
}

/** A tar member as a layer entry, owned by root as `dpkg-deb -x` run by root leaves it. */
function entryOf(file: TarFile, path = file.header.name): LayerEntry {
  const { header } = file;
  const mode = (header.mode ?? 0o644) & 0o7777;
  switch (header.type) {
    case "file":
      return { type: "file", path, mode, data: file.data };
    case "directory":
      return { type: "directory", path, mode };
    case "symlink":
      return { type: "symlink", path, target: header.linkname ?? "" };
    case "link":
      return { type: "link", path, target: header.linkname ?? "" };
    default:
      throw new ImageBuildError(`${path}: tar entry of type ${header.type} is not supported`);
  }
}

/** Files under `dir` in the image at `to`: regular files 0755 when executable else 0644, symlinks kept. */
function addDirectory(tree: LayerTree, dir: string, to: string, filter: (name: string) => boolean = () => true): void {
  for (const entry of readdirSync(dir, { withFileTypes: true }).filter((one) => filter(one.name))) {
    const source = join(dir, entry.name);
    const path = `${to}/${entry.name}`;
    if (entry.isDirectory()) {
      tree.add({ type: "directory", path, mode: 0o755 });
      addDirectory(tree, source, path);
    } else if (entry.isSymbolicLink()) throw new ImageBuildError(`${source}: symlinks in build outputs are not expected`);
    else tree.add({ type: "file", path, mode: statSync(source).mode & 0o111 ? 0o755 : 0o644, data: readFileSync(source) });
  }
}

// ---- the images --------------------------------------------------------------------------------

/** The CA bundle `update-ca-certificates` makes from Debian's ca-certificates: every Mozilla certificate, in name order. */
function caBundle(files: TarFile[]): Buffer {
  const certificates = files
    .filter(
      (file) =>
        file.header.type === "file" && /\/usr\/share\/ca-certificates\/mozilla\/[^/]+\.crt$/.test(`/${normalizePath(file.header.name)}`),
    )
    .sort((a, b) => Buffer.compare(Buffer.from(a.header.name), Buffer.from(b.header.name)));
  if (certificates.length === 0) throw new ImageBuildError("Debian's ca-certificates holds no mozilla/*.crt");
  return Buffer.concat(certificates.map((file) => Buffer.from(`${file.data.toString("utf8").trimEnd()}\n`)));
}

async function runtimeBaseLayer(sources: DebianSources, platform: TargetPlatform, inputs: string[]): Promise<Layer> {
  const tree = new LayerTree();
  for (const name of RUNTIME_BASE.debianPackages)
    for (const file of await debianPackage(sources, name, platform.debian, inputs)) tree.add(entryOf(file));
  const certificates = await debianPackage(sources, "ca-certificates", "all", inputs);
  tree.add({ type: "file", path: RUNTIME_BASE.caBundle, mode: 0o644, data: caBundle(certificates) });
  for (const file of certificates.filter((one) => /usr\/share\/doc\/ca-certificates\/copyright$/.test(one.header.name)))
    tree.add(entryOf(file));
  const users = [
    ["root", 0, "/root"],
    ["nobody", 65534, "/nonexistent"],
    ["nonroot", 65532, "/home/nonroot"],
  ] as const;
  const passwd = users.map(([name, id, home]) => `${name}:x:${id}:${id}:${name}:${home}:/sbin/nologin\n`).join("");
  const group = users.map(([name, id]) => `${name}:x:${id}:\n`).join("");
  tree
    .add({ type: "file", path: "etc/passwd", mode: 0o644, data: Buffer.from(passwd) })
    .add({ type: "file", path: "etc/group", mode: 0o644, data: Buffer.from(group) })
    .add({ type: "directory", path: "tmp", mode: 0o1777 })
    .add({ type: "directory", path: "root", mode: 0o700 })
    .add({ type: "directory", path: "home/nonroot", mode: 0o700, uid: 65532, gid: 65532 });
  return await buildLayer(tree);
}

async function webhookRootfsLayer(sources: DebianSources, platform: TargetPlatform, inputs: string[]): Promise<Layer> {
  const tree = new LayerTree();
  const node = await readTar(gunzipSync(npmPackage(`node-linux-${platform.node}`, packageJson.devDependencies.node, inputs)));
  for (const { from, to, mode } of WEBHOOK_ROOTFS.node) {
    const found = node.find((file) => file.header.name === from);
    if (!found) throw new ImageBuildError(`the npm package node-linux-${platform.node} has no ${from}`);
    tree.add({ type: "file", path: to, mode, data: found.data });
  }
  for (const name of WEBHOOK_ROOTFS.debianPackages)
    for (const file of await debianPackage(sources, name, platform.debian, inputs)) tree.add(entryOf(file));
  const { app } = WEBHOOK_ROOTFS;
  const appDir = join(repo, app.from);
  if (!existsSync(join(appDir, `${app.prefix}`))) throw new ImageBuildError(`${appDir}/${app.prefix} is missing: run \`npm run build\``);
  addDirectory(tree, appDir, app.to, (name) => name.startsWith(app.prefix));
  return await buildLayer(tree);
}

async function shimRootfsLayer(platform: TargetPlatform): Promise<Layer> {
  const dir = runtimeDir(platform.key);
  const manifestFile = join(dir, RuntimeFile.manifest);
  if (!existsSync(manifestFile)) throw new ImageBuildError(`${manifestFile} is missing: run \`npm run build\``);
  const manifest = parseManifest(readFileSync(manifestFile, "utf8"));
  if (manifest instanceof Error) throw new ImageBuildError(`${manifestFile}: ${manifest.message}`);
  if (manifest.platform !== platform.key)
    throw new ImageBuildError(`${relative(repo, dir)} holds a runtime for ${manifest.platform ?? manifest.arch}, not ${platform.key}`);
  const tree = new LayerTree();
  addDirectory(tree, dir, "");
  tree.add({ type: "symlink", path: MOUNT_PATH.slice(1), target: "." });
  return await buildLayer(tree);
}

/** The final stage's settings over the base's, as Docker applies them. */
function runtimeConfig(stage: FinalStage, base: RuntimeConfig = {}): RuntimeConfig {
  const env = new Map((base.Env ?? []).map((pair) => [pair.slice(0, pair.indexOf("=")), pair] as const));
  for (const [name, value] of stage.env) env.set(name, `${name}=${value}`);
  const config: RuntimeConfig = { ...base };
  if (env.size > 0) config.Env = [...env.values()];
  if (stage.user !== undefined) config.User = stage.user;
  if (stage.workingDir !== undefined) config.WorkingDir = stage.workingDir;
  if (stage.exposedPorts.length > 0) config.ExposedPorts = Object.fromEntries(stage.exposedPorts.map((port) => [port, {}]));
  if (stage.entrypoint) {
    config.Entrypoint = stage.entrypoint;
    delete config.Cmd;
  }
  if (stage.cmd) config.Cmd = stage.cmd;
  return config;
}

/** The final stage `npm run images` reproduces: base, then one `COPY --from=build /rootfs/ /`. */
function finalStageOf(key: ImageKey): FinalStage {
  const stage = parseFinalStage(readFileSync(IMAGES[key].dockerfile, "utf8"));
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's own text
  const expectedBase = key === "webhook" ? "${RUNTIME_IMAGE}" : "scratch";
  if (stage.from !== expectedBase)
    throw new ImageBuildError(`${IMAGES[key].dockerfile}: FROM ${stage.from}, npm run images makes ${expectedBase}`);
  const copies = stage.copies.map((copy) => `${copy.stage} ${copy.source} ${copy.destination}`);
  if (copies.join("\n") !== "build /rootfs/ /")
    throw new ImageBuildError(
      `${IMAGES[key].dockerfile}: final stage copies ${copies.join("; ") || "nothing"}, npm run images makes one COPY --from=build /rootfs/ /`,
    );
  return stage;
}

export interface BuildImagesOptions {
  /** Where the archives and images.json go (default dist/images). */
  outDir?: string;
  log?: (line: string) => void;
}

export async function buildImages(options: BuildImagesOptions = {}): Promise<BuiltImages> {
  const outDir = options.outDir ?? IMAGES_DIR;
  const log = options.log ?? console.log;
  mkdirSync(outDir, { recursive: true });
  const inputs: string[] = [];
  const annotations = (name: string) => ({ "org.opencontainers.image.title": name, "org.opencontainers.image.version": IMAGE_TAG });

  const webhookStage = finalStageOf("webhook");
  const shimStage = finalStageOf("shim");
  const sources = debianSources();
  // Every platform's layers at once (compression runs off the main thread), kept in PLATFORMS order.
  const perPlatform = await Promise.all(
    PLATFORMS.map(async (platform) => {
      const { os, architecture } = platform;
      const [base, rootfs, runtime] = await Promise.all([
        runtimeBaseLayer(sources, platform, inputs),
        webhookRootfsLayer(sources, platform, inputs),
        shimRootfsLayer(platform),
      ]);
      const webhook: PlatformImage = {
        platform: { os, architecture },
        layers: [base, rootfs],
        config: runtimeConfig(webhookStage, { ...RUNTIME_BASE.config, Env: [...RUNTIME_BASE.config.Env] }),
      };
      const shim: PlatformImage = { platform: { os, architecture }, layers: [runtime], config: runtimeConfig(shimStage) };
      return { webhook, shim };
    }),
  );
  const webhook = perPlatform.map((one) => one.webhook);
  const shim = perPlatform.map((one) => one.shim);
  const built = {} as Record<ImageKey, BuiltImage>;
  for (const [key, platforms] of [
    ["webhook", webhook],
    ["shim", shim],
  ] as const) {
    const { name, repository } = IMAGES[key];
    const image = buildImage(platforms, annotations(name));
    const archive = join(outDir, `${name}.oci.tar`);
    await writeOciArchive(archive, image, IMAGE_TAG);
    built[key] = {
      name,
      repository,
      tag: IMAGE_TAG,
      archive: basename(archive),
      digest: image.index.digest,
      platforms: image.manifests,
    };
    log(
      `[images] ${relative(repo, archive)}: ${name}:${IMAGE_TAG}@${image.index.digest} (${(statSync(archive).size / 2 ** 20).toFixed(1)} MiB)`,
    );
  }
  const result: BuiltImages = { tag: IMAGE_TAG, images: built, inputs: [...new Set(inputs)].sort() };
  writeFileSync(join(outDir, "images.json"), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

if (import.meta.main) {
  try {
    await buildImages();
  } catch (error) {
    if (!(error instanceof ImageBuildError) && !(error instanceof Error && error.name === "DockerfileError")) throw error;
    console.error(`npm run images: ${error.message}`);
    process.exitCode = 1;
  }
}
