/**
 * Optimistic transactions (the Buntime seed's `kv.transaction`), built from reads and one atomic
 * commit, so they behave the same embedded and remote: reads are cached per key, writes are
 * buffered, and the commit checks that no key read has changed since it was read.
 */
import { type Duration, parseDuration } from "../codec/duration.js";
import { encodeReadKey, type KvKey } from "../codec/key-codec.js";
import type { KvU64 } from "../codec/kv-u64.js";
import { decodeValue } from "../codec/value-codec.js";
import type { Database, RawEntry } from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { AtomicOperation } from "./atomic-operation.js";
import type { KvEntryMaybe, KvSetOptions } from "./types.js";

export interface KvTransactionOptions {
  /** Attempts after the first when a key read changed before the commit (default 0). */
  readonly maxRetries?: number;
  /** Wait before retry n (from 1): `retryDelay × n`, jittered ±50% (default 10 ms). */
  readonly retryDelay?: Duration;
}

export type KvTransactionResult<T> =
  | { readonly ok: true; readonly value: T; readonly versionstamp: string }
  /** Every attempt met a conflicting write; nothing was applied. */
  | { readonly ok: false; readonly error: "conflict" };

/**
 * One attempt of a transaction. `get` reads from the database the first time a key is asked for
 * and from its cache afterwards (writes of this transaction are not visible to its own reads);
 * `set`, `delete`, `sum`, `min`, `max`, `append` and `prepend` are buffered until the commit.
 */
export class KvTransaction {
  readonly #database: () => Database;
  readonly #reads = new Map<string, { key: KvKey; raw: RawEntry | null }>();
  readonly #operation: AtomicOperation;
  #finished = false;

  /** @internal Use `kv.transaction()`. */
  constructor(database: () => Database) {
    this.#database = database;
    this.#operation = new AtomicOperation(database);
  }

  #open(): AtomicOperation {
    if (this.#finished) {
      throw new KvError(
        "INVALID_ARGUMENT",
        "This transaction attempt has finished; use the tx passed to the current attempt",
      );
    }
    return this.#operation;
  }

  /** Reads one key, or an array of keys in request order (up to 1000), through the cache. */
  get<T = unknown>(key: KvKey): Promise<KvEntryMaybe<T>>;
  get<T = unknown>(keys: readonly KvKey[]): Promise<KvEntryMaybe<T>[]>;
  async get<T>(arg: KvKey | readonly KvKey[]): Promise<KvEntryMaybe<T> | KvEntryMaybe<T>[]> {
    this.#open();
    const batch = Array.isArray(arg) && arg.length > 0 && Array.isArray(arg[0]);
    const keys = (batch ? arg : [arg]) as readonly KvKey[];
    if (keys.length > limits.maxBatchKeys) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `Too many keys in one batch get (max ${limits.maxBatchKeys})`,
      );
    }
    const encoded = keys.map(encodeReadKey);
    const ids = encoded.map((k) => Buffer.from(k).toString("hex"));
    const missing = [...new Set(ids.filter((id) => !this.#reads.has(id)))];
    if (missing.length > 0) {
      const raws = await this.#database().get(missing.map((id) => Buffer.from(id, "hex")));
      missing.forEach((id, i) => {
        // Keys read concurrently keep the first read, which the commit will check.
        if (!this.#reads.has(id))
          this.#reads.set(id, { key: keys[ids.indexOf(id)]!, raw: raws[i]! });
      });
    }
    const entries = ids.map((id, i): KvEntryMaybe<T> => {
      const { raw } = this.#reads.get(id)!;
      const key = [...keys[i]!];
      return raw
        ? { key, value: decodeValue(raw) as T, versionstamp: raw.versionstamp }
        : { key, value: null, versionstamp: null };
    });
    return batch ? entries : entries[0]!;
  }

  set(key: KvKey, value: unknown, options?: KvSetOptions): this {
    this.#open().set(key, value, options);
    return this;
  }

  /** Deletes exactly `key` at commit. */
  delete(key: KvKey): this {
    this.#open().delete(key);
    return this;
  }

  sum(key: KvKey, n: KvU64 | bigint | number): this {
    this.#open().sum(key, n);
    return this;
  }

  min(key: KvKey, n: KvU64 | bigint | number): this {
    this.#open().min(key, n);
    return this;
  }

  max(key: KvKey, n: KvU64 | bigint | number): this {
    this.#open().max(key, n);
    return this;
  }

  append(key: KvKey, items: readonly unknown[]): this {
    this.#open().append(key, items);
    return this;
  }

  prepend(key: KvKey, items: readonly unknown[]): this {
    this.#open().prepend(key, items);
    return this;
  }

  /** @internal Commits the buffered writes with a check on every key read; ends the attempt. */
  async commit(): Promise<{ ok: true; versionstamp: string } | { ok: false }> {
    const operation = this.#open();
    this.#finished = true;
    for (const { key, raw } of this.#reads.values()) {
      operation.check({ key, versionstamp: raw?.versionstamp ?? null });
    }
    return operation.commit();
  }

  /** @internal Ends the attempt without committing. */
  abandon(): void {
    this.#finished = true;
  }
}

/** Runs `fn` in transactions until one commits or the retries are used up (see `Kv.transaction`). */
export async function runTransaction<T>(
  database: () => Database,
  fn: (tx: KvTransaction) => T | Promise<T>,
  options: KvTransactionOptions = {},
): Promise<KvTransactionResult<T>> {
  const maxRetries = options.maxRetries ?? 0;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `maxRetries must be a non-negative integer: received ${String(maxRetries)}`,
    );
  }
  const retryDelay = parseDuration(options.retryDelay ?? 10, "retryDelay");
  for (let attempt = 0; ; attempt++) {
    const tx = new KvTransaction(database);
    let value: T;
    try {
      value = await fn(tx);
    } catch (e) {
      tx.abandon();
      throw e;
    }
    const result = await tx.commit();
    if (result.ok) return { ok: true, value, versionstamp: result.versionstamp };
    if (attempt >= maxRetries) return { ok: false, error: "conflict" };
    // Jitter keeps writers that collided from colliding again at the same moment.
    const delay = retryDelay * (attempt + 1) * (0.5 + Math.random());
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
