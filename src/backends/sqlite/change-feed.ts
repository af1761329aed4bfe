/**
 * The change feed on SQLite, stored as `change_log` rows (change-log.ts): reading it by
 * versionstamp, and pruning it.
 */
import { counterFromVersionstamp, versionstampFromCounter } from "../../codec/versionstamp.js";
import type { ChangeRecord, CommitChanges, StoredChanges } from "../backend.js";
import { decodeChanges, type LoggedChange } from "./change-log.js";
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
 * Drops whole `change_log` rows: those committed before `before`, and those that hold none of
 * the newest `keep` changes; returns whether it dropped any.
 */
export function pruneChanges(sql: Statements, before: number, keep: number): boolean {
  const head = sql.changesHead.get() as number | null;
  if (head === null) return false;
  // Versionstamp order is commit order, so every row below the first recent one is old.
  const recent = (sql.firstRecentLog.get(before) as number | undefined) ?? head + 1;
  const total = sql.loggedTotal.get() as number;
  const pastKeep = (sql.lastLogUpTo.get(total - keep) as number | undefined) ?? -1;
  const firstKept = Math.max(recent, pastKeep + 1);
  const lastDropped = sql.lastLogBefore.get(firstKept) as number | null;
  if (lastDropped === null) return false;
  sql.pruneChanges.run(firstKept);
  sql.writeHorizon.run(lastDropped);
  return true;
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
