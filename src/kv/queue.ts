/**
 * Queues in the SDK: enqueue options, the consumer loop behind `listenQueue`, and the dead-letter
 * queue. Delivery is at least once: a consumer leases a message, renews the lease while its
 * handler runs, and settles it (ack on return, retry or dead-letter on throw); a consumer that
 * dies loses its lease and the message is delivered again.
 */
import { randomUUID } from "node:crypto";
import { defaultMaxListeners, setMaxListeners } from "node:events";
import { type Duration, parseDuration } from "../codec/duration.js";
import { encodeWriteKey, type KvKey } from "../codec/key-codec.js";
import { decodeValue, encodeValueChecked } from "../codec/value-codec.js";
import {
  commitMutations,
  type Database,
  type DeadLetter,
  type LeasedMessage,
  type Mutation,
  releaseOf,
} from "../engine/database.js";
import { assertEnqueueLimits } from "../engine/enqueue-limits.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { idFromWire } from "../protocol/database-wire.js";

export interface KvEnqueueOptions {
  /** Time before the first delivery (default 0, at most 30 days). */
  readonly delay?: Duration;
  /**
   * Waits before the 2nd, 3rd, … delivery after a handler failed; its length + 1 deliveries in
   * all (default Deno's `[100, 1000, 5000, 30000, 60000]` ms).
   */
  readonly backoffSchedule?: readonly Duration[];
  /** Keys that receive the value when every delivery failed (at most 10). */
  readonly keysIfUndelivered?: readonly KvKey[];
}

/** A message as a handler receives it. */
export interface KvQueueMessage<T = unknown> {
  readonly id: string;
  readonly value: T;
  /** 1 on the first delivery. */
  readonly attempts: number;
}

export interface KvListenQueueOptions {
  /**
   * `"sse"` (default): messages are pushed as soon as they are ready. `"polling"`: the queue is
   * checked every `pollInterval` while it is empty.
   */
  readonly mode?: "sse" | "polling";
  /** Default 1000 ms. */
  readonly pollInterval?: Duration;
  /** Messages handled at the same time (default 1). */
  readonly concurrency?: number;
  /** How long a message stays leased to this consumer without renewal (default 30 s); renewed while the handler runs. */
  readonly leaseDuration?: Duration;
  /**
   * Called once when the consumer is refused (`FORBIDDEN`: no queue grant; `UNAUTHORIZED`), which
   * ends it; default: logs the error. Other failures (an unreachable server) are retried.
   */
  readonly onError?: (error: KvError) => void;
}

/** A running consumer: `stop()` ends it and resolves once its handlers have finished. */
export interface KvQueueListener {
  stop(): Promise<void>;
  /** Resolves when the consumer has ended: stopped, its database closed, or refused (`onError`). */
  readonly closed: Promise<void>;
  [Symbol.dispose](): void;
}

/** A message in the dead-letter queue (the seed's shape). */
export interface KvDeadLetter<T = unknown> {
  readonly id: string;
  /** The id the message had in the queue (the same id in Cairn). */
  readonly originalId: string;
  readonly value: T;
  readonly errorMessage: string;
  readonly attempts: number;
  readonly originalCreatedAt: number;
  readonly failedAt: number;
}

export function enqueueMutation(value: unknown, options: KvEnqueueOptions = {}): Mutation {
  const schedule = options.backoffSchedule ?? limits.defaultBackoffSchedule;
  if (!Array.isArray(schedule)) {
    throw new KvError("INVALID_ARGUMENT", "backoffSchedule must be an array of durations");
  }
  const undelivered = options.keysIfUndelivered ?? [];
  if (!Array.isArray(undelivered)) {
    throw new KvError("INVALID_ARGUMENT", "keysIfUndelivered must be an array of keys");
  }
  const mutation = {
    type: "enqueue",
    id: randomUUID(),
    value: encodeValueChecked(value),
    delay: options.delay === undefined ? 0 : parseDuration(options.delay, "delay"),
    backoffSchedule: schedule.map((d) => parseDuration(d, "backoffSchedule")),
    keysIfUndelivered: undelivered.map(encodeWriteKey),
  } as const;
  assertEnqueueLimits(mutation);
  return mutation;
}

