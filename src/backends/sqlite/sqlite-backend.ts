/**
 * The SQLite backend (better-sqlite3): one file in WAL mode, keys as a `WITHOUT ROWID` BLOB
 * primary key, JSON values as TEXT so SQLite's JSON functions can read them. A group of commits
 * runs in one `BEGIN IMMEDIATE` transaction (one fsync), each commit inside its own savepoint.
 */
import type BetterSqlite3 from "better-sqlite3";
import { suffixVersionstamp } from "../../codec/key-codec.js";
import type { EncodedValue } from "../../codec/value-codec.js";
import { versionstampFromCounter } from "../../codec/versionstamp.js";
import type {
  Backend,
  Claimed,
  CommitOutcome,
  CountRange,
  DeadLetter,
  KeyRange,
  LeasedMessage,
  QueueStats,
  RawEntry,
  SearchIndex,
  SearchRequest,
  Settlement,
  StorageCommit,
  StorageMutation,
  StoredChanges,
} from "../backend.js";
import { messageColumns } from "../message-columns.js";
import { pruneChanges, readChanges } from "./change-feed.js";
import { GroupChanges } from "./change-log.js";
import { CommitNotifier } from "./commit-notifier.js";
import { type Connection, openConnection, sqliteError } from "./connection.js";
import { claim, deadLetters, leasedMessage, queueStats } from "./queue.js";
import { createIndex, listIndexes, removeIndex, search } from "./search.js";
import { entry, type Row, readEntry, type StatementCache, type Statements } from "./statements.js";

/** Versionstamp counters reserved per write of the meta row. */
const COUNTER_BLOCK = 4096;

export interface SqliteOptions {
  /**
   * `"full"` (default): every acknowledged commit is fsynced and survives power loss.
   * `"relaxed"`: commits survive a crash of the process but the last ones may be lost on power
   * loss or an OS crash (SQLite `synchronous=NORMAL` in WAL mode); several times faster for
   * sequential writes.
   */
  durability?: "full" | "relaxed";
  /**
   * How often to look for commits by other processes on the same file while someone listens for
   * them (default 50 ms). The WAL file is watched as well, so they are usually seen at once; the
   * poll covers file systems that deliver no file events.
   */
  externalCommitPollMs?: number;
}

/** Whether `m` can fail only through a storage failure (it runs no code of the caller's, no filter). */
function failsOnlyWithStorage(m: StorageMutation): boolean {
  return m.type === "set" || ((m.type === "delete" || m.type === "deleteRange") && !m.filter);
}

/** The mutable state of one commit while it applies. */
interface Applying {
  readonly now: number;
  readonly counter: number;
  /** The changes of the commit's group so far, this commit's included. */
  readonly changes: GroupChanges;
  deleted: number;
  claimed?: Claimed;
}

export class SqliteBackend implements Backend {
  readonly #connection: Connection;
  readonly #db: BetterSqlite3.Database;
  readonly #sql: Statements;
  readonly #statements: StatementCache;
  /** The last versionstamp counter this connection issued, and the reserved bound above it. */
  #counter = 0;
  #reserved = 0;
  /** `PRAGMA data_version` at this connection's last write; it changes when another connection commits. */
  #seenDataVersion = -1;
  /** The running total of the newest `change_log` row as of our last write; `undefined`: read it. */
  #loggedTotal: number | undefined;
  readonly #commitGroup: BetterSqlite3.Transaction<
    (group: readonly StorageCommit[], now: number) => CommitOutcome[]
  >;
  readonly #commitOne: BetterSqlite3.Transaction<(commit: StorageCommit, state: Applying) => void>;
  readonly #snapshot: Connection["snapshot"];
  readonly #notifier: CommitNotifier;

