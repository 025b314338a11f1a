// Exec probes and lifecycle hooks of an injected container (issue #18). The kubelet runs them as new
// processes with the container's spec env, so they see `SECRET_PASSWORD: myapp/password`, never
// PASSWORD: only the app's process gets the values. A handler that names such a var is a warning at
// admission; with `kustodia.io/wrap-exec` the webhook runs it through the shim instead, in the role
// of a handler (`KUSTODIA_ROLE=probe|hook`) with a deadline that fits the probe's timeoutSeconds.
import { Annotations, SHIM_PATH } from "../common/contract.ts";
import { isValidEnvName, targetName } from "../common/reference.ts";
import { type ExecHandlerKind, PodSettings, PROBE_DEADLINE_SHARE, readPodSetting, ShimSettings } from "../common/shim-settings.ts";
import type { Finding } from "./findings.ts";
import { annotations, envOf, type JsonObject, objectAt, type RawContainer, stringListAt } from "./pod.ts";

export interface ExecHandler {
  kind: ExecHandlerKind;
  /** The probe, or `lifecycle.postStart` / `lifecycle.preStop`: the object that holds `exec`. */
  handler: JsonObject;
  command: string[];
}

/** What the mutation did to one handler: its new command. */
export interface WrappedHandler {
  kind: ExecHandlerKind;
  command: string[];
}

const PROBES = ["livenessProbe", "readinessProbe", "startupProbe"] as const;
const HOOKS = ["postStart", "preStop"] as const;

/** Kubernetes' default and minimum of a probe's timeoutSeconds, and its largest (an int32). */
const DEFAULT_PROBE_TIMEOUT_S = 1;
const MAX_PROBE_TIMEOUT_S = 2 ** 31 - 1;

/** The container's exec probes and exec lifecycle hooks, in the order of EXEC_HANDLER_KINDS. */
export function execHandlers(container: RawContainer): ExecHandler[] {
  const lifecycle = objectAt(container, "lifecycle");
  const holders: [ExecHandlerKind, JsonObject | undefined][] = [
    ...PROBES.map((kind): [ExecHandlerKind, JsonObject | undefined] => [kind, objectAt(container, kind)]),
    ...HOOKS.map((kind): [ExecHandlerKind, JsonObject | undefined] => [kind, objectAt(lifecycle, kind)]),
  ];
  return holders.flatMap(([kind, handler]) => {
    const command = stringListAt(objectAt(handler, "exec"), "command");
    return handler && command ? [{ kind, handler, command }] : [];
  });
}

/** The kinds of handlers the pod's `wrap-exec` annotation asks to wrap, or the denial of a value the webhook does not support. */
export function wrapExecKinds(pod: JsonObject): { kinds: ReadonlySet<ExecHandlerKind> } | { denial: Finding } {
  const raw = annotations(pod)[Annotations.wrapExec];
  const read = readPodSetting("wrapExec", raw);
  if (!read.ok) {
    return {
      denial: {
        code: "KUS_ANNOTATION_INVALID",
        annotation: Annotations.wrapExec,
        value: raw ?? "",
        accepted: PodSettings.wrapExec.accepted,
      },
    };
  }
  return { kinds: new Set(read.value) };
}

/**
 * The vars the container's references define (`SECRET_PASSWORD` → PASSWORD), which only the app
 * gets. A var the container also sets itself is left out: its handlers see that value (and the
 * collision is a warning of its own).
 */
export function referenceTargets(container: RawContainer, prefix: string, passthrough: ReadonlySet<string>): Set<string> {
  const env = envOf(container);
  const own = new Set(env.map((item) => item.name));
  const targets = new Set<string>();
  for (const item of env) {
    const target = targetName(item.name, prefix);
    if (target !== undefined && !passthrough.has(item.name) && isValidEnvName(target) && !own.has(target)) targets.add(target);
  }
  return targets;
}

const SHELLS = new Set(["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"]);
const NAME_CHAR = "[A-Za-z0-9_]";

