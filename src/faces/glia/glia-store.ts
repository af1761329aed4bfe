/**
 * Glia Functions' `kvStore` (reference/seed-systems.md §3) over a Cairn database: one namespace's
 * keys under `["glia", namespace, key]`, each stored as `{ value, expires }` (epoch ms or null)
 * with Cairn's own TTL, so an expired item is gone from every read. The REST face and the
 * `gliaKvStoreFactory(kv)` facade for function code are both this class.
 */
import { isDeepStrictEqual } from "node:util";
import { encodeWriteKey, type KvKey } from "../../codec/key-codec.js";
import { decodeValue, encodeValueChecked } from "../../codec/value-codec.js";
import { checkCommit } from "../../engine/commit-limits.js";
import type { Database, Mutation, RawEntry } from "../../engine/database.js";
import { databaseOf, type Kv } from "../../kv/kv.js";
import { stringPrefixed } from "../../kv/kv-list-iterator.js";
import { KvError } from "../../kv-error.js";

/** An item: its value, and when it expires (epoch ms; `null`: never). */
export interface GliaItem<T = unknown> {
  readonly key: string;
  readonly value: T;
  readonly expires: number | null;
}

/** A batch operation, as `processBatchOperations` takes it. */
export interface GliaOperation {
  /** `get`, `set`, `delete` or `testAndSet` (`test-and-set`), in any case. */
  readonly op: string;
  readonly key: string;
  readonly value?: unknown;
  readonly oldValue?: unknown;
  readonly newValue?: unknown;
  /** Seconds until the item expires (`set`, `testAndSet`). */
  readonly expirationTtl?: number;
}

/** The result of a `testAndSet`: the item written, or `value: null` when the condition failed. */
export type GliaTestAndSetResult =
  | (GliaItem & { readonly conditionMet: true })
  | {
      readonly key: string;
      readonly value: null;
      readonly expires: null;
      readonly conditionMet: boolean;
    };

const NAMESPACE = /^[A-Za-z0-9_-]+$/;
/** What the platform allows a namespace and a key, in UTF-8 bytes. */
const MAX_NAMESPACE_BYTES = 128;
const MAX_KEY_BYTES = 512;
/** How often a test-and-set reads and commits again when another write came between. */
const TEST_AND_SET_ATTEMPTS = 100;

const invalid = (message: string) => new KvError("INVALID_ARGUMENT", message);

export function checkNamespace(namespace: unknown): string {
  if (
    typeof namespace !== "string" ||
    !NAMESPACE.test(namespace) ||
    Buffer.byteLength(namespace) > MAX_NAMESPACE_BYTES
  ) {
    throw invalid(
      `Invalid namespace ${JSON.stringify(namespace)}: use 1 to ${MAX_NAMESPACE_BYTES} letters, digits, '_' or '-'`,
    );
  }
  return namespace;
}

export function checkKey(key: unknown, what = "key"): string {
  if (typeof key !== "string" || key === "") throw invalid(`${what} must be a non-empty string`);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES)
    throw invalid(`${what} is longer than ${MAX_KEY_BYTES} bytes`);
  return key;
}

/** Seconds to milliseconds, for a TTL that is given (absent, 0 or null: no expiry). */
export function ttlMs(seconds: unknown, what = "expirationTtl"): number | undefined {
  if (seconds === undefined || seconds === null || seconds === 0) return undefined;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0)
    throw invalid(`${what} must be a number of seconds (0 or absent: no expiry)`);
  return Math.ceil(seconds * 1000);
}

const OPERATIONS = new Map<string, "get" | "set" | "delete" | "testAndSet">([
  ["get", "get"],
  ["set", "set"],
  ["delete", "delete"],
  ["testandset", "testAndSet"],
  ["test-and-set", "testAndSet"],
]);

/** The fields each operation may have besides `op` and `key`. */
const OPERATION_FIELDS = {
  get: [],
  delete: [],
  set: ["value", "expirationTtl"],
  testAndSet: ["oldValue", "newValue", "expirationTtl"],
} as const;

