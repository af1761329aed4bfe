/**
 * The storage contract. A backend stores encoded keys (compared bytewise) with encoded values,
 * commits atomically, and reads consistent snapshots. It knows nothing of key parts, value types
 * or API shapes: the engine hands it bytes and pure functions. Every method is required.
 *
 * JSON values (`ValueEncoding.JSON`) arrive as exactly the text `JSON.stringify` writes for the
 * value, whoever sent them (the engine and the faces re-encode anything else), so a backend may
 * rely on that form, e.g. to search the raw text before parsing it.
 *
 * Time is always the engine's: `now` (epoch ms) is passed in, and an entry whose `expiresAt` is
 * `<= now` does not exist for any read, check, count or delete.
 */
import type { EncodedValue } from "../codec/value-codec.js";
import type { Filter } from "./filter.js";
import type { SearchIndex, SearchRequest } from "./search.js";

export type {
  FieldPath,
  Filter,
  NowOperand,
  Operand,
  OrderedOperand,
} from "./filter.js";
export type { SearchIndex, SearchQuery, SearchRequest, Tokenizer } from "./search.js";
export { TOKENIZERS } from "./search.js";

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
  /**
   * Only entries matching this filter (see filter.ts for its semantics), evaluated inside the
   * database with `now` for server-time operands; `limit` counts matching entries. Absent: all.
   */
  readonly filter?: Filter;
}

/** The live entries in `[start, end)` matching `filter` (absent: all), counted inside the database. */
export interface CountRange {
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly filter?: Filter;
}

/** One key's change in a commit: what was written (with its expiry), or `null` for a deletion. */
export interface ChangeRecord {
  readonly key: Uint8Array;
  readonly entry: (RawEntry & { readonly expiresAt: number | null }) | null;
}

/** The changes of one commit, each key once, in key order. */
export interface CommitChanges {
  readonly versionstamp: string;
  readonly changes: readonly ChangeRecord[];
}

export interface StoredChanges {
  /** Whole commits after the requested versionstamp, in commit order. */
  readonly commits: readonly CommitChanges[];
  /**
   * Every change after this versionstamp is retained; older ones may have been pruned. A reader
   * whose position is below it has lost history.
   */
  readonly horizon: string;
  /** The versionstamp of the newest retained commit with changes (or `horizon`). */
  readonly head: string;
}

/** A queue message as stored. Times are epoch ms. */
export interface StoredMessage {
  readonly id: string;
  readonly value: EncodedValue;
  /** Deliveries so far (the first delivery is attempt 1). */
  readonly attempts: number;
  /** Delays (ms) before the 2nd, 3rd, … delivery after a failure; its length + 1 is the attempt limit. */
  readonly backoffSchedule: readonly number[];
  /** Keys that receive `value` when the message is dead-lettered. */
  readonly keysIfUndelivered: readonly Uint8Array[];
  readonly createdAt: number;
}

/** A message leased to one consumer until `leaseUntil`; `lease` identifies that lease. */
export interface LeasedMessage extends StoredMessage {
  readonly lease: string;
  readonly leaseUntil: number;
}

/** What becomes of a leased message; decided by the engine from the stored message. */
export type Settlement =
  | { readonly type: "ack" }
  | { readonly type: "retry"; readonly readyAt: number }
  /** Gives the lease up uncounted: the message is claimable at once with the attempts it had before. */
  | { readonly type: "release" }
  /** Writes `value` to every `keysIfUndelivered` key and moves the message to the dead-letter queue. */
  | { readonly type: "deadLetter"; readonly error: string };

export interface DeadLetter extends StoredMessage {
  readonly error: string;
  readonly failedAt: number;
}

export interface QueueStats {
  /** Waiting for delivery (including delayed and retrying messages, and expired leases). */
  readonly pending: number;
  /** Leased to a consumer right now. */
  readonly processing: number;
  readonly dlq: number;
  /** pending + processing + dlq. */
  readonly total: number;
}

