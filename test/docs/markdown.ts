// The shell blocks of the docs, as test/docs/commands.test.ts runs them. Conventions, written as HTML
// comments on the lines right above a block's fence (invisible on GitHub):
//   <!-- not-run: <reason> -->   the block is not run (it needs a cluster); the reason is required
//   <!-- exit: <code> -->        the block is expected to end with this exit code (default 0)
// A ```text block that follows a shell block (nothing but blank lines between) is its expected
// output: each of its lines must be a line of what the commands printed (stdout + stderr).

export const SHELL_LANGUAGES = new Set(["sh", "bash", "shell", "console"]);

export interface ShellBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  notRun?: string;
  exit: number;
  /** Lines the output must contain, from the ```text block right after. */
  expectedOutput?: string[];
}

interface Fenced {
  line: number;
  lang: string;
  body: string[];
  /** Index of the line after the closing fence. */
  end: number;
  /** HTML comments directly above the fence. */
  markers: string[];
}

const FENCE = /^(\s*)```(\S*)\s*$/;
const MARKER = /^\s*<!--\s*(.*?)\s*-->\s*$/;

function fencedBlocks(lines: string[]): Fenced[] {
  const blocks: Fenced[] = [];
  for (let index = 0; index < lines.length; index++) {
    const open = FENCE.exec(lines[index] as string);
    if (!open) continue;
    const indent = open[1]?.length ?? 0;
    const body: string[] = [];
    let close = index + 1;
    while (close < lines.length && !/^\s*```\s*$/.test(lines[close] as string)) body.push((lines[close++] as string).slice(indent));
    const markers: string[] = [];
    for (let above = index - 1; above >= 0; above--) {
      const marker = MARKER.exec(lines[above] as string);
      if (!marker) break;
      markers.unshift(marker[1] as string);
    }
    blocks.push({ line: index + 1, lang: open[2] ?? "", body, end: close + 1, markers });
    index = close;
  }
  return blocks;
}

/** The shell blocks of a Markdown file, with their conventions applied. */
export function shellBlocks(file: string, markdown: string): ShellBlock[] {
  const lines = markdown.split("\n");
  const blocks = fencedBlocks(lines);
  const result: ShellBlock[] = [];
  blocks.forEach((block, position) => {
    if (!SHELL_LANGUAGES.has(block.lang)) return;
    const shell: ShellBlock = { file, line: block.line, code: block.body.join("\n"), exit: 0 };
    for (const marker of block.markers) {
      const notRun = /^not-run:\s*(.*)$/.exec(marker);
      const exit = /^exit:\s*(\d+)$/.exec(marker);
      if (notRun) shell.notRun = notRun[1] ?? "";
      else if (exit) shell.exit = Number(exit[1]);
      else throw new Error(`${file}:${block.line}: unknown marker <!-- ${marker} --> above a shell block`);
    }
    const next = blocks[position + 1];
    const between = next ? lines.slice(block.end, next.line - 1 - next.markers.length) : [];
    if (next && next.lang === "text" && between.every((line) => line.trim() === "")) {
      shell.expectedOutput = next.body.map((line) => line.trimEnd()).filter((line) => line.trim() !== "");
    }
    result.push(shell);
  });
  return result;
}

/** Relative links `[text](path#anchor)` of a Markdown file (not http(s), not mailto). */
export function relativeLinks(markdown: string): { target: string; anchor?: string }[] {
  const links: { target: string; anchor?: string }[] = [];
  const outsideCode = markdown.replace(/```[\s\S]*?```/g, "");
  for (const [, href] of outsideCode.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (!href || /^[a-z]+:/.test(href)) continue;
    const [target = "", anchor] = href.split("#");
    links.push(anchor === undefined ? { target } : { target, anchor });
  }
  return links;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const outsideCode = markdown.replace(/```[\s\S]*?```/g, "");
  for (const [, heading] of outsideCode.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const slug = (heading as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    anchors.add(slug);
  }
  return anchors;
}
