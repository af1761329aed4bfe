/**
 * The wire form of the `Database` interface, which the remote SDK speaks to a Cairn server:
 * JSON bodies with keys and non-JSON values in base64. `POST <base>/db/get | scan | commit`:
 *
 *   get     { keys: Key[] }                       → { entries: (Entry | null)[] }
 *   scan    { ranges: { start, end, limit, reverse }[] } → { ranges: Entry[][] }
 *   commit  { checks: { key, versionstamp }[], mutations: Mutation[] }
 *                                                 → { ok: true, versionstamp, deletedCount } | { ok: false }
 *
 * Key: an encoded key in base64. Value: `{ encoding, data }`, `data` being the JSON text for the
 * JSON encoding (4) and base64 bytes otherwise. Entry: `{ key, versionstamp, encoding, data }`.
 * Mutation: `{ type, key, value?, expireIn?, suffixVersionstamp? }`, or `{ type: "deleteRange",
 * start, end }`. Decoding validates everything a client could get wrong, with `KvError`s.
 */
import { checkKeySize, decodeKey, VERSIONSTAMP_PART_BYTES } from "../codec/key-codec.js";
import { type EncodedValue, encodedSize, ValueEncoding } from "../codec/value-codec.js";
import { isVersionstamp } from "../codec/versionstamp.js";
import type { Check, Commit, KeyRange, Mutation, RawEntry } from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";

export interface WireValue {
  encoding: number;
  data: string;
}
export interface WireEntry extends WireValue {
  key: string;
  versionstamp: string;
}

const b64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
const unb64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

function invalid(message: string): KvError {
  return new KvError("INVALID_ARGUMENT", message);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw invalid(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function array(value: unknown, what: string, max: number, tooMany: string): unknown[] {
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

export const rangesToWire = (ranges: readonly KeyRange[]) => ({
  ranges: ranges.map((r) => ({
    start: b64(r.start),
    end: b64(r.end),
    limit: r.limit,
    reverse: r.reverse,
  })),
});

export function commitToWire(commit: Commit): unknown {
  return {
    checks: commit.checks.map((c) => ({ key: b64(c.key), versionstamp: c.versionstamp })),
    mutations: commit.mutations.map((m) => {
      switch (m.type) {
        case "deleteRange":
          return { type: m.type, start: b64(m.start), end: b64(m.end) };
        case "delete":
          return { type: m.type, key: b64(m.key) };
        case "set":
          return {
            type: m.type,
            key: b64(m.key),
            value: valueToWire(m.value),
            expireIn: m.expireIn,
            suffixVersionstamp: m.suffixVersionstamp,
          };
        default:
          return { type: m.type, key: b64(m.key), value: valueToWire(m.value) };
      }
    }),
  };
}

// ---- requests: validating decoding on the server ----

/** A base64 encoded key that decodes to a valid key within the size limits of `access`. */
function keyFromWire(
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
function boundFromWire(value: unknown, what: string): Uint8Array {
  if (typeof value !== "string") throw invalid(`${what} must be a base64 string`);
  return checkKeySize(unb64(value), "read");
}

function valueFromWire(value: unknown): EncodedValue {
  const v = object(value, "value");
  const { encoding, data } = v;
  if (typeof data !== "string") throw invalid("value.data must be a string");
  let encoded: EncodedValue;
  switch (encoding) {
    case ValueEncoding.JSON:
      try {
        JSON.parse(data);
      } catch {
        throw new KvError("INVALID_VALUE", "value.data is not valid JSON text");
      }
      encoded = { encoding, data };
      break;
    case ValueEncoding.V8:
    case ValueEncoding.BYTES:
    case ValueEncoding.LE64:
      encoded = { encoding, data: unb64(data) };
      if (encoding === ValueEncoding.LE64 && encoded.data.length !== 8) {
        throw new KvError("INVALID_VALUE", "A KvU64 value must be exactly 8 bytes");
      }
      break;
    default:
      throw new KvError("INVALID_VALUE", `The value encoding ${String(encoding)} is unknown`);
  }
  if (encodedSize(encoded) > limits.maxValueBytes) {
    throw new KvError("VALUE_TOO_LARGE", `Value too large (max ${limits.maxValueBytes} bytes)`);
  }
  return encoded;
}

export function keysFromWire(body: unknown): Uint8Array[] {
  const keys = array(object(body, "body").keys, "keys", 1000, "Too many keys (max 1000)");
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
    };
  });
  if (entries > limits.maxReadEntries) {
    throw new KvError("INVALID_ARGUMENT", `Too many entries (max ${limits.maxReadEntries})`);
  }
  return decoded;
}

function mutationFromWire(value: unknown, i: number): Mutation {
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
      };
    }
    case "delete":
      return { type: "delete", key: keyFromWire(m.key, what, "write") };
    case "deleteRange":
      return {
        type: "deleteRange",
        start: boundFromWire(m.start, `mutations[${i}].start`),
        end: boundFromWire(m.end, `mutations[${i}].end`),
      };
    case "sum":
    case "min":
    case "max":
    case "append":
    case "prepend":
      return {
        type: m.type,
        key: keyFromWire(m.key, what, "write"),
        value: valueFromWire(m.value),
      };
    default:
      throw invalid(
        `mutations[${i}].type must be set, delete, deleteRange, sum, min, max, append or prepend; got ${JSON.stringify(m.type)}`,
      );
  }
}

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
  const mutations = array(
    b.mutations ?? [],
    "mutations",
    limits.maxMutations,
    `Too many mutations (max ${limits.maxMutations})`,
  ).map(mutationFromWire);
  return { checks, mutations };
}
