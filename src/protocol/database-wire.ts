/**
 * The wire form of the `Database` interface, which the remote SDK speaks to a Cairn server:
 * JSON bodies with keys and non-JSON values in base64. `POST <base>/db/get | scan | commit`:
 *
 *   get     { keys: Key[] }                       → { entries: (Entry | null)[] }
 *   scan    { ranges: { start, end, limit, reverse, where? }[] } → { ranges: Entry[][] }
 *   count   { start, end, where? }                 → { count }
 *   commit  { checks: { key, versionstamp }[], mutations: Mutation[], filters?: Where[] }
 *                                                 → { ok: true, versionstamp, deletedCount } | { ok: false }
 *
 * The change feed is in feed-wire.ts, the queue in queue-wire.ts, full-text search in
 * search-wire.ts; the values, keys and checks they share are here.
 *
 * Key: an encoded key in base64. Value: `{ encoding, data }`, `data` being the JSON text for the
 * JSON encoding (4) and base64 bytes otherwise. Entry: `{ key, versionstamp, encoding, data }`.
 * Mutation: `{ type, key, value?, expireIn?, suffixVersionstamp?, resolveNow? }`, for a bounded
 * sum also `bounds: { min?: Value, max?: Value, clamp }`, `{ type: "delete", key, filter? }` or
 * `{ type: "deleteRange", start, end, filter? }`, `filter` being an index into the commit's
 * `filters` (a batch delete sends its one filter once). A `where` / `Where` is a where filter in
 * the SDK's syntax (protocol/where-filter.ts), validated again by the server. Decoding validates
 * everything a client could get wrong, with `KvError`s.
 */
import { checkKeySize, decodeKey, VERSIONSTAMP_PART_BYTES } from "../codec/key-codec.js";
import {
  decodeValue,
  type EncodedValue,
  encodedSize,
  encodeValue,
  ValueEncoding,
} from "../codec/value-codec.js";
import { isVersionstamp } from "../codec/versionstamp.js";
import type {
  Check,
  Commit,
  CountRange,
  Filter,
  KeyRange,
  Mutation,
  RawEntry,
} from "../engine/database.js";
import { assertEnqueueLimits } from "../engine/enqueue-limits.js";
import { sumBounds } from "../engine/mutations.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { filterToWhere, parseWhere, show } from "./where-filter.js";

export interface WireValue {
  encoding: number;
  data: string;
}
export interface WireEntry extends WireValue {
  key: string;
  versionstamp: string;
}

export const b64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
export const unb64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

export function invalid(message: string): KvError {
  return new KvError("INVALID_ARGUMENT", message);
}

