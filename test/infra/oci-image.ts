// Small single-layer OCI images without Docker, for the test node: host files copied into a fresh
// rootfs, made into an image in an OCI layout with umoci, pushed to a registry with skopeo.
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface ImageContent {
  /** Absolute path inside the image → host file copied there (mode kept), or `{ symlink }`. */
  files: Record<string, string | { symlink: string }>;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  user?: string;
}

/** Debian's static busybox (group runtime-test) with `applets` as symlinks in /bin, and PATH=/bin. */
export function busyboxImage(applets: string[], config: Omit<ImageContent, "files" | "env"> = {}): ImageContent {
  const busybox = execFileSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).trim();
  const links = Object.fromEntries(applets.map((name) => [`/bin/${name}`, { symlink: "busybox" }]));
  return { files: { "/bin/busybox": busybox, ...links }, env: ["PATH=/bin"], ...config };
}

/** Writes `content` as image `tag` into the OCI layout at `layout` (created when missing). */
export async function buildImage(umoci: string, layout: string, tag: string, content: ImageContent): Promise<void> {
  if (!existsSync(join(layout, "index.json"))) await execFileAsync(umoci, ["init", "--layout", layout]);
  await execFileAsync(umoci, ["new", "--image", `${layout}:${tag}`]);
  const work = mkdtempSync(join(dirname(layout), `${tag}-`));
  try {
    const rootfs = join(work, "rootfs");
    for (const [path, source] of Object.entries(content.files)) {
      const target = join(rootfs, path);
      mkdirSync(dirname(target), { recursive: true });
      if (typeof source === "string") copyFileSync(source, target);
      else symlinkSync(source.symlink, target);
    }
    const tar = join(work, "layer.tar");
    const reproducible = ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner"];
    await execFileAsync("tar", ["-C", rootfs, ...reproducible, "-cf", tar, "."]);
    await execFileAsync(umoci, ["raw", "add-layer", "--image", `${layout}:${tag}`, tar]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const config = ["config", "--image", `${layout}:${tag}`, "--architecture=amd64", "--os=linux"];
  for (const word of content.entrypoint ?? []) config.push(`--config.entrypoint=${word}`);
  for (const word of content.cmd ?? []) config.push(`--config.cmd=${word}`);
  for (const variable of content.env ?? []) config.push(`--config.env=${variable}`);
  if (content.user) config.push(`--config.user=${content.user}`);
  await execFileAsync(umoci, config);
}

/** Pushes `<layout>:<tag>` to a plain-HTTP anonymous registry as `reference`; returns the manifest digest. */
export async function pushImage(skopeo: string, layout: string, tag: string, reference: string): Promise<string> {
  const digestFile = join(layout, `${tag}.pushed-digest`);
  await execFileAsync(skopeo, [
    "--insecure-policy",
    "copy",
    "--quiet",
    "--dest-no-creds",
    "--dest-tls-verify=false",
    `--digestfile=${digestFile}`,
    `oci:${layout}:${tag}`,
    `docker://${reference}`,
  ]);
  return readFileSync(digestFile, "utf8").trim();
}
