// Opens the source for a backend: checks that its settings are complete, then loads its module —
// only the backends that references use are ever loaded.
import type { Backend } from "../../common/reference.ts";
import { missingCustodiaSettings, missingVaultSettings, type ShimConfig } from "../config.ts";
import type { Log } from "../log.ts";
import { type SecretSource, SourceError } from "./source.ts";

export async function openSource(backend: Backend, config: ShimConfig, log: Log): Promise<SecretSource> {
  if (backend === "vault") {
    const missing = missingVaultSettings(config.vault);
    if (missing.length > 0 || config.vault.addr === undefined) throw new SourceError("config", `vault backend: ${missing.join("; ")}`);
    const { VaultSource } = await import("./vault.ts");
    return new VaultSource({ ...config.vault, addr: config.vault.addr }, log);
  }
  const missing = missingCustodiaSettings(config.custodia);
  if (missing.length > 0 || config.custodia.url === undefined) throw new SourceError("config", `custodia backend: ${missing.join("; ")}`);
  const { CustodiaSource } = await import("./custodia.ts");
  return new CustodiaSource({ ...config.custodia, url: config.custodia.url }, log);
}
