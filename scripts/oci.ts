// Writes OCI images (image-spec v1.1) without a container engine: reproducible layers (entries in
// path order, owner 0:0 unless set, mtime 0, no user or group names), configs without timestamps or
// history, an image index with one manifest per platform, and the `oci-archive` tar of the layout
// (what `skopeo copy oci-archive:<file> …` reads). The same entries always give the same digests.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { type Header, pack } from "tar-stream";

export const MediaType = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** The annotation that names an image in an OCI layout's index.json (`oci-archive:<file>:<name>`). */
export const REF_NAME = "org.opencontainers.image.ref.name";

export type LayerEntry =
  | { type: "file"; path: string; mode: number; data: Buffer; uid?: number; gid?: number }
  | { type: "directory"; path: string; mode: number; uid?: number; gid?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "link"; path: string; target: string };

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The runtime part of an image config (`config` in the OCI image config). */
export interface RuntimeConfig {
  User?: string;
  WorkingDir?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  ExposedPorts?: Record<string, Record<string, never>>;
}

const EPOCH = new Date(0);

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

function jsonBlob(mediaType: string, value: unknown): Blob {
  return blob(mediaType, Buffer.from(JSON.stringify(value)));
}

export function descriptor(of: Blob, extra: Pick<Descriptor, "platform" | "annotations"> = {}): Descriptor {
  return { mediaType: of.mediaType, digest: of.digest, size: of.size, ...extra };
}

/** `a/b/c` without a leading `/` or `./` and without a trailing `/`. */
export function normalizePath(path: string): string {
  return path.replace(/^(\.?\/)+/, "").replace(/\/+$/, "");
}

function comparePaths(a: string, b: string): number {
  const [left, right] = [a.split("/"), b.split("/")];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const [x, y] = [left[i] as string, right[i] as string];
    if (x !== y) return Buffer.compare(Buffer.from(x), Buffer.from(y));
  }
  return left.length - right.length;
}

/**
 * The entries of one layer, by path: parents are added as 0755 directories where missing, a path
 * given twice must be the same directory or the same bytes (later packages of one layer may repeat
 * a directory, never a different file).
 */
export class LayerTree {
  readonly #entries = new Map<string, LayerEntry>();

  add(entry: LayerEntry): this {
    const path = normalizePath(entry.path);
    if (path === "") return this;
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (!this.#entries.has(parent)) this.#entries.set(parent, { type: "directory", path: parent, mode: 0o755 });
    }
    const normalized = { ...entry, path };
    const existing = this.#entries.get(path);
    if (existing && !sameEntry(existing, normalized)) {
      if (existing.type === "directory" && normalized.type === "directory") return this;
      throw new Error(`layer entry ${path} is given twice, differently (${existing.type}, ${normalized.type})`);
    }
    this.#entries.set(path, normalized);
    return this;
  }

  /** Entries in path order, each parent before its children. */
  entries(): LayerEntry[] {
    return [...this.#entries.values()].sort((a, b) => comparePaths(a.path, b.path));
  }

  paths(): string[] {
    return this.entries().map((entry) => entry.path);
  }
}

function sameEntry(a: LayerEntry, b: LayerEntry): boolean {
  if (a.type !== b.type) return false;
  if (a.type === "file" && b.type === "file") return a.mode === b.mode && a.data.equals(b.data);
  if ((a.type === "symlink" || a.type === "link") && (b.type === "symlink" || b.type === "link")) return a.target === b.target;
  return a.type === "directory";
}

type TarHeader = Partial<Header> & Pick<Header, "name">;

function header(entry: LayerEntry): TarHeader {
  const owner = { uid: 0, gid: 0, uname: "", gname: "", mtime: EPOCH };
  switch (entry.type) {
    case "file":
      return {
        ...owner,
        name: entry.path,
        type: "file",
        mode: entry.mode,
        size: entry.data.length,
        uid: entry.uid ?? 0,
        gid: entry.gid ?? 0,
      };
    case "directory":
      return { ...owner, name: `${entry.path}/`, type: "directory", mode: entry.mode, uid: entry.uid ?? 0, gid: entry.gid ?? 0 };
    case "symlink":
      return { ...owner, name: entry.path, type: "symlink", mode: 0o777, linkname: entry.target };
    case "link":
      return { ...owner, name: entry.path, type: "link", mode: 0o644, linkname: normalizePath(entry.target) };
  }
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A tar of `entries` in the given order, every header fixed by the entry alone. */
async function tarOf(entries: Iterable<{ header: TarHeader; data?: Buffer }>): Promise<Buffer> {
  const packer = pack();
  const written = collect(packer as AsyncIterable<Buffer>);
  for (const { header: head, data } of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (data) packer.entry(head, data, done);
      else packer.entry(head, done);
    });
  }
  packer.finalize();
  return await written;
}

