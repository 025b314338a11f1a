// What the webhook adds to the pod around the containers (DESIGN.md §4): the `kustodia` volume
// (emptyDir or the shim image as an image volume), the `kustodia-install` init container that fills
// it, and a projected token for the shim where the pod mounts none.
import { INSTALL_MOUNT_PATH, MOUNT_PATH, SHIM_IN_IMAGE } from "../common/contract.ts";
import { isAtOrUnder } from "./mount-path.ts";
import { arrayAt, isObject, type JsonObject, type RawContainer, stringAt } from "./pod.ts";
import type { Settings } from "./settings.ts";

export type VolumeSettings = Pick<
  Settings,
  "shimImage" | "delivery" | "emptyDirSizeLimit" | "installResources" | "installRunAsUser" | "saTokenAudience"
>;

export function freeName(taken: Set<string>, base: string): string {
  if (!taken.has(base)) return base;
  for (let n = 1; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

const RESTRICTED_SECURITY_CONTEXT = (runAsUser: number): JsonObject => ({
  runAsNonRoot: true,
  runAsUser,
  runAsGroup: runAsUser,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
});

export function installContainer(name: string, volume: string, settings: VolumeSettings): JsonObject {
  return {
    name,
    image: settings.shimImage,
    imagePullPolicy: "IfNotPresent",
    command: [SHIM_IN_IMAGE, "install", INSTALL_MOUNT_PATH],
    resources: structuredClone(settings.installResources),
    securityContext: RESTRICTED_SECURITY_CONTEXT(settings.installRunAsUser),
    volumeMounts: [{ name: volume, mountPath: INSTALL_MOUNT_PATH }],
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

export function shimVolume(name: string, settings: VolumeSettings): JsonObject {
  if (settings.delivery === "image-volume") return { name, image: { reference: settings.shimImage, pullPolicy: "IfNotPresent" } };
  return { name, emptyDir: { sizeLimit: settings.emptyDirSizeLimit } };
}

export function allContainerNames(spec: JsonObject): Set<string> {
  const names = new Set<string>();
  for (const list of ["containers", "initContainers", "ephemeralContainers"]) {
    for (const item of arrayAt(spec, list) ?? []) if (isObject(item) && typeof item.name === "string") names.add(item.name);
  }
  return names;
}

export function mountsAtShimPath(container: RawContainer): boolean {
  return (arrayAt(container, "volumeMounts") ?? []).some((mount) => isAtOrUnder(stringAt(mount, "mountPath") ?? "", MOUNT_PATH));
}

/** A projected ServiceAccount token for the shim alone (rotated by the kubelet). */
export function tokenVolume(name: string, settings: VolumeSettings): JsonObject {
  const token: JsonObject = { path: "token", expirationSeconds: 3600 };
  if (settings.saTokenAudience) token.audience = settings.saTokenAudience;
  return { name, projected: { defaultMode: 0o444, sources: [{ serviceAccountToken: token }] } };
}
