// Every shell block of README.md and docs/*.md runs here, in the repository, against real services:
// a fresh OpenBao dev server per page for the `bao` commands (the `bao` of test/infra), the
// kube-apiserver of test/infra for Vault's kubernetes auth configuration, the Custodia of test/infra,
// helm. Blocks marked `<!-- not-run: <reason> -->` (test/docs/markdown.ts) are the exception: they
// need a cluster, and this test keeps them few and honest. The docs also must name every annotation,
// env var and exit code of the contract, and their relative links must resolve.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Annotations, NAMESPACE_LABEL, ShimEnv } from "../../common/contract.ts";
import { CLUSTER_DEFAULT_KEYS, clusterDefaultEnv } from "../../common/shim-settings.ts";
import { ShimExit } from "../../shim/errors.ts";
import { service, skipWithout } from "../infra/coords.ts";
import { startOpenBao as startInfraOpenBao } from "../infra/openbao.ts";
import { asRoot, openbaoApi } from "../infra/openbao-api.ts";
import { stopDaemon } from "../infra/proc.ts";
import { repoRoot } from "../infra/repo-root.ts";
import { cacheDir } from "../infra/up.ts";
import { headingAnchors, relativeLinks, type ShellBlock, shellBlocks } from "./markdown.ts";

const PAGES = ["README.md", ...readdirSync(join(repoRoot, "docs")).map((name) => `docs/${name}`)].filter((page) => page.endsWith(".md"));
const blocksOf = new Map(PAGES.map((page) => [page, shellBlocks(page, readFileSync(join(repoRoot, page), "utf8"))]));
const allBlocks = [...blocksOf.values()].flat();
const where = (block: ShellBlock) => `${block.file}:${block.line}`;

