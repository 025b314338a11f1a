// The mutation (DESIGN.md §2–§4), as a pure function over the raw pod JSON: which containers
// (selection.ts), their new command (command.ts), the shim's env (shim-env.ts), and the volume and
// install container (volumes.ts), its exec probes and hooks (exec-handlers.ts). No I/O: image ENTRYPOINT/CMD facts are looked up by the caller
// (see `imagesNeeded`) and passed in. The answer is structure (decision.ts); text is made at the edges.
import { Annotations, INSTALL_CONTAINER_NAME, MOUNT_PATH, SHIM_TOKEN_DIR, ShimEnv, VOLUME_NAME } from "../common/contract.ts";
import type { ExecHandlerKind } from "../common/shim-settings.ts";
import { shimCommand } from "./command.ts";
import type { ContainerPlan, Decision } from "./decision.ts";
import { planExecHandlers, referenceTargets, wrapExecKinds } from "./exec-handlers.ts";
import type { Finding } from "./findings.ts";
import type { ImageLookupResult } from "./image-facts.ts";
import { arrayAt, type Json, type JsonObject, objectAt, type RawContainer, stringAt } from "./pod.ts";
import { passthroughOf, referenceWarnings, type Selected, selectContainers, skipReason } from "./selection.ts";
import type { Settings } from "./settings.ts";
import {
  declaresIssued,
  hasServiceAccountToken,
  needsServiceAccountToken,
  podIdentityEnv,
  shimEnvironment,
  withShimEnv,
} from "./shim-env.ts";
import { allContainerNames, freeName, installContainer, mountsAtShimPath, shimVolume, tokenVolume } from "./volumes.ts";

/** The part of the webhook's settings that the mutation reads. */
export type MutationSettings = Pick<
  Settings,
  | "shimImage"
  | "shimVersion"
  | "delivery"
  | "emptyDirSizeLimit"
  | "installResources"
  | "installRunAsUser"
  | "referencePrefix"
  | "shimDefaults"
  | "vaultAddrAllowlist"
  | "saTokenAudience"
>;

interface PodNames {
  volume: string;
  taken: Set<string>;
  token?: string;
}

/** One selected container, mutated in place in `spec`; a denial when it cannot be. */
function mutateContainer(
  pod: JsonObject,
  { list, index, container }: Selected,
  context: {
    settings: MutationSettings;
    shimEnv: Map<string, string>;
    images: ReadonlyMap<string, ImageLookupResult>;
    wrap: ReadonlySet<ExecHandlerKind>;
  },
  names: PodNames,
  warnings: Finding[],
): Partial<ContainerPlan> | { denial: Finding } {
  if (mountsAtShimPath(container)) return { denial: { code: "KUS_SHIM_PATH_TAKEN", container: container.name } };
  const command = shimCommand(pod, container, context.images);
  if ("denial" in command) return command;
  const prefix = context.settings.referencePrefix;
  const passthrough = passthroughOf(pod);
  warnings.push(...referenceWarnings(container, prefix, passthrough));
  const mutated: RawContainer = { ...container, command: command.command };
  if (command.args) mutated.args = command.args;
  else delete mutated.args;
  const { env, added } = withShimEnv(container, context.shimEnv, warnings);
  mutated.env = [...env, ...podIdentityEnv(container, prefix, passthrough)];
  mutated.volumeMounts = [...(arrayAt(container, "volumeMounts") ?? []), { name: names.volume, mountPath: MOUNT_PATH, readOnly: true }];
  if (needsServiceAccountToken(context.shimEnv) && !hasServiceAccountToken(container)) {
    names.token ??= freeName(names.taken, `${VOLUME_NAME}-token`);
    warnings.push({ code: "KUS_TOKEN_MOUNTED", container: container.name });
    mutated.volumeMounts.push({ name: names.token, mountPath: SHIM_TOKEN_DIR, readOnly: true });
    const tokenFile = { name: ShimEnv.saTokenFile, value: `${SHIM_TOKEN_DIR}/token` };
    mutated.env.push(tokenFile);
    added.push(tokenFile);
  }
  const handlers = planExecHandlers(
    mutated,
    {
      wrap: context.wrap,
      targets: referenceTargets(container, prefix, passthrough),
      issues: declaresIssued(container, prefix, passthrough),
    },
    warnings,
  );
  (arrayAt(objectAt(pod, "spec"), list) as Json[])[index] = mutated;
  return {
    command: command.command,
    ...(command.args ? { args: command.args } : {}),
    shimEnv: added,
    ...(handlers.length > 0 ? { handlers } : {}),
  };
}

/**
 * Decides what happens to a pod: skip (no patch), mutate (the new pod), or deny (with findings that
 * name the fix). `images` holds the lookups for `imagesNeeded(pod)`, keyed by container name.
 */
export function mutatePod(original: JsonObject, settings: MutationSettings, images: ReadonlyMap<string, ImageLookupResult>): Decision {
  const reason = skipReason(original);
  if (reason) return { kind: "skip", reason, warnings: [] };

  const pod = structuredClone(original);
  const spec = objectAt(pod, "spec") as JsonObject;
  const { selected, all, warnings } = selectContainers(pod, settings.referencePrefix);
  const containers: ContainerPlan[] = all.map((container) => ({ ...container }));
  if (selected.length === 0) {
    warnings.push({ code: "KUS_NOTHING_TO_INJECT", prefix: settings.referencePrefix });
    setAnnotation(pod, Annotations.status, `skipped ${settings.shimVersion}: no container to inject`);
    return { kind: "mutate", pod, containers, injected: [], warnings };
  }

  const shimEnv = shimEnvironment(pod, settings);
  if ("denial" in shimEnv) return { kind: "deny", denials: [shimEnv.denial], containers, warnings };
  const wrap = wrapExecKinds(pod);
  if ("denial" in wrap) return { kind: "deny", denials: [wrap.denial], containers, warnings };

  const taken = new Set((arrayAt(spec, "volumes") ?? []).map((volume) => stringAt(volume, "name") ?? ""));
  const names: PodNames = { volume: freeName(taken, VOLUME_NAME), taken };
  taken.add(names.volume);
  const denials: Finding[] = [];
  for (const one of selected) {
    const plan = mutateContainer(pod, one, { settings, shimEnv: shimEnv.env, images, wrap: wrap.kinds }, names, warnings);
    if ("denial" in plan) denials.push(plan.denial);
    else Object.assign(containers.find((c) => c.list === one.list && c.name === one.container.name) ?? {}, plan);
  }
  if (denials.length > 0) return { kind: "deny", denials, containers, warnings };

  spec.volumes = [...(arrayAt(spec, "volumes") ?? []), shimVolume(names.volume, settings)];
  if (names.token) spec.volumes.push(tokenVolume(names.token, settings));
  let prepended: JsonObject | undefined;
  if (settings.delivery === "copy") {
    prepended = installContainer(freeName(allContainerNames(spec), INSTALL_CONTAINER_NAME), names.volume, settings);
    spec.initContainers = [prepended, ...(arrayAt(spec, "initContainers") ?? [])];
  }
  setAnnotation(pod, Annotations.status, `injected ${settings.shimVersion}`);
  const injected = selected.map(({ container }) => container.name);
  return { kind: "mutate", pod, ...(prepended ? { prepended } : {}), containers, injected, warnings };
}

function setAnnotation(pod: JsonObject, key: string, value: string): void {
  const metadata = objectAt(pod, "metadata") ?? {};
  pod.metadata = metadata;
  metadata.annotations = { ...(objectAt(metadata, "annotations") ?? {}), [key]: value };
}
