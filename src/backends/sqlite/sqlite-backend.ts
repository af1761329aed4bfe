/**
 * The SQLite backend (better-sqlite3): one file in WAL mode, keys as a `WITHOUT ROWID` BLOB
 * primary key, JSON values as TEXT so SQLite's JSON functions can read them. A group of commits
 * runs in one `BEGIN IMMEDIATE` transaction (one fsync), each commit inside its own savepoint.
 *
 * This file wires the parts and holds the reads: connection.ts (opening, pragmas, driver errors),
 * migrations.ts, statements.ts (the SQL), committer.ts (the commit path), change-feed.ts,
 * queue.ts, commit-notifier.ts (`onCommit`) and search.ts.
 */
import type {
  Backend,
  CommitOutcome,
  CountRange,
  DeadLetter,
  KeyRange,
  QueueStats,
  RawEntry,
  SearchIndex,
  SearchRequest,
  StorageCommit,
  StoredChanges,
} from "../backend.js";
import { readChanges } from "./change-feed.js";
import { CommitNotifier } from "./commit-notifier.js";
import { Committer } from "./committer.js";
import { type Connection, openConnection, sqliteError } from "./connection.js";
import { deadLetters, queueStats } from "./queue.js";
import { createIndex, listIndexes, removeIndex, search } from "./search.js";
import { entry, type Row, readEntry } from "./statements.js";

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

export class SqliteBackend implements Backend {
  readonly #connection: Connection;
  readonly #committer: Committer;
  readonly #notifier: CommitNotifier;

  /** Opens (creating if needed) the database at `path`, or an in-memory one for `":memory:"`. */
  constructor(path: string, options: SqliteOptions = {}) {
    const connection = openConnection(path, options.durability);
    this.#connection = connection;
    this.#committer = new Committer(connection);
    this.#notifier = new CommitNotifier(
      connection.db,
      connection.sql.dataVersion,
      options.externalCommitPollMs ?? 50,
    );
  }

  /** Runs `work`, mapping driver errors. */
  async #run<T>(work: () => T): Promise<T> {
    try {
      return work();
    } catch (e) {
      throw sqliteError(e);
    }
  }

  get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]> {
    const { sql, snapshot } = this.#connection;
    return this.#run(() =>
      keys.length === 1
        ? [readEntry(sql, keys[0]!, now)]
        : snapshot(() => keys.map((key) => readEntry(sql, key, now))),
    );
  }

  scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]> {
    const { sql, cache, snapshot } = this.#connection;
    const scanOne = (r: KeyRange) => {
      const filtered =
        r.filter && cache.withFilter(r.reverse ? "scanReverse" : "scan", r.filter, now);
      const rows = filtered
        ? filtered.statement.raw().all(r.start, r.end, ...filtered.params, now, r.limit)
        : (r.reverse ? sql.scanReverse : sql.scan).all(r.start, r.end, now, r.limit);
      return (rows as Row[]).map(entry);
    };
    return this.#run(() =>
      ranges.length === 1 ? [scanOne(ranges[0]!)] : snapshot(() => ranges.map(scanOne)),
    );
  }

  count(range: CountRange, now: number): Promise<number> {
    const { sql, cache } = this.#connection;
    return this.#run(() => {
      const filtered = range.filter && cache.withFilter("count", range.filter, now);
      const count = filtered
        ? filtered.statement.pluck().get(range.start, range.end, ...filtered.params, now)
        : sql.count.get(range.start, range.end, now);
      return count as number;
    });
  }

  async commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    return this.#committer.commit(group, now);
  }

  nextExpiry(): Promise<number | null> {
    return this.#run(() => this.#connection.sql.nextExpiry.get() as number | null);
  }

  readChanges(after: string, limit: number): Promise<StoredChanges> {
    return this.#run(() => readChanges(this.#connection, after, limit));
  }

  onCommit(listener: () => void): () => void {
    return this.#notifier.add(listener);
  }

  createIndex(index: SearchIndex): Promise<void> {
    return this.#run(() => createIndex(this.#connection, index));
  }

  removeIndex(prefix: Uint8Array): Promise<boolean> {
    return this.#run(() => removeIndex(this.#connection, prefix));
  }

  listIndexes(): Promise<SearchIndex[]> {
    return this.#run(() => listIndexes(this.#connection));
  }

  search(request: SearchRequest, now: number): Promise<RawEntry[]> {
    return this.#run(() => search(this.#connection, request, now));
  }

  queueStats(now: number): Promise<QueueStats> {
    return this.#run(() => queueStats(this.#connection.sql, now));
  }

  deadLetters(query: { limit: number; offset: number } | { id: string }): Promise<DeadLetter[]> {
    return this.#run(() => deadLetters(this.#connection.sql, query));
  }

  async close(): Promise<void> {
    this.#notifier.close();
    this.#connection.db.close();
  }
}
