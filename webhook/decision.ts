// What `mutatePod` decides, as structure: per container why it was (not) selected and what it runs
// now, and the denials and warnings as findings. `renderDecision` turns it into the text the
// admission response carries.

import type { WrappedHandler } from "./exec-handlers.ts";
import type { Finding, Selection, SkipReason } from "./findings.ts";
import { renderDenial, renderSkipReason, renderWarnings } from "./findings.ts";
import type { JsonObject } from "./pod.ts";

export type ListName = "containers" | "initContainers";

export interface ContainerPlan {
  list: ListName;
  name: string;
  selected: boolean;
  selection: Selection;
  /** The command and args after the mutation (selected containers of a mutated pod). */
  command?: string[];
  args?: string[];
  /** The `KUSTODIA_*` settings the webhook added to the container's env. */
  shimEnv?: { name: string; value: string }[];
  /** The exec probes and hooks that now run through the shim (`kustodia.io/wrap-exec`), with their new command. */
  handlers?: WrappedHandler[];
}

export type Decision =
  | { kind: "skip"; reason: SkipReason; warnings: Finding[] }
  | {
      kind: "mutate";
      /** The pod as it should be stored. */
      pod: JsonObject;
      /** The init container put first into `pod`, if any — so a patch can say "insert" instead of "shift everything". */
      prepended?: JsonObject;
      containers: ContainerPlan[];
      injected: string[];
      warnings: Finding[];
    }
  | { kind: "deny"; denials: Finding[]; containers: ContainerPlan[]; warnings: Finding[] };

export type RenderedDecision =
  | { kind: "skip"; reason: string; warnings: string[] }
  | { kind: "mutate"; pod: JsonObject; prepended?: JsonObject; injected: string[]; warnings: string[] }
  | { kind: "deny"; message: string; warnings: string[] };

/** The decision in words, escaped and bounded, as the apiserver passes it on to people. */
export function renderDecision(decision: Decision): RenderedDecision {
  const warnings = renderWarnings(decision.warnings);
  switch (decision.kind) {
    case "skip":
      return { kind: "skip", reason: renderSkipReason(decision.reason), warnings };
    case "deny":
      return { kind: "deny", message: renderDenial(decision.denials), warnings };
    case "mutate":
      return {
        kind: "mutate",
        pod: decision.pod,
        ...(decision.prepended ? { prepended: decision.prepended } : {}),
        injected: decision.injected,
        warnings,
      };
  }
}
