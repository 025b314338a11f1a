// Command-line options every benchmark script takes (node:util parseArgs definitions).
export const COMMON_OPTIONS = {
  /** Leave the Bank-Vaults peers out, built or not. */
  "no-peers": { type: "boolean", default: false },
  /** Measure dist/ as it is, without `npm run build` first. */
  "no-build": { type: "boolean", default: false },
  /** Tiny sizes: a smoke run that prints every table, too short to compare anything. */
  quick: { type: "boolean", default: false },
  /** Writes the numbers the targets are about as JSON (for bench/run.ts). */
  summary: { type: "string" },
} as const;