export interface Layer {
  /** The compressed layer, as stored and pushed. */
  blob: Blob;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
}

export async function buildLayer(tree: LayerTree): Promise<Layer> {
  const uncompressed = await tarOf(
    tree.entries().map((entry) => ({ header: header(entry), data: entry.type === "file" ? entry.data : undefined })),
  );
  // gzip's header carries no mtime or name here (zlib writes 0 and none): the bytes depend on the tar
  // alone. Compressed off the main thread, so that layers built at once are compressed at once.
  return { blob: blob(MediaType.layer, await promisify(gzip)(uncompressed)), diffId: sha256(uncompressed) };
}

export interface PlatformImage {
  platform: Platform;
  layers: Layer[];
  config: RuntimeConfig;
}

export interface Image {
  /** The image index: what a multi-platform reference (and `skopeo copy --all`) resolves to. */
  index: Blob;
  /** Per platform (`linux/amd64`): its manifest's digest. */
  manifests: Record<string, string>;
  blobs: Blob[];
}

export function platformKey(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

/** An image index over one manifest (and config) per platform; no created time, no history. */
export function buildImage(images: PlatformImage[], annotations: Record<string, string> = {}): Image {
  const blobs = new Map<string, Blob>();
  const keep = (one: Blob) => blobs.set(one.digest, one);
  const manifests: Record<string, string> = {};
  const descriptors = images.map(({ platform, layers, config }) => {
    const configBlob = jsonBlob(MediaType.config, {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config,
      rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    });
    const manifest = jsonBlob(MediaType.manifest, {
      schemaVersion: 2,
      mediaType: MediaType.manifest,
      config: descriptor(configBlob),
      layers: layers.map((layer) => descriptor(layer.blob)),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    });
    for (const one of [configBlob, ...layers.map((layer) => layer.blob), manifest]) keep(one);
    manifests[platformKey(platform)] = manifest.digest;
    return descriptor(manifest, { platform });
  });
  const index = jsonBlob(MediaType.index, {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: descriptors,
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  });
  keep(index);
  return { index, manifests, blobs: [...blobs.values()].sort((a, b) => a.digest.localeCompare(b.digest)) };
}

/** The OCI layout of `image` (its index tagged `refName`) as one tar: an `oci-archive`. */
export async function writeOciArchive(file: string, image: Image, refName: string): Promise<void> {
  const dir = (path: string) => ({
    header: { name: path, type: "directory" as const, mode: 0o755, mtime: EPOCH, uid: 0, gid: 0, uname: "", gname: "" },
  });
  const file_ = (path: string, data: Buffer) => ({
    header: { name: path, type: "file" as const, mode: 0o644, size: data.length, mtime: EPOCH, uid: 0, gid: 0, uname: "", gname: "" },
    data,
  });
  const indexJson = {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: [descriptor(image.index, { annotations: { [REF_NAME]: refName } })],
  };
  const entries = [
    file_("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }))),
    file_("index.json", Buffer.from(JSON.stringify(indexJson))),
    dir("blobs/"),
    dir("blobs/sha256/"),
    ...image.blobs.map((one) => file_(`blobs/sha256/${one.digest.slice("sha256:".length)}`, one.bytes)),
  ];
  await pipeline(Readable.from([await tarOf(entries)]), createWriteStream(file));
}