/** What a not-run block may contain: only commands that need a cluster, or would disturb the test run (npm ci, the rehearsal that purges packages). */
const CLUSTER_ONLY = /\bkubectl\b|\bhelm (install|upgrade|uninstall)\b|\bnpm ci\b|\bfresh-machine\.sh\b/;
const NEEDS = {
  openbao: /(^|[\s;|&(])bao\s/m,
  kube: /\$(KUBE_HOST|KUBE_CA_FILE|REVIEWER_JWT)\b|"\$\{?(KUBE_HOST|KUBE_CA_FILE|REVIEWER_JWT)/,
  custodia: /\$CUSTODIA_SOCKET\b|"\$CUSTODIA_SOCKET"/,
  helm: /(^|[\s;|&(])helm\s/m,
} as const;
type Need = keyof typeof NEEDS;

const scratch = mkdtempSync(join(tmpdir(), "kustodia-docs-"));
const binDir = join(scratch, "bin");
mkdirSync(binDir);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function needsOf(block: ShellBlock): Need[] {
  return (Object.keys(NEEDS) as Need[]).filter((need) => NEEDS[need].test(block.code));
}

/** Mounts of a bare `bao server -dev`; test/infra adds more, which the pages create themselves. */
const DEV_MOUNTS = new Set(["sys/", "cubbyhole/", "identity/", "secret/", "token/"]);

/**
 * A fresh OpenBao dev server for one page (its commands, `bao auth enable …`, run once per server):
 * started by test/infra, then stripped of the mounts test/infra adds, as a reader's new server is.
 */
async function startOpenBao(): Promise<{ addr: string; token: string; stop: () => Promise<void> }> {
  const started = await startInfraOpenBao({ runDir: mkdtempSync(join(scratch, "openbao-")), cacheDir: cacheDir() });
  const { addr, rootToken } = started.coordinates;
  const call = (method: string, path: string) => openbaoApi(asRoot(started.coordinates), method, path);
  for (const [list, disable] of [
    ["sys/mounts", "sys/mounts/"],
    ["sys/auth", "sys/auth/"],
  ] as const) {
    const mounts = Object.keys((await call("GET", list)).data);
    for (const mount of mounts.filter((name) => !DEV_MOUNTS.has(name))) await call("DELETE", `${disable}${mount}`);
  }
  return { addr, token: rootToken, stop: () => stopDaemon((started.daemons[0] as { pid: number }).pid) };
}

/** The environment a reader of the docs has: the tools on PATH, and the variables the pages name. */
function blockEnv(openbao?: { addr: string; token: string }): Record<string, string> {
  const env: Record<string, string> = {
    PATH: `${binDir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: process.env.HOME ?? scratch,
    LANG: "C.UTF-8",
  };
  if (openbao) Object.assign(env, { BAO_ADDR: openbao.addr, BAO_TOKEN: openbao.token });
  if (!skipWithout("kube")) {
    const kube = service("kube");
    Object.assign(env, { KUBE_HOST: kube.server, KUBE_CA_FILE: kube.caFile, REVIEWER_JWT: kube.adminToken });
  }
  if (!skipWithout("custodia")) env.CUSTODIA_SOCKET = service("custodia").socket;
  return env;
}

function linkTool(name: string, binary: string): void {
  const link = join(binDir, name);
  if (!existsSync(link)) symlinkSync(binary, link);
}

function run(block: ShellBlock, env: Record<string, string>) {
  const result = spawnSync("bash", ["-euo", "pipefail", "-c", block.code], { cwd: repoRoot, env, encoding: "utf8", timeout: 120_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("the docs' conventions", () => {
  it("finds the shell blocks of README.md and every page of docs/", () => {
    expect(PAGES).toEqual(expect.arrayContaining(["README.md", "docs/configuration.md", "docs/backends.md", "docs/troubleshooting.md"]));
    expect(allBlocks.length).toBeGreaterThan(20);
  });

  it("marks few blocks not-run, each with a reason and only for commands that need a cluster", () => {
    const notRun = allBlocks.filter((block) => block.notRun !== undefined);
    for (const block of notRun) {
      expect(block.notRun, where(block)).toMatch(/\S{3,}/);
      expect(CLUSTER_ONLY.test(block.code), `${where(block)} is not-run but needs no cluster:\n${block.code}`).toBe(true);
    }
    expect(notRun.length).toBeLessThanOrEqual(Math.ceil(allBlocks.length / 4));
  });

  it("runs kustodia check and mutate on files that exist in examples/", () => {
    const invocations = allBlocks.flatMap((block) =>
      [...block.code.matchAll(/kustodia (check|mutate)\b([^\n|;&]*)/g)].map((m) => ({ block, args: m[2] ?? "" })),
    );
    expect(invocations.length).toBeGreaterThan(5);
    for (const { block, args } of invocations) {
      const file = /-f\s+(\S+)/.exec(args)?.[1];
      expect(file, `${where(block)}: ${args}`).toMatch(/^examples\//);
      expect(existsSync(join(repoRoot, file as string)), `${where(block)}: ${file}`).toBe(true);
    }
  });
});

describe("the docs' shell blocks", () => {
  for (const [page, blocks] of blocksOf) {
    const runnable = blocks.filter((block) => block.notRun === undefined);
    if (runnable.length === 0) continue;
    it(`${page}: ${runnable.length} block(s) run and print what the page shows`, async () => {
      const needs = new Set(runnable.flatMap(needsOf));
      const missing = [...needs].filter((need) => skipWithout(need));
      if (needs.has("helm") && !missing.includes("helm")) linkTool("helm", service("helm").binary);
      if (needs.has("openbao") && !missing.includes("openbao")) linkTool("bao", service("openbao").binary);
      const openbao = needs.has("openbao") && !missing.includes("openbao") ? await startOpenBao() : undefined;
      try {
        const env = blockEnv(openbao);
        let ran = 0;
        for (const block of runnable) {
          if (needsOf(block).some((need) => missing.includes(need))) {
            console.warn(`skipping ${where(block)}: needs ${needsOf(block).join(", ")}`);
            continue;
          }
          const result = run(block, env);
          expect({ block: where(block), status: result.status }, `${block.code}\n---\n${result.output}`).toEqual({
            block: where(block),
            status: block.exit,
          });
          const printed = new Set(result.output.split("\n").map((line) => line.trimEnd()));
          for (const line of block.expectedOutput ?? [])
            expect(printed.has(line), `${where(block)} did not print:\n${line}\n---\n${result.output}`).toBe(true);
          ran++;
        }
        expect(ran).toBeGreaterThan(0);
      } finally {
        await openbao?.stop();
      }
    });
  }
});

describe("the docs and the contract", () => {
  const configuration = readFileSync(join(repoRoot, "docs/configuration.md"), "utf8");

  it("names every annotation, the namespace label, every shim env var and exit code in docs/configuration.md", () => {
    const names = [
      ...Object.values(Annotations).filter((name) => name !== Annotations.entrypointPrefix),
      `${Annotations.entrypointPrefix}<container>`,
      NAMESPACE_LABEL,
      ...Object.values(ShimEnv),
    ];
    for (const name of names) expect(configuration, name).toContain(`\`${name}`);
    const exitTable = configuration.slice(configuration.indexOf("## Exit codes of the shim"));
    for (const code of new Set(Object.values(ShimExit))) expect(exitTable, `exit code ${code}`).toMatch(new RegExp(`^\\| ${code}\\b`, "m"));
  });

  it("names every setting of the webhook in docs/webhook.md", () => {
    const settings = new Set([
      ...(readFileSync(join(repoRoot, "webhook/settings.ts"), "utf8").match(/KUSTODIA_[A-Z_]+[A-Z]/g) ?? []),
      ...CLUSTER_DEFAULT_KEYS.map(clusterDefaultEnv),
      ShimEnv.prefix,
    ]);
    const webhook = readFileSync(join(repoRoot, "docs/webhook.md"), "utf8");
    expect(settings.size).toBeGreaterThan(25);
    for (const setting of settings) expect(webhook, setting).toContain(`\`${setting}\``);
  });

  it("links only to files and headings that exist", () => {
    for (const page of PAGES) {
      for (const { target, anchor } of relativeLinks(readFileSync(join(repoRoot, page), "utf8"))) {
        const path = target === "" ? join(repoRoot, page) : resolve(dirname(join(repoRoot, page)), target);
        expect(existsSync(path), `${page} links to ${target}`).toBe(true);
        if (anchor !== undefined && path.endsWith(".md")) {
          expect(headingAnchors(readFileSync(path, "utf8")).has(anchor), `${page} links to ${target}#${anchor}`).toBe(true);
        }
      }
    }
  });
});
