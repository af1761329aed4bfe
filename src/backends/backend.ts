/**
 * The storage contract. A backend stores encoded keys (compared bytewise) with encoded values,
 * commits atomically, and reads consistent snapshots. It knows nothing of key parts, value types
 * or API shapes: the engine hands it bytes and pure functions. Every method is required.
 *
 * Time is always the engine's: `now` (epoch ms) is passed in, and an entry whose `expiresAt` is
 * `<= now` does not exist for any read, check, count or delete.
 */
import type { EncodedValue } from "../codec/value-codec.js";

/** One stored entry, as a backend returns it: its encoded value with its key and versionstamp. */
export type RawEntry = EncodedValue & {
  readonly key: Uint8Array;
  /** 20 lowercase hex characters; strictly increasing per database in commit order. */
  readonly versionstamp: string;
};

/** A half-open key range `[start, end)`, read in ascending order or, with `reverse`, descending. */
export interface KeyRange {
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  /** At most this many entries (≥ 1), taken from `start` upwards or, with `reverse`, from `end` down. */
  readonly limit: number;
  readonly reverse: boolean;
}

/** Passes when `key`'s current versionstamp equals `versionstamp` (`null`: the key must not exist). */
export interface Check {
  readonly key: Uint8Array;
  readonly versionstamp: string | null;
}

/**
 * A write, applied in order within its commit. `modify` calls `apply` with the key's current live
 * value (or `null`) and stores the result without expiry; `apply` may throw a `KvError`, which fails
 * that commit and leaves nothing of it applied.
 */
export type StorageMutation =
  | {
      readonly type: "set";
      readonly key: Uint8Array;
      readonly value: EncodedValue;
      /** Epoch ms after which the entry is gone; `null` for never. Replaces any earlier expiry. */
      readonly expiresAt: number | null;
      /** Append the commit's versionstamp to `key` as one more string part (see `suffixVersionstamp`). */
      readonly suffixVersionstamp?: boolean;
    }
  | { readonly type: "delete"; readonly key: Uint8Array }
  | { readonly type: "deleteRange"; readonly start: Uint8Array; readonly end: Uint8Array }
  | {
      readonly type: "modify";
      readonly key: Uint8Array;
      readonly apply: (current: EncodedValue | null) => EncodedValue;
    }
  /** Physically removes up to `limit` entries that expired at or before `now`. */
  | { readonly type: "purgeExpired"; readonly limit: number };

export interface StorageCommit {
  readonly checks: readonly Check[];
  readonly mutations: readonly StorageMutation[];
}

export type CommitOutcome =
  /** `deleted`: live entries removed by `delete`, `deleteRange` and `purgeExpired` mutations. */
  | { readonly ok: true; readonly versionstamp: string; readonly deleted: number }
  | { readonly ok: false }
  | { readonly ok: "error"; readonly error: unknown };

export interface Backend {
  /** Live entries for `keys`, in order, `null` where absent; one consistent snapshot. */
  get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]>;

  /** Live entries of each range, in the range's order; all ranges from one consistent snapshot. */
  scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]>;

  /**
   * Commits a group of independent commits in order, durably, in as few storage transactions as
   * the backend can. Each commit evaluates its checks against the state left by the commits before
   * it, then either applies all of its mutations under one new versionstamp (`ok: true`; stamps
   * increase in group order, and a commit with no mutations still gets one), applies nothing
   * (`ok: false`, a check failed), or applies nothing because a mutation threw (`ok: "error"`).
   * Resolves once every commit in the group is durable. Rejects only when storage itself fails,
   * in which case no commit of the group was applied.
   */
  commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]>;

  /** The earliest `expiresAt` of any stored entry, expired or not; `null` if none expires. */
  nextExpiry(): Promise<number | null>;

  /** Releases the storage. No other method is called afterwards. */
  close(): Promise<void>;
}
