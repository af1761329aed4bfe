import { matchesAll } from "../backends/filter.js";
import {
  concatBytes,
  decodeKey,
  encodeReadKey,
  hasPrefix,
  type KvKey,
} from "../codec/key-codec.js";
import { decodeValue } from "../codec/value-codec.js";
import type { Database, Filter, RawEntry } from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { type KvWhere, parseWhere } from "../protocol/where-filter.js";
import type { KvEntry } from "./types.js";

/**
 * Deno's list selectors: `{ prefix }` lists the keys under `prefix` (not `prefix` itself);
 * `{ prefix, start }` / `{ prefix, end }` narrow that from `start` (inclusive) or to `end`
 * (exclusive); `{ start, end }` lists `[start, end)`.
 */
export type KvListSelector =
  | { readonly prefix: KvKey }
  | { readonly prefix: KvKey; readonly start: KvKey }
  | { readonly prefix: KvKey; readonly end: KvKey }
  | { readonly start: KvKey; readonly end: KvKey };

export interface KvListOptions {
  /** Stop after this many entries (default: all). */
  readonly limit?: number;
  /** Resume after the entry a previous iterator's `cursor` pointed at. */
  readonly cursor?: string;
  /** Descending key order. */
  readonly reverse?: boolean;
  /** Entries fetched per round trip: default `limit` capped at 500, else 100; at most 1000. */
  readonly batchSize?: number;
  /** Accepted for Deno compatibility; every read is strongly consistent. */
  readonly consistency?: "strong" | "eventual";
  /**
   * Only entries whose value matches, evaluated inside the database (see the README's filter
   * table); `limit` counts matching entries. `INVALID_FILTER` when malformed.
   */
  readonly where?: KvWhere;
}

/** The seed's form: `list(prefix, { start, end, ... })`, start inclusive and end exclusive, both within `prefix`. */
export interface KvPrefixListOptions extends KvListOptions {
  readonly start?: KvKey;
  readonly end?: KvKey;
}

const FF = [0xff];
const ZERO = [0x00];

function max(a: Uint8Array, b: Uint8Array): Uint8Array {
  return Buffer.compare(a, b) >= 0 ? a : b;
}
function min(a: Uint8Array, b: Uint8Array): Uint8Array {
  return Buffer.compare(a, b) <= 0 ? a : b;
}

function commonPrefixLength(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function invalid(message: string): KvError {
  return new KvError("INVALID_SELECTOR", message);
}

/** A byte range and the prefix its cursors are relative to. */
export interface Span {
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly cursorBase: Uint8Array;
  /** The key parts `cursorBase` encodes, when it is a whole key (a prefix): entries decode only their rest. */
  readonly prefix?: KvKey;
}

function spanOfSelector(selector: KvListSelector): Span {
  if (selector === null || typeof selector !== "object") {
    throw invalid("Selector must specify either 'prefix' or both 'start' and 'end' key");
  }
  const s = selector as { prefix?: KvKey; start?: KvKey; end?: KvKey };
  if (s.prefix !== undefined) {
    const prefix = encodeReadKey(s.prefix);
    const inPrefix = (key: KvKey, which: "Start" | "End") => {
      const bytes = encodeReadKey(key);
      if (!hasPrefix(bytes, prefix) || bytes.length === prefix.length) {
        throw invalid(`${which} key is not in the keyspace defined by prefix`);
      }
      return bytes;
    };
    if (s.start !== undefined && s.end !== undefined) {
      throw invalid("Selector can not specify both 'start' and 'end' key when specifying 'prefix'");
    }
    return {
      start: s.start !== undefined ? inPrefix(s.start, "Start") : concatBytes(prefix, ZERO),
      end: s.end !== undefined ? inPrefix(s.end, "End") : concatBytes(prefix, FF),
      cursorBase: prefix,
      prefix: s.prefix,
    };
  }
  if (s.start === undefined || s.end === undefined) {
    throw invalid("Selector must specify either 'prefix' or both 'start' and 'end' key");
  }
  const start = encodeReadKey(s.start);
  const end = encodeReadKey(s.end);
  if (Buffer.compare(start, end) > 0) throw invalid("Start key is greater than end key");
  return { start, end, cursorBase: start.subarray(0, commonPrefixLength(start, end)) };
}

/** The seed's `list(prefix, { start, end })`: the prefix range narrowed to `[start, end)`. */
export function spanOfPrefix(prefixKey: KvKey, options: KvPrefixListOptions): Span {
  const prefix = encodeReadKey(prefixKey);
  let start = concatBytes(prefix, ZERO);
  let end = concatBytes(prefix, FF);
  if (options.start !== undefined) start = max(start, encodeReadKey(options.start));
  if (options.end !== undefined) end = min(end, encodeReadKey(options.end));
  return { start, end, cursorBase: prefix, prefix: prefixKey };
}

function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64").replaceAll("+", "-").replaceAll("/", "_");
}

