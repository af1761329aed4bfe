/**
 * The PostgreSQL backend (postgres.js): keys as `bytea` (ordered bytewise), JSON values as `text`
 * beside other encodings' bytes, one schema per database. Many processes may share a database:
 * each group of commits runs in one transaction that first reserves its versionstamps by updating
 * the `meta` row, whose row lock it holds until it commits. Commits are therefore serialized
 * across processes, every later commit sees the earlier ones, and versionstamps increase in
 * commit order. Commits NOTIFY the other processes, which wake their watchers and consumers.
 */
import { suffixVersionstamp } from "../../codec/key-codec.js";
import type { EncodedValue } from "../../codec/value-codec.js";
import { versionstampFromCounter } from "../../codec/versionstamp.js";
import { KvError } from "../../kv-error.js";
import type {
  Backend,
  Claimed,
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
} from "../backend.js";
import { messageColumns } from "../message-columns.js";
import { pruneChanges, readChanges } from "./change-feed.js";
import { CommitNotifier } from "./commit-notifier.js";
import { connect, postgresError, queryValue, type Sql, sendQuery, type Tx } from "./connection.js";
import { migrate } from "./migrations.js";
import { claim, deadLetters, leasedMessage, queueStats } from "./queue.js";
import { createIndex, listIndexes, removeIndex, search } from "./search.js";
import { columns, type EntryRow, entry, filtered, SQL } from "./statements.js";

export interface PostgresOptions {
  /** Connections in the pool (default 10). */
  readonly maxConnections?: number;
}

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
  readonly #ready: Promise<void>;
  readonly #notifier: CommitNotifier;

  /** Connects to the database at `url` (`postgres://…`; `?schema=` names the schema, default `cairn`). */
  constructor(url: string, options: PostgresOptions = {}) {
    const { sql, schema } = connect(url, options.maxConnections ?? 10);
    this.#sql = sql;
    this.#schema = schema;
    this.#notifier = new CommitNotifier(sql, schema);
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
    return this.#run(
      () =>
        this.#sql.begin(async (tx) => {
          // Blocks until the previous commit (from any process) is done; see the file comment.
          const reserved = (await queryValue<number>(tx, SQL.reserve, [group.length]))!;
          // Statements are sent without waiting (pipelined) unless a result decides what comes next.
          const sent: Promise<unknown>[] = [];
          const outcomes: (() => CommitOutcome)[] = [];
          for (const [i, commit] of group.entries()) {
            outcomes.push(await this.#applyCommit(tx, sent, commit, now, reserved + i + 1));
          }
          sent.push(this.#notifier.notify(tx));
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
        const [row] = await sendQuery(tx, SQL.get, [check.key, now]);
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
    const query = sendQuery(q, SQL.setMany, [
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
      const query = sendQuery(q, text, params);
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
      const query = filtered(q, name, filter, now, params);
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
        return pruneChanges(q, m.before, m.keep);
      case "enqueue": {
        const { message: msg } = m;
        const [backoff, undelivered] = messageColumns(msg);
        send(SQL.enqueue, [
          msg.id,
          ...columns(msg.value),
          msg.value.encoding,
          m.readyAt,
          msg.attempts,
          backoff,
          undelivered,
          msg.createdAt,
        ]);
        return;
      }
      case "claim":
        return (async () => {
          state.claimed = await claim(send, now, m.limit, m.leaseMs);
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

  async #settle(
    q: Tx,
    send: (text: string, params: unknown[]) => Promise<unknown[][]>,
    state: Applying,
    id: string,
    lease: string | null,
    decide: (message: LeasedMessage) => Settlement,
  ): Promise<void> {
    const leased = await leasedMessage(q, id);
    if (leased === undefined || (lease !== null && leased.lease !== lease)) return;
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
