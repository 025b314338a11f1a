// What `npm run images` reads from a Dockerfile: its final stage (base, the one COPY from the build
// stage, USER, WORKDIR, ENV, EXPOSE, ENTRYPOINT, CMD), so that the images built without Docker take
// their runtime settings from the same file Docker builds. An instruction it does not know fails the
// build: a change to the Dockerfile cannot be silently left out of the OCI images.

export interface FinalStage {
  /** The FROM argument as written, e.g. `scratch` or `${RUNTIME_IMAGE}`. */
  from: string;
  /** `COPY --from=<stage> <source> <destination>` lines, in order. */
  copies: { stage: string; source: string; destination: string }[];
  user?: string;
  workingDir?: string;
  env: [string, string][];
  /** `8443/tcp` etc. */
  exposedPorts: string[];
  entrypoint?: string[];
  cmd?: string[];
}

class DockerfileError extends Error {
  override name = "DockerfileError";
}

/** The instructions of a Dockerfile, comments dropped, `\` continuations joined. */
function instructions(dockerfile: string): { keyword: string; rest: string }[] {
  const joined = dockerfile
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ");
  return joined
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      const [, keyword = "", rest = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
      return { keyword: keyword.toUpperCase(), rest: rest.trim() };
    });
}

/** ENTRYPOINT and CMD in exec (JSON) form only: the shell form would need a shell in the image. */
function execForm(keyword: string, rest: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(rest);
  } catch {
    throw new DockerfileError(`${keyword} ${rest}: only the exec form (a JSON array) is supported`);
  }
  if (!Array.isArray(parsed) || !parsed.every((word) => typeof word === "string"))
    throw new DockerfileError(`${keyword} ${rest}: not a JSON array of strings`);
  return parsed;
}

function envPairs(rest: string): [string, string][] {
  const pairs = [...rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)].map(
    ([, name = "", value = ""]): [string, string] => [name, value.startsWith('"') ? (JSON.parse(value) as string) : value],
  );
  if (pairs.length === 0) throw new DockerfileError(`ENV ${rest}: only the NAME=value form is supported`);
  return pairs;
}

/** The final stage of `dockerfile` (from its last FROM on). Throws on an instruction it does not model. */
export function parseFinalStage(dockerfile: string): FinalStage {
  const all = instructions(dockerfile);
  const start = all.findLastIndex((instruction) => instruction.keyword === "FROM");
  if (start < 0) throw new DockerfileError("no FROM");
  const from = (all[start]?.rest ?? "").split(/\s+/);
  if (from.length !== 1 || from[0]?.startsWith("--")) throw new DockerfileError(`FROM ${from.join(" ")}: a plain base is expected`);
  const stage: FinalStage = { from: from[0] as string, copies: [], env: [], exposedPorts: [] };
  for (const { keyword, rest } of all.slice(start + 1)) {
    switch (keyword) {
      case "COPY": {
        const copy = /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(rest);
        if (!copy) throw new DockerfileError(`COPY ${rest}: only \`COPY --from=<stage> <source> <destination>\` is supported`);
        stage.copies.push({ stage: copy[1] as string, source: copy[2] as string, destination: copy[3] as string });
        break;
      }
      case "USER":
        stage.user = rest;
        break;
      case "WORKDIR":
        stage.workingDir = rest;
        break;
      case "ENV":
        stage.env.push(...envPairs(rest));
        break;
      case "EXPOSE":
        stage.exposedPorts.push(...rest.split(/\s+/).map((port) => (port.includes("/") ? port : `${port}/tcp`)));
        break;
      case "ENTRYPOINT":
        stage.entrypoint = execForm(keyword, rest);
        // As in Docker: an ENTRYPOINT resets a CMD set before it.
        delete stage.cmd;
        break;
      case "CMD":
        stage.cmd = execForm(keyword, rest);
        break;
      default:
        throw new DockerfileError(`${keyword} in the final stage: npm run images does not model it (scripts/dockerfile.ts)`);
    }
  }
  return stage;
}

/**
 * The words an exec-form ENTRYPOINT puts between its program and `script` (`node --flag … script`):
 * the interpreter's flags. Throws when the ENTRYPOINT does not run `script`.
 */
export function entrypointFlags(stage: FinalStage, script: string): string[] {
  const entrypoint = stage.entrypoint ?? [];
  const at = entrypoint.indexOf(script);
  if (at < 1) throw new DockerfileError(`ENTRYPOINT ${JSON.stringify(entrypoint)}: does not run ${script}`);
  return entrypoint.slice(1, at);
}