/** The live entries of the user keyspace (keys below 0xFF) and their size. */
export interface StorageStats {
  readonly entries: number;
  /** The byte lengths of their keys and stored values, summed (the seed's `sizeBytes`). */
  readonly sizeBytes: number;
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
  /** Removes `key` if it is live and, with `filter`, its value matches (server-time operands: the commit's `now`). */
  | { readonly type: "delete"; readonly key: Uint8Array; readonly filter?: Filter }
  /** Removes every live entry in `[start, end)`, with `filter` only those whose value matches. */
  | {
      readonly type: "deleteRange";
      readonly start: Uint8Array;
      readonly end: Uint8Array;
      readonly filter?: Filter;
    }
  | {
      readonly type: "modify";
      readonly key: Uint8Array;
      readonly apply: (current: EncodedValue | null) => EncodedValue;
    }
  /** Physically removes up to `limit` entries that expired at or before `now`. */
  | { readonly type: "purgeExpired"; readonly limit: number }
  /**
   * Drops change records committed before `before` (epoch ms), and all but the newest `keep`.
   * A backend that stores a group commit's changes together drops them together: it may keep
   * a few more.
   */
  | { readonly type: "pruneChanges"; readonly before: number; readonly keep: number }
  /** Stores a queue message, deliverable from `readyAt`. */
  | {
      readonly type: "enqueue";
      readonly message: StoredMessage;
      readonly readyAt: number;
    }
  /**
   * Leases up to `limit` messages that are ready (or whose lease expired) at `now`, oldest
   * `readyAt` first, until `now + leaseMs`, counting one more attempt each; see `claimed`.
   */
  | { readonly type: "claim"; readonly limit: number; readonly leaseMs: number }
  /** Extends lease `lease` of message `id` to `leaseUntil`; nothing when that lease is gone. */
  | {
      readonly type: "renewLease";
      readonly id: string;
      readonly lease: string;
      readonly leaseUntil: number;
    }
  /**
   * Settles message `id` if it is leased (under `lease`, when not `null`): `decide` chooses from
   * the stored message. Nothing happens for a message that is not leased.
   */
  | {
      readonly type: "settle";
      readonly id: string;
      readonly lease: string | null;
      readonly decide: (message: LeasedMessage) => Settlement;
    }
  /**
   * Moves dead letter `id` back into the queue as message `newId` with attempts reset, keeping
   * its backoff schedule and undelivered keys, ready at `now`; counts as deleted.
   */
  | { readonly type: "requeue"; readonly id: string; readonly newId: string }
  /** Removes dead letter `id` (or, with `null`, every dead letter); counts as deleted. */
  | { readonly type: "deleteDeadLetter"; readonly id: string | null };

export interface StorageCommit {
  readonly checks: readonly Check[];
  readonly mutations: readonly StorageMutation[];
}

/** What a `claim` mutation leased, and when the next message becomes claimable (`null`: none waiting). */
export interface Claimed {
  readonly messages: readonly LeasedMessage[];
  readonly nextAt: number | null;
}

export type CommitOutcome =
  | {
      readonly ok: true;
      readonly versionstamp: string;
      /** Live entries removed by `delete`, `deleteRange` and `purgeExpired`; dead letters removed. */
      readonly deletedCount: number;
      /** Present when the commit had a `claim` mutation. */
      readonly claimed?: Claimed;
    }
  | { readonly ok: false }
  | { readonly ok: "error"; readonly error: unknown };

export interface Backend {
  /** Live entries for `keys`, in order, `null` where absent; one consistent snapshot. */
  get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]>;

  /** Live entries of each range, in the range's order; all ranges from one consistent snapshot. */
  scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]>;

  /** How many live entries `range` holds; one snapshot. */
  count(range: CountRange, now: number): Promise<number>;

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

  /**
   * The change feed: commits with a versionstamp above `after`, oldest first, whole commits only,
   * about `limit` changes at most (a larger commit comes alone). Every commit that writes or
   * deletes entries (including `purgeExpired`) records one change per key it touched, in key
   * order. A change that a later commit superseded (it changed the same key again) is left out
   * of its commit: the later change reports the key. A commit may therefore come with no changes.
   */
  readChanges(after: string, limit: number): Promise<StoredChanges>;

  /**
   * Calls `listener` soon after a commit that this backend did not make itself (another process
   * sharing the storage committed). Returns a function that removes the listener.
   */
  onCommit(listener: () => void): () => void;

  /**
   * Creates the full-text index `index` (search.ts), replacing any index on the same prefix, and
   * indexes every stored entry under its prefix, in one transaction. From then on every commit,
   * whatever writes or removes an entry under the prefix (expiry purges included), updates the
   * index in its own transaction. An index on a prefix inside another index's prefix is separate.
   */
  createIndex(index: SearchIndex): Promise<void>;

  /** Removes the index on exactly `prefix`; resolves whether there was one. */
  removeIndex(prefix: Uint8Array): Promise<boolean>;

  /** Every index, in prefix order. */
  listIndexes(): Promise<SearchIndex[]>;

  /**
   * Live entries under the index on exactly `request.prefix` that match its query and filter,
   * most relevant first (ties in key order), at most `limit`. `NOT_FOUND` when there is no index
   * on that prefix.
   */
  search(request: SearchRequest, now: number): Promise<RawEntry[]>;

  queueStats(now: number): Promise<QueueStats>;

  /** Counts and sizes the live entries of the user keyspace, inside the database (a full scan). */
  storageStats(now: number): Promise<StorageStats>;

  /** Dead letters, newest first (`limit`, `offset`), or the one with `id`. */
  deadLetters(query: { limit: number; offset: number } | { id: string }): Promise<DeadLetter[]>;

  /** Releases the storage. No other method is called afterwards. */
  close(): Promise<void>;
}