/** Checks a whole batch before any of it runs; `INVALID_ARGUMENT` naming the first bad operation. */
function checkOperations(
  operations: unknown,
): { kind: keyof typeof OPERATION_FIELDS; op: GliaOperation }[] {
  if (!Array.isArray(operations)) throw invalid("operations must be an array");
  return operations.map((op, i) => {
    if (op === null || typeof op !== "object" || Array.isArray(op))
      throw invalid(`operations[${i}] must be an object`);
    const o = op as Record<string, unknown>;
    const kind = typeof o.op === "string" ? OPERATIONS.get(o.op.toLowerCase()) : undefined;
    if (kind === undefined) {
      const shown = typeof o.op === "string" ? o.op : `a value of type ${typeof o.op}`;
      throw invalid(`Invalid operation: ${shown} (operations[${i}])`);
    }
    checkKey(o.key, `operations[${i}].key`);
    const allowed: readonly string[] = ["op", "key", ...OPERATION_FIELDS[kind]];
    const extra = Object.keys(o).find((field) => !allowed.includes(field));
    if (extra !== undefined)
      throw invalid(`operations[${i}] (${kind}) has a field it does not take: ${extra}`);
    if (kind === "set" && o.value === undefined) throw invalid(`operations[${i}] needs a value`);
    if (kind === "testAndSet" && (o.oldValue === undefined || o.newValue === undefined))
      throw invalid(`operations[${i}] needs oldValue and newValue`);
    ttlMs(o.expirationTtl, `operations[${i}].expirationTtl`);
    // A value that cannot be stored refuses the batch before any of it runs.
    const written = kind === "set" ? o.value : kind === "testAndSet" ? o.newValue : null;
    if (written !== null && written !== undefined)
      encodeValueChecked({ value: written, expires: 0 });
    return { kind, op: o as unknown as GliaOperation };
  });
}

export class GliaKvStore {
  readonly #prefix: KvKey;

  constructor(
    private readonly database: () => Database,
    readonly namespace: string,
  ) {
    this.#prefix = ["glia", checkNamespace(namespace)];
  }

  #keyOf(key: unknown): Uint8Array {
    return encodeWriteKey([...this.#prefix, checkKey(key)]);
  }

  /** The item at `key`, and its entry (for a checked commit); `null` when absent or expired. */
  async #read(key: Uint8Array, name: string): Promise<{ item: GliaItem; entry: RawEntry } | null> {
    const [entry] = await this.database().get([key]);
    if (!entry) return null;
    return { item: itemOf(name, decodeValue(entry)), entry };
  }

  async get<T = unknown>(key: string): Promise<GliaItem<T> | null> {
    const read = await this.#read(this.#keyOf(key), key);
    return (read?.item as GliaItem<T> | undefined) ?? null;
  }

  /** Writes `value` (for `expirationTtl` seconds, if given); `value: null` deletes the key. */
  async set<T = unknown>(item: {
    key: string;
    value: T;
    expirationTtl?: number;
  }): Promise<GliaItem<T> | { key: string; value: null }> {
    const key = this.#keyOf(item?.key);
    if (item.value === undefined) throw invalid("value is required (null deletes the key)");
    if (item.value === null) {
      await this.#commit([], [{ type: "delete", key }]);
      return { key: item.key, value: null };
    }
    const { mutation, written } = setOf(key, item.key, item.value, ttlMs(item.expirationTtl));
    await this.#commit([], [mutation]);
    return written as GliaItem<T>;
  }

  async delete(key: string): Promise<{ key: string; deleted: true }> {
    await this.#commit([], [{ type: "delete", key: this.#keyOf(key) }]);
    return { key, deleted: true };
  }

