// The app images of the real-node tests, built without Docker from test/fixtures/node-app/report.c:
// the four shapes kustodia must work in (a static binary alone, glibc without a shell, musl with
// busybox, a Debian-like userland), each pushed to the node's registry; the Debian-like one also
// behind a multi-platform index whose first entry is an arm64 image that must never be picked.
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildImage, busyboxImage, type ImageContent, pushImage } from "../infra/oci-image.ts";
import { repoRoot } from "../infra/repo-root.ts";
import type { NodeCoordinates } from "../infra/types.ts";

const execFileAsync = promisify(execFile);
const source = join(repoRoot, "test", "fixtures", "node-app", "report.c");

export type AppShape = "scratch" | "distroless" | "alpine" | "debian";

/** Image references as pods name them. Every image's ENTRYPOINT is the report program, CMD `PASSWORD`. */
export interface AppImages {
  images: Record<AppShape, string>;
  /** The Debian-like image behind an index listing linux/arm64 (a different ENTRYPOINT) before linux/amd64. */
  multiPlatform: string;
  /** Where the report program is in each image. */
  program: Record<AppShape, string>;
}

/** What report.c prints for a variable holding `value`. */
export function reportLine(name: string, value: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(value, "utf8")) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  return `${name} len=${Buffer.byteLength(value)} fnv1a64=${hash.toString(16).padStart(16, "0")}`;
}

/** The host's shared libraries a dynamically linked program needs (ldd), as image files at the same paths. */
function glibcClosure(programs: string[]): Record<string, string> {
  const files: Record<string, string> = {};
  for (const program of programs) {
    for (const line of execFileSync("ldd", [program], { encoding: "utf8" }).split("\n")) {
      const path = line.match(/(?:=>\s*)?(\/\S+)\s+\(0x/)?.[1];
      if (path) files[path] = realpathSync(path);
    }
  }
  return files;
}

function hostProgram(name: string): string {
  return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
}

async function compile(out: string, compiler: string, flags: string[]): Promise<string> {
  await execFileAsync(compiler, ["-O2", "-Wall", ...flags, "-o", out, source]);
  return out;
}

export async function pushAppImages(node: NodeCoordinates, work: string): Promise<AppImages> {
  mkdirSync(work, { recursive: true });
  const staticReport = await compile(join(work, "report-static"), "gcc", ["-static"]);
  const glibcReport = await compile(join(work, "report-glibc"), "gcc", []);
  const muslReport = await compile(join(work, "report-musl"), "musl-gcc", []);
  const program: Record<AppShape, string> = {
    scratch: "/report",
    distroless: "/report",
    alpine: "/usr/bin/report",
    debian: "/usr/local/bin/report",
  };
  const config = (shape: AppShape) => ({ entrypoint: [program[shape]], cmd: ["PASSWORD"] });
  const debianTools = ["bash", "dash", "env", "cat", "sleep", "ls", "sha256sum"].map(hostProgram);
  const contents: Record<AppShape, ImageContent> = {
    scratch: { files: { [program.scratch]: staticReport }, ...config("scratch") },
    distroless: {
      files: { [program.distroless]: glibcReport, ...glibcClosure([glibcReport]) },
      user: "65532",
      ...config("distroless"),
    },
    alpine: (() => {
      const busybox = busyboxImage(["sh", "ls", "cat", "sleep", "env"], config("alpine"));
      return {
        ...busybox,
        files: { ...busybox.files, "/lib/ld-musl-x86_64.so.1": realpathSync("/lib/ld-musl-x86_64.so.1"), [program.alpine]: muslReport },
      };
    })(),
    debian: {
      files: {
        ...Object.fromEntries(debianTools.map((tool) => [`/usr/bin/${tool.split("/").pop()}`, tool])),
        "/bin/sh": { symlink: "/usr/bin/dash" },
        "/bin/bash": { symlink: "/usr/bin/bash" },
        [program.debian]: glibcReport,
        ...glibcClosure([glibcReport, ...debianTools]),
      },
      env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
      ...config("debian"),
    },
  };
  // Tagged by the program's source: the node keeps what it pulled (IfNotPresent) under a tag.
  const tag = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 12);
  const layout = join(work, "layout");
  const images = {} as Record<AppShape, string>;
  for (const [shape, content] of Object.entries(contents) as [AppShape, ImageContent][]) {
    await buildImage("umoci", layout, shape, content);
    await pushImage("skopeo", layout, shape, `${node.registry.pushHost}/apps/${shape}:${tag}`);
    images[shape] = `${node.registry.host}/apps/${shape}:${tag}`;
  }
  await pushIndex(node, "apps/debian", tag, `multi-${tag}`);
  return { images, multiPlatform: `${node.registry.host}/apps/debian:multi-${tag}`, program };
}

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

async function registry(node: NodeCoordinates, path: string, init: RequestInit = {}): Promise<Buffer> {
  const response = await fetch(`http://${node.registry.pushHost}${path}`, init);
  if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${await response.text()}`);
  return Buffer.from(await response.arrayBuffer());
}

async function putManifest(node: NodeCoordinates, repository: string, reference: string, mediaType: string, body: Buffer) {
  await registry(node, `/v2/${repository}/manifests/${reference}`, { method: "PUT", headers: { "content-type": mediaType }, body });
}

/**
 * Tags `target` as an index of two manifests: first a linux/arm64 variant of `tag` whose ENTRYPOINT
 * does not exist (a lookup that picks the first entry, or the wrong platform, breaks the pod), then
 * the linux/amd64 image itself.
 */
async function pushIndex(node: NodeCoordinates, repository: string, tag: string, target: string): Promise<void> {
  const amd64 = await registry(node, `/v2/${repository}/manifests/${tag}`, { headers: { accept: MANIFEST } });
  const manifest = JSON.parse(amd64.toString("utf8"));
  const config = JSON.parse((await registry(node, `/v2/${repository}/blobs/${manifest.config.digest}`)).toString("utf8"));
  const armConfig = Buffer.from(
    JSON.stringify({ ...config, architecture: "arm64", config: { ...config.config, Entrypoint: ["/wrong-platform"] } }),
  );
  const upload = await fetch(`http://${node.registry.pushHost}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  const location = new URL(upload.headers.get("location") ?? "", `http://${node.registry.pushHost}`);
  location.searchParams.set("digest", sha256(armConfig));
  await registry(node, `${location.pathname}${location.search}`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: armConfig,
  });
  const armManifest = Buffer.from(
    JSON.stringify({ ...manifest, config: { ...manifest.config, digest: sha256(armConfig), size: armConfig.length } }),
  );
  await putManifest(node, repository, sha256(armManifest), MANIFEST, armManifest);
  const entry = (body: Buffer, architecture: string) => ({
    mediaType: MANIFEST,
    digest: sha256(body),
    size: body.length,
    platform: { os: "linux", architecture },
  });
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [entry(armManifest, "arm64"), entry(amd64, "amd64")] }),
  );
  await putManifest(node, repository, target, INDEX, index);
}
