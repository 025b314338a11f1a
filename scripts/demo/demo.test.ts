import { describe, expect, it } from "vitest";
import { expandForKubelet } from "./kubelet.ts";
import { containerLines, patchLines, sideBySide } from "./render.ts";

describe("expandForKubelet", () => {
  const env = { NAME: "world", EMPTY: "" };
  it.each([
    ["hello $(NAME)", "hello world"],
    ["$(EMPTY)x", "x"],
    ["$(UNKNOWN) stays", "$(UNKNOWN) stays"],
    ["$$(NAME) is escaped", "$(NAME) is escaped"],
    ["echo $$ and $HOME", "echo $ and $HOME"],
    ["unclosed $(NAME", "unclosed $(NAME"],
  ])("%s → %s", (word, expected) => expect(expandForKubelet(word, env)).toBe(expected));
});

describe("render", () => {
  it("prints one short line per patch operation", () => {
    const lines = patchLines(
      [
        { op: "add", path: "/spec/containers/0/env/1", value: { name: "KUSTODIA_BACKEND", value: "vault" } },
        { op: "replace", path: "/spec/containers/0/command/0", value: "x".repeat(200) },
      ],
      90,
    );
    expect(lines[0]).toBe('add     /spec/containers/0/env/1      {"name":"KUSTODIA_BACKEND","value":"vault"}');
    expect(lines[1]).toHaveLength(90);
    expect(lines[1]?.endsWith("…")).toBe(true);
  });

  it("prints a container's command and env as YAML lines", () => {
    expect(
      containerLines({
        name: "app",
        command: ["/kustodia/kustodia-shim", "--", "sh", "-c", "echo $X"],
        env: [
          { name: "SECRET_A", value: "a/b" },
          { name: "B", valueFrom: {} },
        ],
      }),
    ).toEqual([
      "name: app",
      "command:",
      "- /kustodia/kustodia-shim",
      "- --",
      "- sh",
      "- -c",
      '- "echo $X"',
      "env:",
      "- SECRET_A: a/b",
      "- B: (valueFrom)",
    ]);
  });

  it("puts two columns side by side, cutting the left one at its width", () => {
    expect(sideBySide({ title: "L", lines: ["abcdef", "x"] }, { title: "R", lines: ["1"] }, 4)).toEqual([
      "L    │ R",
      "──── │ ──────────",
      "abc… │ 1",
      "x    │",
    ]);
  });
});
