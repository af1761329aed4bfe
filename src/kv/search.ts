/**
 * Full-text search in the SDK: checks of index definitions and searches (once, here, for the SDK
 * and the faces), and the results object `kv.search` returns.
 */
import { decodeKey, encodeReadKey, type KvKey } from "../codec/key-codec.js";
import type {
  Database,
  RawEntry,
  SearchIndex,
  SearchRequest,
  Tokenizer,
} from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { searchIndexOf } from "../protocol/search-query.js";
import { formatPath, type KvWhere } from "../protocol/where-filter.js";
import { toEntry } from "./kv-list-iterator.js";
import type { KvEntry } from "./types.js";

export type KvTokenizer = Tokenizer;

export interface KvIndexOptions {
  /**
   * The fields whose text is indexed: names separated by dots, array indexes in brackets
   * (`"title"`, `"author.name"`, `"tags[0]"`); 1 to 32.
   */
  readonly fields: readonly string[];
  /** `"unicode61"` (default), `"porter"` (English stemming) or `"ascii"`; see the README. */
  readonly tokenize?: KvTokenizer;
}

export interface KvIndex {
  readonly prefix: KvKey;
  readonly fields: string[];
  readonly tokenize: KvTokenizer;
}

export interface KvSearchOptions {
  /** At most this many entries: 1 to 1000, default 100. */
  readonly limit?: number;
  /** Only entries whose value also matches this where filter (see the README's filter table). */
  readonly where?: KvWhere;
}

/** An index's or search's prefix, encoded. */
export function prefixOf(prefix: unknown): Uint8Array {
  if (!Array.isArray(prefix))
    throw new KvError("INVALID_KEY", "The prefix must be a key (an array)");
  return encodeReadKey(prefix as KvKey);
}

export function indexToKv(index: SearchIndex): KvIndex {
  return {
    prefix: decodeKey(index.prefix),
    fields: index.fields.map(formatPath),
    tokenize: index.tokenize,
  };
}

/** Creates (or replaces) the full-text index on `prefix` (`Kv.createIndex`). */
export async function createIndex(
  database: Database,
  prefix: KvKey,
  options: KvIndexOptions,
): Promise<{ ok: true }> {
  await database.createIndex(searchIndexOf(prefixOf(prefix), options));
  return { ok: true };
}

/** Every full-text index, in prefix order. */
export async function listIndexes(database: Database): Promise<KvIndex[]> {
  return (await database.listIndexes()).map(indexToKv);
}

/** Removes the index on exactly `prefix`; resolves whether there was one. */
export function removeIndex(database: Database, prefix: KvKey): Promise<boolean> {
  return database.removeIndex(prefixOf(prefix));
}

/** Runs a search, naming the prefix when it has no index. */
export async function search(
  database: Database,
  prefix: KvKey,
  request: SearchRequest,
): Promise<RawEntry[]> {
  try {
    return await database.search(request);
  } catch (e) {
    if (e instanceof KvError && e.code === "NOT_FOUND") {
      throw new KvError(
        "NOT_FOUND",
        `No search index on the prefix ${JSON.stringify(prefix, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}: create one with createIndex`,
      );
    }
    throw e;
  }
}

/**
 * What `kv.search` returns: iterate it (`for await`), or await it for an array. The search runs
 * once, when first iterated or awaited.
 */
export class KvSearchResults<T = unknown>
  implements AsyncIterable<KvEntry<T>>, PromiseLike<KvEntry<T>[]>
{
  readonly #run: () => Promise<KvEntry<T>[]>;
  #results: Promise<KvEntry<T>[]> | undefined;

  constructor(run: () => Promise<RawEntry[]>) {
    this.#run = async () => (await run()).map((raw) => toEntry<T>(raw));
  }

  #entries(): Promise<KvEntry<T>[]> {
    this.#results ??= this.#run();
    return this.#results;
  }

  // biome-ignore lint/suspicious/noThenProperty: awaiting the results is part of the API
  then<A = KvEntry<T>[], B = never>(
    onFulfilled?: ((entries: KvEntry<T>[]) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#entries().then(onFulfilled, onRejected);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<KvEntry<T>> {
    yield* await this.#entries();
  }
}
