// The demo's output: short lines for a JSON Patch, a stored container, and two columns side by side.
import type { Json, JsonObject } from "../../webhook/pod.ts";

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/** One line per operation: `add     /spec/containers/0/env/1  {"name":"KUSTODIA_BACKEND","value":"vault"}`. */
export function patchLines(operations: readonly JsonObject[], width = 110): string[] {
  const pathWidth = Math.min(42, Math.max(...operations.map((operation) => String(operation.path).length)));
  return operations.map((operation) => {
    const head = `${String(operation.op).padEnd(7)} ${String(operation.path).padEnd(pathWidth)}`;
    const value = operation.value === undefined ? "" : `  ${JSON.stringify(operation.value)}`;
    return truncate(`${head}${value}`, width);
  });
}

/** A word as YAML would print it: bare where YAML allows, JSON-quoted otherwise. */
function yamlWord(word: Json): string {
  return typeof word === "string" && /^[A-Za-z0-9/_.:-]+$/.test(word) ? word : JSON.stringify(word);
}

/** The parts of a stored container that tell the story (command and env), as YAML lines. */
export function containerLines(container: JsonObject): string[] {
  const lines = [`name: ${String(container.name)}`];
  for (const key of ["command", "args"]) {
    const words = container[key];
    if (!Array.isArray(words)) continue;
    lines.push(`${key}:`, ...words.map((word) => `- ${yamlWord(word)}`));
  }
  const env = Array.isArray(container.env) ? (container.env as JsonObject[]) : [];
  if (env.length > 0) lines.push("env:");
  for (const item of env) lines.push(`- ${String(item.name)}: ${item.value === undefined ? "(valueFrom)" : yamlWord(item.value)}`);
  return lines;
}

/** Two titled columns side by side, separated by ` │ `. */
export function sideBySide(
  left: { title: string; lines: string[] },
  right: { title: string; lines: string[] },
  leftWidth?: number,
): string[] {
  const width = leftWidth ?? Math.max(left.title.length, ...left.lines.map((line) => line.length));
  const rows = Math.max(left.lines.length, right.lines.length);
  const row = (a: string, b: string) => `${truncate(a, width).padEnd(width)} │ ${b}`.trimEnd();
  const out = [row(left.title, right.title), row("─".repeat(width), "─".repeat(Math.max(right.title.length, 10)))];
  for (let index = 0; index < rows; index++) out.push(row(left.lines[index] ?? "", right.lines[index] ?? ""));
  return out;
}
