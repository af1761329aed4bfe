/**
 * The PostgreSQL backend (postgres.js): keys as `bytea` (ordered bytewise), JSON values as `text`
 * beside other encodings' bytes, one schema per database. Many processes may share a database:
 * each group of commits runs in one transaction that first reserves its versionstamps by updating
 * the `meta` row, whose row lock it holds until it commits. Commits are therefore serialized
 * across processes, every later commit sees the earlier ones, and versionstamps increase in
 * commit order. Commits NOTIFY the other processes, which wake their watchers and consumers.
 *
 * This file holds the reads and wires the parts: connection.ts (the pool, the schema, driver
 * errors), migrations.ts, statements.ts (the SQL), committer.ts (the commit path),
 * change-feed.ts, queue.ts, commit-notifier.ts (`onCommit`) and search.ts (the last three through
 * ../sql-backend.ts, as on SQLite).
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
import { connect, postgresError, queryValue, type Sql, sendQuery, type Tx } from "./connection.js";
import { migrate } from "./migrations.js";
import * as queue from "./queue.js";
import * as search from "./search.js";
import { type EntryRow, entry, filtered, SQL } from "./statements.js";

export interface PostgresOptions {
  /** Connections in the pool (default 10). */
  readonly maxConnections?: number;
}

export class PostgresBackend extends SqlBackend<Sql> implements Backend {
  readonly #schema: string;
  readonly #ready: Promise<void>;
  readonly #notifier: CommitNotifier;
  readonly #committer: Committer;

  /** Connects to the database at `url` (`postgres://…`; `?schema=` names the schema, default `cairn`). */
  constructor(url: string, options: PostgresOptions = {}) {
    const { sql, schema } = connect(url, options.maxConnections ?? 10);
    super(sql, { changeFeed, search, queue });
    this.#schema = schema;
    this.#notifier = new CommitNotifier(sql, schema);
    this.#committer = new Committer(sql, this.#notifier);
    this.#ready = migrate(this.connection, schema);
    this.#ready.catch(() => {}); // reported by the first call that awaits it
  }

  /** Runs `work` once the schema is ready, mapping driver errors. */
  protected async run<T>(work: () => T | Promise<T>): Promise<T> {
    try {
      await this.#ready;
      return await work();
    } catch (e) {
      throw postgresError(e);
    }
  }

  get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]> {
    return this.run(async () => {
      if (keys.length === 1) {
        const [row] = await sendQuery<EntryRow>(this.connection, SQL.get, [keys[0], now]);
        return [row ? entry(row) : null];
      }
      // One statement: one snapshot, one round trip.
      const hex = keys.map((key) => Buffer.from(key).toString("hex"));
      const rows = await sendQuery<EntryRow>(this.connection, SQL.getMany, [
        JSON.stringify(hex),
        now,
      ]);
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
    return this.run(() =>
      ranges.length === 1
        ? read(this.connection)
        : (this.connection.begin("isolation level repeatable read read only", read) as Promise<
            RawEntry[][]
          >),
    );
  }

  count(range: CountRange, now: number): Promise<number> {
    return this.run(async () => {
      const [row] = await filtered(this.connection, "count", range.filter, now, [
        range.start,
        range.end,
        now,
      ]);
      return Number(row![0]);
    });
  }

  commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    return this.run(() => this.#committer.commit(group, now));
  }

  onCommit(listener: () => void): () => void {
    return this.#notifier.add(listener);
  }

  storageStats(now: number): Promise<StorageStats> {
    return this.run(async () => {
      const [row] = await sendQuery<[number, number]>(this.connection, SQL.storageStats, [now]);
      return { entries: row![0], sizeBytes: row![1] };
    });
  }

  nextExpiry(): Promise<number | null> {
    return this.run(async () => {
      return (await queryValue<number | null>(this.connection, SQL.nextExpiry, [])) ?? null;
    });
  }

  async close(): Promise<void> {
    await this.#notifier.close();
    await this.connection.end({ timeout: 5 });
  }

  /** @internal For tests: drops this database's schema and everything in it. */
  async dropSchema(): Promise<void> {
    await this.run(() => this.connection.unsafe(`DROP SCHEMA IF EXISTS "${this.#schema}" CASCADE`));
  }
}
