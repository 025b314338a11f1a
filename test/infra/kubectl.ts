// kubectl against the test node's cluster (its admin kubeconfig, through the loopback forwarder).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { NodeCoordinates } from "./types.ts";

const execFileAsync = promisify(execFile);

/** Runs kubectl; `input` goes to its stdin (for `-f -`). Throws with kubectl's stderr on a non-zero exit. */
export async function kubectl(node: NodeCoordinates, args: string[], input?: string): Promise<string> {
  const child = execFileAsync(node.kubectl, [`--kubeconfig=${node.kubeconfig}`, ...args], { maxBuffer: 16 * 1024 * 1024 });
  if (input !== undefined) child.child.stdin?.end(input);
  return (await child).stdout;
}
