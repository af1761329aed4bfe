/**
 * Keys: Deno KV's tuple encoding (reference/kv-connect.md §2), byte for byte. Comparing encoded keys
 * bytewise gives Deno's order: Uint8Array < string < bigint < number < false < true. Encodings are
 * self-delimiting, so `encodeKey(prefix)` is a byte prefix of exactly the keys that extend `prefix`
 * part by part (`["users", "a"]` never matches `["users", "ab"]`).
 */
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";

export type KvKeyPart = Uint8Array | string | number | bigint | boolean;
export type KvKey = readonly KvKeyPart[];

const BYTES = 0x01;
const STRING = 0x02;
const BIGINT_ZERO = 0x14;
const BIGINT_POS_LONG = 0x1d;
const BIGINT_NEG_LONG = 0x0b;
const NUMBER = 0x21;
const FALSE = 0x26;
const TRUE = 0x27;

// One growable scratch buffer: keys are encoded into it, then copied out at their exact size.
let scratch = Buffer.allocUnsafe(4096);
let scratchView = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);

function reserve(at: number, bytes: number): void {
  if (at + bytes <= scratch.length) return;
  const grown = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + bytes));
  scratch.copy(grown, 0, 0, at);
  scratch = grown;
  scratchView = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
}

/** Writes `bytes[from, to)` with every 0x00 escaped as 00 FF, then the 0x00 terminator. */
function writeEscaped(at: number, bytes: Uint8Array, from: number, to: number): number {
  reserve(at, (to - from) * 2 + 1);
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    scratch[at++] = b;
    if (b === 0) scratch[at++] = 0xff;
  }
  scratch[at++] = 0;
  return at;
}

function writeString(at: number, s: string): number {
  if (s.indexOf("\0") === -1) {
    // UTF-8 has no 0x00 byte except for U+0000, so nothing needs escaping.
    reserve(at, s.length * 3 + 1);
    at += scratch.write(s, at, "utf8");
    scratch[at++] = 0;
    return at;
  }
  const utf8 = Buffer.from(s, "utf8");
  return writeEscaped(at, utf8, 0, utf8.length);
}

function writeNumber(at: number, n: number): number {
  reserve(at, 9);
  scratch[at] = NUMBER;
  if (Number.isNaN(n)) {
    scratchView.setUint32(at + 1, 0xfff80000);
    scratchView.setUint32(at + 5, 0);
    return at + 9;
  }
  scratchView.setFloat64(at + 1, n);
  if (scratch[at + 1]! & 0x80) {
    for (let i = at + 1; i < at + 9; i++) scratch[i] = ~scratch[i]! & 0xff;
  } else {
    scratch[at + 1] = scratch[at + 1]! | 0x80;
  }
  return at + 9;
}

function magnitudeBytes(n: bigint): number[] {
  const bytes: number[] = [];
  while (n > 0n) {
    bytes.push(Number(n & 0xffn));
    n >>= 8n;
  }
  return bytes.reverse();
}

function writeBigint(at: number, n: bigint): number {
  if (n === 0n) {
    reserve(at, 1);
    scratch[at] = BIGINT_ZERO;
    return at + 1;
  }
  const negative = n < 0n;
  const bytes = magnitudeBytes(negative ? -n : n);
  if (bytes.length > 255) {
    throw new KvError("INVALID_KEY", "A bigint key part may have at most 255 bytes of magnitude");
  }
  reserve(at, bytes.length + 2);
  if (bytes.length <= 8) {
    scratch[at++] = negative ? BIGINT_ZERO - bytes.length : BIGINT_ZERO + bytes.length;
  } else {
    scratch[at++] = negative ? BIGINT_NEG_LONG : BIGINT_POS_LONG;
    scratch[at++] = negative ? bytes.length ^ 0xff : bytes.length;
  }
  for (const b of bytes) scratch[at++] = negative ? ~b & 0xff : b;
  return at;
}

