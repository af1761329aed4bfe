import { KvError } from "../kv-error.js";

const MAX_U64 = (1n << 64n) - 1n;

/**
 * An unsigned 64-bit integer, stored as 8 little-endian bytes. The only type `sum`, `min` and `max`
 * combine with Deno KV's semantics: `sum` wraps modulo 2^64, `min`/`max` compare unsigned.
 */
export class KvU64 {
  readonly value: bigint;

  constructor(value: bigint) {
    if (typeof value !== "bigint") {
      throw new KvError("INVALID_VALUE", `Value must be a bigint: received ${typeof value}`);
    }
    if (value < 0n)
      throw new KvError("INVALID_VALUE", `Value must be a positive bigint: received ${value}`);
    if (value > MAX_U64) {
      throw new KvError(
        "INVALID_VALUE",
        `Value must fit in a 64-bit unsigned integer: received ${value}`,
      );
    }
    this.value = value;
    Object.freeze(this);
  }

  valueOf(): bigint {
    return this.value;
  }

  toString(): string {
    return this.value.toString();
  }

  get [Symbol.toStringTag](): string {
    return "Deno.KvU64";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `[Deno.KvU64: ${this.value}n]`;
  }
}

export function kvU64ToBytes(n: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, n, true);
  return bytes;
}

export function kvU64FromBytes(bytes: Uint8Array): bigint {
  if (bytes.length !== 8)
    throw new KvError("INVALID_VALUE", "A KvU64 value must be exactly 8 bytes");
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

export const U64_MODULUS = 1n << 64n;
