/**
 * The SQL the SQLite backend runs, as named constants, the shapes of the rows it reads, and its
 * statements prepared: those of `SQL` once per connection, those whose text is built at run time
 * (a compiled filter, a search index's table) once per text.
 */
import type BetterSqlite3 from "better-sqlite3";
import { versionstampFromCounter } from "../../codec/versionstamp.js";
import type { Filter, RawEntry } from "../backend.js";
import { compileFilter } from "./sqlite-filter.js";

// Statements take positional parameters (faster to bind than named ones).
const LIVE = "(expires_at IS NULL OR expires_at > ?)";
const ENTRY = "key, data, encoding, versionstamp";
const MESSAGE = "id, data, encoding, attempts, backoff, undelivered, created_at, lease, ready_at";
const DEAD_LETTER =
  "id, data, encoding, attempts, backoff, undelivered, created_at, error, failed_at";
/** An entry without its key, for reads of one key: the caller has the key already. */
const VALUE = "data, encoding, versionstamp";

export const SQL = {
  get: `SELECT ${VALUE} FROM kv WHERE key = ? AND ${LIVE}`,
  scan: `SELECT ${ENTRY} FROM kv WHERE key >= ? AND key < ? AND ${LIVE} ORDER BY key LIMIT ?`,
  scanReverse: `SELECT ${ENTRY} FROM kv WHERE key >= ? AND key < ? AND ${LIVE} ORDER BY key DESC LIMIT ?`,
  set: "INSERT OR REPLACE INTO kv (key, data, encoding, versionstamp, expires_at) VALUES (?, ?, ?, ?, ?)",
  count: `SELECT count(*) FROM kv WHERE key >= ? AND key < ? AND ${LIVE}`,
  storageStats: `SELECT count(*), coalesce(sum(octet_length(key) + octet_length(data)), 0)
                 FROM kv WHERE key < x'ff' AND ${LIVE}`,
  delete: `DELETE FROM kv WHERE key = ? AND ${LIVE} RETURNING key`,
  deleteRange: `DELETE FROM kv WHERE key >= ? AND key < ? AND ${LIVE} RETURNING key`,
  purgeExpired: `DELETE FROM kv WHERE key IN
                   (SELECT key FROM kv WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) RETURNING key`,
  logChanges: "INSERT INTO change_log (last, total, committed_at, changes) VALUES (?, ?, ?, ?)",
  loggedTotal: "SELECT total FROM change_log ORDER BY last DESC LIMIT 1",
  readChanges: "SELECT last, changes FROM change_log WHERE last > ? ORDER BY last LIMIT ?",
  changed: "SELECT versionstamp, data, encoding, expires_at FROM kv WHERE key = ?",
  changesHead: "SELECT max(last) FROM change_log",
  changesHorizon: "SELECT changes_horizon FROM meta WHERE id = 0",
  firstRecentLog: "SELECT last FROM change_log WHERE committed_at >= ? ORDER BY last LIMIT 1",
  lastLogUpTo: "SELECT last FROM change_log WHERE total <= ? ORDER BY total DESC LIMIT 1",
  lastLogBefore: "SELECT max(last) FROM change_log WHERE last < ?",
  pruneChanges: "DELETE FROM change_log WHERE last < ?",
  writeHorizon: "UPDATE meta SET changes_horizon = max(changes_horizon, ?) WHERE id = 0",
  enqueue: `INSERT INTO queue (id, data, encoding, ready_at, lease, attempts, backoff, undelivered, created_at)
            VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)`,
  claimable: `SELECT ${MESSAGE} FROM queue WHERE ready_at <= ? ORDER BY ready_at, rowid LIMIT ?`,
  lease: "UPDATE queue SET lease = ?, ready_at = ?, attempts = attempts + 1 WHERE id = ?",
  nextReady: "SELECT min(ready_at) FROM queue",
  renewLease: "UPDATE queue SET ready_at = ? WHERE id = ? AND lease = ?",
  leased: `SELECT ${MESSAGE} FROM queue WHERE id = ? AND lease IS NOT NULL`,
  ack: "DELETE FROM queue WHERE id = ?",
  retry: "UPDATE queue SET lease = NULL, ready_at = ? WHERE id = ?",
  release: "UPDATE queue SET lease = NULL, ready_at = ?, attempts = attempts - 1 WHERE id = ?",
  deadLetter: `INSERT INTO dead_letters (id, data, encoding, error, attempts, backoff, undelivered, created_at, failed_at)
               SELECT id, data, encoding, ?, attempts, backoff, undelivered, created_at, ? FROM queue WHERE id = ?`,
  requeue: `INSERT INTO queue (id, data, encoding, ready_at, lease, attempts, backoff, undelivered, created_at)
            SELECT ?, data, encoding, ?, NULL, 0, backoff, undelivered, ? FROM dead_letters WHERE id = ?`,
  deleteDeadLetter: "DELETE FROM dead_letters WHERE id = ?",
  purgeDeadLetters: "DELETE FROM dead_letters",
  queueStats: `SELECT count(*) FILTER (WHERE lease IS NULL OR ready_at <= ?),
                      count(*) FILTER (WHERE lease IS NOT NULL AND ready_at > ?),
                      (SELECT count(*) FROM dead_letters) FROM queue`,
  deadLetters: `SELECT ${DEAD_LETTER} FROM dead_letters ORDER BY failed_at DESC, rowid DESC LIMIT ? OFFSET ?`,
  deadLetter1: `SELECT ${DEAD_LETTER} FROM dead_letters WHERE id = ?`,
  nextExpiry: "SELECT min(expires_at) AS at FROM kv WHERE expires_at IS NOT NULL",
  readReserved: "SELECT versionstamp FROM meta WHERE id = 0",
  writeReserved: "UPDATE meta SET versionstamp = ? WHERE id = 0",
  dataVersion: "PRAGMA data_version",
  indexId: "SELECT id FROM search_indexes WHERE prefix = ?",
  addIndex: "INSERT INTO search_indexes (prefix, fields, tokenize) VALUES (?, ?, ?) RETURNING id",
  listIndexes: "SELECT prefix, fields, tokenize FROM search_indexes ORDER BY prefix",
} as const;

