// `npm run config-docs`: writes the tables of the shim's settings in docs/configuration.md from
// common/shim-settings.ts, between `<!-- BEGIN generated: <name> -->` and `<!-- END generated: <name> -->`.
// `-- --check` only compares, exiting 1 when the page is stale (scripts/config-docs.test.ts does the same).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ANNOTATED_SETTINGS,
  clusterDefaultEnv,
  PodSettings,
  type SettingSection,
  type ShimSetting,
  type ShimSettingKey,
  ShimSettings,
} from "../common/shim-settings.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const CONFIGURATION_PAGE = join(repoRoot, "docs", "configuration.md");

function spec(key: ShimSettingKey): ShimSetting<unknown> {
  return ShimSettings[key] as ShimSetting<unknown>;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

/** `shim.defaults.vaultRole` (`KUSTODIA_SHIM_VAULT_ROLE`), or — when the cluster sets no default. */
function clusterDefault(key: ShimSettingKey): string {
  return spec(key).clusterDefault ? `\`shim.defaults.${key}\` (\`${clusterDefaultEnv(key)}\`)` : "—";
}

function annotationTable(): string[] {
  const rows = ANNOTATED_SETTINGS.map(([key, annotation]) => {
    const { env, accepted, defaultText, doc } = spec(key);
    const fallback = spec(key).clusterDefault ? `${clusterDefault(key)}, else ${defaultText}` : defaultText;
    return `| \`${annotation}\` | ${cell(accepted)} | ${cell(fallback)} | ${cell(doc)} → \`${env}\` |`;
  });
  return ["| annotation | accepted | default | meaning |", "| --- | --- | --- | --- |", ...rows];
}

/** The annotations the webhook reads itself, in the columns of the page's hand-written annotation table. */
function podSettingsTable(): string[] {
  const rows = Object.values(PodSettings).map(
    ({ annotation, accepted, defaultText, doc }) => `| \`${annotation}\` | ${cell(accepted)} | ${cell(defaultText)} | ${cell(doc)} |`,
  );
  return ["| annotation | accepted | default | meaning |", "| --- | --- | --- | --- |", ...rows];
}

function envTable(section: SettingSection): string[] {
  const keys = (Object.keys(ShimSettings) as ShimSettingKey[]).filter((key) => spec(key).section === section);
  const rows = keys.map((key) => {
    const { env, accepted, defaultText, doc } = spec(key);
    return `| \`${env}\` | ${cell(defaultText)} | ${cell(accepted)} | ${clusterDefault(key)} | ${cell(doc)} |`;
  });
  return ["| var | default | accepted | cluster default (chart value) | meaning |", "| --- | --- | --- | --- | --- |", ...rows];
}

/** The generated blocks by name. */
export function generatedBlocks(): Record<string, string[]> {
  return {
    "pod-settings": podSettingsTable(),
    annotations: annotationTable(),
    "env-backend": envTable("backend"),
    "env-references": envTable("references"),
    "env-rotation": envTable("rotation"),
    "env-handlers": envTable("handlers"),
  };
}

/** `page` with every generated block replaced by its current text; throws when a block's markers are missing. */
export function withGeneratedBlocks(page: string): string {
  let result = page;
  for (const [name, lines] of Object.entries(generatedBlocks())) {
    const begin = `<!-- BEGIN generated: ${name} -->`;
    const end = `<!-- END generated: ${name} -->`;
    const from = result.indexOf(begin);
    const to = result.indexOf(end);
    if (from < 0 || to < from) throw new Error(`docs/configuration.md lacks the markers of the generated block "${name}"`);
    result = `${result.slice(0, from + begin.length)}\n${lines.join("\n")}\n${result.slice(to)}`;
  }
  return result;
}

function main(args: string[]): number {
  const page = readFileSync(CONFIGURATION_PAGE, "utf8");
  const generated = withGeneratedBlocks(page);
  if (args.includes("--check")) {
    if (generated === page) return 0;
    process.stderr.write("docs/configuration.md is stale: run `npm run config-docs`\n");
    return 1;
  }
  writeFileSync(CONFIGURATION_PAGE, generated);
  return 0;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
