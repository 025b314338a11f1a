// The portable runtime's layout: what `npm run build` puts in dist/shim-runtime/<os>-<arch>/ (one
// directory per platform, e.g. linux-amd64 and linux-arm64), what `kustodia-shim install <dir>`
// copies, and what runs at /kustodia in every injected container.
//
//   kustodia-shim   static launcher (launcher.c): starts kustodia-node, keeps argv as it is
//   kustodia-node   the pinned Node, stripped, as a single executable application carrying the
//                   bundled shim and its V8 code cache; ELF interpreter and RPATH /kustodia/lib
//   lib/            glibc's loader and exactly the libraries that Node needs (from ldd)
//   tini            Debian's tini-static, for rotation mode (zombie reaping)
//   licenses/       the licenses of what is shipped
//   runtime.json    this manifest: every file with its mode, size and sha256
//
// The ELF interpreter is an absolute path, so the runtime runs only at /kustodia. The shim image
// keeps the runtime at its root with a `kustodia -> .` symlink: /kustodia/kustodia-shim works in
// the install init container and when the image is mounted at /kustodia as an image volume.
import { basename } from "node:path";
import { MOUNT_PATH, SHIM_PATH } from "../../common/contract.ts";

/** Where the runtime runs (the ELF interpreter and RPATH point here). */
export const RUNTIME_DIR = MOUNT_PATH;

/** File names inside the runtime directory. */
export const RuntimeFile = {
  launcher: basename(SHIM_PATH),
  node: "kustodia-node",
  tini: "tini",
  lib: "lib",
  licenses: "licenses",
  manifest: "runtime.json",
} as const;

/** The tini the shim can put in front of itself in rotation mode. */
export const TINI_PATH = `${RUNTIME_DIR}/${RuntimeFile.tini}`;

export const MANIFEST_NAME = "kustodia-shim-runtime";

/** The platforms a runtime is built for (OCI `os/architecture`), with Node's `process.arch` for each. */
export const RUNTIME_PLATFORMS = { "linux/amd64": "x64", "linux/arm64": "arm64" } as const;
export type RuntimePlatform = keyof typeof RUNTIME_PLATFORMS;

/** The platform whose runtime a Node of `arch` (`process.arch`) on Linux runs, if one is built. */
export function runtimePlatformOf(arch: string = process.arch): RuntimePlatform | undefined {
  return (Object.keys(RUNTIME_PLATFORMS) as RuntimePlatform[]).find((platform) => RUNTIME_PLATFORMS[platform] === arch);
}

/** The directory of a platform's runtime under dist/shim-runtime: `linux-arm64`. */
export function runtimePlatformDir(platform: RuntimePlatform): string {
  return platform.replace("/", "-");
}

export interface RuntimeFileEntry {
  /** Relative to the runtime directory, `/`-separated. */
  path: string;
  /** 0o755 for executables (and glibc's loader), 0o644 for everything else. */
  mode: number;
  size: number;
  sha256: string;
}

export interface RuntimeManifest {
  name: typeof MANIFEST_NAME;
  /** kustodia's version (package.json). */
  version: string;
  /** The platform it runs on: linux/amd64, linux/arm64. */
  platform: RuntimePlatform;
  /** Node's name for the platform's architecture (`process.arch`): x64, arm64. */
  arch: string;
  node: string;
  /** The ELF interpreter of kustodia-node, e.g. /kustodia/lib/ld-linux-x86-64.so.2. */
  interpreter: string;
  glibc: string;
  tini: string;
  /** Every file except runtime.json itself, sorted by path. */
  files: RuntimeFileEntry[];
}

/** The manifest in `text`, or an Error saying why it is not one. */
export function parseManifest(text: string): RuntimeManifest | Error {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return new Error(`not JSON: ${(error as Error).message}`);
  }
  const manifest = value as Partial<RuntimeManifest> | null;
  if (manifest?.name !== MANIFEST_NAME || !Array.isArray(manifest.files)) return new Error(`not a ${MANIFEST_NAME} manifest`);
  for (const file of manifest.files) {
    const safe = typeof file?.path === "string" && file.path !== "" && !file.path.startsWith("/") && !file.path.split("/").includes("..");
    if (!safe || typeof file.mode !== "number" || typeof file.size !== "number") {
      return new Error(`bad file entry ${JSON.stringify(file)}`);
    }
  }
  return manifest as RuntimeManifest;
}
