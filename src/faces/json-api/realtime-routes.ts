/**
 * The Buntime KeyVal seed's queue, dead-letter queue and watch routes (reference/seed-systems.md
 * §1.4, §1.10, §1.12), translated to the core API. Streams are server-sent events whose `id:` is a
 * versionstamp (watch) or a message id (queue); a watch resumes from `Last-Event-ID`.
 */
import { decodeKey, encodeReadKey, type KvKey } from "../../codec/key-codec.js";
import { decodeValue } from "../../codec/value-codec.js";
import { isVersionstamp } from "../../codec/versionstamp.js";
import {
  type CommitChanges,
  commitMutations,
  type Database,
  type LeasedMessage,
} from "../../engine/database.js";
import { listIterator, toEntry } from "../../kv/kv-list-iterator.js";
import { enqueue, type KvDeadLetter, KvDeadLetterQueue } from "../../kv/queue.js";
import type { KvEntryMaybe } from "../../kv/types.js";
import { followKeys, type KeyFeedEvent } from "../../kv/watch.js";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import { idFromWire } from "../../protocol/database-wire.js";
import { formatKeyPath, parseKeyPath } from "../../protocol/key-path.js";
import { formatSse } from "../../protocol/sse.js";
import { keyToJson, toTagged } from "../../protocol/tagged-json.js";
import type { Route, RouteRequest } from "../face.js";
import { body, SharedChunk, StreamReply } from "../http-io.js";
import { enqueueArguments, entryToJson, limitOf } from "./arguments.js";

const invalid = (message: string) => new KvError("INVALID_ARGUMENT", message);

function integer(value: string | null, name: string, fallback: number, min: number): number {
  if (value === null || value === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw invalid(`${name} must be an integer of at least ${min}: received ${value}`);
  }
  return n;
}

const messageToJson = (m: LeasedMessage) => ({
  id: m.id,
  value: toTagged(decodeValue(m.value)),
  attempts: m.attempts,
});

const deadLetterToJson = (d: KvDeadLetter) => ({ ...d, value: toTagged(d.value) });

/** Comma-separated key paths (a comma inside a part is written `%2C`). */
function keyPaths(text: string | null, name: string): KvKey[] {
  if (text === null || text === "") throw invalid(`${name} is required, e.g. ${name}=users/1`);
  const keys = text.split(",").map(parseKeyPath);
  if (keys.length > limits.maxFeedRanges) {
    throw invalid(`Too many keys in ${name} (max ${limits.maxFeedRanges})`);
  }
  return keys;
}

/** `prefixes=` (the seed's client) or `prefix=` (its server). */
const prefixesOf = (query: URLSearchParams) =>
  keyPaths(query.get("prefixes") ?? query.get("prefix"), "prefix");

const initialOf = (query: URLSearchParams) => query.get("initial") !== "false";

function cursorOf(request: RouteRequest): string | undefined {
  const cursor = request.req.headers["last-event-id"] ?? request.query.get("cursor") ?? undefined;
  if (cursor !== undefined && !isVersionstamp(cursor)) {
    throw invalid("The cursor (Last-Event-ID) must be a versionstamp (20 hex characters)");
  }
  return cursor as string | undefined;
}

/** Watchers of one commit share its `change` event; the feed hands them one commit object. */
const changeEvents = new WeakMap<CommitChanges, SharedChunk>();

function changeEvent(event: KeyFeedEvent): SharedChunk {
  const cached = event.commit && changeEvents.get(event.commit);
  if (cached !== undefined) return cached;
  const entries = event.changes.map((c) => {
    const key = keyToJson(decodeKey(c.key));
    if (c.entry === null) return { key, value: null, versionstamp: null };
    return { key, value: toTagged(decodeValue(c.entry)), versionstamp: c.entry.versionstamp };
  });
  const data = JSON.stringify(entries);
  const chunk = new SharedChunk(
    formatSse({ event: "change", id: event.versionstamp ?? undefined, data }),
  );
  if (event.commit) changeEvents.set(event.commit, chunk);
  return chunk;
}

/** An SSE watch: `change` events with entries, `ping` heartbeats, `lost` when history is gone. */
function sseWatch(
  database: Database,
  keys: KvKey[],
  request: RouteRequest,
  exact: boolean,
): StreamReply {
  const cursor = cursorOf(request);
  const limit = limitOf(request.query.get("limit"));
  const emitInitial = initialOf(request.query);
  return new StreamReply("text/event-stream", (stream) => {
    const handle = followKeys(
      () => database,
      keys,
      (event) => stream.write(changeEvent(event)),
      {
        exact,
        emitInitial,
        limit,
        cursor,
        onHistoryLost: (oldest) =>
          stream.write(formatSse({ event: "lost", id: oldest, data: JSON.stringify({ oldest }) })),
        onError: (error) => {
          const message = error instanceof Error ? error.message : String(error);
          stream.write(formatSse({ event: "error", data: JSON.stringify({ error: message }) }));
          stream.end();
        },
      },
    );
    const ping = setInterval(() => {
      const versionstamp = handle.cursor ?? undefined;
      stream.write(
        formatSse({ event: "ping", id: versionstamp, data: JSON.stringify({ versionstamp }) }),
      );
    }, limits.watchHeartbeatMs);
    return () => {
      clearInterval(ping);
      handle.stop();
    };
  });
}