export function object(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw invalid(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

export function array(value: unknown, what: string, max: number, tooMany: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(`${what} must be an array`);
  if (value.length > max) throw new KvError("INVALID_ARGUMENT", tooMany);
  return value;
}

// ---- values and entries (both directions) ----

export function valueToWire(v: EncodedValue): WireValue {
  return { encoding: v.encoding, data: v.encoding === ValueEncoding.JSON ? v.data : b64(v.data) };
}

export function entryToWire(e: RawEntry): WireEntry {
  return { key: b64(e.key), versionstamp: e.versionstamp, ...valueToWire(e) };
}

/** Decodes an entry the server sent (trusted). */
export function entryFromWire(w: WireEntry): RawEntry {
  const data = w.encoding === ValueEncoding.JSON ? w.data : unb64(w.data);
  return {
    key: unb64(w.key),
    versionstamp: w.versionstamp,
    encoding: w.encoding,
    data,
  } as RawEntry;
}

// ---- requests: encoding on the client ----

export const keysToWire = (keys: readonly Uint8Array[]) => ({ keys: keys.map(b64) });

export const whereToWire = (filter: Filter | undefined) =>
  filter === undefined ? undefined : filterToWhere(filter);

export const rangesToWire = (ranges: readonly KeyRange[]) => ({
  ranges: ranges.map((r) => ({
    start: b64(r.start),
    end: b64(r.end),
    limit: r.limit,
    reverse: r.reverse,
    where: whereToWire(r.filter),
  })),
});

export const countToWire = (range: CountRange) => ({
  start: b64(range.start),
  end: b64(range.end),
  where: whereToWire(range.filter),
});

export function commitToWire(commit: Commit): unknown {
  const filters = new Map<Filter, number>();
  const filterIndex = (filter: Filter | undefined) => {
    if (filter === undefined) return undefined;
    if (!filters.has(filter)) filters.set(filter, filters.size);
    return filters.get(filter);
  };
  const mutations = commit.mutations.map((m) => {
    switch (m.type) {
      case "deleteRange":
        return {
          type: m.type,
          start: b64(m.start),
          end: b64(m.end),
          filter: filterIndex(m.filter),
        };
      case "delete":
        return { type: m.type, key: b64(m.key), filter: filterIndex(m.filter) };
      case "set":
        return {
          type: m.type,
          key: b64(m.key),
          value: valueToWire(m.value),
          expireIn: m.expireIn,
          suffixVersionstamp: m.suffixVersionstamp,
          resolveNow: m.resolveNow,
        };
      case "enqueue":
        return {
          ...m,
          value: valueToWire(m.value),
          keysIfUndelivered: m.keysIfUndelivered.map(b64),
        };
      case "settle":
      case "release":
      case "renewLease":
      case "requeue":
      case "deleteDeadLetter":
        return m;
      case "sum": {
        const { bounds } = m;
        const bound = (b: number | bigint | undefined) =>
          b === undefined ? undefined : valueToWire(encodeValue(b));
        return {
          type: m.type,
          key: b64(m.key),
          value: valueToWire(m.value),
          bounds: bounds && { min: bound(bounds.min), max: bound(bounds.max), clamp: bounds.clamp },
        };
      }
      default:
        return { type: m.type, key: b64(m.key), value: valueToWire(m.value) };
    }
  });
  return {
    checks: commit.checks.map((c) => ({ key: b64(c.key), versionstamp: c.versionstamp })),
    mutations,
    filters: filters.size === 0 ? undefined : [...filters.keys()].map(filterToWhere),
  };
}

// ---- requests: validating decoding on the server ----

/** A base64 encoded key that decodes to a valid key within the size limits of `access`. */
export function keyFromWire(
  value: unknown,
  what: string,
  access: "read" | "write",
  reserve = 0,
): Uint8Array {
  if (typeof value !== "string") throw invalid(`${what} must be a base64 string`);
  const bytes = checkKeySize(unb64(value), access, reserve);
  decodeKey(bytes); // throws INVALID_KEY on bytes no key encodes to
  return bytes;
}

/** A range bound: a key, or a key followed by one 0x00 or 0xFF byte. */
export function boundFromWire(value: unknown, what: string): Uint8Array {
  if (typeof value !== "string") throw invalid(`${what} must be a base64 string`);
  return checkKeySize(unb64(value), "read");
}

function valueFromWire(value: unknown): EncodedValue {
  const v = object(value, "value");
  const { encoding, data } = v;
  if (typeof data !== "string") throw invalid("value.data must be a string");
  let encoded: EncodedValue;
  switch (encoding) {
    case ValueEncoding.JSON: {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        throw new KvError("INVALID_VALUE", "value.data is not valid JSON text");
      }
      // Stored JSON text is always JSON.stringify's (see backend.ts): re-encode what was sent.
      encoded = encodeValue(parsed);
      break;
    }
    case ValueEncoding.V8:
    case ValueEncoding.BYTES:
    case ValueEncoding.LE64:
      encoded = { encoding, data: unb64(data) };
      if (encoding === ValueEncoding.LE64 && encoded.data.length !== 8) {
        throw new KvError("INVALID_VALUE", "A KvU64 value must be exactly 8 bytes");
      }
      break;
    default:
      throw new KvError("INVALID_VALUE", `The value encoding ${show(encoding)} is unknown`);
  }
  if (encodedSize(encoded) > limits.maxValueBytes) {
    throw new KvError("VALUE_TOO_LARGE", `Value too large (max ${limits.maxValueBytes} bytes)`);
  }
  return encoded;
}

/** An optional `where` filter; `what` names it in messages. */
function filterFromWire(value: unknown, what: string): Filter | undefined {
  return value === undefined || value === null ? undefined : parseWhere(value, what);
}

export function keysFromWire(body: unknown): Uint8Array[] {
  const keys = array(
    object(body, "body").keys,
    "keys",
    limits.maxBatchKeys,
    `Too many keys (max ${limits.maxBatchKeys})`,
  );
  return keys.map((k, i) => keyFromWire(k, `keys[${i}]`, "read"));
}

export function rangesFromWire(body: unknown): KeyRange[] {
  const ranges = array(
    object(body, "body").ranges,
    "ranges",
    limits.maxReadRanges,
    `Too many ranges (max ${limits.maxReadRanges})`,
  );
  let entries = 0;
  const decoded = ranges.map((r, i) => {
    const range = object(r, `ranges[${i}]`);
    const { limit, reverse } = range;
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) {
      throw invalid(`ranges[${i}].limit must be a positive integer`);
    }
    entries += limit;
    return {
      start: boundFromWire(range.start, `ranges[${i}].start`),
      end: boundFromWire(range.end, `ranges[${i}].end`),
      limit,
      reverse: reverse === true,
      filter: filterFromWire(range.where, `ranges[${i}].where`),
    };
  });
  if (entries > limits.maxReadEntries) {
    throw new KvError("INVALID_ARGUMENT", `Too many entries (max ${limits.maxReadEntries})`);
  }
  return decoded;
}

