// File descriptors the shim itself opened must not reach the app. libuv marks its own close-on-exec,
// but a pipe of its signal machinery was seen to survive execve now and then (test/shim/env-contract
// caught it). The descriptors open when the shim started — the ones its parent meant for the app, e.g.
// socket activation — are kept; everything opened since is closed right before execve.
const { readdirSync, closeSync } = process.getBuiltinModule("node:fs");

function openDescriptors(): Set<number> {
  try {
    return new Set(readdirSync("/proc/self/fd").map(Number));
  } catch {
    return new Set();
  }
}

const atStart = openDescriptors();

/** Closes every descriptor above stderr that was not open when the shim started. Call only right before execve. */
export function closeDescriptorsOpenedSinceStart(): void {
  if (atStart.size === 0) return; // no /proc: nothing known, nothing closed
  for (const fd of openDescriptors()) {
    if (fd > 2 && !atStart.has(fd)) {
      try {
        closeSync(fd);
      } catch {
        /* closed meanwhile, or the listing's own descriptor */
      }
    }
  }
}
