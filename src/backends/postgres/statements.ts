/**
 * The SQL the PostgreSQL backend runs, as named constants, and the shapes of the rows it reads.
 */
import { type EncodedValue, ValueEncoding } from "../../codec/value-codec.js";
import { versionstampFromCounter } from "../../codec/versionstamp.js";
import type { Filter, RawEntry } from "../backend.js";
import { type Sql, sendQuery, type Tx } from "./connection.js";
import { compileFilter, DOC } from "./postgres-filter.js";

const LIVE = "(expires_at IS NULL OR expires_at > $NOW)";
const ENTRY = "key, data, text, encoding, versionstamp";
const MESSAGE = "id, data, text, encoding, attempts, backoff, undelivered, created_at";
/** Records a change of each key a data-modifying CTE `d` returned ($VS, $AT: its commit). */
const RECORD_DELETED = `INSERT INTO changes (versionstamp, key, deleted, committed_at)
  SELECT $VS, key, true, $AT FROM d
  ON CONFLICT (versionstamp, key) DO UPDATE SET deleted = true`;

/** `$NOW`, `$VS`, `$AT` name parameters by role; `sql()` numbers them. */
export const SQL = {
  get: `SELECT ${ENTRY} FROM kv WHERE key = $1 AND ${LIVE.replace("$NOW", "$2")}`,
  getMany: `SELECT ${ENTRY} FROM kv WHERE key IN
              (SELECT decode(k, 'hex') FROM jsonb_array_elements_text($1::text::jsonb) AS k)
            AND ${LIVE.replace("$NOW", "$2")}`,
  scan: `SELECT ${ENTRY} FROM kv WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
         ORDER BY key LIMIT $4`,
  scanReverse: `SELECT ${ENTRY} FROM kv WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
                ORDER BY key DESC LIMIT $4`,
  count: `SELECT count(*) FROM kv WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}`,
  storageStats: `SELECT count(*), coalesce(sum(octet_length(key) + coalesce(octet_length(data), 0)
                   + coalesce(octet_length(text), 0)), 0)::bigint
                 FROM kv WHERE key < '\\xff'::bytea AND ${LIVE.replace("$NOW", "$1")}`,
  reserve:
    "UPDATE meta SET versionstamp = versionstamp + $1 WHERE id = 0 RETURNING versionstamp - $1",
  set: `WITH s AS (
          INSERT INTO kv (key, data, text, encoding, versionstamp, expires_at)
          VALUES ($1, $2, $3, $4, $5, $6)
          ON CONFLICT (key) DO UPDATE SET data = excluded.data, text = excluded.text,
            encoding = excluded.encoding, versionstamp = excluded.versionstamp,
            expires_at = excluded.expires_at)
        INSERT INTO changes (versionstamp, key, deleted, committed_at) VALUES ($5, $1, false, $7)
        ON CONFLICT (versionstamp, key) DO UPDATE SET deleted = false`,
  /** Many sets of one commit: rows as JSON `[{ k, d, t, e, x }]` (key and bytes in hex). */
  setMany: `WITH r AS (
              SELECT decode(k, 'hex') AS key, decode(d, 'hex') AS data, t AS text, e AS encoding,
                x AS expires_at
              FROM jsonb_to_recordset($1::text::jsonb) AS r(k text, d text, t text, e int2, x int8)),
            s AS (
              INSERT INTO kv (key, data, text, encoding, versionstamp, expires_at)
              SELECT key, data, text, encoding, $2, expires_at FROM r
              ON CONFLICT (key) DO UPDATE SET data = excluded.data, text = excluded.text,
                encoding = excluded.encoding, versionstamp = excluded.versionstamp,
                expires_at = excluded.expires_at)
            INSERT INTO changes (versionstamp, key, deleted, committed_at)
            SELECT $2, key, false, $3 FROM r
            ON CONFLICT (versionstamp, key) DO UPDATE SET deleted = false`,
  delete: `WITH d AS (DELETE FROM kv WHERE key = $1 AND ${LIVE.replace("$NOW", "$2")} RETURNING key)
           ${RECORD_DELETED.replace("$VS", "$3").replace("$AT", "$2")}`,
  deleteRange: `WITH d AS (DELETE FROM kv WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
                  RETURNING key)
                ${RECORD_DELETED.replace("$VS", "$4").replace("$AT", "$3")}`,
  purgeExpired: `WITH d AS (DELETE FROM kv WHERE key IN
                   (SELECT key FROM kv WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)
                   RETURNING key)
                 ${RECORD_DELETED.replace("$VS", "$3").replace("$AT", "$1")}`,
  readChanges: `SELECT c.versionstamp, c.key, c.deleted, kv.versionstamp, kv.data, kv.text,
                  kv.encoding, kv.expires_at
                FROM changes c LEFT JOIN kv ON kv.key = c.key
                WHERE c.versionstamp > $1 AND ($2::bigint IS NULL OR c.versionstamp <= $2)
                ORDER BY c.versionstamp, c.key LIMIT $3`,
  changesBounds: `SELECT (SELECT max(versionstamp) FROM changes), changes_horizon FROM meta WHERE id = 0`,
  firstRecentChange: `SELECT versionstamp FROM changes WHERE committed_at >= $1
                      ORDER BY versionstamp LIMIT 1`,
  keptChange: "SELECT versionstamp FROM changes ORDER BY versionstamp DESC LIMIT 1 OFFSET $1",
  pruneChanges: "DELETE FROM changes WHERE versionstamp < $1",
  writeHorizon: "UPDATE meta SET changes_horizon = greatest(changes_horizon, $1) WHERE id = 0",
  enqueue: `INSERT INTO queue (id, data, text, encoding, ready_at, lease, attempts, backoff, undelivered, created_at)
            VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9)`,
  claim: `UPDATE queue SET lease = gen_random_uuid()::text, ready_at = $1 + $3::bigint,
            attempts = attempts + 1
          FROM (SELECT seq FROM queue WHERE ready_at <= $1 ORDER BY ready_at, seq LIMIT $2
                FOR UPDATE SKIP LOCKED) AS ready
          WHERE queue.seq = ready.seq
          RETURNING queue.seq, ${MESSAGE.replace(/(\w+)/g, "queue.$1")}, queue.lease, queue.ready_at`,
  nextReady: "SELECT min(ready_at) FROM queue",
  renewLease: "UPDATE queue SET ready_at = $1 WHERE id = $2 AND lease = $3",
  leased: `SELECT ${MESSAGE}, lease, ready_at FROM queue WHERE id = $1 AND lease IS NOT NULL FOR UPDATE`,
  ack: "DELETE FROM queue WHERE id = $1",
  retry: "UPDATE queue SET lease = NULL, ready_at = $1 WHERE id = $2",
  release: "UPDATE queue SET lease = NULL, ready_at = $1, attempts = attempts - 1 WHERE id = $2",
  deadLetter: `INSERT INTO dead_letters (id, data, text, encoding, error, attempts, backoff, undelivered, created_at, failed_at)
               SELECT id, data, text, encoding, $1, attempts, backoff, undelivered, created_at, $2
               FROM queue WHERE id = $3`,
  requeue: `WITH d AS (DELETE FROM dead_letters WHERE id = $1 RETURNING *)
            INSERT INTO queue (id, data, text, encoding, ready_at, lease, attempts, backoff, undelivered, created_at)
            SELECT $2, data, text, encoding, $3, NULL, 0, backoff, undelivered, $3 FROM d`,
  deleteDeadLetter: "DELETE FROM dead_letters WHERE id = $1",
  purgeDeadLetters: "DELETE FROM dead_letters",
  queueStats: `SELECT count(*) FILTER (WHERE lease IS NULL OR ready_at <= $1),
                      count(*) FILTER (WHERE lease IS NOT NULL AND ready_at > $1),
                      (SELECT count(*) FROM dead_letters) FROM queue`,
  deadLetters: `SELECT ${MESSAGE}, error, failed_at FROM dead_letters
                ORDER BY failed_at DESC, seq DESC LIMIT $1 OFFSET $2`,
  deadLetter1: `SELECT ${MESSAGE}, error, failed_at FROM dead_letters WHERE id = $1`,
  nextExpiry: "SELECT min(expires_at) FROM kv WHERE expires_at IS NOT NULL",
  notify: "SELECT pg_notify($1, $2)",
  /** Taken by index changes: commits hold this row's lock too, so they wait for each other. */
  lockMeta: "SELECT 1 FROM meta WHERE id = 0 FOR UPDATE",
  indexConfig: "SELECT id, config::text FROM search_indexes WHERE prefix = $1",
  removeIndex: `WITH i AS (DELETE FROM search_indexes WHERE prefix = $1 RETURNING id),
                  d AS (DELETE FROM search_docs WHERE index_id IN (SELECT id FROM i))
                SELECT count(*) FROM i`,
  addIndex: `INSERT INTO search_indexes (prefix, range_start, range_end, fields, paths, tokenize, config)
             VALUES ($1, $2, $3, $4::text::jsonb, ARRAY(SELECT jsonb_array_elements_text($5::text::jsonb)),
               $6, $7::regconfig)
             RETURNING id`,
  backfillIndex: `INSERT INTO search_docs (index_id, key, tsv)
                  SELECT i.id, kv.key, search_vector(i.config, i.paths, kv.encoding, kv.text)
                  FROM search_indexes i JOIN kv ON kv.key >= i.range_start AND kv.key < i.range_end
                  WHERE i.id = $1`,
  listIndexes: "SELECT prefix, fields::text, tokenize FROM search_indexes ORDER BY prefix",
} as const;