function fromBase64Url(cursor: string): Uint8Array {
  if (typeof cursor !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(cursor)) {
    throw new KvError(
      "INVALID_CURSOR",
      "invalid cursor: a cursor is the base64url string an iterator's `cursor` returned",
    );
  }
  return new Uint8Array(Buffer.from(cursor, "base64url"));
}

/**
 * `span` narrowed to resume after the entry `cursor` names, in the direction of the listing.
 * `INVALID_CURSOR` unless the cursor names a key inside `span`: one this listing returned.
 */
function resumeSpan(
  span: Span,
  cursor: string,
  reverse: boolean,
): { start: Uint8Array; end: Uint8Array } {
  const at = concatBytes(span.cursorBase, fromBase64Url(cursor));
  const start = reverse ? span.start : concatBytes(at, ZERO);
  const end = reverse ? at : span.end;
  if (Buffer.compare(start, span.start) < 0 || Buffer.compare(end, span.end) > 0) {
    throw new KvError("INVALID_CURSOR", "cursor out of bounds");
  }
  try {
    decodeKey(at);
  } catch {
    throw new KvError(
      "INVALID_CURSOR",
      "invalid cursor: it does not name a key; a cursor is the string a previous page or iterator returned",
    );
  }
  return { start, end };
}

/** The filter tree of an optional `where`; `undefined` when absent or matching everything. */
export function filterOf(where: unknown): Filter | undefined {
  if (where === undefined) return undefined;
  const filter = parseWhere(where);
  return matchesAll(filter) ? undefined : filter;
}

function positiveInteger(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `${name} must be a positive integer: received ${String(value)}`,
    );
  }
  return value;
}

/** Builds the iterator for either form of `list`. */
export function listIterator<T>(
  database: () => Database,
  selector: KvListSelector | KvKey,
  options: KvPrefixListOptions = {},
): KvListIterator<T> {
  const span = Array.isArray(selector)
    ? spanOfPrefix(selector as KvKey, options)
    : spanOfSelector(selector as KvListSelector);
  const limit = positiveInteger(options.limit, "limit");
  let batchSize = positiveInteger(options.batchSize, "batchSize");
  if (batchSize === undefined)
    batchSize = Math.min(limit ?? limits.defaultListBatch, limits.maxDerivedListBatch);
  if (batchSize > limits.maxReadEntries) {
    throw new KvError("INVALID_ARGUMENT", `Too many entries (max ${limits.maxReadEntries})`);
  }
  return new KvListIterator<T>(
    database,
    span,
    options.reverse === true,
    limit,
    batchSize,
    options.cursor,
    filterOf(options.where),
  );
}

/**
 * The entries under `base` whose next key part is a string starting with `prefix` (a string
 * prefix, not a key prefix: `"user"` matches `"user1"`), in key order, with that part as `name`.
 * Such keys are contiguous: the list starts at the first and ends at the first that does not match.
 */
export async function* stringPrefixed<T>(
  database: () => Database,
  base: KvKey,
  prefix: string,
): AsyncGenerator<{ readonly name: string; readonly value: T }> {
  const start = prefix === "" ? {} : { start: [...base, prefix] };
  for await (const entry of listIterator<T>(database, base, start)) {
    const name = entry.key[base.length];
    if (typeof name !== "string" || !name.startsWith(prefix)) return;
    yield { name, value: entry.value };
  }
}

export interface KvPaginateOptions {
  /** Entries per page: default 100, at most 1000. */
  readonly limit?: number;
  /** The `cursor` of the previous page: this page starts after its last entry. */
  readonly cursor?: string | null;
  readonly reverse?: boolean;
  /** Only entries whose value matches (see `list`); `limit` counts matching entries. */
  readonly where?: KvWhere;
  /** Narrow the prefix: from `start` (inclusive) to `end` (exclusive), as in `list`. */
  readonly start?: KvKey;
  readonly end?: KvKey;
}

/** One page of a prefix; `cursor` resumes after its last entry and is `null` on the last page. */
export interface KvPage<T = unknown> {
  readonly entries: KvEntry<T>[];
  readonly cursor: string | null;
  readonly hasMore: boolean;
}

/** How many live keys are under `prefix`, within `[start, end)`, matching `where` (`Kv.count`). */
export async function countKeys(
  database: Database,
  prefix: KvKey,
  options: { where?: KvWhere; start?: KvKey; end?: KvKey } = {},
): Promise<number> {
  const span = spanOfPrefix(prefix, options);
  const filter = filterOf(options.where);
  if (Buffer.compare(span.start, span.end) >= 0) return 0;
  return database.count({ start: span.start, end: span.end, filter });
}

