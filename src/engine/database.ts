/**
 * The engine's interface: what a `Kv` needs from a database, in encoded keys and values. The local
 * `Engine` implements it over a storage backend; a remote client implements it over HTTP. Inputs
 * are trusted: the SDK and the faces validate before they call.
 */
import type {
  CommitChanges,
  CountRange,
  DeadLetter,
  KeyRange,
  LeasedMessage,
  QueueStats,
  RawEntry,
  SearchIndex,
  SearchRequest,
  StorageMutation,
  StorageStats,
} from "../backends/backend.js";

export { TOKENIZERS } from "../backends/backend.js";

import type { EncodedValue } from "../codec/value-codec.js";
import { KvError } from "../kv-error.js";
import { checkCommit } from "./commit-limits.js";

export type {
  ChangeRecord,
  Check,
  CommitChanges,
  CountRange,
  DeadLetter,
  FieldPath,
  Filter,
  KeyRange,
  LeasedMessage,
  NowOperand,
  Operand,
  OrderedOperand,
  QueueStats,
  RawEntry,
  SearchIndex,
  SearchQuery,
  SearchRequest,
  StorageStats,
  StoredMessage,
  Tokenizer,
} from "../backends/backend.js";

export type Mutation =
  | {
      readonly type: "set";
      readonly key: Uint8Array;
      readonly value: EncodedValue;
      /** Milliseconds from the commit (server time) until the entry expires; absent: never. */
      readonly expireIn?: number;
      /** Write to `key` plus one string part holding the commit's versionstamp. */
      readonly suffixVersionstamp?: boolean;
      /**
       * The value holds server-time placeholders (codec/server-time.ts), each replaced by the
       * commit's time plus its offset, in epoch ms.
       */
      readonly resolveNow?: boolean;
    }
  /** `delete` and `deleteRange`, as the storage applies them (see `StorageMutation`). */
  | Extract<StorageMutation, { type: "delete" | "deleteRange" }>
  /** Read-modify-write mutations; see `mutations.ts` for their semantics and error texts. */
  | {
      readonly type: "sum";
      readonly key: Uint8Array;
      readonly value: EncodedValue;
      /** Only for number and bigint operands; built and validated by `sumBounds`. */
      readonly bounds?: SumBounds;
    }
  | {
      readonly type: "min" | "max" | "append" | "prepend";
      readonly key: Uint8Array;
      readonly value: EncodedValue;
    }
  /** Adds a message to the queue, committed or dropped with the rest of the commit. */
  | {
      readonly type: "enqueue";
      readonly id: string;
      readonly value: EncodedValue;
      /** Milliseconds from the commit until the first delivery. */
      readonly delay: number;
      /** Delays (ms) before each redelivery after a failure; its length + 1 attempts in all. */
      readonly backoffSchedule: readonly number[];
      readonly keysIfUndelivered: readonly Uint8Array[];
    }
  /**
   * Settles a leased message (under `lease`, or any lease when `null`): `ok` removes it; a
   * failure schedules the next attempt after its backoff, or after the last attempt writes its
   * value to its undelivered keys and moves it to the dead-letter queue with `error`.
   */
  | {
      readonly type: "settle";
      readonly id: string;
      readonly lease: string | null;
      readonly ok: boolean;
      readonly error?: string;
    }
  /**
   * Gives up lease `lease` of message `id` without counting the attempt (a consumer that stopped
   * before handing the message to its handler): claimable by others at once.
   */
  | { readonly type: "release"; readonly id: string; readonly lease: string }
  /** Extends a lease by `leaseMs` from the commit. */
  | {
      readonly type: "renewLease";
      readonly id: string;
      readonly lease: string;
      readonly leaseMs: number;
    }
  /** Moves a dead letter back into the queue as `newId`; `deletedCount` says whether it existed. */
  | { readonly type: "requeue"; readonly id: string; readonly newId: string }
  /** Removes a dead letter, or with `null` all of them; `deletedCount` counts them. */
  | { readonly type: "deleteDeadLetter"; readonly id: string | null };

/**
 * Bounds of a number or bigint sum (Deno KV's V8 sum): `min` and `max` have the operand's type,
 * either may be absent. A result outside them fails the commit with `OUT_OF_RANGE`, or with
 * `clamp` becomes the bound it crossed. A missing key takes the operand without a bounds check.
 */
export interface SumBounds {
  readonly min?: number | bigint;
  readonly max?: number | bigint;
  readonly clamp: boolean;
}

export interface Commit {
  readonly checks: readonly { readonly key: Uint8Array; readonly versionstamp: string | null }[];
  readonly mutations: readonly Mutation[];
}

declare const withinLimits: unique symbol;

/**
 * A commit within the atomic limits (checks, mutations, sizes): what `Database.commit` takes, and
 * what only `checkCommit` (commit-limits.ts) makes.
 */
export type CheckedCommit = Commit & { readonly [withinLimits]: true };

export type CommitResult =
  /** `deletedCount`: live entries removed by the commit's delete and deleteRange mutations. */
  | { readonly ok: true; readonly versionstamp: string; readonly deletedCount: number }
  | { readonly ok: false };

/** Where a change-feed reader is interested: half-open key ranges `[start, end)`. */
export interface FeedRanges {
  readonly ranges: readonly { readonly start: Uint8Array; readonly end: Uint8Array }[];
}

