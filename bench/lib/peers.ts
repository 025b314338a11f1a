// Bank-Vaults, the peers kustodia is measured against: where bench/install-peers.sh puts their
// binaries, and a way to build them when asked to.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir } from "../../test/infra/up.ts";

export const PEER_VERSIONS = {
  "vault-secrets-webhook": process.env.BANK_VAULTS_WEBHOOK_VERSION ?? "v1.23.1",
  "vault-env": process.env.BANK_VAULTS_VAULT_ENV_VERSION ?? "v1.23.0",
} as const;

export type PeerName = keyof typeof PEER_VERSIONS;

const INSTALL_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "install-peers.sh");

/** The binary install-peers.sh built, or undefined when it has not been built. */
export function peerBinary(name: PeerName): string | undefined {
  const binary = join(cacheDir(), "bank-vaults", `${name}-${PEER_VERSIONS[name]}`, name);
  try {
    accessSync(binary, constants.X_OK);
    return binary;
  } catch {
    return undefined;
  }
}

/** Runs bench/install-peers.sh (a no-op when both are built); throws when it fails. */
export function installPeers(): void {
  const run = spawnSync("bash", [INSTALL_SCRIPT], { stdio: ["ignore", "ignore", "inherit"] });
  if (run.status !== 0) throw new Error(`bench/install-peers.sh failed (exit ${run.status})`);
}
