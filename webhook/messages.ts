// Text that reaches people through the apiserver (admission warnings printed by kubectl, denial
// messages) is partly made of what the pod says: container and env var names, annotation values.
// Before admission those are unvalidated, so they may hold terminal escapes, newlines, bidi overrides
// or 100 KiB names. Every such text leaves the webhook escaped and bounded.

/** C0/C1 controls, line/paragraph separators, bidi marks and overrides. */
const UNSAFE = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

export const MAX_WARNINGS = 20;
/** The apiserver may cut warnings past 256 characters; ours stay readable well before that limit matters. */
export const MAX_WARNING_LENGTH = 400;
export const MAX_MESSAGE_LENGTH = 2000;

/**
 * `text` with unsafe characters as `\uXXXX` escapes, at most `max` characters: a longer one loses
 * its middle (an ellipsis marks the cut), because messages end with what is wrong and how to fix it.
 */
export function safeText(text: string, max: number): string {
  const escaped = text.replace(UNSAFE, (char) => `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, "0")}`);
  if (escaped.length <= max) return escaped;
  const tail = Math.floor(max / 3);
  let head = escaped.slice(0, max - 1 - tail);
  let end = escaped.slice(-tail);
  // Never split a surrogate pair.
  if (/[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  if (/^[\udc00-\udfff]/.test(end)) end = end.slice(1);
  return `${head}…${end}`;
}

/** At most MAX_WARNINGS distinct, escaped, bounded warnings, and a last one saying how many were left out. */
export function boundedWarnings(warnings: readonly string[]): string[] {
  const distinct = [...new Set(warnings)];
  const shown = distinct.slice(0, MAX_WARNINGS).map((warning) => safeText(warning, MAX_WARNING_LENGTH));
  if (distinct.length > MAX_WARNINGS) shown.push(`${distinct.length - MAX_WARNINGS} more warning(s) not shown`);
  return shown;
}
