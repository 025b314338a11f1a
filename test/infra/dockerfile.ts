// What can be proven about a Dockerfile without a container engine: its build stage's context,
// recreated from its COPY lines, so the stage's build command can run on exactly those files.
import { cpSync, mkdirSync, symlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** The text of a Dockerfile's first stage (the one after the first FROM). */
export function firstStage(dockerfile: string): string {
  return dockerfile.split(/^FROM /m)[1] ?? "";
}

/**
 * Copies into `into` what the stage's `COPY <sources...> <destination>` lines (not `COPY --from`)
 * take from the build context `contextDir`; a link to its node_modules stands in for `npm ci`.
 */
export function replayCopyLines(stage: string, contextDir: string, into: string): void {
  for (const match of stage.matchAll(/^COPY (?!--)(.+)$/gm)) {
    const parts = (match[1] as string).trim().split(/\s+/);
    const destination = parts.pop() as string;
    for (const source of parts) {
      const target = destination.endsWith("/")
        ? join(into, destination, source.endsWith("/") ? "" : basename(source))
        : join(into, destination);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(join(contextDir, source), target, { recursive: true });
    }
  }
  symlinkSync(join(contextDir, "node_modules"), join(into, "node_modules"));
}
