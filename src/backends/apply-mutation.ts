/**
 * What each mutation of a commit (backend.ts) does, written once for both backends: the switch
 * over the mutation types, the settlement of a queue message, and the outcome of a commit that
 * applied. A backend supplies a `CommitWriter`, the statements one commit runs. SQLite runs them
 * synchronously (`Wait` is `void`); PostgreSQL sends them pipelined, and where the next mutation
 * must wait for a result (a read decides what to write) its writer returns a promise.
 */
import { suffixVersionstamp } from "../codec/key-codec.js";
import type { EncodedValue } from "../codec/value-codec.js";
import { versionstampFromCounter } from "../codec/versionstamp.js";
import type {
  Claimed,
  CommitOutcome,
  Filter,
  LeasedMessage,
  Settlement,
  StorageMutation,
} from "./backend.js";
import { messageColumns } from "./message-columns.js";

/** Statements both backends have under these names, taking the same parameters in the same order. */
export type SharedStatement =
  | "enqueue"
  | "renewLease"
  | "ack"
  | "retry"
  | "release"
  | "deadLetter"
  | "deleteDeadLetter"
  | "purgeDeadLetters";

/** One commit as it applies: its time and versionstamp counter, what it did, how it writes. */
export interface CommitWriter<Wait> {
  readonly now: number;
  readonly counter: number;
  /** Live entries and dead letters removed so far. */
  deletedCount: number;
  /** What a `claim` mutation leased. */
  claimed?: Claimed;
  /** Runs statement `name` with `params`. */
  run(name: SharedStatement, params: unknown[]): void;
  /** Runs statement `name` with `params`, counting the rows it removes in `deletedCount`. */
  runCounted(name: SharedStatement, params: unknown[]): void;
  /** The columns a value is stored in, in the order statements take them. */
  valueColumns(value: EncodedValue): unknown[];
  /** Writes `value` at `key` under the commit's versionstamp, recording the change. */
  write(key: Uint8Array, value: EncodedValue, expiresAt: number | null): void;
  /** Deletes `key` if it is live and matches `filter`; counted, the change recorded. */
  delete(key: Uint8Array, filter: Filter | undefined): void;
  /** Deletes the live entries in `[start, end)` that match `filter`; counted, changes recorded. */
  deleteRange(start: Uint8Array, end: Uint8Array, filter: Filter | undefined): void;
  /** Removes up to `limit` entries expired at `now`; counted, changes recorded. */
  purgeExpired(limit: number): void;
  /** Writes, without expiry, what `apply` makes of the live value at `key` (or of `null`). */
  modify(key: Uint8Array, apply: (current: EncodedValue | null) => EncodedValue): Wait;
  pruneChanges(before: number, keep: number): Wait;
  /** Leases messages (see backend.ts) and sets `claimed`. */
  claim(limit: number, leaseMs: number): Wait;
  /** Reads message `id` if it is leased, and settles it with `settle`. */
  settle(id: string, lease: string | null, decide: (message: LeasedMessage) => Settlement): Wait;
  /** Moves dead letter `id` back into the queue as `newId`; counted as deleted. */
  requeue(id: string, newId: string): void;
}

/** Applies `m` with `to`; returns what the next mutation must wait for, if anything. */
export function applyMutation<Wait>(m: StorageMutation, to: CommitWriter<Wait>): Wait | undefined {
  switch (m.type) {
    case "set": {
      const key = m.suffixVersionstamp
        ? suffixVersionstamp(m.key, versionstampFromCounter(to.counter))
        : m.key;
      to.write(key, m.value, m.expiresAt);
      return;
    }
    case "delete":
      to.delete(m.key, m.filter);
      return;
    case "deleteRange":
      to.deleteRange(m.start, m.end, m.filter);
      return;
    case "purgeExpired":
      to.purgeExpired(m.limit);
      return;
    case "modify":
      return to.modify(m.key, m.apply);
    case "pruneChanges":
      return to.pruneChanges(m.before, m.keep);
    case "enqueue": {
      const { message } = m;
      const [backoff, undelivered] = messageColumns(message);
      to.run("enqueue", [
        message.id,
        ...to.valueColumns(message.value),
        m.readyAt,
        message.attempts,
        backoff,
        undelivered,
        message.createdAt,
      ]);
      return;
    }
    case "claim":
      return to.claim(m.limit, m.leaseMs);
    case "renewLease":
      to.run("renewLease", [m.leaseUntil, m.id, m.lease]);
      return;
    case "settle":
      return to.settle(m.id, m.lease, m.decide);
    case "requeue":
      to.requeue(m.id, m.newId);
      return;
    case "deleteDeadLetter":
      if (m.id === null) to.runCounted("purgeDeadLetters", []);
      else to.runCounted("deleteDeadLetter", [m.id]);
      return;
  }
}

/**
 * Settles message `id`, read as `leased` (`undefined`: not leased), if it holds `lease` (`null`:
 * any lease), as `decide` chooses.
 */
export function settle(
  to: CommitWriter<unknown>,
  id: string,
  leased: LeasedMessage | undefined,
  lease: string | null,
  decide: (message: LeasedMessage) => Settlement,
): void {
  if (leased === undefined || (lease !== null && leased.lease !== lease)) return;
  const settlement = decide(leased);
  switch (settlement.type) {
    case "ack":
      to.run("ack", [id]);
      return;
    case "retry":
      to.run("retry", [settlement.readyAt, id]);
      return;
    case "release":
      to.run("release", [to.now, id]);
      return;
    case "deadLetter":
      for (const key of leased.keysIfUndelivered) to.write(key, leased.value, null);
      to.run("deadLetter", [settlement.error, to.now, id]);
      to.run("ack", [id]);
      return;
  }
}

/** The outcome of a commit that applied with `to`. */
export function applied(to: CommitWriter<unknown>): CommitOutcome {
  return {
    ok: true,
    versionstamp: versionstampFromCounter(to.counter),
    deletedCount: to.deletedCount,
    ...(to.claimed && { claimed: to.claimed }),
  };
}
