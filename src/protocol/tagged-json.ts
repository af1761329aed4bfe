/**
 * Values and keys over JSON: plain JSON travels as is; what JSON cannot carry travels as an
 * object tagged with `__type` (the Buntime seed's bigint form, extended):
 *
 * | value                    | JSON                                                      |
 * |--------------------------|-----------------------------------------------------------|
 * | bigint                   | `{ "__type": "bigint", "value": "123" }`                  |
 * | KvU64                    | `{ "__type": "kvu64", "value": "123" }`                   |
 * | Uint8Array               | `{ "__type": "bytes", "value": "<base64>" }`              |
 * | other typed arrays       | `{ "__type": "Int16Array", "value": "<base64 of bytes>" }`|
 * | ArrayBuffer              | `{ "__type": "arraybuffer", "value": "<base64>" }`        |
 * | Date                     | `{ "__type": "date", "value": "2026-01-01T00:00:00.000Z" }`|
 * | Map                      | `{ "__type": "map", "value": [[key, value], …] }`         |
 * | Set                      | `{ "__type": "set", "value": [item, …] }`                 |
 * | RegExp                   | `{ "__type": "regexp", "value": { "source", "flags" } }`  |
 * | undefined                | `{ "__type": "undefined" }`                               |
 * | NaN, ±Infinity, -0       | `{ "__type": "number", "value": "NaN" }` etc.             |
 * | an object with `__type`  | `{ "__type": "object", "value": { … } }`                  |
 * | KvV8Value                | `{ "__type": "v8", "value": "<base64 of V8 bytes>" }`     |
 *
 * Tagged values nest. Key parts accept the `bigint`, `bytes` and `number` tags.
 */
import type { KvKey, KvKeyPart } from "../codec/key-codec.js";
import { KvU64 } from "../codec/kv-u64.js";
import { KvV8Value } from "../codec/kv-v8-value.js";
import { serializeV8 } from "../codec/value-codec.js";
import { tooDeep } from "../codec/value-depth.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";

const TYPED_ARRAYS = {
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;

const b64 = (bytes: ArrayBufferView | ArrayBuffer) =>
  (ArrayBuffer.isView(bytes)
    ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : Buffer.from(bytes)
  ).toString("base64");

function unb64(value: unknown): Uint8Array {
  if (typeof value !== "string") throw invalid("base64 text");
  return new Uint8Array(Buffer.from(value, "base64"));
}

function invalid(expected: string): KvError {
  return new KvError("INVALID_VALUE", `A tagged value must carry ${expected} in "value"`);
}

function tagNumber(n: number): unknown {
  if (Number.isFinite(n) && !Object.is(n, -0)) return n;
  return { __type: "number", value: Object.is(n, -0) ? "-0" : String(n) };
}

/** Thrown inside `tagged` when a value nests past the limit. */
const TOO_DEEP = Symbol("too deep");

/**
 * A value as JSON-compatible data (see the table above). A value that nests deeper than
 * `limits.maxValueDepth` (a cyclic one: none is written deeper) goes whole as its V8 bytes, the
 * `v8` tag, which stores back as the same value.
 */
export function toTagged(value: unknown): unknown {
  try {
    return tagged(value, 0);
  } catch (e) {
    if (e !== TOO_DEEP) throw e;
    return { __type: "v8", value: b64(serializeV8(value)) };
  }
}

function tagged(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case "bigint":
      return { __type: "bigint", value: value.toString() };
    case "number":
      return tagNumber(value);
    case "undefined":
      return { __type: "undefined" };
    case "object": {
      if (value === null) return null;
      if (value instanceof KvU64) return { __type: "kvu64", value: value.value.toString() };
      if (value instanceof KvV8Value) return { __type: "v8", value: b64(value.bytes) };
      if (value instanceof Uint8Array) return { __type: "bytes", value: b64(value) };
      if (ArrayBuffer.isView(value)) return { __type: value.constructor.name, value: b64(value) };
      if (value instanceof ArrayBuffer) return { __type: "arraybuffer", value: b64(value) };
      if (value instanceof Date) return { __type: "date", value: value.toISOString() };
      if (value instanceof RegExp)
        return { __type: "regexp", value: { source: value.source, flags: value.flags } };
      if (depth >= limits.maxValueDepth) throw TOO_DEEP;
      const inner = (v: unknown) => tagged(v, depth + 1);
      if (Array.isArray(value)) return Array.from(value, inner);
      if (value instanceof Map)
        return { __type: "map", value: [...value].map(([k, v]) => [inner(k), inner(v)]) };
      if (value instanceof Set) return { __type: "set", value: [...value].map(inner) };
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = inner(v);
      return "__type" in out ? { __type: "object", value: out } : out;
    }
    default:
      return value;
  }
}

