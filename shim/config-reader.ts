// Reading one setting at a time, by the rules of common/shim-settings.ts: a bad value becomes a
// message that names the var, quotes the value and says what is accepted; the reader collects them
// so that all are reported.
import { readSetting, type SettingValue, type ShimSettingKey, ShimSettings } from "../common/shim-settings.ts";

export type Environment = Readonly<Record<string, string>>;

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Reads and checks settings; each problem becomes one message naming its var. */
export class Reader {
  readonly errors: string[] = [];
  private readonly env: Environment;

  constructor(env: Environment) {
    this.env = env;
  }

  /** The setting's value, its fallback when unset or empty, or (recorded as an error) its fallback when invalid. */
  read<K extends ShimSettingKey>(key: K): SettingValue<K> {
    const spec = ShimSettings[key];
    const raw = this.env[spec.env];
    const read = readSetting(key, raw);
    if (read.ok) return read.value;
    this.errors.push(`${spec.env}=${quote(raw ?? "")} is invalid; accepted: ${spec.accepted}`);
    return spec.fallback as SettingValue<K>;
  }
}