function writePart(at: number, part: unknown, index: number): number {
  switch (typeof part) {
    case "string":
      // UTF-8 would store U+FFFD in place of a lone surrogate: another key than the one given.
      if (!part.isWellFormed()) {
        throw new KvError(
          "INVALID_KEY",
          `Key part ${index} is a string with a lone UTF-16 surrogate, which UTF-8 cannot hold`,
        );
      }
      reserve(at, 1);
      scratch[at] = STRING;
      return writeString(at + 1, part);
    case "number":
      return writeNumber(at, part);
    case "bigint":
      return writeBigint(at, part);
    case "boolean":
      reserve(at, 1);
      scratch[at] = part ? TRUE : FALSE;
      return at + 1;
    default:
      if (part instanceof Uint8Array) {
        reserve(at, 1);
        scratch[at] = BYTES;
        return writeEscaped(at + 1, part, 0, part.length);
      }
      throw new KvError(
        "INVALID_KEY",
        `Key part ${index} is ${describe(part)}; key parts must be string, number, bigint, boolean or Uint8Array`,
      );
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return `an object (${Object.prototype.toString.call(v).slice(8, -1)})`;
  return `of type ${typeof v}`;
}

/**
 * Encodes a key. Throws `INVALID_KEY` when `key` is not an array of valid parts. Performs no size
 * check; see `encodeReadKey` / `encodeWriteKey`.
 */
export function encodeKey(key: KvKey): Uint8Array {
  if (!Array.isArray(key)) {
    throw new KvError(
      "INVALID_KEY",
      `A key must be an array of parts, e.g. ["users", 123]; got ${describe(key)}`,
    );
  }
  let at = 0;
  for (let i = 0; i < key.length; i++) at = writePart(at, key[i], i);
  return new Uint8Array(scratch.subarray(0, at));
}

/**
 * Checks an encoded key against the size limits: reads take up to `limits.maxReadKeyBytes`
 * (and the empty key); writes need a non-empty key of up to `limits.maxWriteKeyBytes`, less
 * `reserve` bytes still to be appended (a versionstamp suffix).
 */
export function checkKeySize(bytes: Uint8Array, access: "read" | "write", reserve = 0): Uint8Array {
  if (access === "write" && bytes.length === 0)
    throw new KvError("INVALID_KEY", "Key cannot be empty");
  const max = access === "read" ? limits.maxReadKeyBytes : limits.maxWriteKeyBytes;
  if (bytes.length + reserve > max) {
    throw new KvError("KEY_TOO_LARGE", `Key too large for ${access} (max ${max} bytes)`);
  }
  return bytes;
}

/** Encodes a key that is read; at most `limits.maxReadKeyBytes` (the empty key is allowed). */
export function encodeReadKey(key: KvKey): Uint8Array {
  return checkKeySize(encodeKey(key), "read");
}

/** Encodes a key that is written; non-empty and at most `limits.maxWriteKeyBytes`. */
export function encodeWriteKey(key: KvKey): Uint8Array {
  return checkKeySize(encodeKey(key), "write");
}

/** Index of the 0x00 that terminates an escaped part starting at `from`. */
function terminator(bytes: Uint8Array, from: number): number {
  let i = from;
  for (;;) {
    i = bytes.indexOf(0, i);
    if (i === -1) throw new KvError("INVALID_KEY", "Invalid key encoding: unterminated part");
    if (bytes[i + 1] !== 0xff) return i;
    i += 2;
  }
}

function unescapeBytes(bytes: Uint8Array, from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  let n = 0;
  for (let i = from; i < to; i++) {
    out[n++] = bytes[i]!;
    if (bytes[i] === 0) i++; // skip the 0xFF escape
  }
  return out.subarray(0, n);
}

const float = new DataView(new ArrayBuffer(8));

/** Decodes an encoded key. Throws `INVALID_KEY` on bytes that no key encodes to. */
export function decodeKey(bytes: Uint8Array): KvKeyPart[] {
  const buf = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const key: KvKeyPart[] = [];
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++]!;
    if (tag === STRING || tag === BYTES) {
      const end = terminator(buf, i);
      const escaped = buf.indexOf(0, i) !== end;
      if (tag === STRING) {
        key.push(
          escaped
            ? Buffer.from(unescapeBytes(buf, i, end)).toString("utf8")
            : buf.toString("utf8", i, end),
        );
      } else {
        key.push(escaped ? unescapeBytes(buf, i, end) : new Uint8Array(buf.subarray(i, end)));
      }
      i = end + 1;
    } else if (tag === NUMBER) {
      if (i + 8 > buf.length)
        throw new KvError("INVALID_KEY", "Invalid key encoding: short number");
      const negative = (buf[i]! & 0x80) === 0;
      for (let j = 0; j < 8; j++) float.setUint8(j, negative ? ~buf[i + j]! & 0xff : buf[i + j]!);
      if (!negative) float.setUint8(0, buf[i]! & 0x7f);
      key.push(float.getFloat64(0));
      i += 8;
    } else if (tag >= BIGINT_NEG_LONG && tag <= BIGINT_POS_LONG) {
      const negative = tag < BIGINT_ZERO;
      let length = Math.abs(tag - BIGINT_ZERO);
      if (tag === BIGINT_POS_LONG || tag === BIGINT_NEG_LONG) {
        length = negative ? buf[i]! ^ 0xff : buf[i]!;
        i++;
      }
      if (i + length > buf.length)
        throw new KvError("INVALID_KEY", "Invalid key encoding: short bigint");
      let n = 0n;
      for (let j = 0; j < length; j++)
        n = (n << 8n) | BigInt(negative ? ~buf[i + j]! & 0xff : buf[i + j]!);
      key.push(negative ? -n : n);
      i += length;
    } else if (tag === FALSE || tag === TRUE) {
      key.push(tag === TRUE);
    } else {
      throw new KvError("INVALID_KEY", `Invalid key encoding: unknown tag 0x${tag.toString(16)}`);
    }
  }
  return key;
}

/** `a ‖ b`. */
export function concatBytes(a: Uint8Array, b: Uint8Array | number[]): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The first byte of Cairn's own records (principals and tokens): no key encodes to it, so they
 * lie after every range of keys and no list, watch or export of keys reaches them.
 */
export const SYSTEM_KEYSPACE = 0xff;

/** True when `key` starts with `prefix`. */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** Bytes a versionstamp suffix adds to a key: a string tag, 20 hex digits, a terminator. */
export const VERSIONSTAMP_PART_BYTES = 22;

/**
 * The key a versionstamped set writes: `key` with one more string part holding the commit's
 * 20-hex-digit versionstamp (Deno's M_SET_SUFFIX_VERSIONSTAMPED_KEY).
 */
export function suffixVersionstamp(key: Uint8Array, versionstamp: string): Uint8Array {
  const out = new Uint8Array(key.length + VERSIONSTAMP_PART_BYTES);
  out.set(key);
  out[key.length] = STRING;
  for (let i = 0; i < 20; i++) out[key.length + 1 + i] = versionstamp.charCodeAt(i);
  out[key.length + 21] = 0;
  return out;
}
