import { fileURLToPath } from "node:url";
import { PostgresBackend, type PostgresOptions } from "../backends/postgres/postgres-backend.js";
import { SqliteBackend, type SqliteOptions } from "../backends/sqlite/sqlite-backend.js";
import { type Duration, parseDuration } from "../codec/duration.js";
import { concatBytes, encodeReadKey, encodeWriteKey, type KvKey } from "../codec/key-codec.js";
import { KvNow } from "../codec/server-time.js";
import { decodeValue } from "../codec/value-codec.js";
import { assertCommitLimits } from "../engine/commit-limits.js";
import type { Database, Mutation } from "../engine/database.js";
import { Engine } from "../engine/engine.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { searchIndexOf, searchRequestOf } from "../protocol/search-query.js";
import type { KvWhere } from "../protocol/where-filter.js";
import {
  AtomicOperation,
  commitVersionstamp,
  encodeSetKey,
  encodeSetValue,
  expiryOf,
  type KvWriteKey,
} from "./atomic-operation.js";
import {
  filterOf,
  type KvListIterator,
  type KvListOptions,
  type KvListSelector,
  type KvPage,
  type KvPaginateOptions,
  type KvPrefixListOptions,
  listIterator,
  paginate,
  spanOfPrefix,
  toEntry,
} from "./kv-list-iterator.js";
import {
  type KvTransaction,
  type KvTransactionOptions,
  type KvTransactionResult,
  runTransaction,
} from "./kv-transaction.js";
import {
  enqueueMutation,
  KvDeadLetterQueue,
  type KvEnqueueOptions,
  type KvListenQueueOptions,
  type KvQueueListener,
  type KvQueueMessage,
  listenQueue,
} from "./queue.js";
import { RemoteDatabase } from "./remote-database.js";
import {
  indexToKv,
  type KvIndex,
  type KvIndexOptions,
  type KvSearchOptions,
  KvSearchResults,
  prefixOf,
  search,
} from "./search.js";
import type {
  KvCommitResult,
  KvDeleteResult,
  KvEntryMaybe,
  KvQueueStats,
  KvSetOptions,
} from "./types.js";
import {
  type KvWatchCallback,
  type KvWatchHandle,
  type KvWatchOptions,
  watchKeys,
  watchStream,
} from "./watch.js";

export interface KvOptions extends SqliteOptions, PostgresOptions {
  /** For `http(s)://` URLs: the server's access token (default: the `CAIRN_TOKEN` environment variable). */
  accessToken?: string;
  /**
   * How long the change history is kept for watches resuming from a cursor (default `"1h"`, and
   * at most the newest million changes). Embedded and server databases only.
   */
  changeRetention?: Duration;
  /**
   * Whether this process removes expired entries, and change records older than
   * `changeRetention`, in the background (default true). Turn it off where another process sweeps
   * the same database: reads hide expired entries either way, but they take space, and watches
   * hear of their expiry, only once swept. Embedded and server databases only.
   */
  sweep?: boolean;
}

/** Where `openKv()` and `new Kv()` keep data when given no path. */
export const DEFAULT_PATH = "./cairn-data/cairn.db";

/** Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`). */
export const isPostgresUrl = (location: string) => /^postgres(ql)?:\/\//i.test(location);

/** Opens the engine behind a `Kv` for `location` (see `new Kv()`). */
export function openDatabase(location: string, options: KvOptions = {}): Database {
  if (/^https?:\/\//i.test(location)) {
    return new RemoteDatabase(location, options.accessToken ?? process.env.CAIRN_TOKEN);
  }
  const changeRetentionMs =
    options.changeRetention === undefined
      ? undefined
      : parseDuration(options.changeRetention, "changeRetention");
  const engineOptions = { changeRetentionMs, sweep: options.sweep };
  if (isPostgresUrl(location)) {
    return new Engine(new PostgresBackend(location, options), engineOptions);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    if (!location.startsWith("file://")) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `Unsupported database URL ${location}: Cairn opens SQLite files (a path, file:// URL or ":memory:"), PostgreSQL (postgres://) and servers (http:// or https://)`,
      );
    }
    location = fileURLToPath(location);
  }
  return new Engine(new SqliteBackend(location, options), engineOptions);
}

function isKeyList(arg: unknown): arg is readonly KvKey[] {
  return Array.isArray(arg) && arg.length > 0 && Array.isArray(arg[0]);
}

/** The end of the range holding `key` and every key under it. */
function subtreeEnd(key: Uint8Array): Uint8Array {
  return concatBytes(key, [0xff]);
}