/**
 * `GET /queue/listen`: leases ready messages and sends each as a `message` event; with
 * `concurrency=N` (default 1) at most N are outstanding until acknowledged or nacked (or their
 * lease, `lease=` ms, default `defaultLeaseMs`, runs out). `ping` events while the queue is empty.
 */
function listenStream(database: Database, request: RouteRequest, defaultLeaseMs: number) {
  const concurrency = integer(request.query.get("concurrency"), "concurrency", 1, 1);
  if (concurrency > limits.maxClaimMessages) {
    throw invalid(`concurrency is at most ${limits.maxClaimMessages}`);
  }
  const leaseMs = integer(request.query.get("lease"), "lease", defaultLeaseMs, 1);
  return new StreamReply("text/event-stream", (stream) => {
    const controller = new AbortController();
    const mine = new Map<string, number>(); // message id → lease end
    let wake: (() => void) | undefined;
    const run = async () => {
      while (!controller.signal.aborted) {
        const now = Date.now();
        for (const [id, until] of mine) if (until <= now) mine.delete(id);
        if (mine.size >= concurrency) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, Math.min(...mine.values()) - now);
          });
          continue;
        }
        const messages = await database.claim(
          { limit: concurrency - mine.size, leaseMs, waitMs: limits.watchHeartbeatMs },
          controller.signal,
        );
        if (controller.signal.aborted) {
          // Claimed as the client left: let them go again at once.
          for (const m of messages) release(database, m.id);
          return;
        }
        if (messages.length === 0) stream.write(formatSse({ event: "ping", data: "" }));
        for (const m of messages) {
          mine.set(m.id, m.leaseUntil);
          outstanding.set(m.id, () => {
            mine.delete(m.id);
            wake?.();
          });
          stream.write(
            formatSse({ event: "message", id: m.id, data: JSON.stringify(messageToJson(m)) }),
          );
        }
      }
    };
    run().catch((error) => {
      const message = error instanceof Error ? error.message : String(error);
      stream.write(formatSse({ event: "error", data: JSON.stringify({ error: message }) }));
      stream.end();
    });
    return () => {
      controller.abort();
      wake?.();
      for (const id of mine.keys()) {
        outstanding.delete(id);
        release(database, id);
      }
    };
  });
}

/** A message's lease given up: it is retried as if its handler failed, keeping attempts honest. */
const settle = (database: Database, id: string, ok: boolean, error?: string) =>
  commitMutations(database, [{ type: "settle", id, lease: null, ok, ...(error && { error }) }]);

const release = (database: Database, id: string) =>
  void settle(database, id, false, "The consumer disconnected before acknowledging").catch(
    () => {},
  );

/**
 * Messages sent on listen streams, by id (unique across databases), so that acknowledging one
 * makes room on its stream.
 */
const outstanding = new Map<string, () => void>();

function settled(id: string): void {
  outstanding.get(id)?.();
  outstanding.delete(id);
}

function idOf(fields: Record<string, unknown>): string {
  if (typeof fields.id !== "string" || fields.id === "")
    throw invalid("id must be a non-empty string");
  return idFromWire(fields.id, "id");
}

/** The dead-letter id in `/queue/dlq/<id>[/requeue]`. */
function dlqPath(wildcard: string): { id: string; requeue: boolean } {
  const requeue = wildcard.endsWith("/requeue");
  const encoded = requeue ? wildcard.slice(0, -"/requeue".length) : wildcard;
  let id: string;
  try {
    id = decodeURIComponent(encoded);
  } catch {
    throw invalid(`The id ${encoded} is not valid percent-encoded UTF-8`);
  }
  return { id: idFromWire(id, "id"), requeue };
}

const deadLetters = (database: Database) => new KvDeadLetterQueue(() => database);

/**
 * The queue, its dead letters, and watches (streamed and polled). A claim without `lease=` leases
 * for `defaultLeaseMs` (the seed's `queue.lockDuration`).
 */