/** Adds `value` to the queue in a commit of its own (`Kv.enqueue`). */
export async function enqueue(
  database: Database,
  value: unknown,
  options?: KvEnqueueOptions,
): Promise<{ ok: true; versionstamp: string; id: string }> {
  const mutation = enqueueMutation(value, options);
  const { versionstamp } = await commitMutations(database, [mutation]);
  return { ok: true, versionstamp, id: (mutation as { id: string }).id };
}

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 100) {
    throw new KvError("INVALID_ARGUMENT", `${name} must be an integer from 1 to 100`);
  }
  return value;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });

type Settle = Extract<Mutation, { type: "settle" }>;

const isClosed = (e: unknown) => e instanceof KvError && e.code === "CLOSED";

/** Whether retrying cannot help: the token may not use the queue. */
const isRefusal = (e: unknown): e is KvError =>
  e instanceof KvError && (e.code === "FORBIDDEN" || e.code === "UNAUTHORIZED");

/** Runs a consumer of `database`'s queue until stopped or until the database closes. */
export function listenQueue<T>(
  database: () => Database,
  handler: (message: KvQueueMessage<T>) => unknown,
  options: KvListenQueueOptions = {},
): KvQueueListener {
  if (typeof handler !== "function") {
    throw new KvError("INVALID_ARGUMENT", "listenQueue needs a handler function");
  }
  const mode = options.mode ?? "sse";
  if (mode !== "sse" && mode !== "polling") {
    throw new KvError("INVALID_ARGUMENT", 'mode must be "sse" or "polling"');
  }
  const pollMs = parseDuration(options.pollInterval ?? 1000, "pollInterval");
  const leaseMs = Math.max(
    1,
    parseDuration(options.leaseDuration ?? limits.defaultLeaseMs, "leaseDuration"),
  );
  if (leaseMs > 3_600_000) throw new KvError("INVALID_ARGUMENT", "leaseDuration is at most 1h");
  const concurrency = positive(options.concurrency, "concurrency", 1);
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new KvError("INVALID_ARGUMENT", "onError must be a function");
  }
  const onError =
    options.onError ?? ((e: KvError) => console.error("cairn: listenQueue refused:", e.message));
  database(); // throws CLOSED now rather than in the loop
  const controller = new AbortController();
  const { signal } = controller;
  // Each worker waits on it (a claim or a sleep) once at a time: up to `concurrency` listeners.
  setMaxListeners(Math.max(concurrency, defaultMaxListeners), signal);

  /** Runs the handler on `m` with its lease renewed meanwhile; returns how to settle it. */
  const handle = async (m: LeasedMessage): Promise<Settle> => {
    const renew = setInterval(
      () => {
        const mutation = { type: "renewLease", id: m.id, lease: m.lease, leaseMs } as const;
        commitMutations(database(), [mutation]).catch(() => {}); // the lease then lapses and the message is delivered again
      },
      Math.max(1, Math.floor(leaseMs / 3)),
    );
    const settle = { type: "settle", id: m.id, lease: m.lease } as const;
    try {
      await handler({ id: m.id, value: decodeValue(m.value) as T, attempts: m.attempts });
      return { ...settle, ok: true };
    } catch (e) {
      const error = e instanceof Error ? e.message || e.name : String(e);
      return { ...settle, ok: false, error };
    } finally {
      clearInterval(renew);
    }
  };

  /**
   * One of `concurrency` workers: claims a message, handles it, and settles it in the same commit
   * that claims the next one.
   */
  const work = async () => {
    let settle: Settle[] = [];
    let release: Mutation[] = [];
    while (!signal.aborted) {
      let messages: LeasedMessage[];
      try {
        const waitMs = mode === "polling" ? 0 : limits.maxClaimWaitMs;
        messages = await database().claim({ limit: 1, leaseMs, waitMs, settle }, signal);
        settle = [];
      } catch (e) {
        if (isClosed(e) || signal.aborted) break;
        if (isRefusal(e)) {
          controller.abort(); // every worker ends; the error is reported once
          onError(e);
          break;
        }
        await sleep(Math.max(pollMs, 1000), signal); // e.g. the server is unreachable: try again
        continue;
      }
      if (messages.length === 0 && mode === "polling") await sleep(pollMs, signal);
      for (const [i, m] of messages.entries()) {
        // Stopped: what was claimed but not handed to the handler goes back to the queue at once.
        if (signal.aborted) {
          release = messages.slice(i).map(releaseOf);
          break;
        }
        settle.push(await handle(m));
      }
    }
    // A settlement that cannot be written leaves the lease to lapse: delivered again.
    if (settle.length > 0 || release.length > 0) {
      await Promise.resolve()
        .then(() => commitMutations(database(), [...settle, ...release]))
        .catch(() => {});
    }
  };
  const run = async () => {
    await Promise.all(Array.from({ length: concurrency }, work));
  };
  const closed = run();
  return {
    stop: () => {
      controller.abort();
      return closed;
    },
    closed,
    [Symbol.dispose]: () => controller.abort(),
  };
}

