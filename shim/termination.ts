// Why the shim did not start the app, where Kubernetes looks for it: the kubelet mounts a file at
// the container's terminationMessagePath (/dev/termination-log unless the pod says otherwise) and
// copies what it holds into the container's status (`kubectl describe pod`, `lastState.terminated
// .message`). Best effort: outside Kubernetes, or with another path, there is no such file.
const { existsSync, writeFileSync } = process.getBuiltinModule("node:fs");

export const TERMINATION_LOG = "/dev/termination-log";
/** The kubelet reads at most 4096 bytes of it. */
const LIMIT = 4096;

export function writeTerminationMessage(lines: string[], path = TERMINATION_LOG): void {
  try {
    if (!existsSync(path)) return;
    writeFileSync(path, Buffer.from(`${lines.join("\n")}\n`).subarray(0, LIMIT));
  } catch {
    /* read-only or gone: the log still has the reason */
  }
}
