// The signal of `rotation: signal`. Both programs run on Node on Linux, so the signal table is Node's.
import { constants } from "node:os";

/** `SIGHUP`, `HUP`, `sighup` → `SIGHUP`; undefined for unknown signals and those that cannot be sent usefully. */
export function parseSignal(value: string): NodeJS.Signals | undefined {
  const upper = value.toUpperCase();
  const name = (upper.startsWith("SIG") ? upper : `SIG${upper}`) as NodeJS.Signals;
  if (name === "SIGKILL" || name === "SIGSTOP" || !Object.hasOwn(constants.signals, name)) return undefined;
  return name;
}
