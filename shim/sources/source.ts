// What resolution needs from a secrets backend: read one secret's fields. Vault and Custodia
// implement it (vault.ts, custodia.ts); unit tests use an in-memory one.
import type { SecretReference } from "../../common/reference.ts";

/**
 * Why a read failed. `transient` is retried until the deadline (then the backend counts as
 * unavailable); every other kind is final and the reference is unresolved.
 */
export type SourceFailure = "missing" | "denied" | "malformed" | "config" | "transient";

export class SourceError extends Error {
  override name = "SourceError";
  readonly kind: SourceFailure;

  constructor(kind: SourceFailure, message: string) {
    super(message);
    this.kind = kind;
  }
}

/** A secret's fields by name. A Custodia key has exactly one field, named after the key. */
export type SecretFields = ReadonlyMap<string, string>;

export interface ReadOptions {
  /** How long this attempt may take. */
  timeoutMs: number;
}

export interface SecretSource {
  /** References with equal keys are served by one read. */
  readKey(reference: SecretReference): string;
  /** Where a reference points, for messages: `vault secret "myapp/db" under mount secret/`. Never a value. */
  describe(reference: SecretReference): string;
  /** The secret's fields; fails with a SourceError. */
  read(reference: SecretReference, options: ReadOptions): Promise<SecretFields>;
  /** While the shim stays resident (rotation): keep credentials fresh. Returns a stop function. */
  keepAlive?(): () => void;
}