/** The script of `sh -c '<script>'` (also `bash -ec`, `/bin/busybox sh -c`), if `command` is one. */
function shellScript(command: readonly string[]): string | undefined {
  const program = command[0]?.split("/").at(-1) ?? "";
  const start = program === "busybox" && command[1] === "sh" ? 2 : SHELLS.has(program) ? 1 : -1;
  if (start < 0) return undefined;
  const flag = command.slice(start).findIndex((word) => /^-[A-Za-z]*c[A-Za-z]*$/.test(word));
  return flag < 0 ? undefined : command[start + flag + 1];
}

function escaped(name: string): string {
  return name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The names among `names` that `command` reads: `$NAME`, `${NAME}` (and `${NAME:-x}`, `${#NAME}`),
 * `$(NAME)` (the kubelet's expansion) or a word that is just NAME (`printenv NAME`) anywhere; in
 * the script of `sh -c` also NAME alone. Never a longer name: `$PASSWORD_FILE` is not PASSWORD.
 */
export function namesRead(command: readonly string[], names: ReadonlySet<string>): string[] {
  const script = shellScript(command);
  return [...names].filter((name) => {
    const alone = new RegExp(`(?<!${NAME_CHAR})${escaped(name)}(?!${NAME_CHAR})`);
    const expanded = new RegExp(`\\$(?:${escaped(name)}(?!${NAME_CHAR})|\\{#?${escaped(name)}(?!${NAME_CHAR})|\\(${escaped(name)}\\))`);
    return command.some((word) => word === name || expanded.test(word) || (word === script && alone.test(word)));
  });
}

function isWrapped(command: readonly string[]): boolean {
  return command[0] === SHIM_PATH;
}

/** `KUSTODIA_TIMEOUT` of a probe: a share of its timeoutSeconds (Kubernetes' default 1 s when unset, or invalid: the apiserver refuses the pod then). */
export function probeDeadlineMs(probe: JsonObject): number {
  const seconds = probe.timeoutSeconds;
  const valid = typeof seconds === "number" && Number.isInteger(seconds) && seconds >= 1 && seconds <= MAX_PROBE_TIMEOUT_S;
  const timeout = valid ? seconds : DEFAULT_PROBE_TIMEOUT_S;
  return Math.round(timeout * 1000 * PROBE_DEADLINE_SHARE);
}

/** The handler's command through the shim, in the role of a probe or hook. */
export function wrappedCommand({ kind, handler, command }: ExecHandler): string[] {
  const probe = (PROBES as readonly string[]).includes(kind);
  const words = [`${ShimSettings.role.env}=${probe ? "probe" : "hook"}`];
  if (probe) words.push(`${ShimSettings.timeout.env}=${probeDeadlineMs(handler)}ms`);
  return [SHIM_PATH, ...words, "--", ...command];
}

/**
 * Wraps, in place in `container`, the exec handlers of the kinds in `wrap`; warns about each handler
 * left unwrapped that reads a var the container's references define, and about wrapped handlers of a
 * container whose references issue secrets (each run issues anew).
 */
export function planExecHandlers(
  container: RawContainer,
  { wrap, targets, issues }: { wrap: ReadonlySet<ExecHandlerKind>; targets: ReadonlySet<string>; issues: boolean },
  warnings: Finding[],
): WrappedHandler[] {
  const wrapped: WrappedHandler[] = [];
  for (const handler of execHandlers(container)) {
    if (isWrapped(handler.command)) continue;
    if (wrap.has(handler.kind)) {
      const command = wrappedCommand(handler);
      (handler.handler.exec as JsonObject).command = command;
      wrapped.push({ kind: handler.kind, command });
      continue;
    }
    const variables = namesRead(handler.command, targets);
    if (variables.length > 0)
      warnings.push({ code: "KUS_HANDLER_NEEDS_SECRET", container: container.name, handler: handler.kind, variables });
  }
  if (wrapped.length > 0 && issues) {
    warnings.push({ code: "KUS_WRAPPED_HANDLER_ISSUES", container: container.name, handlers: wrapped.map((handler) => handler.kind) });
  }
  return wrapped;
}
