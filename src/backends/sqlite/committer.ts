/**
 * The commit path on SQLite: a group of commits in one `BEGIN IMMEDIATE` transaction, each commit
 * that may fail on its own in a savepoint, versionstamps from a reserved block, and the statements
 * each mutation runs (see backends/apply-mutation.ts).
 */
import type BetterSqlite3 from "better-sqlite3";
import type { EncodedValue } from "../../codec/value-codec.js";
import { applied, applyMutation, type CommitWriter, settle } from "../apply-mutation.js";
import type {
  Claimed,
  CommitOutcome,
  Filter,
  LeasedMessage,
  Settlement,
  StorageCommit,
  StorageMutation,
} from "../backend.js";
import { ChangeLog } from "./change-feed.js";
import { GroupChanges } from "./change-log.js";
import { type Connection, sqliteError } from "./connection.js";
import { claim, leasedMessage } from "./queue.js";
import { readEntry, type SQL, type Statements } from "./statements.js";

/** Versionstamp counters reserved per write of the meta row. */
const COUNTER_BLOCK = 4096;

/** Whether `m` can fail only through a storage failure (it runs no code of the caller's, no filter). */
function failsOnlyWithStorage(m: StorageMutation): boolean {
  return m.type === "set" || ((m.type === "delete" || m.type === "deleteRange") && !m.filter);
}

/** Commits groups on one connection, handing out its versionstamps. */
export class Committer {
  readonly #connection: Connection;
  readonly #changeLog: ChangeLog;
  /** The last versionstamp counter this connection issued, and the reserved bound above it. */
  #counter = 0;
  #reserved = 0;
  /** `PRAGMA data_version` at this connection's last write; it changes when another connection commits. */
  #seenDataVersion = -1;
  readonly #commitGroup: BetterSqlite3.Transaction<
    (group: readonly StorageCommit[], now: number) => CommitOutcome[]
  >;
  readonly #commitOne: BetterSqlite3.Transaction<(commit: StorageCommit, to: Writer) => void>;

  constructor(connection: Connection) {
    this.#connection = connection;
    this.#changeLog = new ChangeLog(connection.sql);
    const { db } = connection;
    this.#commitGroup = db.transaction((group, now) => this.#applyGroup(group, now));
    this.#commitOne = db.transaction((commit, to) => this.#applyCommit(commit, to));
  }

  /** `Backend.commit`. */
  commit(group: readonly StorageCommit[], now: number): CommitOutcome[] {
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
        const to = new Writer(this.#connection, this.#changeLog, changes, now, this.#nextCounter());
        if (savepoint) this.#commitOne(commit, to);
        else this.#applyCommit(commit, to);
        outcomes.push(applied(to));
      } catch (error) {
        if (!savepoint) throw error;
        changes.truncate(before);
        outcomes.push({ ok: "error", error: sqliteError(error) });
      }
    }
    if (changes.size > 0) this.#changeLog.append(changes, now);
    return outcomes;
  }

  /**
   * Versionstamp counters are handed out from a reserved block, so that most commits do not write
   * the meta row. Called inside the write transaction: if another connection (another process on
   * the same file) committed since our last write, continue above everything it may have issued
   * (and read the change log's running total again). Gaps are allowed; after a crash, counting resumes above the reserved block.
   */
  #syncCounter(): void {
    const { sql } = this.#connection;
    const dataVersion = sql.dataVersion.get() as number;
    if (dataVersion !== this.#seenDataVersion) {
      this.#counter = this.#reserved = sql.readReserved.get() as number;
      this.#changeLog.forget();
      this.#seenDataVersion = dataVersion;
    }
  }

  #nextCounter(): number {
    this.#counter++;
    if (this.#counter >= this.#reserved) {
      this.#reserved = this.#counter + COUNTER_BLOCK;
      this.#connection.sql.writeReserved.run(this.#reserved);
    }
    return this.#counter;
  }

  #checksPass(commit: StorageCommit, now: number): boolean {
    const { sql } = this.#connection;
    for (const check of commit.checks) {
      if ((readEntry(sql, check.key, now)?.versionstamp ?? null) !== check.versionstamp) {
        return false;
      }
    }
    return true;
  }

  #applyCommit(commit: StorageCommit, to: Writer): void {
    for (const m of commit.mutations) applyMutation(m, to);
  }
}

/** One commit of a group as it applies: each statement runs at once. */
class Writer implements CommitWriter<void> {
  readonly #sql: Statements;
  readonly #connection: Connection;
  readonly #changeLog: ChangeLog;
  /** The changes of the commit's group so far, this commit's included. */
  readonly #changes: GroupChanges;
  readonly now: number;
  readonly counter: number;
  deletedCount = 0;
  claimed: Claimed | undefined;

  constructor(
    connection: Connection,
    changeLog: ChangeLog,
    changes: GroupChanges,
    now: number,
    counter: number,
  ) {
    this.#sql = connection.sql;
    this.#connection = connection;
    this.#changeLog = changeLog;
    this.#changes = changes;
    this.now = now;
    this.counter = counter;
  }

  run(name: keyof typeof SQL, params: unknown[]): void {
    this.#sql[name].run(...params);
  }

  runCounted(name: keyof typeof SQL, params: unknown[]): void {
    this.deletedCount += this.#sql[name].run(...params).changes;
  }

  valueColumns(value: EncodedValue): unknown[] {
    return [value.data, value.encoding];
  }

  write(key: Uint8Array, value: EncodedValue, expiresAt: number | null): void {
    this.#sql.set.run(key, value.data, value.encoding, this.counter, expiresAt);
    this.#changes.add(this.counter, key, false);
  }

  delete(key: Uint8Array, filter: Filter | undefined): void {
    const filtered = filter && this.#connection.cache.withFilter("delete", filter, this.now);
    const keys = filtered
      ? filtered.statement.pluck().all(key, ...filtered.params, this.now)
      : this.#sql.delete.all(key, this.now);
    this.#deleted(keys as Buffer[]);
  }

  deleteRange(start: Uint8Array, end: Uint8Array, filter: Filter | undefined): void {
    const filtered = filter && this.#connection.cache.withFilter("deleteRange", filter, this.now);
    const keys = filtered
      ? filtered.statement.pluck().all(start, end, ...filtered.params, this.now)
      : this.#sql.deleteRange.all(start, end, this.now);
    this.#deleted(keys as Buffer[]);
  }

  purgeExpired(limit: number): void {
    this.#deleted(this.#sql.purgeExpired.all(this.now, limit) as Buffer[]);
  }

  modify(key: Uint8Array, apply: (current: EncodedValue | null) => EncodedValue): void {
    this.write(key, apply(readEntry(this.#sql, key, this.now)), null);
  }

  pruneChanges(before: number, keep: number): void {
    this.#changeLog.prune(before, keep);
  }

  claim(limit: number, leaseMs: number): void {
    this.claimed = claim(this.#connection, this.now, limit, leaseMs);
  }

  settle(id: string, lease: string | null, decide: (message: LeasedMessage) => Settlement): void {
    settle(this, id, leasedMessage(this.#connection, id), lease, decide);
  }

  requeue(id: string, newId: string): void {
    this.runCounted("requeue", [newId, this.now, this.now, id]);
    this.run("deleteDeadLetter", [id]);
  }

  #deleted(keys: readonly Buffer[]): void {
    this.deletedCount += keys.length;
    for (const key of keys) this.#changes.add(this.counter, key, true);
  }
}
