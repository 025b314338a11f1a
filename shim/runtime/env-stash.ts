// The other half of the runtime's launcher (launcher.c): it hands the app image's loader and Node
// settings (LD_*, GLIBC_TUNABLES, NODE_*, OPENSSL_*) to the shim's Node renamed, so they cannot
// change how that Node starts. Before the shim reads its environment, they get their names back, in
// place: the app receives its environment byte for byte and in the same order.

/** Must match KUSTODIA_STASH_PREFIX in launcher.c (build-runtime passes it to the compiler). */
export const STASH_PREFIX = "KUSTODIA_RUNTIME_ENV_";

/** Renames every `KUSTODIA_RUNTIME_ENV_<NAME>` back to `<NAME>`, keeping the order of all vars. */
export function restoreStashedEnv(env: Record<string, string | undefined>): void {
  const entries = Object.entries(env);
  if (!entries.some(([name]) => name.startsWith(STASH_PREFIX))) return;
  // process.env lists vars in environ order and appends new ones: re-adding all keeps the order.
  for (const [name] of entries) delete env[name];
  for (const [name, value] of entries) {
    if (value !== undefined) env[name.startsWith(STASH_PREFIX) ? name.slice(STASH_PREFIX.length) : name] = value;
  }
}
