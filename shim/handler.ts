// The shim in front of a wrapped exec probe or lifecycle hook (`KUSTODIA_ROLE=probe|hook`, which the
// webhook writes into the handler's command for kustodia.io/wrap-exec). It resolves the container's
// references as at the app's start and execs the handler, which then exits with its own code; it
// never stays resident, and writes no audit record unless KUSTODIA_HANDLER_AUDIT asks for one.
import type { ShimRole } from "../common/shim-settings.ts";

export function isHandler(role: ShimRole): boolean {
  return role !== "app";
}

/**
 * The kubelet expands `$(NAME)` in a probe's command (never in a hook's) with the values the pod spec
 * sets; a var that a reference defines is not among them, so its `$(NAME)` reaches the shim as it was
 * written. The shim expands exactly those with the values it resolved: the kubelet has already
 * expanded everything else, and turned `$$` into `$`.
 */
export function expandResolved(words: readonly string[], values: ReadonlyMap<string, string>): string[] {
  return words.map((word) => word.replace(/\$\(([^)]*)\)/g, (written, name: string) => values.get(name) ?? written));
}
