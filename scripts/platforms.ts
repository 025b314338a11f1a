// The platforms kustodia's images and shim runtimes are built for, in each naming the build needs:
// OCI (`linux/arm64`, the image index), Node (`process.arch`, the npm package node-linux-<node>),
// Debian (the dpkg architecture and multiarch triplet of its libraries and cross tools) and QEMU
// (the user-mode emulator that runs the platform's programs on another machine).
import { RUNTIME_PLATFORMS, type RuntimePlatform } from "../shim/runtime/layout.ts";

export interface TargetPlatform {
  /** `os/architecture`, as in an image index. */
  key: RuntimePlatform;
  os: "linux";
  architecture: string;
  /** Node's name for the architecture: `process.arch`, the npm package node-linux-<node>. */
  node: string;
  /** dpkg's name for the architecture (`libc6:arm64`). */
  debian: string;
  /** The GNU triplet: multiarch library directory and cross tools' prefix (`aarch64-linux-gnu-gcc`). */
  triplet: string;
  /** The static QEMU user-mode emulator for it (Debian qemu-user-static). */
  qemu: string;
}

function platform(architecture: "amd64" | "arm64", cpu: "x86_64" | "aarch64"): TargetPlatform {
  const key = `linux/${architecture}` as const;
  return {
    key,
    os: "linux",
    architecture,
    node: RUNTIME_PLATFORMS[key],
    debian: architecture,
    triplet: `${cpu}-linux-gnu`,
    qemu: `qemu-${cpu}-static`,
  };
}

/** Every platform built, in the order of the image indexes. */
export const PLATFORMS: readonly TargetPlatform[] = [platform("amd64", "x86_64"), platform("arm64", "aarch64")];

/** The platform `key` (`linux/arm64`); throws for one that is not built. */
export function targetPlatform(key: string): TargetPlatform {
  const found = PLATFORMS.find((one) => one.key === key);
  if (!found) throw new Error(`unknown platform ${JSON.stringify(key)}: one of ${PLATFORMS.map((one) => one.key).join(", ")}`);
  return found;
}

/** This machine's platform, when it is one that is built. */
export function hostPlatform(): TargetPlatform | undefined {
  return process.platform === "linux" ? PLATFORMS.find((one) => one.node === process.arch) : undefined;
}
