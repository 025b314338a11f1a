// `npm run images` (scripts/images.ts): the webhook and shim images built without Docker agree with
// webhook/Dockerfile and shim/Dockerfile for each platform (runtime settings of the final stage, the
// files the build stage puts into /rootfs for that TARGETARCH), are reproducible (two builds, one
// digest), go through a real registry with skopeo and come back as they were built, resolve to the
// pulling node's platform (the references the webhook writes into pods name the index), and run:
// the shim image's layers, pulled from the registry, in a chroot as 65532, and the webhook image's
// Node on nothing but its own layers — linux/arm64 under QEMU (test/shim/minimal-root.ts).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { extract, type Header } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INSTALL_MOUNT_PATH, MOUNT_PATH, SHIM_PATH } from "../../common/contract.ts";
import { runtimeDir, runtimeStaleness } from "../../scripts/build-runtime.ts";
import { parseFinalStage } from "../../scripts/dockerfile.ts";
import {
  type BuiltImages,
  buildImages,
  IMAGE_TAG,
  IMAGES,
  type ImageKey,
  imagesStaleness,
  RUNTIME_BASE,
  WEBHOOK_ROOTFS,
} from "../../scripts/images.ts";
import { MediaType, REF_NAME, type RuntimeConfig } from "../../scripts/oci.ts";
import { hostPlatform, PLATFORMS, type TargetPlatform } from "../../scripts/platforms.ts";
import { npmPackageFile } from "../../scripts/system/package-cache.ts";
import { parseManifest, RuntimeFile } from "../../shim/runtime/layout.ts";
import { testMutationSettings } from "../../webhook/mutation-settings.fixture.ts";
import { installContainer, shimVolume } from "../../webhook/volumes.ts";
import { repoRoot } from "../chart/chart.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { firstStage } from "../infra/dockerfile.ts";
import { type RegistryEndpoint, registryFetch } from "../infra/registry-http.ts";
import { probeBindMounts, removeRoots, rootTempDir, runInRoot } from "../shim/minimal-root.ts";

const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === "true" || process.env.CI === "1";
const KEYS: ImageKey[] = ["webhook", "shim"];
const host = hostPlatform();
/** How a platform's programs run here: natively, or under QEMU (binfmt_misc in the run's own user namespace). */
const runsOn = (platform: TargetPlatform) => (platform === host ? {} : { emulate: platform });

interface TarMember {
  header: Header;
  data: Buffer;
}

