import { describe, expect, it } from "vitest";
import { buildAppEnv } from "./env.ts";

describe("buildAppEnv", () => {
  const settings = { prefix: "SECRET_", passthrough: ["SECRET_KEY"] };

  it("keeps every other var unchanged and in order, drops references and settings, adds the values", () => {
    const env = {
      A: "a=b=c",
      SECRET_PASSWORD: "app/db#pw",
      KUSTODIA_VAULT_ADDR: "http://v",
      EMPTY: "",
      SECRET_KEY: "plain django key",
      NL: "x\ny\n",
      UNI: "✓ 日本",
    };
    const appEnv = buildAppEnv(env, settings, new Map([["PASSWORD", "s3cr=t\n"]]));
    expect(Object.entries(appEnv)).toEqual([
      ["A", "a=b=c"],
      ["EMPTY", ""],
      ["SECRET_KEY", "plain django key"],
      ["NL", "x\ny\n"],
      ["UNI", "✓ 日本"],
      ["PASSWORD", "s3cr=t\n"],
    ]);
  });

  it("drops a reference var whose value was left unset (ignore-missing)", () => {
    expect(buildAppEnv({ SECRET_OPTIONAL: "a/b", B: "1" }, settings, new Map())).toEqual({ B: "1" });
  });

  it("drops only vars under the configured prefix", () => {
    expect(
      Object.keys(buildAppEnv({ REF_A: "x/y", SECRET_B: "stays" }, { prefix: "REF_", passthrough: [] }, new Map([["A", "v"]]))),
    ).toEqual(["SECRET_B", "A"]);
  });

  it("keeps a var named __proto__ as an ordinary var", () => {
    const env = Object.defineProperty({}, "__proto__", { value: "x", enumerable: true }) as Record<string, string>;
    const appEnv = buildAppEnv(env, settings, new Map());
    expect(Object.keys(appEnv)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(appEnv)).toBeNull();
  });
});
