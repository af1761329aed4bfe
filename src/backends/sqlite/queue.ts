/**
 * The queue on SQLite: claiming ready messages, reading a leased one to settle it, and the queue's
 * statistics and dead letters. Enqueueing and settling themselves are mutations like any other
 * (backends/apply-mutation.ts).
 */
import { randomUUID } from "node:crypto";
import type { EncodedValue } from "../../codec/value-codec.js";
import type { Claimed, DeadLetter, LeasedMessage, QueueStats, StoredMessage } from "../backend.js";
import { storedMessage } from "../message-columns.js";
import type { Connection } from "./connection.js";
import type { MessageRow } from "./statements.js";

/** Leases up to `limit` messages ready at `now` until `now + leaseMs` (a `claim` mutation). */
export function claim({ sql }: Connection, now: number, limit: number, leaseMs: number): Claimed {
  const rows = sql.claimable.all(now, limit) as MessageRow[];
  const messages = rows.map((row): LeasedMessage => {
    const lease = randomUUID();
    const leaseUntil = now + leaseMs;
    sql.lease.run(lease, leaseUntil, row[0]);
    const stored = message(row);
    return { ...stored, attempts: stored.attempts + 1, lease, leaseUntil };
  });
  return { messages, nextAt: sql.nextReady.get() as number | null };
}

/** Message `id` with its lease, or `undefined` when it is not leased. */
export function leasedMessage({ sql }: Connection, id: string): LeasedMessage | undefined {
  const row = sql.leased.get(id) as MessageRow | undefined;
  return row && { ...message(row), lease: row[7]!, leaseUntil: row[8] };
}

export function queueStats({ sql }: Connection, now: number): QueueStats {
  const [pending, processing, dlq] = sql.queueStats.get(now, now) as number[];
  return {
    pending: pending!,
    processing: processing!,
    dlq: dlq!,
    total: pending! + processing! + dlq!,
  };
}

/** `Backend.deadLetters`. */
export function deadLetters(
  { sql }: Connection,
  query: { limit: number; offset: number } | { id: string },
): DeadLetter[] {
  const rows = (
    "id" in query ? sql.deadLetter1.all(query.id) : sql.deadLetters.all(query.limit, query.offset)
  ) as MessageRow[];
  return rows.map((row) => ({ ...message(row), error: row[7]!, failedAt: row[8] }));
}

function message(row: MessageRow): StoredMessage {
  const [id, data, encoding, attempts, backoff, undelivered, createdAt] = row;
  const value = { data, encoding } as EncodedValue;
  return storedMessage(id, value, attempts, backoff, undelivered, createdAt);
}