export const realtimeRoutes = (defaultLeaseMs: number): Route[] => [
  {
    method: "POST",
    path: "/queue/enqueue",
    operation: "queue_enqueue",
    access: "write",
    async handle(request) {
      return enqueue(request.database, ...enqueueArguments(await request.json()));
    },
  },
  {
    method: "GET",
    path: "/queue/listen",
    operation: "queue_listen",
    access: "write",
    handle: async (request) => listenStream(request.database, request, defaultLeaseMs),
  },
  {
    method: "GET",
    path: "/queue/poll",
    operation: "queue_dequeue",
    access: "write",
    async handle(request) {
      const leaseMs = integer(request.query.get("lease"), "lease", defaultLeaseMs, 1);
      const [message] = await request.database.claim({ limit: 1, leaseMs, waitMs: 0 });
      return { message: message ? messageToJson(message) : null };
    },
  },
  {
    method: "POST",
    path: "/queue/ack",
    operation: "queue_ack",
    access: "write",
    async handle(request) {
      const id = idOf(body(await request.json()));
      await settle(request.database, id, true);
      settled(id);
      return { ok: true };
    },
  },
  {
    method: "POST",
    path: "/queue/nack",
    operation: "queue_nack",
    access: "write",
    async handle(request) {
      const fields = body(await request.json());
      const id = idOf(fields);
      await settle(
        request.database,
        id,
        false,
        typeof fields.error === "string"
          ? fields.error.slice(0, limits.maxErrorTextLength)
          : undefined,
      );
      settled(id);
      return { ok: true };
    },
  },
  {
    method: "GET",
    path: "/queue/stats",
    operation: "queue_stats",
    access: "read",
    handle: ({ database }) => database.queueStats(),
  },
  {
    method: "GET",
    path: "/queue/dlq",
    operation: "dlq_list",
    access: "read",
    async handle({ query, database }) {
      const limit = limitOf(query.get("limit"));
      const offset = integer(query.get("offset"), "offset", 0, 0);
      return (await deadLetters(database).list({ limit, offset })).map(deadLetterToJson);
    },
  },
  {
    method: "GET",
    path: "/queue/dlq/*",
    operation: "dlq_get",
    access: "read",
    async handle({ wildcard, database }) {
      const found = await deadLetters(database).get(dlqPath(wildcard).id);
      if (!found) throw new KvError("NOT_FOUND", "Message not found in DLQ");
      return deadLetterToJson(found);
    },
  },
  {
    method: "POST",
    path: "/queue/dlq/*",
    operation: "dlq_requeue",
    access: "write",
    async handle({ wildcard, database }) {
      const { id, requeue } = dlqPath(wildcard);
      if (!requeue) throw new KvError("NOT_FOUND", "No route: use POST /queue/dlq/<id>/requeue");
      return deadLetters(database).requeue(id);
    },
  },
  {
    method: "DELETE",
    path: "/queue/dlq/*",
    operation: "dlq_delete",
    access: "write",
    handle: ({ wildcard, database }) => deadLetters(database).delete(dlqPath(wildcard).id),
  },
  {
    method: "DELETE",
    path: "/queue/dlq",
    operation: "dlq_purge",
    access: "write",
    handle: ({ database }) => deadLetters(database).purge(),
  },
  {
    method: "GET",
    path: "/watch",
    operation: "watch",
    access: "read",
    handle: async (request) =>
      sseWatch(request.database, keyPaths(request.query.get("keys"), "keys"), request, true),
  },
  {
    method: "GET",
    path: "/watch/prefix",
    operation: "watch_prefix",
    access: "read",
    handle: async (request) =>
      sseWatch(request.database, prefixesOf(request.query), request, false),
  },
  {
    method: "GET",
    path: "/watch/poll",
    operation: "watch_poll",
    access: "read",
    async handle({ query, database }) {
      const keys = keyPaths(query.get("keys"), "keys");
      const previous = (query.get("versionstamps") ?? "").split(",");
      const raws = await database.get(keys.map(encodeReadKey));
      const current: KvEntryMaybe[] = raws.map((raw, i) =>
        raw ? toEntry(raw) : { key: keys[i]!, value: null, versionstamp: null },
      );
      const versionstamps = current.map((e) => e.versionstamp ?? "");
      const changed = current.filter((_e, i) => versionstamps[i] !== (previous[i] ?? ""));
      return { entries: changed.map(entryToJson), versionstamps };
    },
  },
  {
    method: "GET",
    path: "/watch/prefix/poll",
    operation: "watch_prefix_poll",
    access: "read",
    async handle({ query, database }) {
      const prefixes = prefixesOf(query);
      const limit = limitOf(query.get("limit"));
      // State travels as "k1/k2:vs,…": the key path, then the versionstamp after the last colon.
      const previous = new Map<string, string>();
      for (const item of (query.get("versionstamps") ?? "").split(",")) {
        const colon = item.lastIndexOf(":");
        if (colon > 0) previous.set(item.slice(0, colon), item.slice(colon + 1));
      }
      const entries: KvEntryMaybe[] = [];
      const state: string[] = [];
      const present = new Set<string>();
      for (const prefix of prefixes) {
        for await (const entry of listIterator(() => database, prefix, { limit })) {
          const path = formatKeyPath(entry.key);
          present.add(path);
          state.push(`${path}:${entry.versionstamp}`);
          if (previous.get(path) !== entry.versionstamp) entries.push(entry);
        }
      }
      for (const path of previous.keys()) {
        if (!present.has(path))
          entries.push({ key: parseKeyPath(path), value: null, versionstamp: null });
      }
      return { entries: entries.map(entryToJson), versionstamps: state.join(",") };
    },
  },
];
