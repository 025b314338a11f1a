import { describe, expect, it } from "vitest";
import { expandResolved, isHandler } from "./handler.ts";

// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
const script = 'test -n "$PASSWORD" && echo ${TOKEN}';

describe("expandResolved", () => {
  const values = new Map([
    ["PASSWORD", "s3cr$t)"],
    ["TOKEN", "t"],
  ]);

  it.each<{ name: string; words: string[]; want: string[] }>([
    { name: "a word that is $(NAME)", words: ["$(PASSWORD)"], want: ["s3cr$t)"] },
    { name: "$(NAME) inside a word", words: ["-p$(PASSWORD)", "--token=$(TOKEN)$(TOKEN)"], want: ["-ps3cr$t)", "--token=tt"] },
    { name: "a name the shim did not resolve", words: ["$(HOME)", "$(PASSWORD_FILE)"], want: ["$(HOME)", "$(PASSWORD_FILE)"] },
    { name: "shell syntax, left to the shell", words: ["sh", "-c", script], want: ["sh", "-c", script] },
  ])("expands $name", ({ words, want }) => {
    expect(expandResolved(words, values)).toEqual(want);
  });
});

describe("isHandler", () => {
  it("is true for probes and hooks only", () => {
    expect([isHandler("app"), isHandler("probe"), isHandler("hook")]).toEqual([false, true, true]);
  });
});