  /**
   * Writes `newValue` (`null`: deletes) if the key's value deep-equals `oldValue` (`null`: the key
   * is absent), in one checked commit: of concurrent callers expecting one value, one wins.
   */
  async testAndSet<T = unknown>(request: {
    key: string;
    oldValue: unknown;
    newValue: T;
    expirationTtl?: number;
  }): Promise<GliaTestAndSetResult> {
    if (request === null || typeof request !== "object")
      throw invalid("testAndSet takes { key, oldValue, newValue, expirationTtl? }");
    const { key: name, oldValue, newValue } = request;
    const key = this.#keyOf(name);
    if (oldValue === undefined || newValue === undefined)
      throw invalid("oldValue and newValue are required (null: absent)");
    const expireIn = ttlMs(request.expirationTtl);
    for (let attempt = 0; attempt < TEST_AND_SET_ATTEMPTS; attempt++) {
      const read = await this.#read(key, name);
      const met =
        oldValue === null
          ? read === null
          : read !== null && isDeepStrictEqual(read.item.value, oldValue);
      if (!met) return { key: name, value: null, expires: null, conditionMet: false };
      const check = { key, versionstamp: read?.entry.versionstamp ?? null };
      if (newValue === null) {
        if (await this.#commit([check], [{ type: "delete", key }]))
          return { key: name, value: null, expires: null, conditionMet: true };
        continue;
      }
      const { mutation, written } = setOf(key, name, newValue, expireIn);
      if (await this.#commit([check], [mutation])) return { ...written, conditionMet: true };
    }
    throw new KvError(
      "UNAVAILABLE",
      `The key ${name} kept changing: test-and-set gave up, try again`,
    );
  }

  /**
   * Runs `operations` in order, each on its own (not atomic), after checking them all: a bad one
   * rejects the whole batch (`INVALID_ARGUMENT`) before any runs. Results in order: a get's item
   * or null; set, delete and testAndSet as those methods answer.
   */
  async processBatchOperations(operations: readonly GliaOperation[]): Promise<unknown[]> {
    const checked = checkOperations(operations);
    const results: unknown[] = [];
    for (const { kind, op } of checked) {
      const ttl = { expirationTtl: op.expirationTtl };
      if (kind === "get") results.push(await this.get(op.key));
      else if (kind === "set")
        results.push(await this.set({ key: op.key, value: op.value, ...ttl }));
      else if (kind === "delete") results.push(await this.delete(op.key));
      else
        results.push(
          await this.testAndSet({ ...op, oldValue: op.oldValue, newValue: op.newValue, ...ttl }),
        );
    }
    return results;
  }

  /** Every item whose key starts with `prefix` (a string prefix), in key order, read page by page. */
  async *itemsAsyncIterator<T = unknown>(
    options: { prefix?: string } | null = {},
  ): AsyncGenerator<GliaItem<T>> {
    const prefix = options?.prefix ?? "";
    if (typeof prefix !== "string") throw invalid("prefix must be a string");
    for await (const { name, value } of stringPrefixed(this.database, this.#prefix, prefix)) {
      yield itemOf(name, value) as GliaItem<T>;
    }
  }

  /** Commits; resolves whether the checks held. */
  async #commit(
    checks: { key: Uint8Array; versionstamp: string | null }[],
    mutations: Mutation[],
  ): Promise<boolean> {
    return (await this.database().commit(checkCommit({ checks, mutations }))).ok;
  }
}

function itemOf(key: string, stored: unknown): GliaItem {
  const { value, expires } = stored as { value: unknown; expires: number | null };
  return { key, value, expires };
}

/** The mutation writing `value` at `key` (named `name`), and the item it writes. */
function setOf(key: Uint8Array, name: string, value: unknown, expireIn: number | undefined) {
  const expires = expireIn === undefined ? null : Date.now() + expireIn;
  const mutation: Mutation = {
    type: "set",
    key,
    value: encodeValueChecked({ value, expires }),
    ...(expireIn === undefined ? {} : { expireIn }),
  };
  return { mutation, written: { key: name, value, expires } };
}

/**
 * Glia Functions' `kvStoreFactory` over `kv` (embedded or remote): function code written for
 * Glia runs on Cairn with it, e.g. `onInvoke(request, env, gliaKvStoreFactory(kv))`.
 */
export function gliaKvStoreFactory(kv: Kv): { initializeKvStore(namespace: string): GliaKvStore } {
  const database = databaseOf(kv);
  return { initializeKvStore: (namespace) => new GliaKvStore(database, namespace) };
}