/** A search of index `TABLE` (search.ts), optionally with a compiled filter for `FILTER`. */
export const SEARCH_SQL = `SELECT kv.key, kv.data, kv.encoding, kv.versionstamp FROM TABLE
  JOIN search_keys s ON s.id = TABLE.rowid JOIN kv ON kv.key = s.key
  WHERE TABLE MATCH ? AND (kv.expires_at IS NULL OR kv.expires_at > ?) AND FILTER
  ORDER BY TABLE.rank, kv.key LIMIT ?`;

/**
 * Statements with a compiled filter (sqlite-filter.ts) in place of `FILTER`. The filter comes
 * before the expiry test: it rejects most rows, and SQLite evaluates terms in order, so the expiry
 * column is read only for the rows that match (a tenth off a 1% filter's scan).
 */
export const FILTERED_SQL = {
  scan: `SELECT ${ENTRY} FROM kv WHERE key >= ? AND key < ? AND FILTER AND ${LIVE} ORDER BY key LIMIT ?`,
  scanReverse: `SELECT ${ENTRY} FROM kv WHERE key >= ? AND key < ? AND FILTER AND ${LIVE} ORDER BY key DESC LIMIT ?`,
  count: `SELECT count(*) FROM kv WHERE key >= ? AND key < ? AND FILTER AND ${LIVE}`,
  delete: `DELETE FROM kv WHERE key = ? AND FILTER AND ${LIVE} RETURNING key`,
  deleteRange: `DELETE FROM kv WHERE key >= ? AND key < ? AND FILTER AND ${LIVE} RETURNING key`,
} as const;

/** Statements built at run time kept prepared, by SQL text; the least recently used go first. */
const STATEMENT_CACHE = 256;