/** The seed's cursor pagination over a prefix (see `Kv.paginate`). */
export async function paginate<T>(
  database: Database,
  prefix: KvKey,
  options: KvPaginateOptions,
): Promise<KvPage<T>> {
  const span = spanOfPrefix(prefix, { start: options.start, end: options.end });
  const limit = positiveInteger(options.limit, "limit") ?? limits.defaultPageSize;
  if (limit > limits.maxPageSize) {
    throw new KvError("INVALID_ARGUMENT", `limit must be at most ${limits.maxPageSize}`);
  }
  const filter = filterOf(options.where);
  const reverse = options.reverse === true;
  const { start, end } =
    options.cursor !== undefined && options.cursor !== null && options.cursor !== ""
      ? resumeSpan(span, options.cursor, reverse)
      : span;
  const read = async (from: Uint8Array, to: Uint8Array, n: number) =>
    Buffer.compare(from, to) >= 0
      ? []
      : (await database.scan([{ start: from, end: to, limit: n, reverse, filter }]))[0]!;
  // One more entry than the page tells whether there is a next page; past the per-read maximum,
  // a second read of one entry after the page does.
  const rows = await read(start, end, Math.min(limit + 1, limits.maxReadEntries));
  let hasMore = rows.length > limit;
  const page = rows.slice(0, limit);
  if (!hasMore && page.length === limit && page.length > 0) {
    const last = page[page.length - 1]!.key;
    const next = reverse ? await read(start, last, 1) : await read(concatBytes(last, ZERO), end, 1);
    hasMore = next.length > 0;
  }
  const entries = page.map((raw) => toEntry<T>(raw));
  const last = page[page.length - 1];
  return {
    entries,
    cursor: hasMore && last ? toBase64Url(last.key.subarray(span.cursorBase.length)) : null,
    hasMore,
  };
}

/**
 * An async iterator over list results, fetched in batches; each batch is a consistent snapshot.
 * `cursor` resumes the listing after the last yielded entry (Deno's format).
 */
export class KvListIterator<T = unknown> implements AsyncIterableIterator<KvEntry<T>> {
  readonly #database: () => Database;
  readonly #span: Span;
  readonly #reverse: boolean;
  readonly #batchSize: number;
  #start: Uint8Array;
  #end: Uint8Array;
  #remaining: number;
  #batch: RawEntry[] = [];
  #lastBatch = false;
  /** The key of the last yielded entry. */
  #last: Uint8Array | undefined;
  #exhausted = false;
  readonly #initialCursor: string | undefined;
  readonly #filter: Filter | undefined;

  /** @internal Use `kv.list()`. */
  constructor(
    database: () => Database,
    span: Span,
    reverse: boolean,
    limit: number | undefined,
    batchSize: number,
    cursor: string | undefined,
    filter: Filter | undefined,
  ) {
    this.#database = database;
    this.#filter = filter;
    this.#span = span;
    this.#reverse = reverse;
    this.#batchSize = batchSize;
    this.#remaining = limit ?? Number.POSITIVE_INFINITY;
    this.#start = span.start;
    this.#end = span.end;
    this.#initialCursor = cursor;
    if (cursor !== undefined)
      ({ start: this.#start, end: this.#end } = resumeSpan(span, cursor, reverse));
  }

  /** Resumes after the last yielded entry; `""` once exhausted. Throws before the first `next()`. */
  get cursor(): string {
    if (this.#exhausted) return "";
    if (this.#last) return toBase64Url(this.#last.subarray(this.#span.cursorBase.length));
    if (this.#initialCursor !== undefined) return this.#initialCursor;
    throw new KvError("INVALID_CURSOR", "Cannot get cursor before first iteration");
  }

  async next(): Promise<IteratorResult<KvEntry<T>, undefined>> {
    if (this.#remaining <= 0) return { done: true, value: undefined };
    if (this.#batch.length === 0 && !this.#lastBatch) await this.#fetch();
    const raw = this.#batch.pop();
    if (raw === undefined) {
      this.#remaining = 0;
      this.#exhausted = true;
      return { done: true, value: undefined };
    }
    this.#last = raw.key;
    this.#remaining--;
    return { done: false, value: this.#toEntry(raw) };
  }

  async #fetch(): Promise<void> {
    if (this.#last) {
      if (this.#reverse) this.#end = this.#last;
      else this.#start = concatBytes(this.#last, ZERO);
    }
    if (Buffer.compare(this.#start, this.#end) >= 0) {
      this.#lastBatch = true;
      return;
    }
    const limit = Math.min(this.#batchSize, this.#remaining);
    const [batch] = await this.#database().scan([
      { start: this.#start, end: this.#end, limit, reverse: this.#reverse, filter: this.#filter },
    ]);
    this.#batch = batch!.reverse(); // popped from the end
    if (this.#batch.length < limit) this.#lastBatch = true;
  }

  #toEntry(raw: RawEntry): KvEntry<T> {
    const { prefix, cursorBase } = this.#span;
    if (prefix === undefined) return toEntry<T>(raw);
    const key = [...prefix, ...decodeKey(raw.key.subarray(cursorBase.length))];
    return { key, value: decodeValue(raw) as T, versionstamp: raw.versionstamp };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export function toEntry<T>(raw: RawEntry): KvEntry<T> {
  return { key: decodeKey(raw.key), value: decodeValue(raw) as T, versionstamp: raw.versionstamp };
}
