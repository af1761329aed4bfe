/**
 * The PostgreSQL backend (postgres.js): keys as `bytea` (ordered bytewise), JSON values as `text`
 * beside other encodings' bytes, one schema per database. Many processes may share a database:
 * each group of commits runs in one transaction that first reserves its versionstamps by updating
 * the `meta` row, whose row lock it holds until it commits. Commits are therefore serialized
 * across processes, every later commit sees the earlier ones, and versionstamps increase in
 * commit order. Commits NOTIFY the other processes, which wake their watchers and consumers.
 *
 * This file wires the parts and holds the reads: connection.ts (the pool, the schema, driver
 * errors), migrations.ts, statements.ts (the SQL), committer.ts (the commit path),
 * change-feed.ts, queue.ts, commit-notifier.ts (`onCommit`) and search.ts.
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
import { connect, postgresError, queryValue, type Sql, sendQuery, type Tx } from "./connection.js";
import { migrate } from "./migrations.js";
import { deadLetters, queueStats } from "./queue.js";
import { createIndex, listIndexes, removeIndex, search } from "./search.js";
import { type EntryRow, entry, filtered, SQL } from "./statements.js";

export interface PostgresOptions {
  /** Connections in the pool (default 10). */
  readonly maxConnections?: number;
}

export class PostgresBackend implements Backend {
  readonly #sql: Sql;
  readonly #schema: string;
  readonly #ready: Promise<void>;
  readonly #notifier: CommitNotifier;
  readonly #committer: Committer;

  /** Connects to the database at `url` (`postgres://…`; `?schema=` names the schema, default `cairn`). */
  constructor(url: string, options: PostgresOptions = {}) {
    const { sql, schema } = connect(url, options.maxConnections ?? 10);
    this.#sql = sql;
    this.#schema = schema;
    this.#notifier = new CommitNotifier(sql, schema);
    this.#committer = new Committer(sql, this.#notifier);
    this.#ready = migrate(this.#sql, schema);
    this.#ready.catch(() => {}); // reported by the first call that awaits it
  }

  /** Runs `work` once the schema is ready, mapping driver errors. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    try {
      await this.#ready;
      return await work();
    } catch (e) {
      throw postgresError(e);
    }
  }

  get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]> {
    return this.#run(async () => {
      if (keys.length === 1) {
        const [row] = await sendQuery<EntryRow>(this.#sql, SQL.get, [keys[0], now]);
        return [row ? entry(row) : null];
      }
      // One statement: one snapshot, one round trip.
      const hex = keys.map((key) => Buffer.from(key).toString("hex"));
      const rows = await sendQuery<EntryRow>(this.#sql, SQL.getMany, [JSON.stringify(hex), now]);
      const found = new Map(rows.map((row) => [row[0].toString("hex"), entry(row)]));
      return hex.map((k) => found.get(k) ?? null);
    });
  }

  scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]> {
    const read = (q: Sql | Tx) =>
      Promise.all(
        ranges.map(async (r) => {
          const name = r.reverse ? "scanReverse" : "scan";
          const rows = await filtered(q, name, r.filter, now, [r.start, r.end, now, r.limit]);
          return rows.map((row) => entry(row as EntryRow));
        }),
      );
    return this.#run(() =>
      ranges.length === 1
        ? read(this.#sql)
        : (this.#sql.begin("isolation level repeatable read read only", read) as Promise<
            RawEntry[][]
          >),
    );
  }

  count(range: CountRange, now: number): Promise<number> {
    return this.#run(async () => {
      const [row] = await filtered(this.#sql, "count", range.filter, now, [
        range.start,
        range.end,
        now,
      ]);
      return Number(row![0]);
    });
  }

  commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    return this.#run(() => this.#committer.commit(group, now));
  }

  readChanges(after: string, limit: number): Promise<StoredChanges> {
    return this.#run(() => readChanges(this.#sql, after, limit));
  }

  onCommit(listener: () => void): () => void {
    return this.#notifier.add(listener);
  }

  createIndex(index: SearchIndex): Promise<void> {
    return this.#run(() => createIndex(this.#sql, index));
  }

  removeIndex(prefix: Uint8Array): Promise<boolean> {
    return this.#run(() => removeIndex(this.#sql, prefix));
  }

  listIndexes(): Promise<SearchIndex[]> {
    return this.#run(() => listIndexes(this.#sql));
  }

  search(request: SearchRequest, now: number): Promise<RawEntry[]> {
    return this.#run(() => search(this.#sql, request, now));
  }

  queueStats(now: number): Promise<QueueStats> {
    return this.#run(() => queueStats(this.#sql, now));
  }

  deadLetters(query: { limit: number; offset: number } | { id: string }): Promise<DeadLetter[]> {
    return this.#run(() => deadLetters(this.#sql, query));
  }

  nextExpiry(): Promise<number | null> {
    return this.#run(async () => {
      return (await queryValue<number | null>(this.#sql, SQL.nextExpiry, [])) ?? null;
    });
  }

  async close(): Promise<void> {
    await this.#notifier.close();
    await this.#sql.end({ timeout: 5 });
  }

  /** @internal For tests: drops this database's schema and everything in it. */
  async dropSchema(): Promise<void> {
    await this.#run(() => this.#sql.unsafe(`DROP SCHEMA IF EXISTS "${this.#schema}" CASCADE`));
  }
}
