// Go-style durations, as both programs read them (KUSTODIA_TIMEOUT, rotation-interval, the
// webhook's registry timeouts).

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Longer text is no duration anyone means; the bound keeps the scan linear for hostile values. */
const MAX_DURATION_LENGTH = 64;

/** `30s`, `1m30s`, `500ms`, `1.5h` → milliseconds; undefined when it is not such a duration. */
export function parseDuration(value: string): number | undefined {
  if (value.length > MAX_DURATION_LENGTH) return undefined;
  const parts = [...value.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join("") !== value) return undefined;
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * (DURATION_UNITS[unit as string] ?? 0), 0);
}