/**
 * A Cairn database, with Deno KV's API and the Buntime KeyVal seed's. Embedded and remote
 * databases are the same class; only where the `Database` behind it lives differs.
 */
export class Kv {
  #database: Database | undefined;
  /** Watches and queue consumers, stopped when the Kv closes. */
  readonly #running = new Set<{ stop(): unknown }>();

  /** The dead-letter queue: messages whose every delivery failed. */
  readonly dlq: KvDeadLetterQueue = new KvDeadLetterQueue(() => this.#db());

  /**
   * Opens the database at `location`: a SQLite file path (created with its directory if needed),
   * a `file://` URL, `":memory:"`, or a Cairn server's `http(s)://` URL (e.g. the seed's
   * `http://localhost:8000/keyval/api`); default `./cairn-data/cairn.db`. A `Database` is used as is.
   */
  constructor(location: string | Database = DEFAULT_PATH, options: KvOptions = {}) {
    this.#database = typeof location === "string" ? openDatabase(location, options) : location;
  }

  /** The open database; throws `CLOSED` after `close()`. */
  #db = (): Database => {
    if (this.#database === undefined)
      throw new KvError("CLOSED", "The database is closed; open it again with openKv()");
    return this.#database;
  };

  /**
   * Reads one key, or with an array of keys (the seed's batch form) up to 1000 keys, returning
   * entries in request order. Absent keys come back as `{ key, value: null, versionstamp: null }`.
   */
  get<T = unknown>(
    key: KvKey,
    options?: { consistency?: "strong" | "eventual" },
  ): Promise<KvEntryMaybe<T>>;
  get<T = unknown>(
    keys: readonly KvKey[],
    options?: { consistency?: "strong" | "eventual" },
  ): Promise<KvEntryMaybe<T>[]>;
  async get<T>(arg: KvKey | readonly KvKey[]): Promise<KvEntryMaybe<T> | KvEntryMaybe<T>[]> {
    if (isKeyList(arg))
      return this.#getMany<T>(arg, 1000, "Too many keys in one batch get (max 1000)");
    const database = this.#db();
    const key = arg as KvKey;
    const [raw] = await database.get([encodeReadKey(key)]);
    // The stored key is the one asked for: copy it rather than decode it.
    if (!raw) return { key: [...key], value: null, versionstamp: null };
    return { key: [...key], value: decodeValue(raw) as T, versionstamp: raw.versionstamp };
  }

  /** Deno's batch read: up to 10 keys, entries in request order, from one snapshot. */
  getMany<T extends readonly unknown[]>(
    keys: readonly KvKey[],
    _options?: { consistency?: "strong" | "eventual" },
  ): Promise<{ [K in keyof T]: KvEntryMaybe<T[K]> }> {
    return this.#getMany(
      keys,
      limits.maxReadRanges,
      `Too many ranges (max ${limits.maxReadRanges})`,
    ) as never;
  }

