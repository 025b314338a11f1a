import packageJson from "../package.json" with { type: "json" };

/** kustodia's version, shared by webhook and shim (the webhook writes it into kustodia.io/status). */
export const VERSION: string = packageJson.version;