function deadLetterOut<T>(d: DeadLetter): KvDeadLetter<T> {
  return {
    id: d.id,
    originalId: d.id,
    value: decodeValue(d.value) as T,
    errorMessage: d.error,
    attempts: d.attempts,
    originalCreatedAt: d.createdAt,
    failedAt: d.failedAt,
  };
}

const dlqId = (id: unknown) => idFromWire(id, "id");

/** The dead-letter queue: messages whose every delivery failed, newest first. */
export class KvDeadLetterQueue {
  readonly #database: () => Database;

  /** @internal Use `kv.dlq`. */
  constructor(database: () => Database) {
    this.#database = database;
  }

  async list<T = unknown>(
    options: { limit?: number; offset?: number } = {},
  ): Promise<KvDeadLetter<T>[]> {
    const limit = options.limit ?? 100;
    const offset = options.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new KvError("INVALID_ARGUMENT", "limit must be a positive integer");
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new KvError("INVALID_ARGUMENT", "offset must be a non-negative integer");
    }
    const found = await this.#database().deadLetters({ limit: Math.min(limit, 1000), offset });
    return found.map(deadLetterOut<T>);
  }

  /** The dead letter with `id`, or `null`. */
  async get<T = unknown>(id: string): Promise<KvDeadLetter<T> | null> {
    const [found] = await this.#database().deadLetters({ id: dlqId(id) });
    return found ? deadLetterOut<T>(found) : null;
  }

  /**
   * Puts the message back in the queue under a new id, ready now, with its backoff schedule and
   * undelivered keys; `NOT_FOUND` if there is no such dead letter.
   */
  async requeue(id: string): Promise<{ ok: true; id: string; newId: string }> {
    const newId = randomUUID();
    const { deletedCount } = await commitMutations(this.#database(), [
      { type: "requeue", id: dlqId(id), newId },
    ]);
    if (deletedCount === 0) {
      throw new KvError("NOT_FOUND", "Message not found in DLQ");
    }
    return { ok: true, id: newId, newId };
  }

  /** Removes the dead letter (nothing happens if there is none). */
  async delete(id: string): Promise<{ ok: true }> {
    await commitMutations(this.#database(), [{ type: "deleteDeadLetter", id: dlqId(id) }]);
    return { ok: true };
  }

  /** Removes every dead letter. */
  async purge(): Promise<{ deletedCount: number }> {
    const { deletedCount } = await commitMutations(this.#database(), [
      { type: "deleteDeadLetter", id: null },
    ]);
    return { deletedCount };
  }
}
