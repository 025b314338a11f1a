// How kustodia writes Vault API paths and reads Vault field values, for KV reads (vault.ts) and
// issued secrets (vault-issue.ts) alike.

export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** How a field value reaches the env: strings as they are, null as "", anything else as JSON. */
export function fieldText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "";
  return JSON.stringify(value);
}
