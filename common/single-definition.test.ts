// "A rule lives in exactly one place": no shim setting's name, accepted values or default is written
// outside common/ (issue #14). A grep over the sources of both programs and the scripts.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../test/infra/repo-root.ts";
import { Annotations, ShimEnv } from "./contract.ts";
import { CLUSTER_DEFAULT_KEYS, clusterDefaultEnv } from "./shim-settings.ts";

function sources(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts"))
    .map((entry) => relative(repoRoot, join(entry.parentPath, entry.name)));
}

const files = ["common", "webhook", "shim", "scripts"].flatMap(sources);
/** Code without its comments: a comment may quote a name, the code may not spell it. */
function code(file: string): string {
  return readFileSync(join(repoRoot, file), "utf8")
    .split("\n")
    .filter((line) => !/^\s*(\/\/|\/?\*)/.test(line))
    .join("\n");
}

const text = new Map(files.map((file) => [file, code(file)]));

function filesContaining(pattern: RegExp, among = files): string[] {
  return among.filter((file) => pattern.test(text.get(file) ?? ""));
}

const regexLiteral = (literal: string) => literal.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

describe("every shim setting is defined once", () => {
  it("spells each KUSTODIA_* var and kustodia.io/ annotation only in common/contract.ts", () => {
    // The webhook's own log level happens to share the shim's var name; it is a different setting.
    const ownSettings: Record<string, string[]> = { [ShimEnv.logLevel]: ["webhook/settings.ts"] };
    for (const name of [...Object.values(ShimEnv), ...Object.values(Annotations)]) {
      const allowed = ["common/contract.ts", ...(ownSettings[name] ?? [])];
      for (const file of filesContaining(new RegExp(`["'\`]${regexLiteral(name)}["'\`]`)))
        expect(allowed, `${name} in ${file}`).toContain(file);
    }
  });

  it("derives the webhook's KUSTODIA_SHIM_* cluster defaults instead of spelling them", () => {
    const programs = files.filter((file) => !file.startsWith("scripts/"));
    for (const key of CLUSTER_DEFAULT_KEYS)
      expect(filesContaining(new RegExp(regexLiteral(clusterDefaultEnv(key))), programs), key).toEqual([]);
  });

  it("has the chart hand every cluster default to the webhook under its derived name, and no other", () => {
    const deployment = readFileSync(join(repoRoot, "charts/kustodia/templates/deployment.yaml"), "utf8");
    const handed = [...deployment.matchAll(/"(KUSTODIA_SHIM_[A-Z_]+)" \$shim\.defaults\.([A-Za-z]+)/g)].map(([, env, key]) => [env, key]);
    expect(handed).toEqual(CLUSTER_DEFAULT_KEYS.map((key) => [clusterDefaultEnv(key), key]));
  });

  it.each<[string, RegExp]>([
    ["the auth methods", /"kubernetes",\s*"jwt"/],
    ["the rotation modes", /"(none|restart|signal)",\s*"(none|restart|signal)"/],
    ["the shim's log levels", /"debug",\s*"info",\s*"warn"/],
    ["the default KV mount", /fallback: "secret"|\?\? "secret"/],
    ["the default rotation signal", /"SIGHUP"(?!, "SIGQUIT")/],
    ["the default backend", /fallback: "vault"|\?\? "vault"/],
    ["a duration grammar", /\(ms\|s\|m\|h\)/],
    ["a signal parser", /function parseSignal/],
    ["a deep freeze", /function deepFreeze/],
    ["a mount path rule", /\[A-Za-z0-9\]\[A-Za-z0-9\._-\]\*/],
  ])("writes %s in one file of common/", (_name, pattern) => {
    const found = filesContaining(pattern);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^common\//);
  });
});
