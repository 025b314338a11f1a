// Runs the `kustodia` command line (webhook/cli.ts) as a user would, for test/webhook/cli*.test.ts.
import { spawnSync } from "node:child_process";
import { service } from "../infra/coords.ts";
import type { RegistryImage } from "../infra/types.ts";

/** `kustodia <args>` with `input` on stdin, and no setting but the shim image (and `env`). */
export function kustodia(args: string[], input?: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["webhook/cli.ts", ...args], {
    input,
    encoding: "utf8",
    timeout: 30_000,
    env: { PATH: process.env.PATH, KUSTODIA_SHIM_IMAGE: "example/shim:1", ...env },
  });
}

/** The test registry's image with both ENTRYPOINT and CMD, and the settings that reach its registry. */
export function entrypointCmdImage(): { image: RegistryImage; env: Record<string, string> } {
  const registry = service("registry");
  const image = registry.images.entrypointCmd;
  if (!image) throw new Error("no entrypointCmd image in the test registry");
  return { image, env: { KUSTODIA_REGISTRY_PLAIN_HTTP: registry.plain.host, KUSTODIA_REGISTRY_ALLOWED_NETWORKS: "127.0.0.0/8" } };
}
