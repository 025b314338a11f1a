// Picking a platform from an image index the way containerd does: both sides normalized
// (`aarch64` is arm64, arm64's `v8` is the default variant, `arm` means arm/v7), and an arm/vN
// machine also running older arm variants.
import type { Platform } from "../image-facts.ts";

export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase() === "macos" ? "darwin" : platform.os.toLowerCase();
  let architecture = platform.architecture.toLowerCase();
  let variant = (platform.variant ?? "").toLowerCase();
  if (architecture === "i386") [architecture, variant] = ["386", ""];
  else if (["x86_64", "x86-64", "amd64"].includes(architecture)) [architecture, variant] = ["amd64", variant === "v1" ? "" : variant];
  else if (architecture === "aarch64" || architecture === "arm64") {
    architecture = "arm64";
    if (["8", "v8", "v8.0"].includes(variant)) variant = "";
    else if (["9", "9.0", "v9.0"].includes(variant)) variant = "v9";
  } else if (architecture === "armhf") [architecture, variant] = ["arm", "v7"];
  else if (architecture === "armel") [architecture, variant] = ["arm", "v6"];
  else if (architecture === "arm" && ["", "5", "6", "7", "8"].includes(variant)) variant = `v${variant || "7"}`;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** `linux/arm64/v8` */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

/** The platforms `wanted` runs, best first (containerd's `platforms.Only`, for arm's older variants). */
function acceptable(wanted: Platform): Platform[] {
  const normalized = normalizePlatform(wanted);
  const armVersion = normalized.architecture === "arm" ? Number(/^v([5-8])$/.exec(normalized.variant ?? "")?.[1]) : Number.NaN;
  if (Number.isNaN(armVersion)) return [normalized];
  const older: Platform[] = [];
  for (let version = armVersion; version >= 5; version--) older.push({ ...normalized, variant: `v${version}` });
  return older;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? "") === (b.variant ?? "");
}

/** The index entry to use for `wanted`: the best acceptable platform, first in index order among equals. */
export function selectPlatform<T extends { platform?: Platform }>(entries: readonly T[], wanted: Platform): T | undefined {
  for (const candidate of acceptable(wanted)) {
    const found = entries.find((entry) => entry.platform && samePlatform(normalizePlatform(entry.platform), candidate));
    if (found) return found;
  }
  return undefined;
}
