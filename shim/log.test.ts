import { describe, expect, it } from "vitest";
import { createLog } from "./log.ts";

function capture(level: Parameters<typeof createLog>[0]) {
  const lines: string[] = [];
  return { lines, log: createLog(level, (line) => lines.push(line)) };
}

describe("createLog", () => {
  it("writes one prefixed line per message at or above the level", () => {
    const { lines, log } = capture("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(lines).toEqual(["kustodia-shim warn: w\n", "kustodia-shim error: e\n"]);
  });

  it("keeps a message on one line", () => {
    const { lines, log } = capture("info");
    log.info("a\nb\r\nc");
    expect(lines).toEqual(["kustodia-shim info: a\\nb\\r\\nc\n"]);
  });

  it("censors registered secrets, also each line of a multi-line one", () => {
    const { lines, log } = capture("debug");
    log.redact("s3cr3t-value");
    log.redact("first line\nsecond line");
    log.redact("ab");
    log.error("oops s3cr3t-value and second line, ab stays");
    expect(lines).toEqual(["kustodia-shim error: oops [redacted] and [redacted], ab stays\n"]);
  });

  it("says whether debug lines are written", () => {
    expect(capture("debug").log.isDebug()).toBe(true);
    expect(capture("info").log.isDebug()).toBe(false);
  });
});

describe("record", () => {
  it("writes one unprefixed JSON line at any level, censoring every string in it", () => {
    const { lines, log } = capture("error");
    log.redact("s3cr3t-value");
    log.record({ event: "start", nested: [{ text: "has s3cr3t-value in it" }], n: 3 });
    expect(lines).toEqual(['{"event":"start","nested":[{"text":"has [redacted] in it"}],"n":3}\n']);
    expect(JSON.parse(lines[0] as string)).toEqual({ event: "start", nested: [{ text: "has [redacted] in it" }], n: 3 });
  });
});
