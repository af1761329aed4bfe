/**
 * The change feed on SQLite, stored as `change_log` rows (change-log.ts): reading it by
 * versionstamp, appending a group's changes, and pruning it.
 */
import { counterFromVersionstamp, versionstampFromCounter } from "../../codec/versionstamp.js";
import type { ChangeRecord, CommitChanges, StoredChanges } from "../backend.js";
import { decodeChanges, type GroupChanges, type LoggedChange } from "./change-log.js";
import type { Connection } from "./connection.js";
import type { ChangedRow, Statements } from "./statements.js";

/** `change_log` rows read at a time by `readChanges`. */
const LOG_ROWS_PER_READ = 16;

/** `Backend.readChanges`, from one snapshot. */
export function readChanges(
  { sql, snapshot }: Connection,
  after: string,
  limit: number,
): StoredChanges {
  return snapshot(() => {
    const from = counterFromVersionstamp(after);
    const commits: CommitChanges[] = [];
    // Whole commits, up to `limit` changes (a larger commit comes alone).
    let room = limit;
    let position = from;
    reading: for (;;) {
      const rows = sql.readChanges.all(position, LOG_ROWS_PER_READ) as [number, Buffer][];
      for (const [last, blob] of rows) {
        for (const commit of commitsOf(decodeChanges(last, blob), from)) {
          if (commit.length > room && commits.length > 0) break reading;
          room -= commit.length;
          const changes: ChangeRecord[] = [];
          for (const logged of commit) {
            const row = sql.changed.get(logged.key) as ChangedRow | undefined;
            const recorded = change(logged, row);
            if (recorded) changes.push(recorded);
          }
          commits.push({ versionstamp: versionstampFromCounter(commit[0]!.counter), changes });
        }
        position = last;
      }
      if (rows.length < LOG_ROWS_PER_READ) break;
    }
    const horizon = sql.changesHorizon.get() as number;
    const head = (sql.changesHead.get() as number | null) ?? horizon;
    return {
      commits,
      horizon: versionstampFromCounter(horizon),
      head: versionstampFromCounter(Math.max(head, horizon)),
    };
  });
}

/**
 * The change log as this connection writes it: a row per group commit, and the running total of
 * changes its newest row holds, kept between writes so that each one need not read it.
 */
export class ChangeLog {
  readonly #sql: Statements;
  /** The running total of the newest row as of our last write; `undefined`: read it. */
  #loggedTotal: number | undefined;

  constructor(sql: Statements) {
    this.#sql = sql;
  }

  /** Forgets the running total: another connection has written since our last write. */
  forget(): void {
    this.#loggedTotal = undefined;
  }

  /** Appends the changes of a group of commits made at `now`; only when there are some. */
  append(changes: GroupChanges, now: number): void {
    const { last, blob } = changes.encode();
    this.#loggedTotal ??= (this.#sql.loggedTotal.get() as number | undefined) ?? 0;
    this.#loggedTotal += changes.size;
    this.#sql.logChanges.run(last, this.#loggedTotal, now, blob);
  }

  /**
   * Drops whole rows: those committed before `before`, and those that hold none of the newest
   * `keep` changes.
   */
  prune(before: number, keep: number): void {
    const sql = this.#sql;
    const head = sql.changesHead.get() as number | null;
    if (head === null) return;
    // Versionstamp order is commit order, so every row below the first recent one is old.
    const recent = (sql.firstRecentLog.get(before) as number | undefined) ?? head + 1;
    const total = sql.loggedTotal.get() as number;
    const pastKeep = (sql.lastLogUpTo.get(total - keep) as number | undefined) ?? -1;
    const firstKept = Math.max(recent, pastKeep + 1);
    const lastDropped = sql.lastLogBefore.get(firstKept) as number | null;
    if (lastDropped === null) return;
    sql.pruneChanges.run(firstKept);
    sql.writeHorizon.run(lastDropped);
    this.#loggedTotal = undefined; // as if read: the newest row may be gone
  }
}

/**
 * The change `logged` records, given the key's row now (`undefined` if it has none), or `null`
 * when a later commit has changed the key again.
 */
function change(logged: LoggedChange, row: ChangedRow | undefined): ChangeRecord | null {
  const { counter, key, deleted } = logged;
  if (row?.[0] === counter) {
    const [, data, encoding, expiresAt] = row;
    const versionstamp = versionstampFromCounter(counter);
    return {
      key,
      entry: { key, data, encoding, versionstamp, expiresAt } as ChangeRecord["entry"],
    };
  }
  return deleted ? { key, entry: null } : null;
}

/**
 * `changes` (decoded from `change_log` rows, oldest first) as commits: those after counter
 * `after`, each key once (as its commit left it), in key order.
 */
function* commitsOf(changes: readonly LoggedChange[], after: number): Generator<LoggedChange[]> {
  let i = 0;
  while (i < changes.length) {
    const counter = changes[i]!.counter;
    let end = i + 1;
    while (end < changes.length && changes[end]!.counter === counter) end++;
    if (counter > after) {
      // Sorted stably, a key's changes stay in mutation order: the last of them is what counts.
      const commit = changes.slice(i, end).sort((a, b) => Buffer.compare(a.key, b.key));
      yield commit.filter(
        (c, j) => j + 1 === commit.length || Buffer.compare(c.key, commit[j + 1]!.key) !== 0,
      );
    }
    i = end;
  }
}
