import { concatBytes, encodeReadKey, encodeWriteKey, type KvKey } from "../codec/key-codec.js";
import { KvNow } from "../codec/server-time.js";
import { decodeValue } from "../codec/value-codec.js";
import { commitMutations, type Database, type Mutation } from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { searchRequestOf } from "../protocol/search-query.js";
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
  countKeys,
  filterOf,
  type KvListIterator,
  type KvListOptions,
  type KvListSelector,
  type KvPage,
  type KvPaginateOptions,
  type KvPrefixListOptions,
  listIterator,
  paginate,
  toEntry,
} from "./kv-list-iterator.js";
import {
  type KvTransaction,
  type KvTransactionOptions,
  type KvTransactionResult,
  runTransaction,
} from "./kv-transaction.js";
import {
  databaseState,
  type KvMetrics,
  measured,
  metricsJson,
  OperationMetrics,
  PrometheusRegistry,
  RecordingDatabase,
  registerSeedMetrics,
} from "./metrics.js";
import {
  enqueue,
  KvDeadLetterQueue,
  type KvEnqueueOptions,
  type KvListenQueueOptions,
  type KvQueueListener,
  type KvQueueMessage,
  listenQueue,
} from "./queue.js";
import {
  createIndex,
  type KvIndex,
  type KvIndexOptions,
  type KvSearchOptions,
  KvSearchResults,
  listIndexes,
  prefixOf,
  removeIndex,
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

function isKeyList(arg: unknown): arg is readonly KvKey[] {
  return Array.isArray(arg) && arg.length > 0 && Array.isArray(arg[0]);
}

/** The end of the range holding `key` and every key under it. */
function subtreeEnd(key: Uint8Array): Uint8Array {
  return concatBytes(key, [0xff]);
}

/** Writes `value` at `key`, replacing any value and TTL (`Kv.set`). */
export async function setKey(
  database: Database,
  key: KvWriteKey,
  value: unknown,
  options?: KvSetOptions,
): Promise<KvCommitResult> {
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
  const { versionstamp } = await commitMutations(database, [mutation]);
  return { ok: true, versionstamp };
}

/** Deletes each key and every key under it, or with `exact` each key alone, in one commit (`Kv.delete`). */
export async function deleteKeys(
  database: Database,
  keys: readonly KvKey[],
  options?: { exact?: boolean; where?: KvWhere },
): Promise<KvDeleteResult> {
  const filter = filterOf(options?.where);
  const mutations: Mutation[] = keys.map((k) => {
    const key = encodeWriteKey(k);
    return options?.exact
      ? { type: "delete", key, filter }
      : { type: "deleteRange", start: key, end: subtreeEnd(key), filter };
  });
  const { deletedCount } = await commitMutations(database, mutations);
  return { success: true, deletedCount };
}

let databaseOfKv: (kv: Kv) => () => Database;

/** What `kv.metrics()` can be asked for: the seed's JSON, or Prometheus's text. */
export type KvMetricsFormat = "json" | "prometheus";

/** How a `Kv` is made, beyond its database. */
export interface KvCoreOptions {
  /**
   * Where `metrics()` reads from when it is not the Kv itself: a server's metrics, for the SDK's
   * remote `Kv`. Without it the Kv records its own operations.
   */
  readonly metrics?: (format: KvMetricsFormat) => Promise<KvMetrics | string>;
}

/**
 * The database behind `kv`, as a function that throws `CLOSED` once `kv` is closed: for the seed
 * systems' APIs over a `Kv` (`gliaKvStoreFactory(kv)`, …), which share their faces' code.
 */
export const databaseOf = (kv: Kv): (() => Database) => databaseOfKv(kv);

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

  /** This Kv's own operations, recorded unless `metrics()` reads elsewhere (a server's). */
  readonly #recorded: OperationMetrics | undefined;
  readonly #metricsElsewhere: KvCoreOptions["metrics"];
  #prometheus: PrometheusRegistry | undefined;

  /** The core API over `database`; the SDK's `Kv` opens one by location (`openKv`). */
  constructor(database: Database, options: KvCoreOptions = {}) {
    this.#database = database;
    this.#metricsElsewhere = options.metrics;
    this.#recorded = options.metrics ? undefined : new OperationMetrics();
  }

  /** Runs `work`, recorded as `operation` when the Kv records its own operations. */
  #record<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const recorded = this.#recorded;
    return recorded ? measured(recorded.operation(operation), work) : work();
  }

  /** The open database, its scans or commits recorded as `scans` or `commits` (`list`, `atomic_commit`). */
  #recording(scans?: string, commits?: string): () => Database {
    const recorded = this.#recorded;
    if (!recorded) return this.#db;
    const scanStats = scans === undefined ? undefined : recorded.operation(scans);
    const commitStats = commits === undefined ? undefined : recorded.operation(commits);
    return () => new RecordingDatabase(this.#db(), scanStats, commitStats);
  }

  /** The open database; throws `CLOSED` after `close()`. */
  #db = (): Database => {
    if (this.#database === undefined)
      throw new KvError("CLOSED", "The database is closed; open it again with openKv()");
    return this.#database;
  };

  static {
    databaseOfKv = (kv) => kv.#db;
  }

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
    // Recorded here rather than through `measured`, whose promise costs a point get ~2% more.
    const stats = this.#recorded?.operation("get");
    const started = stats === undefined ? 0 : performance.now();
    try {
      let result: KvEntryMaybe<T> | KvEntryMaybe<T>[];
      if (isKeyList(arg)) {
        result = await this.#getMany<T>(
          arg,
          limits.maxBatchKeys,
          `Too many keys in one batch get (max ${limits.maxBatchKeys})`,
        );
      } else {
        const database = this.#db();
        const key = arg as KvKey;
        const [raw] = await database.get([encodeReadKey(key)]);
        // The stored key is the one asked for: copy it rather than decode it.
        result = raw
          ? { key: [...key], value: decodeValue(raw) as T, versionstamp: raw.versionstamp }
          : { key: [...key], value: null, versionstamp: null };
      }
      stats?.record(performance.now() - started);
      return result;
    } catch (error) {
      stats?.record(performance.now() - started, error);
      throw error;
    }
  }

  /** Deno's batch read: up to 10 keys, entries in request order, from one snapshot. */
  getMany<T extends readonly unknown[]>(
    keys: readonly KvKey[],
    _options?: { consistency?: "strong" | "eventual" },
  ): Promise<{ [K in keyof T]: KvEntryMaybe<T[K]> }> {
    return this.#record("get", () =>
      this.#getMany(keys, limits.maxReadRanges, `Too many ranges (max ${limits.maxReadRanges})`),
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
    return this.#record("set", () => setKey(this.#db(), key, value, options));
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
    return this.#record("delete", () => deleteKeys(this.#db(), keys, options));
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
    return listIterator<T>(this.#recording("list"), selector, options);
  }

  /**
   * How many live keys are under `prefix` (not counting `prefix` itself; `[]`: every key), narrowed
   * to `[start, end)` and to values matching `where` if given; counted inside the database.
   */
  async count(
    prefix: KvKey,
    options: { where?: KvWhere; start?: KvKey; end?: KvKey } = {},
  ): Promise<number> {
    return this.#record("count", () => countKeys(this.#db(), prefix, options));
  }

  /**
   * One page of the keys under `prefix`, in key order (or reversed): `{ entries, cursor, hasMore }`.
   * Pass `cursor` back for the next page; it is a position in the keyspace, so pages neither repeat
   * nor skip entries that exist throughout, however the data changes in between.
   */
  paginate<T = unknown>(prefix: KvKey, options: KvPaginateOptions = {}): Promise<KvPage<T>> {
    return this.#record("paginate", () => paginate<T>(this.#db(), prefix, options));
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
    return this.#record("transaction", () => runTransaction(this.#db, fn, options));
  }

  /** Starts an atomic operation: checks and mutations committed together or not at all. */
  atomic(): AtomicOperation {
    this.#db();
    return new AtomicOperation(this.#recording(undefined, "atomic_commit"));
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
    return this.#record("queue_enqueue", () => enqueue(this.#db(), value, options));
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
  createIndex(prefix: KvKey, options: KvIndexOptions): Promise<{ ok: true }> {
    return this.#record("create_index", () => createIndex(this.#db(), prefix, options));
  }

  /** Every full-text index, in prefix order. */
  listIndexes(): Promise<KvIndex[]> {
    return this.#record("list_indexes", () => listIndexes(this.#db()));
  }

  /** Removes the full-text index on exactly `prefix`; resolves whether there was one. */
  removeIndex(prefix: KvKey): Promise<boolean> {
    return this.#record("remove_index", () => removeIndex(this.#db(), prefix));
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
      return this.#record("search", () => search(this.#db(), prefix, request));
    });
  }

  /** Messages waiting, being handled, and dead-lettered. */
  queueStats(): Promise<KvQueueStats> {
    return this.#record("queue_stats", () => this.#db().queueStats());
  }

  /**
   * The seed's metrics: per operation its count, errors and mean latency, the totals, the queue's
   * state and the live entries' count and size (`KvMetrics`); with `"prometheus"`, the same as
   * Prometheus text (`keyval_*`). Embedded, the operations are this Kv's own calls since it was
   * opened (`get`, `set`, `delete`, `list` per page read, `count`, `paginate`, `atomic_commit`,
   * `transaction`, `queue_enqueue`, `search`, …); remote, the server's (`GET /api/metrics`, which
   * needs the admin token unless the server's metrics are public). Errors: `INVALID_ARGUMENT` for
   * another format.
   */
  metrics(format?: "json"): Promise<KvMetrics>;
  metrics(format: "prometheus"): Promise<string>;
  async metrics(format: KvMetricsFormat = "json"): Promise<KvMetrics | string> {
    if (format !== "json" && format !== "prometheus") {
      throw new KvError(
        "INVALID_ARGUMENT",
        `format must be "json" or "prometheus"; got ${String(format)}`,
      );
    }
    if (this.#metricsElsewhere) return this.#metricsElsewhere(format);
    const operations = this.#recorded!.operations;
    const state = await databaseState(this.#db());
    if (format === "json") return metricsJson(operations, state);
    this.#prometheus ??= new PrometheusRegistry((client, registry, stateNow) =>
      registerSeedMetrics(client, registry, () => operations, stateNow),
    );
    return this.#prometheus.text(state);
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
