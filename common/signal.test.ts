import { describe, expect, it } from "vitest";
import { parseSignal } from "./signal.ts";

describe("parseSignal", () => {
  it.each([
    ["SIGHUP", "SIGHUP"],
    ["hup", "SIGHUP"],
    ["USR2", "SIGUSR2"],
    ["SIGKILL", undefined],
    ["STOP", undefined],
    ["SIGNOPE", undefined],
  ])("%s → %s", (text, signal) => {
    expect(parseSignal(text)).toBe(signal);
  });
});
