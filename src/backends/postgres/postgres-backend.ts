/**
 * The PostgreSQL backend (postgres.js): keys as `bytea` (ordered bytewise), JSON values as `text`
 * beside other encodings' bytes, one schema per database. Many processes may share a database:
 * each group of commits runs in one transaction that first reserves its versionstamps by updating
 * the `meta` row, whose row lock it holds until it commits. Commits are therefore serialized
 * across processes, every later commit sees the earlier ones, and versionstamps increase in
 * commit order. Commits NOTIFY the other processes, which wake their watchers and consumers.
 */
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import type * as Postgres from "postgres";
import { suffixVersionstamp } from "../../codec/key-codec.js";
import { type EncodedValue, ValueEncoding } from "../../codec/value-codec.js";
import { counterFromVersionstamp, versionstampFromCounter } from "../../codec/versionstamp.js";
import { KvError } from "../../kv-error.js";
import type {
  Backend,
  ChangeRecord,
  Claimed,
  CommitChanges,
  CommitOutcome,
  CountRange,
  DeadLetter,
  Filter,
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
  StoredMessage,
} from "../backend.js";
import { migrate } from "./migrations.js";
import { compileFilter, DOC } from "./postgres-filter.js";
import { compileQuery, pathsJson, TEXT_SEARCH_CONFIGS } from "./postgres-search.js";

const LIVE = "(expires_at IS NULL OR expires_at > $NOW)";
const ENTRY = "key, data, text, encoding, versionstamp";
const MESSAGE = "id, data, text, encoding, attempts, backoff, undelivered, created_at";
/** Records a change of each key a data-modifying CTE `d` returned ($VS, $AT: its commit). */
const RECORD_DELETED = `INSERT INTO changes (versionstamp, key, deleted, committed_at)
  SELECT $VS, key, true, $AT FROM d
  ON CONFLICT (versionstamp, key) DO UPDATE SET deleted = true`;

