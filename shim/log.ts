// The shim's stderr log: one plain-text line per event, `kustodia-shim <level>: <message>`, written
// synchronously (nothing may be lost when the process image is replaced by execve, and the shim
// never touches process.stderr, so stderr is handed to the app exactly as the shim got it).
//
// Log calls never pass secret values or tokens. As a second line of defence every value and
// credential the shim holds is registered with `redact`, and a line containing one is censored.
//
// `record` writes a structured record (the audit record, docs/audit.md) as one JSON line without
// prefix, at every level; every string in it is censored the same way.
import { writeSync } from "node:fs";

import { SHIM_LOG_LEVELS as LOG_LEVELS, type ShimLogLevel as LogLevel } from "../common/shim-settings.ts";

export type { ShimLogLevel as LogLevel } from "../common/shim-settings.ts";

export interface Log {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Writes `record` as one JSON line, whatever the level. */
  record(record: object): void;
  /** Never let `secret` appear in a log line. */
  redact(secret: string): void;
  isDebug(): boolean;
}

/** Shorter strings would censor ordinary words; nothing ever logs a value in the first place. */
const MIN_REDACTED_LENGTH = 4;
const CENSOR = "[redacted]";

export function createLog(level: LogLevel, write: (line: string) => void = (line) => writeSync(2, line)): Log {
  const threshold = LOG_LEVELS.indexOf(level);
  const secrets = new Set<string>();
  const censor = (text: string) => {
    let censored = text;
    for (const secret of secrets) {
      if (censored.includes(secret)) censored = censored.replaceAll(secret, CENSOR);
    }
    return censored;
  };
  const emit = (at: LogLevel, message: string) => {
    if (LOG_LEVELS.indexOf(at) < threshold) return;
    write(`kustodia-shim ${at}: ${censor(message.replaceAll("\r", "\\r").replaceAll("\n", "\\n"))}\n`);
  };
  return {
    debug: (message) => emit("debug", message),
    info: (message) => emit("info", message),
    warn: (message) => emit("warn", message),
    error: (message) => emit("error", message),
    record: (record) => write(`${JSON.stringify(record, (_, value) => (typeof value === "string" ? censor(value) : value))}\n`),
    redact: (secret) => {
      for (const part of secret.split(/[\r\n]+/)) if (part.length >= MIN_REDACTED_LENGTH) secrets.add(part);
    },
    isDebug: () => threshold === 0,
  };
}
