// pino JSON logs. Redaction is a second line of defence: log calls never pass env values, tokens
// or credentials in the first place.
import { type Logger, pino } from "pino";

export const REDACTED_PATHS = [
  "*.env",
  "*.value",
  "*.password",
  "*.token",
  "*.auth",
  "*.authorization",
  "*.headers.authorization",
  "*.request.object",
  "*.request.oldObject",
  "*.patch",
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name: "kustodia-webhook",
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    destination as pino.DestinationStream | undefined,
  );
}