export function countFromWire(body: unknown): CountRange {
  const b = object(body, "body");
  return {
    start: boundFromWire(b.start, "start"),
    end: boundFromWire(b.end, "end"),
    filter: filterFromWire(b.where, "where"),
  };
}

function filterAt(filters: readonly Filter[], index: unknown, i: number): Filter | undefined {
  if (index === undefined || index === null) return undefined;
  if (typeof index !== "number" || !Number.isInteger(index) || filters[index] === undefined) {
    throw invalid(`mutations[${i}].filter must be the index of one of the commit's filters`);
  }
  return filters[index];
}

/** The commit's `filters`, each validated once. */
function filtersFromWire(value: unknown): Filter[] {
  if (value === undefined || value === null) return [];
  return array(value, "filters", limits.maxMutations, "Too many filters").map((where, i) =>
    parseWhere(where, `filters[${i}]`),
  );
}

export function mutationFromWire(
  value: unknown,
  i: number,
  filters: readonly Filter[] = [],
): Mutation {
  const m = object(value, `mutations[${i}]`);
  const what = `mutations[${i}].key`;
  switch (m.type) {
    case "set": {
      const { expireIn } = m;
      if (
        expireIn !== undefined &&
        (typeof expireIn !== "number" || !Number.isFinite(expireIn) || expireIn < 0)
      ) {
        throw invalid(`mutations[${i}].expireIn must be a non-negative number of milliseconds`);
      }
      return {
        type: "set",
        key: keyFromWire(
          m.key,
          what,
          "write",
          m.suffixVersionstamp === true ? VERSIONSTAMP_PART_BYTES : 0,
        ),
        value: valueFromWire(m.value),
        expireIn: expireIn as number | undefined,
        suffixVersionstamp: m.suffixVersionstamp === true,
        resolveNow: m.resolveNow === true,
      };
    }
    case "delete":
      return {
        type: "delete",
        key: keyFromWire(m.key, what, "write"),
        filter: filterAt(filters, m.filter, i),
      };
    case "deleteRange":
      return {
        type: "deleteRange",
        start: boundFromWire(m.start, `mutations[${i}].start`),
        end: boundFromWire(m.end, `mutations[${i}].end`),
        filter: filterAt(filters, m.filter, i),
      };
    case "sum": {
      const value = valueFromWire(m.value);
      if (m.bounds === undefined)
        return { type: "sum", key: keyFromWire(m.key, what, "write"), value };
      const b = object(m.bounds, `mutations[${i}].bounds`);
      const bound = (v: unknown) => {
        if (v === undefined) return undefined;
        const encoded = valueFromWire(v);
        try {
          return decodeValue(encoded);
        } catch {
          return encoded; // not a number or bigint: sumBounds rejects it
        }
      };
      return {
        type: "sum",
        key: keyFromWire(m.key, what, "write"),
        value,
        bounds: sumBounds(value, bound(b.min), bound(b.max), b.clamp === true),
      };
    }
    case "min":
    case "max":
    case "append":
    case "prepend":
      return {
        type: m.type,
        key: keyFromWire(m.key, what, "write"),
        value: valueFromWire(m.value),
      };
    case "enqueue": {
      const enqueue = {
        type: "enqueue",
        id: idFromWire(m.id, `mutations[${i}].id`),
        value: valueFromWire(m.value),
        delay: numberFromWire(m.delay, `mutations[${i}].delay`),
        backoffSchedule: array(
          m.backoffSchedule,
          `mutations[${i}].backoffSchedule`,
          limits.maxBackoffIntervals,
          `mutations[${i}].backoffSchedule may have at most ${limits.maxBackoffIntervals} intervals`,
        ).map((n, j) => numberFromWire(n, `mutations[${i}].backoffSchedule[${j}]`)),
        keysIfUndelivered: array(
          m.keysIfUndelivered,
          `mutations[${i}].keysIfUndelivered`,
          limits.maxKeysIfUndelivered,
          `mutations[${i}].keysIfUndelivered may have at most ${limits.maxKeysIfUndelivered} keys`,
        ).map((k, j) => keyFromWire(k, `mutations[${i}].keysIfUndelivered[${j}]`, "write")),
      } as const;
      assertEnqueueLimits(enqueue);
      return enqueue;
    }
    case "settle": {
      if (typeof m.ok !== "boolean") throw invalid(`mutations[${i}].ok must be true or false`);
      if (m.error !== undefined && typeof m.error !== "string") {
        throw invalid(`mutations[${i}].error must be a string`);
      }
      return {
        type: "settle",
        id: idFromWire(m.id, `mutations[${i}].id`),
        lease: m.lease === null ? null : idFromWire(m.lease, `mutations[${i}].lease`),
        ok: m.ok,
        ...(typeof m.error === "string" && { error: m.error.slice(0, limits.maxErrorTextLength) }),
      };
    }
    case "release":
      return {
        type: "release",
        id: idFromWire(m.id, `mutations[${i}].id`),
        lease: idFromWire(m.lease, `mutations[${i}].lease`),
      };
    case "renewLease":
      return {
        type: "renewLease",
        id: idFromWire(m.id, `mutations[${i}].id`),
        lease: idFromWire(m.lease, `mutations[${i}].lease`),
        leaseMs: leaseFromWire(m.leaseMs, `mutations[${i}].leaseMs`),
      };
    case "requeue":
      return {
        type: "requeue",
        id: idFromWire(m.id, `mutations[${i}].id`),
        newId: idFromWire(m.newId, `mutations[${i}].newId`),
      };
    case "deleteDeadLetter":
      return {
        type: "deleteDeadLetter",
        id: m.id === null ? null : idFromWire(m.id, `mutations[${i}].id`),
      };
    default:
      throw invalid(
        `mutations[${i}].type must be set, delete, deleteRange, sum, min, max, append, prepend, enqueue, settle, release, renewLease, requeue or deleteDeadLetter; got ${show(m.type)}`,
      );
  }
}

