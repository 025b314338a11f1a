// Reading one setting at a time: each check turns a bad value into a message that names the var,
// quotes the value and says what is accepted; the reader collects them so that all are reported.
import { constants } from "node:os";

export type Environment = Readonly<Record<string, string>>;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** `30s`, `1m30s`, `500ms`, `1.5h` → milliseconds; undefined when it is not such a duration. */
export function parseDuration(value: string): number | undefined {
  const parts = [...value.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join("") !== value) return undefined;
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * (DURATION_UNITS[unit as string] ?? 0), 0);
}

/** `SIGHUP` or `HUP` → `SIGHUP`; undefined for unknown signals and those that cannot be sent usefully. */
export function parseSignal(value: string): NodeJS.Signals | undefined {
  const name = (value.toUpperCase().startsWith("SIG") ? value.toUpperCase() : `SIG${value.toUpperCase()}`) as NodeJS.Signals;
  if (name === "SIGKILL" || name === "SIGSTOP" || !(name in constants.signals)) return undefined;
  return name;
}

/** Reads and checks settings; each problem becomes one message naming its var. */
export class Reader {
  readonly errors: string[] = [];
  private readonly env: Environment;

  constructor(env: Environment) {
    this.env = env;
  }

  text(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value === "" ? undefined : value;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.text(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    return this.fail(name, value, allowed.map((item) => `"${item}"`).join(", "), fallback);
  }

  matching(name: string, pattern: RegExp, accepted: string): string | undefined {
    const value = this.text(name);
    if (value === undefined || pattern.test(value)) return value;
    return this.fail(name, value, accepted, undefined);
  }

  duration(name: string, fallback: number, minimum: number): number {
    const value = this.text(name);
    if (value === undefined) return fallback;
    const ms = parseDuration(value);
    if (ms !== undefined && ms >= minimum) return ms;
    return this.fail(name, value, `a duration of at least ${minimum} ms, like 500ms, 30s, 5m or 1h30m`, fallback);
  }

  boolean(name: string): boolean {
    const value = this.text(name)?.toLowerCase();
    if (value === undefined || value === "false" || value === "0") return false;
    if (value === "true" || value === "1") return true;
    return this.fail(name, this.text(name) ?? "", '"true" or "false"', false);
  }

  fail<T>(name: string, value: string, accepted: string, fallback: T): T {
    this.errors.push(`${name}=${quote(value)} is invalid; accepted: ${accepted}`);
    return fallback;
  }
}

export function readAddress(reader: Reader, name: string, schemes: readonly string[]): string | undefined {
  const value = reader.text(name);
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || !schemes.includes(url.protocol) || url.search !== "" || url.hash !== "" || url.username !== "") {
    return reader.fail(
      name,
      value,
      `a URL with scheme ${schemes.map((s) => `${s}//`).join(" or ")}, no query, fragment or user`,
      undefined,
    );
  }
  return value.replace(/\/+$/, "");
}