async function readTar(bytes: Buffer): Promise<TarMember[]> {
  const extractor = extract();
  const members: TarMember[] = [];
  const reading = (async () => {
    for await (const entry of extractor) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      members.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  extractor.end(bytes);
  await reading;
  return members;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}
interface Index {
  manifests: Descriptor[];
}
interface Manifest {
  config: Descriptor;
  layers: Descriptor[];
}
interface Config {
  os: string;
  architecture: string;
  config: RuntimeConfig;
  rootfs: { diff_ids: string[] };
  created?: string;
  history?: unknown;
}

/** One platform's image of an index. */
interface ReadPlatformImage {
  manifestDigest: string;
  config: Config;
  /** Compressed layer digests, as the manifest lists them. */
  layerDigests: string[];
  /** Uncompressed layer tars. */
  layers: Buffer[];
}

/** An image index and each platform's image, read from wherever the blobs come from (archive or registry). */
interface ReadImage {
  index: Index;
  indexDigest: string;
  /** By `os/architecture`. */
  platforms: Record<string, ReadPlatformImage>;
}

async function readImage(indexDigest: string, blob: (descriptor: Descriptor) => Promise<Buffer>): Promise<ReadImage> {
  const index = JSON.parse((await blob({ mediaType: MediaType.index, digest: indexDigest })).toString()) as Index;
  const platforms: Record<string, ReadPlatformImage> = {};
  for (const chosen of index.manifests) {
    const manifest = JSON.parse((await blob(chosen)).toString()) as Manifest;
    const config = JSON.parse((await blob(manifest.config)).toString()) as Config;
    const layers = await Promise.all(manifest.layers.map(async (layer) => gunzipSync(await blob(layer))));
    expect(layers.map(sha256)).toEqual(config.rootfs.diff_ids);
    const layerDigests = manifest.layers.map((layer) => layer.digest);
    platforms[`${chosen.platform?.os}/${chosen.platform?.architecture}`] = { manifestDigest: chosen.digest, config, layerDigests, layers };
  }
  return { index, indexDigest, platforms };
}

function platformOf(image: ReadImage, platform: TargetPlatform): ReadPlatformImage {
  const found = image.platforms[platform.key];
  if (!found) throw new Error(`no ${platform.key} manifest in ${JSON.stringify(image.index)}`);
  return found;
}

/** `image`'s manifest for `platform`, its layers unpacked into a new root directory. */
async function unpackedPlatform(
  image: ReadImage,
  platform: TargetPlatform,
  prefix: string,
): Promise<{ image: ReadPlatformImage; root: string }> {
  const found = platformOf(image, platform);
  const root = rootTempDir(prefix);
  await unpack(found.layers, root);
  return { image: found, root };
}

const archives = new Map<string, Promise<ReadImage>>();
/** An `oci-archive`: its one image (tagged IMAGE_TAG), every blob checked against its digest (read once per file). */
function readArchive(file: string): Promise<ReadImage> {
  const read = archives.get(file) ?? readArchiveOnce(file);
  archives.set(file, read);
  return read;
}

async function readArchiveOnce(file: string): Promise<ReadImage> {
  const members = new Map((await readTar(readFileSync(file))).map((member) => [member.header.name, member.data]));
  expect(JSON.parse(members.get("oci-layout")?.toString() ?? "{}")).toEqual({ imageLayoutVersion: "1.0.0" });
  const top = JSON.parse(members.get("index.json")?.toString() ?? "{}") as Index;
  expect(top.manifests).toEqual([expect.objectContaining({ mediaType: MediaType.index, annotations: { [REF_NAME]: IMAGE_TAG } })]);
  return await readImage(top.manifests[0]?.digest ?? "", async ({ digest }) => {
    const bytes = members.get(`blobs/sha256/${digest.slice("sha256:".length)}`);
    if (!bytes) throw new Error(`${file} has no blob ${digest}`);
    expect(sha256(bytes)).toBe(digest);
    return bytes;
  });
}

/** Path → member of the layers, later layers over earlier ones (the builder makes no whiteouts). */
function filesystem(layers: TarMember[][]): Map<string, TarMember> {
  const all = new Map<string, TarMember>();
  for (const members of layers) for (const member of members) all.set(member.header.name.replace(/\/$/, ""), member);
  return all;
}

/** Unpacks layer tars into `root` as a container runtime does: modes, owners, symlinks, hard links. */
async function unpack(layers: Buffer[], root: string): Promise<void> {
  for (const layer of layers) {
    for (const { header, data } of await readTar(layer)) {
      const path = join(root, header.name);
      mkdirSync(dirname(path), { recursive: true });
      if (header.type === "directory") mkdirSync(path, { recursive: true });
      else if (header.type === "symlink") symlinkSync(header.linkname, path);
      else if (header.type === "link") linkSync(join(root, header.linkname), path);
      else writeFileSync(path, data);
      if (header.type !== "symlink" && header.type !== "link") {
        chownSync(path, header.uid, header.gid);
        chmodSync(path, header.mode);
      }
    }
  }
}

let first: BuiltImages;
let firstDir: string;

beforeAll(async () => {
  const stale = runtimeStaleness();
  const bundle = join(repoRoot, "dist/webhook/main.js");
  if (stale || spawnSync("test", ["-s", bundle]).status !== 0) {
    console.log(`[images test] npm run build: ${stale ?? `${bundle} is missing`}`);
    const built = spawnSync("npm", ["run", "build", "--", "--if-stale"], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
    if (built.status !== 0) throw new Error(`npm run build failed (exit ${built.status})`);
  }
  firstDir = rootTempDir("kustodia-images-a-");
  const began = Date.now();
  first = await buildImages({ outDir: firstDir, log: () => {} });
  console.log(`[images test] npm run images (scripts/images.ts): ${Date.now() - began} ms`);
}, 600_000);

afterAll(removeRoots);

const archiveOf = (key: ImageKey) => join(firstDir, `${IMAGES[key].name}.oci.tar`);

/** The webhook bundle with its map and legal notes, and the chunks it loads on use (scripts/build.ts), with theirs. */
function expectWebhookBundle(files: string[]): void {
  const entry = ["main.js", "main.js.LEGAL.txt", "main.js.map"];
  expect(files).toEqual(expect.arrayContaining(entry));
  for (const name of files.filter((name) => !entry.includes(name)))
    expect(name).toMatch(/^main\.js\.[\w-]+-[A-Z0-9]{8}\.js(\.map|\.LEGAL\.txt)?$/);
}

describe("npm run images", () => {
  it("builds the same bytes twice: same digests, identical archives, no timestamps", async () => {
    const secondDir = rootTempDir("kustodia-images-b-");
    const second = await buildImages({ outDir: secondDir, log: () => {} });
    expect(second.images).toEqual(first.images);
    expect(second.inputs).toEqual(first.inputs);
    for (const key of KEYS) {
      const name = `${IMAGES[key].name}.oci.tar`;
      expect(sha256(readFileSync(join(secondDir, name)))).toBe(sha256(readFileSync(join(firstDir, name))));
      const image = await readArchive(join(firstDir, name));
      expect(image.indexDigest).toBe(first.images[key].digest);
      for (const platform of PLATFORMS) {
        const one = platformOf(image, platform);
        expect(one.manifestDigest).toBe(first.images[key].platforms[platform.key]);
        expect(one.config.created).toBeUndefined();
        expect(one.config.history).toBeUndefined();
        for (const layer of one.layers)
          for (const { header } of await readTar(layer)) expect([header.name, header.mtime.getTime()]).toEqual([header.name, 0]);
      }
    }
  }, 600_000);

  it("knows when the archives are older than what they are made of", () => {
    expect(imagesStaleness(firstDir)).toBeUndefined();
    const stale = rootTempDir("kustodia-images-stale-");
    expect(imagesStaleness(stale)).toMatch(/images\.json does not exist/);
    writeFileSync(join(stale, "images.json"), JSON.stringify(first));
    utimesSync(join(stale, "images.json"), 0, 0);
    expect(imagesStaleness(stale)).toMatch(/^dist\/webhook\/main\.js changed since the images were built$/);
  });

  it("holds an image index with a manifest for linux/amd64 and linux/arm64, tagged with the chart's appVersion", async () => {
    const chart = readFileSync(join(repoRoot, "charts/kustodia/Chart.yaml"), "utf8");
    expect(chart).toMatch(new RegExp(`^appVersion: "${IMAGE_TAG}"$`, "m"));
    expect(PLATFORMS.map((platform) => platform.key)).toEqual(["linux/amd64", "linux/arm64"]);
    for (const key of KEYS) {
      const image = await readArchive(archiveOf(key));
      expect(image.index.manifests.map((one) => one.platform)).toEqual([
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64" },
      ]);
      for (const platform of PLATFORMS)
        expect(platformOf(image, platform).config).toMatchObject({ os: "linux", architecture: platform.architecture });
      expect(Object.keys(first.images[key].platforms)).toEqual(["linux/amd64", "linux/arm64"]);
      // The chart's default repositories end with the names the images are pushed under.
      const values = readFileSync(join(repoRoot, "charts/kustodia/values.yaml"), "utf8");
      expect(values).toContain(`repository: ghcr.io/${IMAGES[key].repository}\n`);
    }
  });
});

describe("the images and their Dockerfiles", () => {
  it.each(PLATFORMS)("take the final stage's USER, WORKDIR, EXPOSE, ENTRYPOINT and CMD: $key", async (platform) => {
    const webhook = platformOf(await readArchive(archiveOf("webhook")), platform);
    const shim = platformOf(await readArchive(archiveOf("shim")), platform);
    // Read from the Dockerfiles here, independently of the builder's parse.
    const webhookDockerfile = readFileSync(IMAGES.webhook.dockerfile, "utf8");
    const shimDockerfile = readFileSync(IMAGES.shim.dockerfile, "utf8");
    const line = (text: string, keyword: string) => new RegExp(`^${keyword} (.+)$`, "m").exec(text.split(/^FROM /m).at(-1) ?? "")?.[1];
    expect(webhook.config.config).toEqual({
      ...RUNTIME_BASE.config,
      User: line(webhookDockerfile, "USER"),
      WorkingDir: line(webhookDockerfile, "WORKDIR"),
      ExposedPorts: { [`${line(webhookDockerfile, "EXPOSE")}/tcp`]: {} },
      Entrypoint: JSON.parse(line(webhookDockerfile, "ENTRYPOINT") ?? "null"),
    });
    expect(webhook.config.config).toMatchObject({ User: "65532:65532", Entrypoint: ["/usr/local/bin/node", "dist/webhook/main.js"] });
    expect(shim.config.config).toEqual({
      User: line(shimDockerfile, "USER"),
      Entrypoint: JSON.parse(line(shimDockerfile, "ENTRYPOINT") ?? "null"),
      Cmd: JSON.parse(line(shimDockerfile, "CMD") ?? "null"),
    });
    expect(shim.config.config).toMatchObject({ User: "65532:65532", Entrypoint: [SHIM_PATH] });
  });

  it("refuses a final stage it does not model, so a Dockerfile change cannot be left out", () => {
    const dockerfile = readFileSync(IMAGES.webhook.dockerfile, "utf8");
    expect(() => parseFinalStage(`${dockerfile}\nHEALTHCHECK CMD ["/x"]\n`)).toThrow(/HEALTHCHECK in the final stage/);
    expect(() => parseFinalStage(`${dockerfile}\nENTRYPOINT node main.js\n`)).toThrow(/only the exec form/);
    expect(() => parseFinalStage(`${dockerfile}\nCOPY dist/ /app/\n`)).toThrow(/only `COPY --from/);
    expect(parseFinalStage(`${dockerfile}\nENV A=1 B="two words"\nCMD ["x"]\nENTRYPOINT ["y"]\n`)).toMatchObject({
      env: [
        ["A", "1"],
        ["B", "two words"],
      ],
      entrypoint: ["y"],
    });
    expect(parseFinalStage(`${dockerfile}\nCMD ["x"]\nENTRYPOINT ["y"]\n`).cmd).toBeUndefined();
  });

  it.each(PLATFORMS)(
    "webhook: the base is distroless cc's packages and users, the rootfs layer what the build stage puts in /rootfs: $key",
    async (platform) => {
      const dockerfile = readFileSync(IMAGES.webhook.dockerfile, "utf8");
      const build = firstStage(dockerfile);
      expect(dockerfile).toMatch(/^ARG RUNTIME_IMAGE=gcr\.io\/distroless\/cc-debian12:nonroot$/m);
      expect(dockerfile).toMatch(/^COPY --from=build \/rootfs\/ \/$/m);
      // The build stage's TARGETARCH → npm package node-linux-<arch>, and the Debian packages of TARGETARCH.
      expect(build).toContain(`${platform.architecture}) nodeArch=${platform.node} ;;`);
      for (const { from, to, mode } of WEBHOOK_ROOTFS.node) {
        const install = mode === 0o755 ? `install -m 0755 ${from} /rootfs/${to};` : `install -D -m 0644 ${from} /rootfs/${to};`;
        expect(build).toContain(install);
      }
      for (const name of WEBHOOK_ROOTFS.debianPackages) expect(build).toContain(`apt-get download -qq "${name}:\${TARGETARCH}";`);
      const { app } = WEBHOOK_ROOTFS;
      expect(build).toContain(`cp /src/${app.from}/${app.prefix}* /rootfs/${app.to}/`);

      const image = platformOf(await readArchive(archiveOf("webhook")), platform);
      expect(image.layers).toHaveLength(2);
      const [base = [], rootfs = []] = await Promise.all(image.layers.map(readTar));
      const files = filesystem([base, rootfs]);
      const rootfsPaths = new Set(rootfs.map((member) => member.header.name.replace(/\/$/, "")));
      const bytes = (path: string) => files.get(path)?.data;
      // The pinned Node of the platform (npm's node-linux-<arch>), Node's license and the bundle with its map, in the rootfs layer.
      const nodeDir = rootTempDir("kustodia-node-package-");
      const nodePackage = npmPackageFile(`node-linux-${platform.node}`, readPackageNodeVersion());
      expect(spawnSync("tar", ["-xzf", nodePackage, "-C", nodeDir, "package/bin/node"]).status).toBe(0);
      const nodeBinary = join(nodeDir, "package/bin/node");
      expect(sha256(bytes("usr/local/bin/node") ?? Buffer.alloc(0))).toBe(sha256(readFileSync(nodeBinary)));
      if (platform === host)
        expect(sha256(readFileSync(nodeBinary))).toBe(sha256(readFileSync(join(repoRoot, "node_modules/node/bin/node"))));
      expect(files.get("usr/local/bin/node")?.header.mode).toBe(0o755);
      const bundles = readdirSync(join(repoRoot, app.from)).filter((name) => name.startsWith(app.prefix));
      expectWebhookBundle(bundles);
      for (const name of bundles) expect(bytes(`${app.to}/${name}`)?.equals(readFileSync(join(repoRoot, app.from, name)))).toBe(true);
      expect([...rootfsPaths].filter((path) => path.startsWith("app/")).sort()).toEqual([
        "app/dist",
        "app/dist/webhook",
        ...bundles.map((name) => `${app.to}/${name}`).sort(),
      ]);
      for (const path of ["usr/local/bin/node", "usr/local/share/doc/node/LICENSE", `usr/lib/${platform.triplet}/libatomic.so.1`])
        expect(rootfsPaths).toContain(path);
      expectLibrariesOf(nodeBinary, files, platform);
      // The ENTRYPOINT the Dockerfile names is the executable the image holds.
      const entrypoint = image.config.config.Entrypoint?.[0] ?? "";
      expect(files.get(entrypoint.slice(1))?.header).toMatchObject({ type: "file", mode: 0o755 });
      expect(bytes("etc/passwd")?.toString()).toContain("nonroot:x:65532:65532:");
      expect(files.get("tmp")?.header.mode).toBe(0o1777);
      expect(files.get("home/nonroot")?.header).toMatchObject({ uid: 65532, gid: 65532, mode: 0o700 });
      expect(bytes("etc/ssl/certs/ca-certificates.crt")?.toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
      // Nothing else from the npm package or the build machine.
      for (const member of [...base, ...rootfs]) {
        if (member.header.name === "home/nonroot/") continue;
        expect([member.header.name, member.header.uid, member.header.gid]).toEqual([member.header.name, 0, 0]);
      }
    },
  );

  it.each(PLATFORMS)(
    "shim: one layer, exactly the platform's dist/shim-runtime/linux-<arch> at the root (modes as runtime.json says) and `kustodia -> .`: $key",
    async (platform) => {
      const dockerfile = readFileSync(IMAGES.shim.dockerfile, "utf8");
      const runtime = runtimeDir(platform.key);
      // The build stage copies dist/shim-runtime/linux-${arch}: for this TARGETARCH, this platform's runtime.
      const copy = /cp -a "(dist\/shim-runtime\/linux-\$\{arch\})\/\." \/rootfs\/;/.exec(firstStage(dockerfile))?.[1] ?? "";
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's shell variable
      expect(join(repoRoot, copy.replace("${arch}", platform.architecture))).toBe(runtime);
      expect(firstStage(dockerfile)).toContain(`ln -s . /rootfs${MOUNT_PATH}`);
      const manifest = parseManifest(readFileSync(join(runtime, RuntimeFile.manifest), "utf8"));
      if (manifest instanceof Error) throw manifest;
      expect(manifest.platform).toBe(platform.key);

      const image = platformOf(await readArchive(archiveOf("shim")), platform);
      const members = await readTar(image.layers[0] ?? Buffer.alloc(0));
      expect(image.layers).toHaveLength(1);
      const files = members.filter((member) => member.header.type === "file");
      expect(files.map((member) => member.header.name).sort()).toEqual(
        [...manifest.files.map((file) => file.path), RuntimeFile.manifest].sort(),
      );
      for (const file of manifest.files) {
        const member = files.find((one) => one.header.name === file.path);
        expect({ path: file.path, mode: member?.header.mode, sha256: member && sha256(member.data) }).toEqual({
          path: file.path,
          mode: file.mode,
          sha256: `sha256:${file.sha256}`,
        });
      }
      // The ENTRYPOINT, /kustodia/kustodia-shim, is the launcher through `kustodia -> .`.
      expect(image.config.config.Entrypoint?.[0]).toBe(`${MOUNT_PATH}/${RuntimeFile.launcher}`);
      expect(files.find((member) => member.header.name === RuntimeFile.launcher)?.header.mode).toBe(0o755);
      expect(
        members.filter((member) => member.header.type === "symlink").map((member) => [member.header.name, member.header.linkname]),
      ).toEqual([[MOUNT_PATH.slice(1), "."]]);
    },
  );
});

/** Everything `binary` links against is in `files`, for the platform, with the loader where the ELF asks for it. */
function expectLibrariesOf(binary: string, files: Map<string, TarMember>, platform: TargetPlatform): void {
  const needed = spawnSync("readelf", ["-d", binary], { encoding: "utf8" }).stdout;
  for (const [, library] of needed.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
    const where = [`lib/${platform.triplet}`, `usr/lib/${platform.triplet}`, "lib"].map((dir) => `${dir}/${library}`);
    expect(
      where.some((path) => files.has(path)),
      library,
    ).toBe(true);
  }
  const interpreter = spawnSync("patchelf", ["--print-interpreter", binary], { encoding: "utf8" }).stdout.trim();
  expect(files.get(interpreter.slice(1))?.header.type).toBe("symlink");
  expect(files.has(`usr/lib/${platform.triplet}/libc.so.6`) || files.has(`lib/${platform.triplet}/libc.so.6`)).toBe(true);
}

/** What a registry serves for an image: its blobs by digest. */
function registryBlobs(endpoint: RegistryEndpoint, repository: string) {
  return async ({ mediaType, digest }: Descriptor): Promise<Buffer> => {
    const manifest = mediaType === MediaType.index || mediaType === MediaType.manifest;
    const path = `/v2/${repository}/${manifest ? "manifests" : "blobs"}/${digest}`;
    const response = await registryFetch(endpoint, path, manifest ? { headers: { accept: mediaType } } : {});
    expect(response.status, `${path}: ${response.body.toString()}`).toBe(200);
    expect(sha256(response.body)).toBe(digest);
    return response.body;
  };
}

describe.skipIf(skipWithout("registry"))("the images in a registry", () => {
  const pushed = {} as Record<ImageKey, ReadImage>;

  beforeAll(async () => {
    const { plain } = service("registry");
    for (const key of KEYS) {
      const { repository } = IMAGES[key];
      const began = Date.now();
      const copy = spawnSync(
        "skopeo",
        [
          "--insecure-policy",
          "copy",
          "--all",
          "--quiet",
          "--dest-no-creds",
          "--dest-tls-verify=false",
          `oci-archive:${archiveOf(key)}`,
          `docker://${plain.host}/${repository}:${IMAGE_TAG}`,
        ],
        { encoding: "utf8" },
      );
      expect(copy.stderr).toBe("");
      expect(copy.status).toBe(0);
      console.log(`[images test] skopeo copy --all ${IMAGES[key].name}: ${Date.now() - began} ms`);
      const tagged = await registryFetch(plain, `/v2/${repository}/manifests/${IMAGE_TAG}`, { headers: { accept: MediaType.index } });
      expect(tagged.status).toBe(200);
      pushed[key] = await readImage(String(tagged.headers["docker-content-digest"]), registryBlobs(plain, repository));
    }
  }, 300_000);

  it("serves the tag as the very index that was built, and each platform's manifest → config → ENTRYPOINT and USER", async () => {
    for (const key of KEYS) {
      const built = await readArchive(archiveOf(key));
      expect(pushed[key].indexDigest).toBe(first.images[key].digest);
      for (const platform of PLATFORMS) {
        expect(platformOf(pushed[key], platform).manifestDigest).toBe(first.images[key].platforms[platform.key]);
        expect(platformOf(pushed[key], platform).config).toEqual(platformOf(built, platform).config);
      }
    }
    for (const platform of PLATFORMS) {
      expect(platformOf(pushed.webhook, platform).config.config).toMatchObject({
        User: "65532:65532",
        Entrypoint: ["/usr/local/bin/node", "dist/webhook/main.js"],
      });
      expect(platformOf(pushed.shim, platform).config.config).toMatchObject({
        User: "65532:65532",
        Entrypoint: [SHIM_PATH],
        Cmd: ["--help"],
      });
    }
  });

  it.each(PLATFORMS)(
    "resolves the shim image the webhook names (install container, image volume; by tag and by index digest) to a $key node's own manifest",
    (platform) => {
      const { plain } = service("registry");
      const { repository } = IMAGES.shim;
      const expected = platformOf(pushed.shim, platform);
      for (const shimImage of [`${plain.host}/${repository}:${IMAGE_TAG}`, `${plain.host}/${repository}@${first.images.shim.digest}`]) {
        const settings = testMutationSettings({ shimImage });
        const references = [
          installContainer("kustodia-install", "kustodia", settings).image,
          (shimVolume("kustodia", { ...settings, delivery: "image-volume" }).image as { reference: string }).reference,
        ];
        expect(references).toEqual([shimImage, shimImage]);
        // skopeo picks from the index as a container runtime on a node of that platform does.
        const inspected = spawnSync(
          "skopeo",
          [
            "--override-os",
            platform.os,
            "--override-arch",
            platform.architecture,
            "inspect",
            "--tls-verify=false",
            `docker://${shimImage}`,
          ],
          { encoding: "utf8" },
        );
        expect(inspected.stderr).toBe("");
        const { Architecture, Os, Layers } = JSON.parse(inspected.stdout) as { Architecture: string; Os: string; Layers: string[] };
        expect({ Os, Architecture, Layers }).toEqual({
          Os: platform.os,
          Architecture: platform.architecture,
          Layers: expected.layerDigests,
        });
      }
    },
  );

  describe.skipIf(!isRoot && !inCI)("run from the pulled layers (chroot, as the image's USER; linux/arm64 under QEMU)", () => {
    beforeAll(() => {
      probeBindMounts(repoRoot);
    });

    it.each(PLATFORMS)(
      "shim: ENTRYPOINT + CMD prints the usage; `install` copies the runtime into an emptyDir-like directory: $key",
      async (platform) => {
        const { image, root } = await unpackedPlatform(pushed.shim, platform, "kustodia-shim-pulled-");
        const { Entrypoint = [], Cmd = [], User = "" } = image.config.config;
        expect([...Entrypoint, ...Cmd]).toEqual([SHIM_PATH, "--help"]);
        mkdirSync(join(root, "proc"));
        const usage = await runInRoot(root, [], [...Entrypoint, ...Cmd], { user: User, env: {}, ...runsOn(platform) });
        expect(usage.code).toBe(0);
        expect(usage.stdout).toMatch(/^usage: kustodia-shim/);

        // The copy delivery's init container: `kustodia-shim install /mnt/kustodia` into a 0777 directory, with /proc.
        mkdirSync(join(root, INSTALL_MOUNT_PATH), { recursive: true, mode: 0o777 });
        chmodSync(join(root, INSTALL_MOUNT_PATH), 0o777);
        const install = await runInRoot(root, [], [...Entrypoint, "install", INSTALL_MOUNT_PATH], {
          user: User,
          env: {},
          proc: true,
          ...runsOn(platform),
        });
        expect(install.stderr.replace(/^\{.*"event".*\}\n/gm, "")).toBe("");
        expect(install.code).toBe(0);
        const installed = readdirSync(join(root, INSTALL_MOUNT_PATH)).sort();
        expect(installed).toEqual(readdirSync(runtimeDir(platform.key)).sort());
      },
    );

    it.each(PLATFORMS)(
      "webhook: the pinned Node runs on the image's own libraries as 65532 and sees the CA bundle: $key",
      async (platform) => {
        const { image, root } = await unpackedPlatform(pushed.webhook, platform, "kustodia-webhook-pulled-");
        const { Entrypoint = [], User = "", WorkingDir = "/" } = image.config.config;
        const script =
          'process.stdout.write([process.version, process.arch, process.cwd(), require("os").userInfo().username, require("tls").getCACertificates("system").length > 100].join(" "))';
        const env = Object.fromEntries(
          (image.config.config.Env ?? []).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
        );
        // chroot starts in /; the image's WorkingDir is where the entrypoint's relative path resolves.
        const run = await runInRoot(root, [], ["/usr/local/bin/node", "-e", `process.chdir(${JSON.stringify(WorkingDir)}); ${script}`], {
          user: User,
          env,
          ...runsOn(platform),
        });
        expect(run.stderr).toBe("");
        expect(run.stdout).toBe(`v${readPackageNodeVersion()} ${platform.node} /app nonroot true`);
        expect(Entrypoint[1]).toBe("dist/webhook/main.js");
        expect(readFileSync(join(root, WorkingDir, Entrypoint[1] ?? "")).equals(readFileSync(join(repoRoot, "dist/webhook/main.js")))).toBe(
          true,
        );
      },
    );
  });
});

function readPackageNodeVersion(): string {
  return (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { devDependencies: { node: string } }).devDependencies.node;
}
