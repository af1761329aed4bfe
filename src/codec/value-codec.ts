/**
 * Values: every structured-cloneable JavaScript value round-trips. The stored form is chosen so the
 * database can look inside JSON-shaped values (for where filters and full-text search) while
 * everything else keeps its exact type:
 *
 * | encoding | used for                                                     | data                 |
 * |----------|--------------------------------------------------------------|----------------------|
 * | JSON (4) | null, booleans, strings, finite numbers (not -0), and plain   | JSON text            |
 * |          | objects/arrays made only of those                            |                      |
 * | BYTES (3)| a top-level Uint8Array                                       | the bytes            |
 * | LE64 (2) | a top-level KvU64                                            | 8 bytes little-endian|
 * | V8 (1)   | everything else (bigint, Date, Map, Set, RegExp, undefined,   | V8 serializer format |
 * |          | typed arrays, NaN, -0, …)                                    | version 15           |
 *
 * V8 bytes use the plain `v8.Serializer` (typed arrays as native views, not Node host objects) and
 * decoding accepts format 16 as written by Deno 2.9 (reference/kv-connect.md §0, §3). V8 bytes that
 * Node cannot decode (Deno's host objects: Blob, DOMException, …) decode to a `KvV8Value`, which
 * encodes back to exactly those bytes.
 */
import v8 from "node:v8";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { KvU64, kvU64FromBytes, kvU64ToBytes } from "./kv-u64.js";
import { KvV8Value } from "./kv-v8-value.js";
import { assertValueDepth } from "./value-depth.js";

export const ValueEncoding = { V8: 1, LE64: 2, BYTES: 3, JSON: 4 } as const;
export type ValueEncoding = (typeof ValueEncoding)[keyof typeof ValueEncoding];

/** A value as stored: JSON text for the JSON encoding, bytes for the others. */
export type EncodedValue =
  | { readonly encoding: typeof ValueEncoding.JSON; readonly data: string }
  | { readonly encoding: 1 | 2 | 3; readonly data: Uint8Array };

/**
 * Objects and arrays `isJsonShaped` may still visit: JSON text of a value within the size limit
 * has fewer (each takes two characters at least), and the count keeps values that reach one
 * object along many paths (cycles, shared parts) from taking exponential time.
 */
let jsonObjectsLeft = 0;

function isJsonShaped(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v) && !Object.is(v, -0);
    case "object": {
      if (v === null) return true;
      // Deep, cyclic or shared: V8 keeps the shape (and the size limit refuses what is too large).
      if (depth > 64 || --jsonObjectsLeft < 0) return false;
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) return false;
        for (let i = 0; i < v.length; i++) {
          const item = v[i];
          if (item === undefined || !isJsonShaped(item, depth + 1)) return false; // also catches holes
        }
        return true;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const k in v) {
        const item = (v as Record<string, unknown>)[k];
        if (item === undefined || !isJsonShaped(item, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** V8 serializer bytes (format 15) of `value`; `INVALID_VALUE` when it is not structured-cloneable. */
export function serializeV8(value: unknown): Uint8Array {
  try {
    const s = new v8.Serializer();
    s.writeHeader();
    s.writeValue(value);
    return s.releaseBuffer();
  } catch (e) {
    throw new KvError(
      "INVALID_VALUE",
      `Value cannot be stored: ${(e as Error).message} (values must be structured-cloneable)`,
    );
  }
}

function deserializeV8(bytes: Uint8Array): unknown {
  let input = bytes;
  if (bytes[0] === 0xff && bytes[1] === 0x10) {
    // Format 16 (Deno 2.9) differs from 15 only for lengths ≥ 4 GiB, far above the value limit.
    input = new Uint8Array(bytes);
    input[1] = 0x0f;
  }
  const d = new v8.Deserializer(input);
  d.readHeader();
  return d.readValue();
}

/** Encodes a value without checking its size; see `encodeValueChecked`. */
export function encodeValue(value: unknown): EncodedValue {
  // Copied: the caller may change its array before the commit is flushed.
  if (value instanceof Uint8Array)
    return { encoding: ValueEncoding.BYTES, data: new Uint8Array(value) };
  if (value instanceof KvU64)
    return { encoding: ValueEncoding.LE64, data: kvU64ToBytes(value.value) };
  jsonObjectsLeft = limits.maxValueBytes / 2;
  if (isJsonShaped(value, 0)) return { encoding: ValueEncoding.JSON, data: JSON.stringify(value) };
  if (value instanceof KvV8Value)
    return { encoding: ValueEncoding.V8, data: new Uint8Array(value.bytes) };
  assertValueDepth(value); // JSON-shaped values are at most 64 deep: only these need the walk
  return { encoding: ValueEncoding.V8, data: serializeV8(value) };
}

/**
 * Size in bytes of an encoded value. JSON text shorter than `exactAbove / 3` characters cannot
 * exceed `exactAbove` UTF-8 bytes, so its length is returned without counting.
 */
export function encodedSize(v: EncodedValue, exactAbove: number = limits.maxValueBytes): number {
  if (v.encoding !== ValueEncoding.JSON || v.data.length * 3 <= exactAbove) return v.data.length;
  return Buffer.byteLength(v.data);
}

/** Encodes a value and enforces `maxValueBytes`. */
export function encodeValueChecked(
  value: unknown,
  maxBytes: number = limits.maxValueBytes,
): EncodedValue {
  const encoded = encodeValue(value);
  if (encodedSize(encoded, maxBytes) > maxBytes)
    throw new KvError("VALUE_TOO_LARGE", `Value too large (max ${maxBytes} bytes)`);
  return encoded;
}

/** The value `v` stands for; V8 bytes that Node cannot decode become a `KvV8Value` of them. */
export function decodeValue(v: EncodedValue): unknown {
  switch (v.encoding) {
    case ValueEncoding.JSON:
      return JSON.parse(v.data);
    case ValueEncoding.BYTES:
      return new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength);
    case ValueEncoding.LE64:
      return new KvU64(kvU64FromBytes(v.data));
    case ValueEncoding.V8:
      try {
        return deserializeV8(v.data);
      } catch {
        return new KvV8Value(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength));
      }
    default:
      throw new KvError(
        "INTERNAL",
        `Unknown value encoding ${(v as { encoding: number }).encoding}`,
      );
  }
}
