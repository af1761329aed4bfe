import type { Duration } from "../codec/duration.js";
import type { KvKey } from "../codec/key-codec.js";

/** A stored entry. `versionstamp` is 20 hex characters, shared by every key its commit wrote. */
export interface KvEntry<T = unknown> {
  readonly key: KvKey;
  readonly value: T;
  readonly versionstamp: string;
}

/** What `get` returns: the entry, or `value: null, versionstamp: null` when the key is absent. */
export type KvEntryMaybe<T = unknown> =
  | KvEntry<T>
  | { readonly key: KvKey; readonly value: null; readonly versionstamp: null };

export interface KvCommitResult {
  readonly ok: true;
  readonly versionstamp: string;
}

/** A check failed: nothing was applied. */
export interface KvCommitError {
  readonly ok: false;
}

export interface KvSetOptions {
  /** Time to live: milliseconds or a duration string such as `"30s"` or `"1h"` (Deno's name). */
  readonly expireIn?: Duration;
  /** The seed's name for `expireIn`. */
  readonly expiresIn?: Duration;
}

/** Passes when `key`'s versionstamp equals `versionstamp`; `null` means the key must not exist. */
export interface AtomicCheck {
  readonly key: KvKey;
  readonly versionstamp: string | null;
}

export interface KvDeleteResult {
  readonly success: true;
  /** Live keys removed. */
  readonly deletedCount: number;
}

export interface KvQueueStats {
  /** Waiting for delivery, including delayed and retrying messages. */
  readonly pending: number;
  /** Being handled by a consumer right now. */
  readonly processing: number;
  /** In the dead-letter queue. */
  readonly dlq: number;
  readonly total: number;
}