/** `$NOW`, `$VS`, `$AT` name parameters by role; `sql()` numbers them. */
const SQL = {
  get: `SELECT ${ENTRY} FROM kv WHERE key = $1 AND ${LIVE.replace("$NOW", "$2")}`,
  getMany: `SELECT ${ENTRY} FROM kv WHERE key IN
              (SELECT decode(k, 'hex') FROM jsonb_array_elements_text($1::text::jsonb) AS k)
            AND ${LIVE.replace("$NOW", "$2")}`,
  scan: `SELECT ${ENTRY} FROM kv WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
         ORDER BY key LIMIT $4`,
  scanReverse: `SELECT ${ENTRY} FROM kv WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}
                ORDER BY key DESC LIMIT $4`,
  count: `SELECT count(*) FROM kv WHERE key >= $1 AND key < $2 AND ${LIVE.replace("$NOW", "$3")}`,
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
 * query (postgres-search.ts) in place of QUERY, its parameters from $5, and a compiled filter (or
 * true) in place of FILTER after them. The query depends on parameters only, so that the GIN
 * index serves it; the entry of each match is looked up by key (LIMIT keeps the planner from
 * flattening the lateral join into a scan of all of kv).
 */
const SEARCH_SQL = `SELECT kv.key, kv.data, kv.text, kv.encoding, kv.versionstamp
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

/** Schema names Cairn creates (always quoted); at most 63 bytes, which PostgreSQL would cut. */
const SCHEMA = /^[a-z_][a-z0-9_-]{0,62}$/;

/** Row shapes (`.values()`: arrays). */
type EntryRow = [
  key: Buffer,
  data: Buffer | null,
  text: string | null,
  encoding: number,
  versionstamp: number,
];
type MessageRow = [
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

const storedValue = (data: Buffer | null, text: string | null, encoding: number): EncodedValue =>
  (encoding === ValueEncoding.JSON ? { encoding, data: text } : { encoding, data }) as EncodedValue;

/** The two value columns of `v`: bytes, or the JSON text. */
const columns = (v: EncodedValue): [Uint8Array | null, string | null] =>
  v.encoding === ValueEncoding.JSON ? [null, v.data] : [v.data, null];

function entry(row: EntryRow): RawEntry {
  return {
    key: row[0],
    ...storedValue(row[1], row[2], row[3]),
    versionstamp: versionstampFromCounter(row[4]),
  } as RawEntry;
}

function message(row: MessageRow): StoredMessage {
  const [id, data, text, encoding, attempts, backoff, undelivered, createdAt] = row;
  return {
    id,
    value: storedValue(data, text, encoding),
    attempts,
    backoffSchedule: JSON.parse(backoff),
    keysIfUndelivered: (JSON.parse(undelivered) as string[]).map(
      (k) => new Uint8Array(Buffer.from(k, "base64")),
    ),
    createdAt,
  };
}

/** Maps driver errors to `KvError` where they enter. */
function storageError(e: unknown): KvError {
  if (e instanceof KvError) return e;
  const code = String((e as { code?: string }).code ?? "");
  const message = `PostgreSQL: ${(e as Error).message}`;
  // Connection trouble, serialization failures, deadlocks, too many connections: try again.
  const transient =
    /^(ECONN|ETIMEDOUT|ENOTFOUND|EAI_|CONNECT_TIMEOUT|CONNECTION_)/.test(code) ||
    ["40001", "40P01", "53300", "57P01", "57P03"].includes(code) ||
    code.startsWith("08");
  return new KvError(transient ? "UNAVAILABLE" : "INTERNAL", message, { cause: e });
}

export interface PostgresOptions {
  /** Connections in the pool (default 10). */
  readonly maxConnections?: number;
}

type Sql = Postgres.Sql<Record<string, never>>;
type Tx = Postgres.TransactionSql<Record<string, never>>;

type PlainSet = Extract<StorageMutation, { type: "set" }>;

/** The mutable state of one commit while it applies. */
interface Applying {
  readonly now: number;
  readonly counter: number;
  deleted: number;
  claimed?: Claimed;
}

export class PostgresBackend implements Backend {
  readonly #sql: Sql;
  readonly #schema: string;
  readonly #channel: string;
  /** Tells this process's notifications from the others'. */
  readonly #instance = randomUUID();
  readonly #ready: Promise<void>;
  readonly #commitListeners = new Set<() => void>();
  #unlisten: Promise<{ unlisten(): Promise<void> }> | undefined;

  /** Connects to the database at `url` (`postgres://…`; `?schema=` names the schema, default `cairn`). */
  constructor(url: string, options: PostgresOptions = {}) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get("schema") ?? "cairn";
    if (!SCHEMA.test(schema)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `Invalid schema ${JSON.stringify(schema)}: use at most 63 lowercase letters, digits, _ and -, starting with a letter or _`,
      );
    }
    parsed.searchParams.delete("schema");
    this.#schema = schema;
    this.#channel = `cairn_${schema}`;
    // Loaded here so that importing Cairn does not load the driver unless PostgreSQL is used.
    const postgres = createRequire(import.meta.url)("postgres") as typeof Postgres.default;
    this.#sql = postgres(parsed.toString(), {
      max: options.maxConnections ?? 10,
      onnotice: () => {},
      connection: { search_path: `"${schema}"`, application_name: "cairn" },
      // int8 columns (counters, epoch ms) fit in a double.
      types: {
        bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: Number },
      },
    }) as unknown as Sql;
    this.#ready = migrate(this.#sql, schema);
    this.#ready.catch(() => {}); // reported by the first call that awaits it
  }

  /** Runs `work` once the schema is ready, mapping driver errors. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    try {
      await this.#ready;
      return await work();
    } catch (e) {
      throw storageError(e);
    }
  }

  /**
   * Sends a prepared statement at once (postgres.js waits for `await` otherwise), so that
   * statements issued one after another travel pipelined; rows as arrays, with `count`.
   */
  #query<Row extends unknown[] = unknown[]>(
    q: Sql | Tx,
    text: string,
    params: unknown[],
  ): Promise<Row[] & { count: number }> {
    const query = q
      .unsafe(text, params as never[], { prepare: true })
      .values()
      .execute();
    return query as unknown as Promise<Row[] & { count: number }>;
  }

  /** The first column of the first row. */
  async #value<T>(q: Sql | Tx, text: string, params: unknown[]): Promise<T | undefined> {
    const [row] = await this.#query<[T]>(q, text, params);
    return row?.[0];
  }

  get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]> {
    return this.#run(async () => {
      if (keys.length === 1) {
        const [row] = await this.#query<EntryRow>(this.#sql, SQL.get, [keys[0], now]);
        return [row ? entry(row) : null];
      }
      // One statement: one snapshot, one round trip.
      const hex = keys.map((key) => Buffer.from(key).toString("hex"));
      const rows = await this.#query<EntryRow>(this.#sql, SQL.getMany, [JSON.stringify(hex), now]);
      const found = new Map(rows.map((row) => [row[0].toString("hex"), entry(row)]));
      return hex.map((k) => found.get(k) ?? null);
    });
  }

  scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]> {
    const read = (q: Sql | Tx) =>
      Promise.all(
        ranges.map(async (r) => {
          const name = r.reverse ? "scanReverse" : "scan";
          const rows = await this.#filtered(q, name, r.filter, now, [r.start, r.end, now, r.limit]);
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
      const [row] = await this.#filtered(this.#sql, "count", range.filter, now, [
        range.start,
        range.end,
        now,
      ]);
      return Number(row![0]);
    });
  }

  /** Statement `name`, with `filter` compiled into it when there is one that restricts. */
  #filtered(
    q: Sql | Tx,
    name: keyof typeof FILTERED_SQL,
    filter: Filter | undefined,
    now: number,
    params: unknown[],
  ): Promise<unknown[][] & { count: number }> {
    const compiled = filter && compileFilter(filter, now, FILTERED_PARAMS[name] + 1);
    if (compiled === undefined) return this.#query(q, SQL[name], params);
    const text = FILTERED_SQL[name].replace("FILTER", compiled.sql);
    return this.#query(q, text, [...params, ...compiled.params]);
  }

  commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    return this.#run(
      () =>
        this.#sql.begin(async (tx) => {
          // Blocks until the previous commit (from any process) is done; see the file comment.
          const reserved = (await this.#value<number>(tx, SQL.reserve, [group.length]))!;
          // Statements are sent without waiting (pipelined) unless a result decides what comes next.
          const sent: Promise<unknown>[] = [];
          const outcomes: (() => CommitOutcome)[] = [];
          for (const [i, commit] of group.entries()) {
            outcomes.push(await this.#applyCommit(tx, sent, commit, now, reserved + i + 1));
          }
          sent.push(this.#query(tx, SQL.notify, [this.#channel, this.#instance]));
          await Promise.all(sent);
          return outcomes.map((outcome) => outcome());
        }) as Promise<CommitOutcome[]>,
    );
  }

  /**
   * Applies one commit of a group; resolves once its decisions are made, to its outcome, which is
   * read once every statement in `sent` is done.
   */
  async #applyCommit(
    tx: Tx,
    sent: Promise<unknown>[],
    commit: StorageCommit,
    now: number,
    counter: number,
  ): Promise<() => CommitOutcome> {
    const current = await Promise.all(
      commit.checks.map(async (check) => {
        const [row] = await this.#query(tx, SQL.get, [check.key, now]);
        return row ? versionstampFromCounter((row as EntryRow)[4]) : null;
      }),
    );
    if (commit.checks.some((check, i) => check.versionstamp !== current[i])) {
      return () => ({ ok: false });
    }
    const state: Applying = { now, counter, deleted: 0 };
    const apply = async (q: Tx, into: Promise<unknown>[]) => {
      // Runs of plain sets go as one statement each (1000 sets: 1 statement, not 1000).
      let sets: PlainSet[] = [];
      const flush = () => {
        if (sets.length > 1) this.#setMany(q, sets, state, into);
        else for (const m of sets) this.#applyMutation(q, m, state, into);
        sets = [];
      };
      for (const m of commit.mutations) {
        if (m.type === "set" && !m.suffixVersionstamp) {
          sets.push(m);
          continue;
        }
        flush();
        const done = this.#applyMutation(q, m, state, into);
        if (done) await done;
      }
      flush();
    };
    // Only a `modify` can fail half-way (its function throws); it gets a savepoint.
    if (!commit.mutations.some((m) => m.type === "modify")) await apply(tx, sent);
    else {
      try {
        await tx.savepoint(async (sp) => {
          const own: Promise<unknown>[] = [];
          await apply(sp as Tx, own);
          await Promise.all(own);
        });
      } catch (error) {
        if (error instanceof KvError) return () => ({ ok: "error", error });
        throw error;
      }
    }
    return () => ({
      ok: true,
      versionstamp: versionstampFromCounter(counter),
      deleted: state.deleted,
      ...(state.claimed && { claimed: state.claimed }),
    });
  }

  /** Sends one statement for `sets`, the last set of a key winning (as applied in order). */
  #setMany(q: Tx, sets: readonly PlainSet[], state: Applying, sent: Promise<unknown>[]): void {
    const rows = new Map<string, object>();
    for (const m of sets) {
      const k = Buffer.from(m.key).toString("hex");
      const [data, text] = columns(m.value);
      rows.delete(k); // keeps the map in last-write order; one row per key
      rows.set(k, {
        k,
        d: data && Buffer.from(data).toString("hex"),
        t: text,
        e: m.value.encoding,
        x: m.expiresAt,
      });
    }
    const query = this.#query(q, SQL.setMany, [
      JSON.stringify([...rows.values()]),
      state.counter,
      state.now,
    ]);
    query.catch(() => {}); // handled where `sent` is awaited
    sent.push(query);
  }

  /** Sends `m`'s statements; returns a promise when the next mutation must wait for it. */
  #applyMutation(
    q: Tx,
    m: StorageMutation,
    state: Applying,
    sent: Promise<unknown>[],
  ): Promise<void> | undefined {
    const { now, counter } = state;
    const send = (text: string, params: unknown[]) => {
      const query = this.#query(q, text, params);
      query.catch(() => {}); // handled where `sent` is awaited
      sent.push(query);
      return query;
    };
    const counted = (query: Promise<{ count: number }>) => {
      const counting = query.then((r) => {
        state.deleted += r.count;
      });
      counting.catch(() => {}); // handled where `sent` is awaited
      sent.push(counting);
    };
    const countDeleted = (text: string, params: unknown[]) => counted(send(text, params));
    const deleteFiltered = (
      name: "delete" | "deleteRange",
      filter: Filter | undefined,
      params: unknown[],
    ) => {
      const query = this.#filtered(q, name, filter, now, params);
      query.catch(() => {});
      sent.push(query);
      counted(query);
    };
    switch (m.type) {
      case "set": {
        const key = m.suffixVersionstamp
          ? suffixVersionstamp(m.key, versionstampFromCounter(counter))
          : m.key;
        this.#write(send, key, m.value, counter, m.expiresAt, now);
        return;
      }
      case "delete":
        deleteFiltered("delete", m.filter, [m.key, now, counter]);
        return;
      case "deleteRange":
        deleteFiltered("deleteRange", m.filter, [m.start, m.end, now, counter]);
        return;
      case "purgeExpired":
        countDeleted(SQL.purgeExpired, [now, m.limit, counter]);
        return;
      case "modify":
        return (async () => {
          const [row] = await send(SQL.get, [m.key, now]);
          const value = m.apply(row ? entry(row as EntryRow) : null);
          this.#write(send, m.key, value, counter, null, now);
        })();
      case "pruneChanges":
        return this.#pruneChanges(q, m.before, m.keep);
      case "enqueue": {
        const { message: msg } = m;
        send(SQL.enqueue, [
          msg.id,
          ...columns(msg.value),
          msg.value.encoding,
          m.readyAt,
          msg.attempts,
          JSON.stringify(msg.backoffSchedule),
          JSON.stringify(msg.keysIfUndelivered.map((k) => Buffer.from(k).toString("base64"))),
          msg.createdAt,
        ]);
        return;
      }
      case "claim":
        return (async () => {
          const rows = (await send(SQL.claim, [now, m.limit, m.leaseMs])) as unknown[][];
          const [next] = await send(SQL.nextReady, []);
          const messages = rows
            .sort((a, b) => Number(a[0]) - Number(b[0]))
            .map((row): LeasedMessage => {
              const rest = row.slice(1) as MessageRow;
              return { ...message(rest), lease: rest[8] as string, leaseUntil: rest[9] as number };
            });
          state.claimed = { messages, nextAt: (next?.[0] as number | null) ?? null };
        })();
      case "renewLease":
        send(SQL.renewLease, [m.leaseUntil, m.id, m.lease]);
        return;
      case "settle":
        return this.#settle(q, send, state, m.id, m.lease, m.decide);
      case "requeue":
        countDeleted(SQL.requeue, [m.id, m.newId, now]);
        return;
      case "deleteDeadLetter":
        if (m.id === null) countDeleted(SQL.purgeDeadLetters, []);
        else countDeleted(SQL.deleteDeadLetter, [m.id]);
        return;
    }
  }

  #write(
    send: (text: string, params: unknown[]) => unknown,
    key: Uint8Array,
    value: EncodedValue,
    counter: number,
    expiresAt: number | null,
    now: number,
  ): void {
    send(SQL.set, [key, ...columns(value), value.encoding, counter, expiresAt, now]);
  }

  async #pruneChanges(q: Tx, before: number, keep: number): Promise<void> {
    const recent = await this.#value<number>(q, SQL.firstRecentChange, [before]);
    const head = await this.#value<number | null>(q, SQL.changesBounds, []);
    if (head === null || head === undefined) return;
    const newest = await this.#value<number>(q, SQL.keptChange, [keep - 1]);
    // Kept: changes that are recent and among the newest `keep`.
    const firstKept = Math.max(recent ?? head + 1, newest ?? 0);
    const pruned = await this.#query(q, SQL.pruneChanges, [firstKept]);
    if (pruned.count > 0) await this.#query(q, SQL.writeHorizon, [firstKept - 1]);
  }

  async #settle(
    q: Tx,
    send: (text: string, params: unknown[]) => Promise<unknown[][]>,
    state: Applying,
    id: string,
    lease: string | null,
    decide: (message: LeasedMessage) => Settlement,
  ): Promise<void> {
    const [row] = await this.#query<MessageRow>(q, SQL.leased, [id]);
    if (row === undefined || (lease !== null && row[8] !== lease)) return;
    const leased: LeasedMessage = {
      ...message(row),
      lease: row[8] as string,
      leaseUntil: row[9] as number,
    };
    const settlement = decide(leased);
    switch (settlement.type) {
      case "ack":
        send(SQL.ack, [id]);
        return;
      case "retry":
        send(SQL.retry, [settlement.readyAt, id]);
        return;
      case "release":
        send(SQL.release, [state.now, id]);
        return;
      case "deadLetter":
        for (const key of leased.keysIfUndelivered) {
          this.#write(send, key, leased.value, state.counter, null, state.now);
        }
        send(SQL.deadLetter, [settlement.error, state.now, id]);
        send(SQL.ack, [id]);
        return;
    }
  }

  readChanges(after: string, limit: number): Promise<StoredChanges> {
    const from = Math.min(counterFromVersionstamp(after), Number.MAX_SAFE_INTEGER);
    return this.#run(
      () =>
        this.#sql.begin("isolation level repeatable read read only", async (tx) => {
          let rows = (await this.#query(tx, SQL.readChanges, [
            from,
            null,
            limit + 1,
          ])) as unknown[][];
          if (rows.length > limit) {
            // Whole commits only: drop the last, maybe partial one, unless it is the only one.
            const last = rows.at(-1)![0];
            rows =
              rows[0]![0] === last
                ? ((await this.#query(tx, SQL.readChanges, [from, last, 1_000_000])) as unknown[][])
                : rows.filter((row) => row[0] !== last);
          }
          const commits: CommitChanges[] = [];
          let current: { versionstamp: string; changes: ChangeRecord[] } | undefined;
          for (const row of rows) {
            const [counter, key, deleted, kvCounter, data, text, encoding, expiresAt] = row as [
              number,
              Buffer,
              boolean,
              number | null,
              Buffer | null,
              string | null,
              number | null,
              number | null,
            ];
            const versionstamp = versionstampFromCounter(counter);
            if (current?.versionstamp !== versionstamp) {
              current = { versionstamp, changes: [] };
              commits.push(current);
            }
            if (kvCounter === counter) {
              const value = storedValue(data, text, encoding!);
              current.changes.push({ key, entry: { key, ...value, versionstamp, expiresAt } });
            } else if (deleted) current.changes.push({ key, entry: null });
          }
          const [bounds] = await this.#query<[number | null, number]>(tx, SQL.changesBounds, []);
          const [head, horizon] = bounds!;
          return {
            commits,
            horizon: versionstampFromCounter(horizon),
            head: versionstampFromCounter(Math.max(head ?? 0, horizon)),
          };
        }) as Promise<StoredChanges>,
    );
  }

  onCommit(listener: () => void): () => void {
    this.#commitListeners.add(listener);
    const wake = () => {
      for (const l of this.#commitListeners) l();
    };
    this.#unlisten ??= this.#sql.listen(
      this.#channel,
      (payload) => {
        if (payload !== this.#instance) wake(); // our own commits: the engine knows
      },
      // Listening (again, after a lost connection): commits made before are news too.
      wake,
    );
    this.#unlisten.catch(() => {
      this.#unlisten = undefined; // e.g. unreachable: the next registration tries again
    });
    return () => {
      this.#commitListeners.delete(listener);
      if (this.#commitListeners.size === 0 && this.#unlisten) {
        const unlisten = this.#unlisten;
        this.#unlisten = undefined;
        void unlisten.then((l) => l.unlisten()).catch(() => {});
      }
    };
  }

  createIndex(index: SearchIndex): Promise<void> {
    return this.#run(async () => {
      await this.#sql.begin(async (tx) => {
        await this.#query(tx, SQL.lockMeta, []);
        await this.#query(tx, SQL.removeIndex, [index.prefix]);
        const id = await this.#value<number>(tx, SQL.addIndex, [
          index.prefix,
          Buffer.concat([index.prefix, Buffer.from([0x00])]),
          Buffer.concat([index.prefix, Buffer.from([0xff])]),
          JSON.stringify(index.fields),
          pathsJson(index.fields),
          index.tokenize,
          TEXT_SEARCH_CONFIGS[index.tokenize],
        ]);
        await this.#query(tx, SQL.backfillIndex, [id]);
        // Without statistics of the new documents the planner scans them all rather than the GIN index.
        await this.#query(tx, "ANALYZE search_docs", []);
      });
    });
  }

  removeIndex(prefix: Uint8Array): Promise<boolean> {
    return this.#run(
      () =>
        this.#sql.begin(async (tx) => {
          await this.#query(tx, SQL.lockMeta, []);
          return Number(await this.#value(tx, SQL.removeIndex, [prefix])) > 0;
        }) as Promise<boolean>,
    );
  }

  listIndexes(): Promise<SearchIndex[]> {
    return this.#run(async () => {
      const rows = await this.#query<[Buffer, string, SearchIndex["tokenize"]]>(
        this.#sql,
        SQL.listIndexes,
        [],
      );
      return rows.map(([prefix, fields, tokenize]) => ({
        prefix: new Uint8Array(prefix),
        fields: JSON.parse(fields),
        tokenize,
      }));
    });
  }

  search(request: SearchRequest, now: number): Promise<RawEntry[]> {
    return this.#run(async () => {
      const [index] = await this.#query<[number, string]>(this.#sql, SQL.indexConfig, [
        request.prefix,
      ]);
      if (index === undefined) throw new KvError("NOT_FOUND", "No search index on this prefix");
      const [id, config] = index;
      const query = compileQuery(request.query, "$4::regconfig", 5);
      const filter = request.filter && compileFilter(request.filter, now, 5 + query.params.length);
      const text = SEARCH_SQL.replace("QUERY", query.sql).replace("FILTER", filter?.sql ?? "true");
      const rows = await this.#query(this.#sql, text, [
        id,
        now,
        request.limit,
        config,
        ...query.params,
        ...(filter?.params ?? []),
      ]);
      return rows.map((row) => entry(row as EntryRow));
    });
  }

  queueStats(now: number): Promise<QueueStats> {
    return this.#run(async () => {
      const [row] = await this.#query<[number, number, number]>(this.#sql, SQL.queueStats, [now]);
      const [pending, processing, dlq] = row!;
      return { pending, processing, dlq, total: pending + processing + dlq };
    });
  }

  deadLetters(query: { limit: number; offset: number } | { id: string }): Promise<DeadLetter[]> {
    return this.#run(async () => {
      const rows = await ("id" in query
        ? this.#query<MessageRow>(this.#sql, SQL.deadLetter1, [query.id])
        : this.#query<MessageRow>(this.#sql, SQL.deadLetters, [query.limit, query.offset]));
      return rows.map((row) => ({
        ...message(row),
        error: row[8] as string,
        failedAt: row[9] as number,
      }));
    });
  }

  nextExpiry(): Promise<number | null> {
    return this.#run(async () => {
      return (await this.#value<number | null>(this.#sql, SQL.nextExpiry, [])) ?? null;
    });
  }

  async close(): Promise<void> {
    this.#commitListeners.clear();
    const unlisten = this.#unlisten;
    this.#unlisten = undefined;
    await unlisten?.then((l) => l.unlisten()).catch(() => {});
    await this.#sql.end({ timeout: 5 });
  }

  /** @internal For tests: drops this database's schema and everything in it. */
  async dropSchema(): Promise<void> {
    await this.#run(() => this.#sql.unsafe(`DROP SCHEMA IF EXISTS "${this.#schema}" CASCADE`));
  }
}