  async #getMany<T>(
    keys: readonly KvKey[],
    max: number,
    tooMany: string,
  ): Promise<KvEntryMaybe<T>[]> {
    if (!Array.isArray(keys)) throw new KvError("INVALID_ARGUMENT", "Expected an array of keys");
    if (keys.length > max) throw new KvError("INVALID_ARGUMENT", tooMany);
    const database = this.#db();
    if (keys.length === 0) return [];
    const raws = await database.get(keys.map(encodeReadKey));
    return raws.map((raw, i) =>
      raw ? toEntry<T>(raw) : { key: keys[i]!, value: null, versionstamp: null },
    );
  }

  /** Writes `value` at `key`, replacing any value and TTL. `expireIn`/`expiresIn` sets a TTL. */
  async set(key: KvWriteKey, value: unknown, options?: KvSetOptions): Promise<KvCommitResult> {
    const target = encodeSetKey(key);
    const encoded = encodeSetValue(value);
    const mutation: Mutation = {
      type: "set",
      key: target.key,
      value: encoded.value,
      expireIn: expiryOf(options),
      suffixVersionstamp: target.suffixVersionstamp,
      resolveNow: encoded.resolveNow,
    };
    const result = await this.#db().commit({ checks: [], mutations: [mutation] });
    if (!result.ok) throw new KvError("INTERNAL", "A commit without checks failed");
    return { ok: true, versionstamp: result.versionstamp };
  }

  /**
   * Deletes `key` and every key under it (the seed's semantics), or with `{ exact: true }` only
   * `key`; an array of keys deletes each the same way, all in one atomic commit. With `where`,
   * only the keys whose value matches (see the README's filter table). Runs inside the database
   * and reports how many live keys were removed.
   */
  async delete(
    keyOrKeys: KvKey | readonly KvKey[],
    options?: { exact?: boolean; where?: KvWhere },
  ): Promise<KvDeleteResult> {
    const keys = isKeyList(keyOrKeys) ? keyOrKeys : [keyOrKeys as KvKey];
    const filter = filterOf(options?.where);
    const mutations: Mutation[] = keys.map((k) => {
      const key = encodeWriteKey(k);
      return options?.exact
        ? { type: "delete", key, filter }
        : { type: "deleteRange", start: key, end: subtreeEnd(key), filter };
    });
    const commit = { checks: [], mutations };
    assertCommitLimits(commit);
    const result = await this.#db().commit(commit);
    if (!result.ok) throw new KvError("INTERNAL", "A commit without checks failed");
    return { success: true, deletedCount: result.deletedCount };
  }

  /**
   * Lists entries in key order. Deno's form takes a selector (`{ prefix }`, `{ prefix, start }`,
   * `{ prefix, end }` or `{ start, end }`); the seed's form takes a prefix key and optional
   * `start`/`end` keys within it. Returns an async iterator with a resumable `cursor`.
   */
  list<T = unknown>(selector: KvListSelector, options?: KvListOptions): KvListIterator<T>;
  list<T = unknown>(prefix: KvKey, options?: KvPrefixListOptions): KvListIterator<T>;
  list<T = unknown>(
    selector: KvListSelector | KvKey,
    options?: KvPrefixListOptions,
  ): KvListIterator<T> {
    this.#db();
    return listIterator<T>(this.#db, selector, options);
  }

  /**
   * How many live keys are under `prefix` (not counting `prefix` itself; `[]`: every key), narrowed
   * to `[start, end)` and to values matching `where` if given; counted inside the database.
   */
  async count(
    prefix: KvKey,
    options: { where?: KvWhere; start?: KvKey; end?: KvKey } = {},
  ): Promise<number> {
    const database = this.#db();
    const span = spanOfPrefix(prefix, options);
    const filter = filterOf(options.where);
    if (Buffer.compare(span.start, span.end) >= 0) return 0;
    return database.count({ start: span.start, end: span.end, filter });
  }

  /**
   * One page of the keys under `prefix`, in key order (or reversed): `{ entries, cursor, hasMore }`.
   * Pass `cursor` back for the next page; it is a position in the keyspace, so pages neither repeat
   * nor skip entries that exist throughout, however the data changes in between.
   */
  paginate<T = unknown>(prefix: KvKey, options: KvPaginateOptions = {}): Promise<KvPage<T>> {
    return paginate<T>(this.#db(), prefix, options);
  }

  /**
   * The database's current time, resolved where it is used: in a filter, when the query runs; in
   * a stored value, at commit (as epoch ms). `kv.now().add("1h")`, `kv.now().sub("7d")`.
   */
  now(): KvNow {
    return new KvNow();
  }

  /**
   * Runs `fn` as an optimistic transaction: `tx.get` reads (cached per key), `tx.set`, `delete`,
   * `sum`, `min`, `max`, `append`, `prepend` buffer writes, and when `fn` returns they commit
   * together with a check on every key read. If one of those keys changed meanwhile, nothing is
   * applied and `fn` runs again, up to `maxRetries` times (default 0), after `retryDelay × n`
   * (default 10 ms, jittered). Resolves `{ ok: true, value, versionstamp }` with `fn`'s result,
   * or `{ ok: false, error: "conflict" }`; rejects with `fn`'s error if it throws (nothing applied).
   */
  transaction<T>(
    fn: (tx: KvTransaction) => T | Promise<T>,
    options?: KvTransactionOptions,
  ): Promise<KvTransactionResult<T>> {
    this.#db();
    return runTransaction(this.#db, fn, options);
  }

  /** Starts an atomic operation: checks and mutations committed together or not at all. */
  atomic(): AtomicOperation {
    this.#db();
    return new AtomicOperation(this.#db);
  }

  /** A key part placeholder: `set([...prefix, kv.commitVersionstamp()], v)` writes under the commit's versionstamp. */
  commitVersionstamp(): typeof commitVersionstamp {
    return commitVersionstamp;
  }

  /**
   * Adds `value` to the queue, for delivery to `listenQueue` consumers after `delay`; returns the
   * commit's versionstamp and the message's id.
   */
  async enqueue(
    value: unknown,
    options?: KvEnqueueOptions,
  ): Promise<KvCommitResult & { readonly id: string }> {
    const mutation = enqueueMutation(value, options);
    const result = await this.#db().commit({ checks: [], mutations: [mutation] });
    if (!result.ok) throw new KvError("INTERNAL", "A commit without checks failed");
    return { ok: true, versionstamp: result.versionstamp, id: (mutation as { id: string }).id };
  }

  /**
   * Delivers queue messages to `handler`, one at a time unless `concurrency` says otherwise:
   * returning acknowledges the message, throwing retries it after the next backoff interval and,
   * after the last attempt, writes it to its `keysIfUndelivered` and moves it to the dead-letter
   * queue. Delivery is at least once. Stops with `handle.stop()` or when the Kv closes.
   */
  listenQueue<T = unknown>(
    handler: (message: KvQueueMessage<T>) => unknown,
    options?: KvListenQueueOptions,
  ): KvQueueListener {
    const listener = listenQueue<T>(this.#db, handler, options);
    this.#track(listener, listener.closed);
    return listener;
  }

  /**
   * Creates a full-text index over the entries under `prefix` (replacing any index on exactly
   * that prefix), indexing every entry already there. From then on every write keeps it exact,
   * in the write's own commit, whichever API or process makes it. Errors: `INVALID_ARGUMENT`
   * for missing or malformed fields or an unknown tokenizer.
   */
  async createIndex(prefix: KvKey, options: KvIndexOptions): Promise<{ ok: true }> {
    const index = searchIndexOf(prefixOf(prefix), options);
    await this.#db().createIndex(index);
    return { ok: true };
  }

  /** Every full-text index, in prefix order. */
  async listIndexes(): Promise<KvIndex[]> {
    return (await this.#db().listIndexes()).map(indexToKv);
  }

  /** Removes the full-text index on exactly `prefix`; resolves whether there was one. */
  async removeIndex(prefix: KvKey): Promise<boolean> {
    return this.#db().removeIndex(prefixOf(prefix));
  }

  /**
   * The live entries under `prefix` whose indexed fields match `query` (see the README's query
   * syntax) and, with `where`, whose value matches it too; most relevant first, at most `limit`
   * (default 100, at most 1000). Iterate the result with `for await`, or await it for an array.
   * Errors: `NOT_FOUND` when no index has exactly this prefix, `INVALID_ARGUMENT` for a
   * malformed query or limit, `INVALID_FILTER` for a malformed `where`.
   */
  search<T = unknown>(prefix: KvKey, query: string, options?: KvSearchOptions): KvSearchResults<T> {
    return new KvSearchResults<T>(async () => {
      const request = searchRequestOf(prefixOf(prefix), query, options);
      return search(this.#db(), prefix, request);
    });
  }

  /** Messages waiting, being handled, and dead-lettered. */
  queueStats(): Promise<KvQueueStats> {
    return this.#db().queueStats();
  }

  /**
   * Calls `callback` with the entries that changed, commit by commit: for the keys and every key
   * under them, or with `exact` only the keys. See `KvWatchOptions` for the initial emission,
   * backpressure and resuming from a cursor.
   */
  watch<T = unknown>(
    keyOrKeys: KvKey | readonly KvKey[],
    callback: KvWatchCallback<T>,
    options?: KvWatchOptions,
  ): KvWatchHandle;
  /** Deno's form: a stream of the keys' entries, first as they are, then after each change. */
  watch<T extends readonly unknown[]>(
    keys: readonly KvKey[],
    options?: { raw?: boolean },
  ): ReadableStream<{ [K in keyof T]: KvEntryMaybe<T[K]> }>;
  watch(
    keyOrKeys: KvKey | readonly KvKey[],
    callbackOrOptions?: KvWatchCallback | { raw?: boolean },
    options?: KvWatchOptions,
  ): KvWatchHandle | ReadableStream {
    if (typeof callbackOrOptions !== "function") {
      return watchStream(this.#db, keyOrKeys as readonly KvKey[], callbackOrOptions);
    }
    const keys = isKeyList(keyOrKeys) ? keyOrKeys : [keyOrKeys as KvKey];
    const handle = watchKeys(this.#db, keys, callbackOrOptions, options);
    this.#track(handle, handle.closed);
    return handle;
  }

  #track(running: { stop(): unknown }, closed: Promise<void>): void {
    this.#running.add(running);
    void closed.then(() => this.#running.delete(running));
  }

  /** Finishes pending commits and closes the database. Later calls fail with `CLOSED`. */
  async close(): Promise<void> {
    const database = this.#database;
    this.#database = undefined;
    for (const running of [...this.#running]) void running.stop();
    await database?.close();
  }

  [Symbol.dispose](): void {
    void this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Opens a database; see `new Kv()` for `location`. */
export async function openKv(location?: string, options?: KvOptions): Promise<Kv> {
  return new Kv(location, options);
}
