/**
 * The queue on PostgreSQL: claiming ready messages, reading a leased one to settle it, and the
 * queue's statistics and dead letters. Enqueueing and settling themselves are mutations like any
 * other (backends/apply-mutation.ts).
 */
import type { Claimed, DeadLetter, LeasedMessage, QueueStats, StoredMessage } from "../backend.js";
import { storedMessage } from "../message-columns.js";
import { type Sql, sendQuery, type Tx } from "./connection.js";
import { type MessageRow, SQL, storedValue } from "./statements.js";

/**
 * Leases up to `limit` messages ready at `now` until `now + leaseMs` (a `claim` mutation), its
 * statements sent by `send`.
 */
export async function claim(
  send: (text: string, params: unknown[]) => Promise<unknown[][]>,
  now: number,
  limit: number,
  leaseMs: number,
): Promise<Claimed> {
  const rows = await send(SQL.claim, [now, limit, leaseMs]);
  const [next] = await send(SQL.nextReady, []);
  const messages = rows
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map((row): LeasedMessage => {
      const rest = row.slice(1) as MessageRow;
      return { ...message(rest), lease: rest[8] as string, leaseUntil: rest[9] as number };
    });
  return { messages, nextAt: (next?.[0] as number | null) ?? null };
}

/** Message `id` with its lease, locked, or `undefined` when it is not leased. */
export async function leasedMessage(q: Tx, id: string): Promise<LeasedMessage | undefined> {
  const [row] = await sendQuery<MessageRow>(q, SQL.leased, [id]);
  return row && { ...message(row), lease: row[8] as string, leaseUntil: row[9] as number };
}

export async function queueStats(sql: Sql, now: number): Promise<QueueStats> {
  const [row] = await sendQuery<[number, number, number]>(sql, SQL.queueStats, [now]);
  const [pending, processing, dlq] = row!;
  return { pending, processing, dlq, total: pending + processing + dlq };
}

/** `Backend.deadLetters`. */
export async function deadLetters(
  sql: Sql,
  query: { limit: number; offset: number } | { id: string },
): Promise<DeadLetter[]> {
  const rows = await ("id" in query
    ? sendQuery<MessageRow>(sql, SQL.deadLetter1, [query.id])
    : sendQuery<MessageRow>(sql, SQL.deadLetters, [query.limit, query.offset]));
  return rows.map((row) => ({
    ...message(row),
    error: row[8] as string,
    failedAt: row[9] as number,
  }));
}

function message(row: MessageRow): StoredMessage {
  const [id, data, text, encoding, attempts, backoff, undelivered, createdAt] = row;
  const value = storedValue(data, text, encoding);
  return storedMessage(id, value, attempts, backoff, undelivered, createdAt);
}
