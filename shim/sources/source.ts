// What resolution needs from a secrets backend: read one secret's fields. Vault and Custodia implement
// it (vault.ts, custodia.ts); unit tests use an in-memory one. Issuing secrets under leases that live
// and die with the backend credential is a `LeaseIssuer`, which only Vault is.
import type { IssuedReference, SecretReference } from "../../common/reference.ts";

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

export interface Lease {
  id: string;
  /** Seconds, as the backend granted them. */
  durationS: number;
  renewable: boolean;
}

/** What is known about a secret besides its values: for the audit record and for rotation. Never a value. */
export interface SecretInfo {
  /** When it was read or issued (epoch ms). */
  at: number;
  /** KV v2: the version read. */
  version?: number;
  /** Issued secrets with a lease (database credentials, ...). */
  lease?: Lease;
  /** Issued secrets: when they stop working (epoch ms) — the lease's end, a certificate's notAfter. */
  expiresAt?: number;
  /** Leases: when the Vault token they were issued under expires unless renewed (epoch ms). Vault
   *  revokes a token's leases with it, so without renewals (exec mode) this is their real end. */
  tokenExpiresAt?: number;
  /** PKI: the certificate's serial number. */
  serial?: string;
}

export interface Secret {
  fields: SecretFields;
  info: SecretInfo;
}

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
  read(reference: SecretReference, options: ReadOptions): Promise<Secret>;
}

/** A backend that issues secrets with leases held by its own credential (Vault). */
export interface LeaseIssuer {
  /** Issues a secret; fails with a SourceError. Placeholders are filled in already. */
  issue(reference: IssuedReference, options: ReadOptions): Promise<Secret>;
  /** Extends a lease by `incrementS`; resolves with the lease's new expiry (epoch ms). */
  renew(lease: Lease, incrementS: number, options: ReadOptions): Promise<number>;
  /** The app is gone for good: end what the shim holds (Vault: its own token, and with it every lease
   *  issued under it). Best effort. */
  release(options: ReadOptions): Promise<void>;
  /** While the shim stays resident (rotation): keep the credential fresh. Returns a stop function. */
  keepAlive(): () => void;
  /** Calls `listener` when the credential that holds the leases is replaced by a new one; the old one
   *  (and with it every lease issued under it) ends at `retiredAt` (epoch ms). */
  onCredentialReplaced(listener: (retiredAt: number) => void): void;
}

export function isLeaseIssuer(source: SecretSource): source is SecretSource & LeaseIssuer {
  return typeof (source as Partial<LeaseIssuer>).issue === "function";
}
