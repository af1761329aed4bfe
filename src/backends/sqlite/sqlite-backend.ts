/**
 * The SQLite backend (better-sqlite3): one file in WAL mode, keys as a `WITHOUT ROWID` BLOB
 * primary key, JSON values as TEXT so SQLite's JSON functions can read them. A group of commits
 * runs in one `BEGIN IMMEDIATE` transaction (one fsync), each commit inside its own savepoint.
 *
 * This file holds the reads and wires the parts: connection.ts (opening, pragmas, driver errors),
 * migrations.ts, statements.ts (the SQL), committer.ts (the commit path), change-feed.ts,
 * queue.ts, commit-notifier.ts (`onCommit`) and search.ts (the last three through
 * ../sql-backend.ts, as on PostgreSQL).
 */
import type {
  Backend,
  CommitOutcome,
  CountRange,
  KeyRange,
  RawEntry,
  StorageCommit,
  StorageStats,
} from "../backend.js";
import { SqlBackend } from "../sql-backend.js";
import * as changeFeed from "./change-feed.js";
import { CommitNotifier } from "./commit-notifier.js";
import { Committer } from "./committer.js";
import { type Connection, openConnection, sqliteError } from "./connection.js";
import * as queue from "./queue.js";
import * as search from "./search.js";
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

export class SqliteBackend extends SqlBackend<Connection> implements Backend {
  readonly #committer: Committer;
  readonly #notifier: CommitNotifier;

  /** Opens (creating if needed) the database at `path`, or an in-memory one for `":memory:"`. */
  constructor(path: string, options: SqliteOptions = {}) {
    const connection = openConnection(path, options.durability);
    super(connection, { changeFeed, search, queue });
    this.#committer = new Committer(connection);
    this.#notifier = new CommitNotifier(
      connection.db,
      connection.sql.dataVersion,
      options.externalCommitPollMs ?? 50,
    );
  }

  protected async run<T>(work: () => T | Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      throw sqliteError(e);
    }
  }

  get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]> {
    const { sql, snapshot } = this.connection;
    return this.run(() =>
      keys.length === 1
        ? [readEntry(sql, keys[0]!, now)]
        : snapshot(() => keys.map((key) => readEntry(sql, key, now))),
    );
  }

  scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]> {
    const { sql, cache, snapshot } = this.connection;
    const scanOne = (r: KeyRange) => {
      const filtered =
        r.filter && cache.withFilter(r.reverse ? "scanReverse" : "scan", r.filter, now);
      const rows = filtered
        ? filtered.statement.raw().all(r.start, r.end, ...filtered.params, now, r.limit)
        : (r.reverse ? sql.scanReverse : sql.scan).all(r.start, r.end, now, r.limit);
      return (rows as Row[]).map(entry);
    };
    return this.run(() =>
      ranges.length === 1 ? [scanOne(ranges[0]!)] : snapshot(() => ranges.map(scanOne)),
    );
  }

  count(range: CountRange, now: number): Promise<number> {
    const { sql, cache } = this.connection;
    return this.run(() => {
      const filtered = range.filter && cache.withFilter("count", range.filter, now);
      const count = filtered
        ? filtered.statement.pluck().get(range.start, range.end, ...filtered.params, now)
        : sql.count.get(range.start, range.end, now);
      return count as number;
    });
  }

  storageStats(now: number): Promise<StorageStats> {
    return this.run(() => {
      const [entries, sizeBytes] = this.connection.sql.storageStats.get(now) as number[];
      return { entries: entries!, sizeBytes: sizeBytes! };
    });
  }

  nextExpiry(): Promise<number | null> {
    return this.run(() => this.connection.sql.nextExpiry.get() as number | null);
  }

  async commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    return this.#committer.commit(group, now);
  }

  onCommit(listener: () => void): () => void {
    return this.#notifier.add(listener);
  }

  async close(): Promise<void> {
    this.#notifier.close();
    this.connection.db.close();
  }
}
