/**
 * The commit path on PostgreSQL: a group of commits in one transaction that first reserves their
 * versionstamps, statements sent pipelined unless a result decides what comes next, a savepoint
 * for a commit that may fail half-way, and the statements each mutation sends (see
 * backends/apply-mutation.ts).
 */
import type { EncodedValue } from "../../codec/value-codec.js";
import { versionstampFromCounter } from "../../codec/versionstamp.js";
import { KvError } from "../../kv-error.js";
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
import { pruneChanges } from "./change-feed.js";
import type { CommitNotifier } from "./commit-notifier.js";
import { queryValue, type Sql, sendQuery, type Tx } from "./connection.js";
import { claim, leasedMessage } from "./queue.js";
import { columns, type EntryRow, entry, filtered, SQL } from "./statements.js";

type PlainSet = Extract<StorageMutation, { type: "set" }>;

export class Committer {
  readonly #sql: Sql;
  readonly #notifier: CommitNotifier;

  /** Commits through `sql`, each group notifying the other processes through `notifier`. */
  constructor(sql: Sql, notifier: CommitNotifier) {
    this.#sql = sql;
    this.#notifier = notifier;
  }

  /** `Backend.commit`, with driver errors as they come. */
  commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    return this.#sql.begin(async (tx) => {
      // Blocks until the previous commit (from any process) is done; see postgres-backend.ts.
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
    }) as Promise<CommitOutcome[]>;
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
    const apply = async (q: Tx, into: Promise<unknown>[]) => {
      const to = new Writer(q, into, now, counter);
      // Runs of plain sets go as one statement each (1000 sets: 1 statement, not 1000).
      let sets: PlainSet[] = [];
      const flush = () => {
        if (sets.length > 1) to.setMany(sets);
        else for (const m of sets) applyMutation(m, to);
        sets = [];
      };
      for (const m of commit.mutations) {
        if (m.type === "set" && !m.suffixVersionstamp) {
          sets.push(m);
          continue;
        }
        flush();
        const done = applyMutation(m, to);
        if (done) await done;
      }
      flush();
      return to;
    };
    // Only a `modify` can fail half-way (its function throws); it gets a savepoint.
    if (!commit.mutations.some((m) => m.type === "modify")) {
      const to = await apply(tx, sent);
      return () => applied(to);
    }
    try {
      const to = (await tx.savepoint(async (sp) => {
        const own: Promise<unknown>[] = [];
        const to = await apply(sp as Tx, own);
        await Promise.all(own);
        return to;
      })) as Writer;
      return () => applied(to);
    } catch (error) {
      if (error instanceof KvError) return () => ({ ok: "error", error });
      throw error;
    }
  }
}

/**
 * One commit of a group as it applies: statements are sent at once, into `sent`, whose promises
 * the commit awaits before it ends; what the next mutation must wait for is returned.
 */
class Writer implements CommitWriter<Promise<void>> {
  readonly #q: Tx;
  readonly #sent: Promise<unknown>[];
  readonly now: number;
  readonly counter: number;
  deletedCount = 0;
  claimed: Claimed | undefined;

  constructor(q: Tx, sent: Promise<unknown>[], now: number, counter: number) {
    this.#q = q;
    this.#sent = sent;
    this.now = now;
    this.counter = counter;
  }

  run(name: keyof typeof SQL, params: unknown[]): void {
    this.#send(SQL[name], params);
  }

  runCounted(name: keyof typeof SQL, params: unknown[]): void {
    this.#counted(this.#send(SQL[name], params));
  }

  valueColumns(value: EncodedValue): unknown[] {
    return [...columns(value), value.encoding];
  }

  write(key: Uint8Array, value: EncodedValue, expiresAt: number | null): void {
    const params = [key, ...columns(value), value.encoding, this.counter, expiresAt, this.now];
    this.#send(SQL.set, params);
  }

  /** Sends one statement for `sets`, the last set of a key winning (as applied in order). */
  setMany(sets: readonly PlainSet[]): void {
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
    this.#send(SQL.setMany, [JSON.stringify([...rows.values()]), this.counter, this.now]);
  }

  delete(key: Uint8Array, filter: Filter | undefined): void {
    const params = [key, this.now, this.counter];
    this.#counted(this.#sending(filtered(this.#q, "delete", filter, this.now, params)));
  }

  deleteRange(start: Uint8Array, end: Uint8Array, filter: Filter | undefined): void {
    const params = [start, end, this.now, this.counter];
    this.#counted(this.#sending(filtered(this.#q, "deleteRange", filter, this.now, params)));
  }

  purgeExpired(limit: number): void {
    this.#counted(this.#send(SQL.purgeExpired, [this.now, limit, this.counter]));
  }

  async modify(
    key: Uint8Array,
    apply: (current: EncodedValue | null) => EncodedValue,
  ): Promise<void> {
    const [row] = await this.#send(SQL.get, [key, this.now]);
    this.write(key, apply(row ? entry(row as EntryRow) : null), null);
  }

  pruneChanges(before: number, keep: number): Promise<void> {
    return pruneChanges(this.#q, before, keep);
  }

  async claim(limit: number, leaseMs: number): Promise<void> {
    this.claimed = await claim(
      (text, params) => this.#send(text, params),
      this.now,
      limit,
      leaseMs,
    );
  }

  async settle(
    id: string,
    lease: string | null,
    decide: (message: LeasedMessage) => Settlement,
  ): Promise<void> {
    settle(this, id, await leasedMessage(this.#q, id), lease, decide);
  }

  requeue(id: string, newId: string): void {
    this.runCounted("requeue", [id, newId, this.now]);
  }

  /** Sends a statement. */
  #send(text: string, params: unknown[]): Promise<unknown[][] & { count: number }> {
    return this.#sending(sendQuery(this.#q, text, params));
  }

  /** `query`, sent: awaited with the commit's other statements. */
  #sending<T>(query: Promise<T>): Promise<T> {
    query.catch(() => {}); // handled where `sent` is awaited
    this.#sent.push(query);
    return query;
  }

  /** Counts the rows `query` removes in `deletedCount`. */
  #counted(query: Promise<{ count: number }>): void {
    const counting = query.then((r) => {
      this.deletedCount += r.count;
    });
    counting.catch(() => {}); // handled where `sent` is awaited
    this.#sent.push(counting);
  }
}
