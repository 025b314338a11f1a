import { describe, expect, it } from "vitest";
import { formatReference, isValidEnvName, parseReference, splitList, targetName } from "./reference.ts";

describe("parseReference", () => {
  it.each([
    ["myapp/password", { path: "myapp", field: "password" }],
    ["myapp/db#password", { path: "myapp/db", field: "password" }],
    ["team/app/db/password", { path: "team/app/db", field: "password" }],
    ["myapp/db#password@3", { path: "myapp/db", field: "password", version: 3 }],
    ["myapp/password@12", { path: "myapp", field: "password", version: 12 }],
    ["vault:myapp/db#user", { backend: "vault", path: "myapp/db", field: "user" }],
    ["custodia:myapp/password", { backend: "custodia", path: "myapp", field: "password" }],
    ["a.b/c_d-e#tls.crt", { path: "a.b/c_d-e", field: "tls.crt" }],
  ])("parses %s", (raw, expected) => {
    expect(parseReference(raw)).toEqual({ ok: true, reference: expected });
  });

  it.each([
    ["", "empty"],
    ["password", "needs a secret and a field"],
    ["/etc/passwd", "must be relative"],
    ["myapp/../../sys/mounts", '".."'],
    ["myapp//password", "empty"],
    ["./password", '"."'],
    ["myapp/db#", "field"],
    ["myapp/db#a/b", "field"],
    ["myapp/db#pass word", "field"],
    ["myapp/password@0", "positive integer"],
    ["myapp/password@latest", "positive integer"],
    ["myapp/password@", "positive integer"],
    ["aws:myapp/password", 'unknown backend "aws"'],
    ["custodia:myapp/db#password", "no fields"],
    ["custodia:myapp/password@2", "no versions"],
    [" myapp/password", "whitespace"],
    ["myapp/pass\u0000word", "may only use"],
    ["my app/password", "may only use"],
    ["myapp/db#pass\nword", "field"],
    ["x/".repeat(600), "longer than"],
  ])("rejects %j (%s)", (raw, reason) => {
    const parsed = parseReference(raw);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toContain("invalid reference");
      expect(parsed.error).toContain(reason);
    }
  });

  it("round-trips through its canonical form", () => {
    for (const raw of ["myapp/password", "vault:a/b#c@2", "custodia:x/y"]) {
      const parsed = parseReference(raw);
      if (!parsed.ok) throw new Error(parsed.error);
      expect(parseReference(formatReference(parsed.reference))).toEqual(parsed);
    }
  });
});

describe("targetName", () => {
  it("strips the prefix", () => {
    expect(targetName("SECRET_DB_PASSWORD", "SECRET_")).toBe("DB_PASSWORD");
    expect(targetName("SECRET_", "SECRET_")).toBeUndefined();
    expect(targetName("PASSWORD", "SECRET_")).toBeUndefined();
  });
});

describe("isValidEnvName", () => {
  it.each([
    ["PASSWORD", true],
    ["_x1", true],
    ["1X", false],
    ["A-B", false],
    ["A=B", false],
    ["", false],
  ])("%j → %s", (name, valid) => {
    expect(isValidEnvName(name)).toBe(valid);
  });
});

describe("splitList", () => {
  it("trims and drops empty items", () => {
    expect(splitList(" a, b,,c ")).toEqual(["a", "b", "c"]);
    expect(splitList(undefined)).toEqual([]);
  });
});
