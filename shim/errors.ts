// The shim's errors: each has a code to branch on and the exit code the shim ends with. Messages
// name the setting or the var to fix and never contain a secret value.
import { ExitCode } from "../common/contract.ts";

/** Exit codes beyond DESIGN §5's two: usage (sysexits EX_USAGE) and the shells' 126/127 for exec. */
export const ShimExit = {
  ...ExitCode,
  usage: 64,
  notExecutable: 126,
  notFound: 127,
  /** `kustodia-shim install` failed. */
  installFailed: 1,
} as const;

export type ShimErrorCode =
  | "KUS_SHIM_USAGE"
  | "KUS_SHIM_CONFIG"
  | "KUS_REF_UNRESOLVED"
  | "KUS_BACKEND_UNAVAILABLE"
  | "KUS_EXEC_NOT_FOUND"
  | "KUS_EXEC_NOT_EXECUTABLE";

const EXIT_CODES: Record<ShimErrorCode, number> = {
  KUS_SHIM_USAGE: ShimExit.usage,
  KUS_SHIM_CONFIG: ShimExit.config,
  KUS_REF_UNRESOLVED: ShimExit.config,
  KUS_BACKEND_UNAVAILABLE: ShimExit.unavailable,
  KUS_EXEC_NOT_FOUND: ShimExit.notFound,
  KUS_EXEC_NOT_EXECUTABLE: ShimExit.notExecutable,
};

export class ShimError extends Error {
  override name = "ShimError";
  readonly code: ShimErrorCode;
  readonly exitCode: number;
  /** The lines logged before this error that explain it (e.g. each invalid setting). */
  readonly causes: readonly string[];

  constructor(code: ShimErrorCode, message: string, causes: readonly string[] = []) {
    super(message);
    this.code = code;
    this.exitCode = EXIT_CODES[code];
    this.causes = causes;
  }
}
