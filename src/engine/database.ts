/**
 * The engine's interface: what a `Kv` needs from a database, in encoded keys and values. The local
 * `Engine` implements it over a storage backend; a remote client implements it over HTTP. Inputs
 * are trusted: the SDK and the faces validate before they call.
 */
import type { KeyRange, RawEntry } from "../backends/backend.js";
import type { EncodedValue } from "../codec/value-codec.js";

export type { Check, KeyRange, RawEntry } from "../backends/backend.js";

export type Mutation =
  | {
      readonly type: "set";
      readonly key: Uint8Array;
      readonly value: EncodedValue;
      /** Milliseconds from the commit (server time) until the entry expires; absent: never. */
      readonly expireIn?: number;
      /** Write to `key` plus one string part holding the commit's versionstamp. */
      readonly suffixVersionstamp?: boolean;
    }
  | { readonly type: "delete"; readonly key: Uint8Array }
  /** Deletes every live key in `[start, end)`, inside the database. */
  | { readonly type: "deleteRange"; readonly start: Uint8Array; readonly end: Uint8Array }
  /** Read-modify-write mutations; see `mutations.ts` for their semantics and error texts. */
  | {
      readonly type: "sum" | "min" | "max" | "append" | "prepend";
      readonly key: Uint8Array;
      readonly value: EncodedValue;
    };

export interface Commit {
  readonly checks: readonly { readonly key: Uint8Array; readonly versionstamp: string | null }[];
  readonly mutations: readonly Mutation[];
}

export type CommitResult =
  /** `deletedCount`: live entries removed by the commit's delete and deleteRange mutations. */
  | { readonly ok: true; readonly versionstamp: string; readonly deletedCount: number }
  | { readonly ok: false };

export interface Database {
  /** Live entries for `keys` in order (`null` where absent), from one snapshot. */
  get(keys: readonly Uint8Array[]): Promise<(RawEntry | null)[]>;
  /** Live entries of each range, from one snapshot. */
  scan(ranges: readonly KeyRange[]): Promise<RawEntry[][]>;
  /**
   * Evaluates the checks and applies the mutations atomically under one new versionstamp, or
   * resolves `{ ok: false }` with nothing applied when a check fails. Rejects with a `KvError`
   * (nothing applied) when a mutation cannot be applied, e.g. `TYPE_MISMATCH`.
   */
  commit(commit: Commit): Promise<CommitResult>;
  /** Finishes pending commits and releases the storage. */
  close(): Promise<void>;
}