/**
 * A search of index $1 at time $2, at most $3 entries, with text search configuration $4: the
 * query (search.ts) in place of QUERY, its parameters from $5, and a compiled filter (or
 * true) in place of FILTER after them. The query depends on parameters only, so that the GIN
 * index serves it; the entry of each match is looked up by key (LIMIT keeps the planner from
 * flattening the lateral join into a scan of all of kv).
 */
export const SEARCH_SQL = `SELECT kv.key, kv.data, kv.text, kv.encoding, kv.versionstamp
  FROM (SELECT QUERY AS q) query, search_docs s,
    LATERAL (SELECT ${ENTRY} FROM kv WHERE kv.key = s.key AND ${LIVE.replace("$NOW", "$2")}
             LIMIT 1) kv, ${DOC}
  WHERE s.index_id = $1 AND s.tsv @@ query.q AND FILTER
  ORDER BY ts_rank(s.tsv, query.q) DESC, kv.key LIMIT $3`;

/** Statements with a compiled filter (postgres-filter.ts) in place of `FILTER`, its parameters after theirs. */
const FILTERED_SQL = {
  scan: `SELECT ${ENTRY} FROM kv, ${DOC} WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
         AND FILTER ORDER BY key LIMIT $4`,
  scanReverse: `SELECT ${ENTRY} FROM kv, ${DOC} WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
                AND FILTER ORDER BY key DESC LIMIT $4`,
  count: `SELECT count(*) FROM kv, ${DOC} WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
          AND FILTER`,
  delete: `WITH d AS (DELETE FROM kv WHERE key IN
             (SELECT key FROM kv, ${DOC} WHERE key = $1 AND ${LIVE.replace("$NOW", "$2")} AND FILTER)
             RETURNING key)
           ${RECORD_DELETED.replace("$VS", "$3").replace("$AT", "$2")}`,
  deleteRange: `WITH d AS (DELETE FROM kv WHERE key IN
                  (SELECT key FROM kv, ${DOC} WHERE key >= $1 AND key < $2
                   AND ${LIVE.replace("$NOW", "$3")} AND FILTER)
                  RETURNING key)
                ${RECORD_DELETED.replace("$VS", "$4").replace("$AT", "$3")}`,
} as const;