function fromTag(tag: Record<string, unknown>, depth: number): unknown {
  const { value } = tag;
  switch (tag.__type) {
    case "bigint":
    case "kvu64": {
      if (typeof value !== "string" || !/^-?\d+$/.test(value))
        throw invalid("an integer as a decimal string");
      return tag.__type === "bigint" ? BigInt(value) : new KvU64(BigInt(value));
    }
    case "bytes":
      return unb64(value);
    case "arraybuffer":
      return unb64(value).buffer;
    case "v8":
      return new KvV8Value(unb64(value));
    case "date": {
      const date = new Date(typeof value === "string" ? value : Number.NaN);
      if (Number.isNaN(date.getTime())) throw invalid("an ISO date string");
      return date;
    }
    case "map":
      if (!Array.isArray(value) || !value.every((e) => Array.isArray(e) && e.length === 2)) {
        throw invalid("an array of [key, value] pairs");
      }
      return new Map(value.map(([k, v]) => [fromTagged(k, depth), fromTagged(v, depth)]));
    case "set":
      if (!Array.isArray(value)) throw invalid("an array");
      return new Set(value.map((v) => fromTagged(v, depth)));
    case "regexp": {
      const r = value as { source?: unknown; flags?: unknown } | null;
      if (typeof r?.source !== "string" || typeof r.flags !== "string")
        throw invalid("{ source, flags }");
      try {
        return new RegExp(r.source, r.flags);
      } catch (e) {
        throw new KvError("INVALID_VALUE", `Invalid regexp: ${(e as Error).message}`);
      }
    }
    case "undefined":
      return undefined;
    case "number":
      if (value === "NaN" || value === "Infinity" || value === "-Infinity" || value === "-0")
        return Number(value);
      throw invalid('"NaN", "Infinity", "-Infinity" or "-0"');
    case "object":
      if (value === null || typeof value !== "object" || Array.isArray(value))
        throw invalid("an object");
      return fromPlain(value as Record<string, unknown>, depth);
    default: {
      const typed = TYPED_ARRAYS[tag.__type as keyof typeof TYPED_ARRAYS];
      if (!typed) {
        throw new KvError(
          "INVALID_VALUE",
          `Unknown __type ${JSON.stringify(tag.__type)}; to store an object with a __type field, wrap it as { "__type": "object", "value": … }`,
        );
      }
      const bytes = unb64(value);
      if (bytes.byteLength % typed.BYTES_PER_ELEMENT !== 0)
        throw invalid(`a whole number of ${tag.__type} elements`);
      return new typed(bytes.buffer as ArrayBuffer, 0, bytes.byteLength / typed.BYTES_PER_ELEMENT);
    }
  }
}

function fromPlain(object: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object)) out[k] = fromTagged(v, depth);
  return out;
}

/**
 * The value that tagged JSON data stands for. Throws `INVALID_VALUE` on malformed tags and
 * `VALUE_TOO_DEEP` past `limits.maxValueDepth` levels of the value (a tag's own wrapping is not a
 * level), before recursing further.
 */
export function fromTagged(json: unknown, depth = 0): unknown {
  if (json === null || typeof json !== "object") return json;
  const object = json as Record<string, unknown>;
  const tag = Array.isArray(json) ? undefined : object.__type;
  // Tags of leaves (bytes, dates, …) do not nest; maps, sets and escaped objects are a level.
  const nests = typeof tag !== "string" || tag === "map" || tag === "set" || tag === "object";
  if (nests && depth >= limits.maxValueDepth) throw tooDeep();
  if (Array.isArray(json)) return json.map((v) => fromTagged(v, depth + 1));
  return typeof tag === "string" ? fromTag(object, depth + 1) : fromPlain(object, depth + 1);
}

/** A key from JSON: an array of strings, numbers, booleans and `bigint` / `bytes` tags. */
export function keyFromJson(json: unknown, what = "key"): KvKey {
  if (!Array.isArray(json)) {
    throw new KvError("INVALID_KEY", `${what} must be an array of key parts, e.g. ["users", 123]`);
  }
  return json.map((part, i): KvKeyPart => {
    if (typeof part === "string" || typeof part === "number" || typeof part === "boolean")
      return part;
    if (
      part !== null &&
      typeof part === "object" &&
      ["bigint", "bytes", "number"].includes(part.__type)
    ) {
      return fromTag(part, 0) as KvKeyPart;
    }
    throw new KvError(
      "INVALID_KEY",
      `${what}[${i}] must be a string, number, boolean, {"__type":"bigint","value":"…"} or {"__type":"bytes","value":"<base64>"}`,
    );
  });
}

/** A key as JSON. */
export function keyToJson(key: KvKey): unknown[] {
  return key.map((part) => (typeof part === "number" ? tagNumber(part) : toTagged(part)));
}
