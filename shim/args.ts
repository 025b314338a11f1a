// The shim's command line: `kustodia-shim [--] <command> [args...]` runs the app;
// `kustodia-shim install <dir>` copies the runtime (the init container's job);
// `kustodia-shim --explain [[--] <command> [args...]]` says what a start would do, without doing it.
// `KUSTODIA_<X>=<value>` words first set settings for this run only, over the env's: the webhook
// writes them into wrapped exec handlers, which share the container's env with the app.
import { SHIM_ENV_PREFIX, ShimEnv } from "../common/contract.ts";
import { ShimError } from "./errors.ts";

export const USAGE = `usage: kustodia-shim [--] <command> [args...]
       kustodia-shim --explain [[--] <command> [args...]]
       kustodia-shim install <dir>
       kustodia-shim --version
Settings of one run go first, over the env's: kustodia-shim KUSTODIA_<X>=<value>... -- <command> [args...]`;

/** Settings given as words before the command, as `{ KUSTODIA_ROLE: "probe" }`. */
export type ArgSettings = Readonly<Record<string, string>>;

export type Invocation =
  | { kind: "run"; command: string; args: string[]; settings: ArgSettings }
  | { kind: "install"; dir: string }
  | { kind: "explain"; command?: string; args: string[]; settings: ArgSettings }
  | { kind: "version" }
  | { kind: "help" };

const KNOWN_SETTINGS = new Set<string>(Object.values(ShimEnv));
const SETTING_WORD = /^([A-Z][A-Z0-9_]*)=(.*)$/s;

/** The leading `KUSTODIA_<X>=<value>` words and what follows them. */
function leadingSettings(argv: readonly string[]): { settings: Record<string, string>; rest: readonly string[] } {
  const settings: Record<string, string> = Object.create(null);
  let index = 0;
  for (; index < argv.length; index++) {
    const match = SETTING_WORD.exec(argv[index] as string);
    if (!match?.[1]?.startsWith(SHIM_ENV_PREFIX)) break;
    const [, name = "", value = ""] = match;
    if (!KNOWN_SETTINGS.has(name)) throw new ShimError("KUS_SHIM_USAGE", `unknown setting ${JSON.stringify(name)}\n${USAGE}`);
    settings[name] = value;
  }
  return { settings, rest: argv.slice(index) };
}

export function parseArgs(argv: readonly string[]): Invocation {
  const { settings, rest: words } = leadingSettings(argv);
  const invocation = parseWords(words, settings);
  const given = Object.keys(settings).length > 0;
  if (given && invocation.kind !== "run" && invocation.kind !== "explain")
    throw new ShimError("KUS_SHIM_USAGE", `settings words go only before a command or --explain\n${USAGE}`);
  return invocation;
}

function parseWords(argv: readonly string[], settings: ArgSettings): Invocation {
  const [first, ...rest] = argv;
  if (first === undefined) throw new ShimError("KUS_SHIM_USAGE", `no command given\n${USAGE}`);
  if (first === "--") {
    const [command, ...args] = rest;
    if (command === undefined) throw new ShimError("KUS_SHIM_USAGE", `no command after "--"\n${USAGE}`);
    return { kind: "run", command, args, settings };
  }
  if (first === "install") {
    if (rest.length !== 1 || rest[0] === "") throw new ShimError("KUS_SHIM_USAGE", `install takes exactly one directory\n${USAGE}`);
    return { kind: "install", dir: rest[0] as string };
  }
  if (first === "--explain") {
    const [command, ...args] = rest[0] === "--" ? rest.slice(1) : rest;
    if (command === undefined) return { kind: "explain", args: [], settings };
    if (command.startsWith("-") && rest[0] !== "--")
      throw new ShimError("KUS_SHIM_USAGE", `unknown option ${JSON.stringify(command)}; put "--" before the command\n${USAGE}`);
    return { kind: "explain", command, args, settings };
  }
  if (first === "--version" && rest.length === 0) return { kind: "version" };
  if ((first === "--help" || first === "-h") && rest.length === 0) return { kind: "help" };
  if (first.startsWith("-"))
    throw new ShimError("KUS_SHIM_USAGE", `unknown option ${JSON.stringify(first)}; put "--" before the command\n${USAGE}`);
  return { kind: "run", command: first, args: rest, settings };
}
