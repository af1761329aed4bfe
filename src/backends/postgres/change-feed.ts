/**
 * The change feed on PostgreSQL, one `changes` row per key a commit touched: reading it by
 * versionstamp, and pruning it.
 */
import { counterFromVersionstamp, versionstampFromCounter } from "../../codec/versionstamp.js";
import type { ChangeRecord, CommitChanges, StoredChanges } from "../backend.js";
import { queryValue, type Sql, sendQuery, type Tx } from "./connection.js";
import { SQL, storedValue } from "./statements.js";

/** `Backend.readChanges`, from one snapshot. */
export function readChanges(sql: Sql, after: string, limit: number): Promise<StoredChanges> {
  const from = Math.min(counterFromVersionstamp(after), Number.MAX_SAFE_INTEGER);
  return sql.begin("isolation level repeatable read read only", async (tx) => {
    let rows = (await sendQuery(tx, SQL.readChanges, [from, null, limit + 1])) as unknown[][];
    if (rows.length > limit) {
      // Whole commits only: drop the last, maybe partial one, unless it is the only one.
      const last = rows.at(-1)![0];
      rows =
        rows[0]![0] === last
          ? ((await sendQuery(tx, SQL.readChanges, [from, last, 1_000_000])) as unknown[][])
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
    const [bounds] = await sendQuery<[number | null, number]>(tx, SQL.changesBounds, []);
    const [head, horizon] = bounds!;
    return {
      commits,
      horizon: versionstampFromCounter(horizon),
      head: versionstampFromCounter(Math.max(head ?? 0, horizon)),
    };
  }) as Promise<StoredChanges>;
}

/**
 * Drops the changes committed before `before` (epoch ms), and all but the newest `keep`; the
 * horizon moves up to the last one dropped.
 */
export async function pruneChanges(q: Tx, before: number, keep: number): Promise<void> {
  const recent = await queryValue<number>(q, SQL.firstRecentChange, [before]);
  const head = await queryValue<number | null>(q, SQL.changesBounds, []);
  if (head === null || head === undefined) return;
  const newest = await queryValue<number>(q, SQL.keptChange, [keep - 1]);
  // Kept: changes that are recent and among the newest `keep`.
  const firstKept = Math.max(recent ?? head + 1, newest ?? 0);
  const pruned = await sendQuery(q, SQL.pruneChanges, [firstKept]);
  if (pruned.count > 0) await sendQuery(q, SQL.writeHorizon, [firstKept - 1]);
}