export type Statement = BetterSqlite3.Statement;
/** A row of `ENTRY` columns. */
export type Row = [key: Buffer, data: Buffer | string, encoding: number, versionstamp: number];
/** A `kv` row as the change feed reads it: with its expiry, live or not. */
export type ChangedRow = [
  versionstamp: number,
  data: Buffer | string,
  encoding: number,
  expiresAt: number | null,
];
/** A row of `MESSAGE` columns, or of `DEAD_LETTER` ones (whose last two are error and failed_at). */
export type MessageRow = [
  id: string,
  data: Buffer | string,
  encoding: number,
  attempts: number,
  backoff: string,
  undelivered: string,
  createdAt: number,
  leaseOrError: string | null,
  readyAtOrFailedAt: number,
];
/** A row of `VALUE` columns. */
export type ValueRow = [data: Buffer | string, encoding: number, versionstamp: number];

export function entry(row: Row): RawEntry {
  return {
    key: row[0],
    data: row[1],
    encoding: row[2],
    versionstamp: versionstampFromCounter(row[3]),
  } as RawEntry;
}

/** The statements of `SQL`, prepared. */
export type Statements = { readonly [K in keyof typeof SQL]: Statement };
/** Statements returning rows as arrays (cheaper than objects) or single values. */
const RAW: readonly (keyof typeof SQL)[] = [
  "get",
  "scan",
  "scanReverse",
  "readChanges",
  "changed",
  "claimable",
  "leased",
  "queueStats",
  "storageStats",
  "deadLetters",
  "deadLetter1",
  "listIndexes",
];
const PLUCK: readonly (keyof typeof SQL)[] = [
  "count",
  "delete",
  "deleteRange",
  "purgeExpired",
  "changesHead",
  "changesHorizon",
  "loggedTotal",
  "firstRecentLog",
  "lastLogUpTo",
  "lastLogBefore",
  "nextReady",
  "nextExpiry",
  "readReserved",
  "dataVersion",
  "indexId",
  "addIndex",
];

/** Prepares `SQL` on `db`. */
export function prepareStatements(db: BetterSqlite3.Database): Statements {
  const sql = {} as Record<keyof typeof SQL, Statement>;
  for (const name of Object.keys(SQL) as (keyof typeof SQL)[]) {
    const statement = db.prepare(SQL[name]);
    sql[name] = RAW.includes(name)
      ? statement.raw()
      : PLUCK.includes(name)
        ? statement.pluck()
        : statement;
  }
  return sql;
}

/** The live entry at `key` (`SQL.get`), or `null`. */
export function readEntry(sql: Statements, key: Uint8Array, now: number): RawEntry | null {
  const row = sql.get.get(key, now) as ValueRow | undefined;
  if (row === undefined) return null;
  return {
    key,
    data: row[0],
    encoding: row[1],
    versionstamp: versionstampFromCounter(row[2]),
  } as RawEntry;
}

/** Statements whose text is built at run time, prepared once per text and kept for reuse. */
export class StatementCache {
  readonly #db: BetterSqlite3.Database;
  readonly #statements = new Map<string, Statement>();
  #lastFiltered:
    | {
        filter: Filter;
        name: string;
        now: number;
        result: { statement: Statement; params: unknown[] } | undefined;
      }
    | undefined;

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
  }

  /**
   * The statement `name` of `FILTERED_SQL` for `filter`, prepared once per SQL text, with the
   * filter's parameters; `undefined` when the filter matches everything (use the plain statement).
   */
  withFilter(
    name: keyof typeof FILTERED_SQL,
    filter: Filter,
    now: number,
  ): { statement: Statement; params: unknown[] } | undefined {
    // The mutations of one delete of many keys share their filter: compile it once for all.
    const last = this.#lastFiltered;
    if (last?.filter === filter && last.name === name && last.now === now) return last.result;
    const compiled = compileFilter(filter, now);
    const result = compiled && {
      statement: this.prepared(FILTERED_SQL[name].replace("FILTER", compiled.sql)),
      params: compiled.params,
    };
    this.#lastFiltered = { filter, name, now, result };
    return result;
  }

  /** `sql` prepared, from the cache. */
  prepared(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size >= STATEMENT_CACHE) {
        this.#statements.delete(this.#statements.keys().next().value!);
      }
    } else {
      this.#statements.delete(sql);
    }
    this.#statements.set(sql, statement);
    return statement;
  }
}