/** How many parameters each filtered statement has before the filter's. */
const FILTERED_PARAMS: Record<keyof typeof FILTERED_SQL, number> = {
  scan: 4,
  scanReverse: 4,
  count: 3,
  delete: 3,
  deleteRange: 4,
};

/** Row shapes (`.values()`: arrays). */
export type EntryRow = [
  key: Buffer,
  data: Buffer | null,
  text: string | null,
  encoding: number,
  versionstamp: number,
];
export type MessageRow = [
  id: string,
  data: Buffer | null,
  text: string | null,
  encoding: number,
  attempts: number,
  backoff: string,
  undelivered: string,
  createdAt: number,
  ...rest: (string | number | null)[],
];

export const storedValue = (
  data: Buffer | null,
  text: string | null,
  encoding: number,
): EncodedValue =>
  (encoding === ValueEncoding.JSON ? { encoding, data: text } : { encoding, data }) as EncodedValue;

/** The two value columns of `v`: bytes, or the JSON text. */
export const columns = (v: EncodedValue): [Uint8Array | null, string | null] =>
  v.encoding === ValueEncoding.JSON ? [null, v.data] : [v.data, null];

export function entry(row: EntryRow): RawEntry {
  return {
    key: row[0],
    ...storedValue(row[1], row[2], row[3]),
    versionstamp: versionstampFromCounter(row[4]),
  } as RawEntry;
}

/** Statement `name`, with `filter` compiled into it when there is one that restricts. */
export function filtered(
  q: Sql | Tx,
  name: keyof typeof FILTERED_SQL,
  filter: Filter | undefined,
  now: number,
  params: unknown[],
): Promise<unknown[][] & { count: number }> {
  const compiled = filter && compileFilter(filter, now, FILTERED_PARAMS[name] + 1);
  if (compiled === undefined) return sendQuery(q, SQL[name], params);
  const text = FILTERED_SQL[name].replace("FILTER", compiled.sql);
  return sendQuery(q, text, [...params, ...compiled.params]);
}