export interface ChangesRequest extends FeedRanges {
  /** Read commits after this versionstamp; `null`: from now. */
  readonly cursor: string | null;
  /** About this many changes at most per page. */
  readonly limit: number;
}

export interface ChangesPage {
  /** Commits after the cursor with at least one change in the ranges, each with only those changes. */
  readonly commits: readonly CommitChanges[];
  /** Where the next read continues: the last commit looked at, matching or not. */
  readonly cursor: string;
  /** Set when changes after the requested cursor are no longer retained: read on from here. */
  readonly lost?: string;
}

/** What a change-feed subscription is told, in order. */
export interface FeedListener {
  /** One commit's changes within the ranges; an expired entry is reported as a deletion. */
  commit(commit: CommitChanges): void;
  /**
   * Nothing new within the ranges up to `versionstamp`: sent once caught up (so a subscription
   * from now learns its cursor) and every few seconds after.
   */
  heartbeat(versionstamp: string): void;
  /**
   * The cursor asked for is older than the retained history: changes between it and `oldest`
   * are unknown. The subscription continues from `oldest`.
   */
  lost(oldest: string): void;
  /** The subscription failed and is over. */
  error(error: unknown): void;
}

export interface Subscription {
  /** Stops the subscription; no listener method is called afterwards. */
  close(): void;
}

/** The mutation that gives up `message`'s lease uncounted. */
export const releaseOf = (message: LeasedMessage): Mutation => ({
  type: "release",
  id: message.id,
  lease: message.lease,
});

/**
 * Commits `mutations` without checks (so it cannot fail one), within the atomic limits
 * (`ATOMIC_TOO_LARGE` past them).
 */
export async function commitMutations(
  database: Database,
  mutations: readonly Mutation[],
): Promise<{ readonly versionstamp: string; readonly deletedCount: number }> {
  const result = await database.commit(checkCommit({ checks: [], mutations }));
  if (!result.ok) throw new KvError("INTERNAL", "A commit without checks failed");
  return result;
}

/**
 * What a claim hands its caller: `messages`, or, once the caller's `signal` has aborted (a
 * consumer that stopped), none, their leases released to `database` so that others get them at once.
 */
export async function handedOut(
  database: Database,
  messages: readonly LeasedMessage[],
  signal: AbortSignal | undefined,
): Promise<LeasedMessage[]> {
  if (!signal?.aborted || messages.length === 0) return [...messages];
  await commitMutations(database, messages.map(releaseOf));
  return [];
}

export interface ClaimRequest {
  /** Lease at most this many messages. */
  readonly limit: number;
  /** For this long; renew with a `renewLease` mutation. */
  readonly leaseMs: number;
  /** When none is ready, wait up to this long for one (0: answer at once). */
  readonly waitMs: number;
  /** `settle` mutations committed together with the claim: a consumer settles and asks for more at once. */
  readonly settle?: readonly Extract<Mutation, { type: "settle" }>[];
}

export interface Database {
  /** Live entries for `keys` in order (`null` where absent), from one snapshot. */
  get(keys: readonly Uint8Array[]): Promise<(RawEntry | null)[]>;
  /** Live entries of each range (filtered inside the database), from one snapshot. */
  scan(ranges: readonly KeyRange[]): Promise<RawEntry[][]>;
  /** How many live entries of `range` match its filter, counted inside the database. */
  count(range: CountRange): Promise<number>;
  /**
   * Evaluates the checks and applies the mutations atomically under one new versionstamp, or
   * resolves `{ ok: false }` with nothing applied when a check fails. Rejects with a `KvError`
   * (nothing applied) when a mutation cannot be applied, e.g. `TYPE_MISMATCH`.
   */
  commit(commit: CheckedCommit): Promise<CommitResult>;
  /**
   * Follows the change feed from `cursor` (`null`: from now): every later commit with changes in
   * the ranges, in commit order, each commit's changes together, then live as commits happen.
   */
  follow(
    request: FeedRanges & { readonly cursor: string | null },
    listener: FeedListener,
  ): Subscription;
  /** One page of the change feed, for readers that poll. */
  changes(request: ChangesRequest): Promise<ChangesPage>;
  /** Leases ready queue messages to the caller; resolves `[]` after `waitMs` or on `signal`. */
  claim(request: ClaimRequest, signal?: AbortSignal): Promise<LeasedMessage[]>;
  /** Creates (or replaces) a full-text index and indexes what is already stored; see `Backend`. */
  createIndex(index: SearchIndex): Promise<void>;
  /** Removes the index on exactly `prefix`; resolves whether there was one. */
  removeIndex(prefix: Uint8Array): Promise<boolean>;
  /** Every full-text index, in prefix order. */
  listIndexes(): Promise<SearchIndex[]>;
  /** Live entries matching the query under an index, best first; `NOT_FOUND` without an index. */
  search(request: SearchRequest): Promise<RawEntry[]>;
  queueStats(): Promise<QueueStats>;
  /** How many live entries the user keyspace holds, and their size; counted inside the database. */
  storageStats(): Promise<StorageStats>;
  /** Dead letters, newest first, or the one with `id`. */
  deadLetters(query: { limit: number; offset: number } | { id: string }): Promise<DeadLetter[]>;
  /** Finishes pending commits and releases the storage. */
  close(): Promise<void>;
}