  /** Opens (creating if needed) the database at `path`, or an in-memory one for `":memory:"`. */
  constructor(path: string, options: SqliteOptions = {}) {
    const connection = openConnection(path, options.durability);
    const { db } = connection;
    this.#connection = connection;
    this.#db = db;
    this.#sql = connection.sql;
    this.#statements = connection.cache;
    this.#commitGroup = db.transaction((group, now) => this.#applyGroup(group, now));
    this.#commitOne = db.transaction((commit, state) => this.#applyCommit(commit, state));
    this.#snapshot = connection.snapshot;
    this.#notifier = new CommitNotifier(
      db,
      this.#sql.dataVersion,
      options.externalCommitPollMs ?? 50,
    );
  }

  async get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]> {
    try {
      if (keys.length === 1) return [readEntry(this.#sql, keys[0]!, now)];
      return this.#snapshot(() =>
        keys.map((key) => readEntry(this.#sql, key, now)),
      ) as (RawEntry | null)[];
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]> {
    const scanOne = (r: KeyRange) => {
      const filtered =
        r.filter && this.#statements.withFilter(r.reverse ? "scanReverse" : "scan", r.filter, now);
      const rows = filtered
        ? filtered.statement.raw().all(r.start, r.end, ...filtered.params, now, r.limit)
        : (r.reverse ? this.#sql.scanReverse : this.#sql.scan).all(r.start, r.end, now, r.limit);
      return (rows as Row[]).map(entry);
    };
    try {
      return ranges.length === 1
        ? [scanOne(ranges[0]!)]
        : (this.#snapshot(() => ranges.map(scanOne)) as RawEntry[][]);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async count(range: CountRange, now: number): Promise<number> {
    try {
      const filtered = range.filter && this.#statements.withFilter("count", range.filter, now);
      const count = filtered
        ? filtered.statement.pluck().get(range.start, range.end, ...filtered.params, now)
        : this.#sql.count.get(range.start, range.end, now);
      return count as number;
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    let outcomes: CommitOutcome[];
    try {
      outcomes = this.#commitGroup.immediate(group, now);
    } catch (e) {
      this.#seenDataVersion = -1; // rolled back, maybe with a reservation: re-read the meta row
      // A commit alone in its group fails the whole transaction; that is its outcome, not a storage failure.
      if (group.length === 1) return [{ ok: "error", error: sqliteError(e) }];
      throw sqliteError(e);
    }
    return outcomes;
  }

  #applyGroup(group: readonly StorageCommit[], now: number): CommitOutcome[] {
    this.#syncCounter();
    const outcomes: CommitOutcome[] = [];
    const changes = new GroupChanges();
    for (const commit of group) {
      if (!this.#checksPass(commit, now)) {
        outcomes.push({ ok: false });
        continue;
      }
      // A commit that may fail on its own runs in a savepoint, so that only it fails; alone in its
      // group, it fails the whole transaction (see `commit`). Plain sets and deletes fail only
      // when storage does, and then the whole group fails.
      const savepoint = group.length > 1 && !commit.mutations.every(failsOnlyWithStorage);
      const before = changes.size;
      try {
        const state: Applying = { now, counter: this.#nextCounter(), changes, deleted: 0 };
        if (savepoint) this.#commitOne(commit, state);
        else this.#applyCommit(commit, state);
        outcomes.push({
          ok: true,
          versionstamp: versionstampFromCounter(state.counter),
          deleted: state.deleted,
          ...(state.claimed && { claimed: state.claimed }),
        });
      } catch (error) {
        if (!savepoint) throw error;
        changes.truncate(before);
        outcomes.push({ ok: "error", error: sqliteError(error) });
      }
    }
    if (changes.size > 0) {
      const { last, blob } = changes.encode();
      this.#loggedTotal ??= (this.#sql.loggedTotal.get() as number | undefined) ?? 0;
      this.#loggedTotal += changes.size;
      this.#sql.logChanges.run(last, this.#loggedTotal, now, blob);
    }
    return outcomes;
  }

  /**
   * Versionstamp counters are handed out from a reserved block, so that most commits do not write
   * the meta row. Called inside the write transaction: if another connection (another process on
   * the same file) committed since our last write, continue above everything it may have issued
   * (and read the change log's running total again). Gaps are allowed; after a crash, counting resumes above the reserved block.
   */
  #syncCounter(): void {
    const dataVersion = this.#sql.dataVersion.get() as number;
    if (dataVersion !== this.#seenDataVersion) {
      this.#counter = this.#reserved = this.#sql.readReserved.get() as number;
      this.#loggedTotal = undefined;
      this.#seenDataVersion = dataVersion;
    }
  }

  #nextCounter(): number {
    this.#counter++;
    if (this.#counter >= this.#reserved) {
      this.#reserved = this.#counter + COUNTER_BLOCK;
      this.#sql.writeReserved.run(this.#reserved);
    }
    return this.#counter;
  }

  #checksPass(commit: StorageCommit, now: number): boolean {
    for (const check of commit.checks) {
      if ((readEntry(this.#sql, check.key, now)?.versionstamp ?? null) !== check.versionstamp)
        return false;
    }
    return true;
  }

  #applyCommit(commit: StorageCommit, state: Applying): void {
    for (const m of commit.mutations) this.#applyMutation(m, state);
  }

  #applyMutation(m: StorageMutation, state: Applying): void {
    const { now, counter } = state;
    switch (m.type) {
      case "set": {
        const key = m.suffixVersionstamp
          ? suffixVersionstamp(m.key, versionstampFromCounter(counter))
          : m.key;
        this.#write(state, key, m.value, m.expiresAt);
        return;
      }
      case "delete": {
        const filtered = m.filter && this.#statements.withFilter("delete", m.filter, now);
        const keys = filtered
          ? filtered.statement.pluck().all(m.key, ...filtered.params, now)
          : this.#sql.delete.all(m.key, now);
        this.#deleted(state, keys as Buffer[]);
        return;
      }
      case "deleteRange": {
        const filtered = m.filter && this.#statements.withFilter("deleteRange", m.filter, now);
        const keys = filtered
          ? filtered.statement.pluck().all(m.start, m.end, ...filtered.params, now)
          : this.#sql.deleteRange.all(m.start, m.end, now);
        this.#deleted(state, keys as Buffer[]);
        return;
      }
      case "modify":
        this.#write(state, m.key, m.apply(readEntry(this.#sql, m.key, now)), null);
        return;
      case "purgeExpired":
        this.#deleted(state, this.#sql.purgeExpired.all(now, m.limit) as Buffer[]);
        return;
      case "pruneChanges":
        // As if read: the newest row may be gone.
        if (pruneChanges(this.#sql, m.before, m.keep)) this.#loggedTotal = undefined;
        return;
      case "enqueue": {
        const { message: msg } = m;
        const [backoff, undelivered] = messageColumns(msg);
        this.#sql.enqueue.run(
          msg.id,
          msg.value.data,
          msg.value.encoding,
          m.readyAt,
          msg.attempts,
          backoff,
          undelivered,
          msg.createdAt,
        );
        return;
      }
      case "claim":
        state.claimed = claim(this.#sql, now, m.limit, m.leaseMs);
        return;
      case "renewLease":
        this.#sql.renewLease.run(m.leaseUntil, m.id, m.lease);
        return;
      case "settle":
        this.#settle(state, m.id, m.lease, m.decide);
        return;
      case "requeue":
        state.deleted += this.#sql.requeue.run(m.newId, now, now, m.id).changes;
        this.#sql.deleteDeadLetter.run(m.id);
        return;
      case "deleteDeadLetter":
        state.deleted +=
          m.id === null
            ? this.#sql.purgeDeadLetters.run().changes
            : this.#sql.deleteDeadLetter.run(m.id).changes;
        return;
    }
  }

  #write(state: Applying, key: Uint8Array, value: EncodedValue, expiresAt: number | null): void {
    this.#sql.set.run(key, value.data, value.encoding, state.counter, expiresAt);
    state.changes.add(state.counter, key, false);
  }

  #deleted(state: Applying, keys: readonly Buffer[]): void {
    state.deleted += keys.length;
    for (const key of keys) state.changes.add(state.counter, key, true);
  }

  #settle(
    state: Applying,
    id: string,
    lease: string | null,
    decide: (message: LeasedMessage) => Settlement,
  ): void {
    const leased = leasedMessage(this.#sql, id);
    if (leased === undefined || (lease !== null && leased.lease !== lease)) return;
    const settlement = decide(leased);
    switch (settlement.type) {
      case "ack":
        this.#sql.ack.run(id);
        return;
      case "retry":
        this.#sql.retry.run(settlement.readyAt, id);
        return;
      case "release":
        this.#sql.release.run(state.now, id);
        return;
      case "deadLetter":
        for (const key of leased.keysIfUndelivered) this.#write(state, key, leased.value, null);
        this.#sql.deadLetter.run(settlement.error, state.now, id);
        this.#sql.ack.run(id);
        return;
    }
  }

  async readChanges(after: string, limit: number): Promise<StoredChanges> {
    try {
      return readChanges(this.#connection, after, limit);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  onCommit(listener: () => void): () => void {
    return this.#notifier.add(listener);
  }

  async createIndex(index: SearchIndex): Promise<void> {
    try {
      createIndex(this.#connection, index);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async removeIndex(prefix: Uint8Array): Promise<boolean> {
    try {
      return removeIndex(this.#connection, prefix);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async listIndexes(): Promise<SearchIndex[]> {
    try {
      return listIndexes(this.#connection);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async search(request: SearchRequest, now: number): Promise<RawEntry[]> {
    try {
      return search(this.#connection, request, now);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async queueStats(now: number): Promise<QueueStats> {
    try {
      return queueStats(this.#sql, now);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async deadLetters(
    query: { limit: number; offset: number } | { id: string },
  ): Promise<DeadLetter[]> {
    try {
      return deadLetters(this.#sql, query);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async nextExpiry(): Promise<number | null> {
    try {
      return this.#sql.nextExpiry.get() as number | null;
    } catch (e) {
      throw sqliteError(e);
    }
  }

  async close(): Promise<void> {
    this.#notifier.close();
    this.#db.close();
  }
}