/** A message id or lease: a non-empty string of at most 128 characters. */
export function idFromWire(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 128) {
    throw invalid(`${what} must be a non-empty string of at most 128 characters`);
  }
  return value;
}

export function numberFromWire(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw invalid(`${what} must be a non-negative number of milliseconds`);
  }
  return value;
}

/** An integer from `min` to `max`; `INVALID_ARGUMENT` saying so otherwise. */
export function integerFromWire(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${what} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A lease duration: 1 ms to 1 hour. */
export const leaseFromWire = (value: unknown, what: string): number =>
  integerFromWire(value, `${what} (milliseconds)`, 1, 3_600_000);

export function commitFromWire(body: unknown): Commit {
  const b = object(body, "body");
  const checks = array(
    b.checks ?? [],
    "checks",
    limits.maxChecks,
    `Too many checks (max ${limits.maxChecks})`,
  ).map((c, i): Check => {
    const check = object(c, `checks[${i}]`);
    const { versionstamp } = check;
    if (versionstamp !== null && !isVersionstamp(versionstamp)) {
      throw invalid(`checks[${i}].versionstamp must be null or 20 lowercase hex characters`);
    }
    return {
      key: keyFromWire(check.key, `checks[${i}].key`, "read"),
      versionstamp,
    };
  });
  const filters = filtersFromWire(b.filters);
  const mutations = array(
    b.mutations ?? [],
    "mutations",
    limits.maxMutations,
    `Too many mutations (max ${limits.maxMutations})`,
  ).map((m, i) => mutationFromWire(m, i, filters));
  return { checks, mutations };
}
