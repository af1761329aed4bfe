/**
 * The read-modify-write mutations. Each function takes the key's current live value (or `null`)
 * and the operand, and returns the value to store. A missing key takes the operand.
 *
 * - `sum` with a KvU64 operand: Deno's semantics, the stored value must be a KvU64 and the result
 *   wraps modulo 2^64. With a number or bigint operand (V8 sum): numbers add as floats, bigints
 *   exactly; a bigint added to a stored KvU64 is a KvU64 sum when it fits in 64 bits.
 * - `min` / `max` with a KvU64 operand compare unsigned against a stored KvU64; with a number
 *   operand, against a stored number.
 * - `append` / `prepend` concatenate arrays.
 *
 * Type errors throw `TYPE_MISMATCH` with Deno's texts where Deno has one.
 */
import { KvU64, kvU64FromBytes, U64_MODULUS } from "../codec/kv-u64.js";
import {
  decodeValue,
  type EncodedValue,
  encodedSize,
  encodeValue,
  ValueEncoding,
} from "../codec/value-codec.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";

type Numeric =
  | { kind: "KvU64"; value: bigint }
  | { kind: "BigInt"; value: bigint }
  | { kind: "Number"; value: number };

function numeric(v: EncodedValue): Numeric | undefined {
  if (v.encoding === ValueEncoding.LE64) return { kind: "KvU64", value: kvU64FromBytes(v.data) };
  if (v.encoding === ValueEncoding.BYTES) return undefined;
  const decoded = decodeValue(v);
  if (typeof decoded === "number") return { kind: "Number", value: decoded };
  if (typeof decoded === "bigint") return { kind: "BigInt", value: decoded };
  return undefined;
}

function u64(n: bigint): EncodedValue {
  return encodeValue(new KvU64(n));
}

function mismatch(message: string): KvError {
  return new KvError("TYPE_MISMATCH", message);
}

export function sum(current: EncodedValue | null, operand: EncodedValue): EncodedValue {
  const op = numeric(operand);
  if (!op)
    throw new KvError("INVALID_ARGUMENT", "The operand of 'sum' must be a number, bigint or KvU64");
  if (current === null) return operand;
  const cur = numeric(current);
  if (op.kind === "KvU64") {
    if (cur?.kind !== "KvU64")
      throw mismatch("Failed to perform 'sum' mutation on a non-U64 value in the database");
    return u64((cur.value + op.value) % U64_MODULUS);
  }
  if (!cur)
    throw mismatch(
      "Failed to perform 'sum' mutation on a value that is not a number, bigint or KvU64",
    );
  if (cur.kind === "KvU64" && op.kind === "BigInt" && op.value >= 0n && op.value < U64_MODULUS) {
    return u64((cur.value + op.value) % U64_MODULUS);
  }
  if (cur.kind === "Number" && op.kind === "Number") return encodeValue(cur.value + op.value);
  if (cur.kind === "BigInt" && op.kind === "BigInt") return encodeValue(cur.value + op.value);
  throw mismatch(`Cannot sum ${cur.kind} with ${op.kind}`);
}

function extremum(
  kind: "min" | "max",
  current: EncodedValue | null,
  operand: EncodedValue,
): EncodedValue {
  const op = numeric(operand);
  if (op?.kind !== "KvU64" && op?.kind !== "Number") {
    throw new KvError(
      "INVALID_ARGUMENT",
      `Failed to perform '${kind}' mutation on a non-U64 operand`,
    );
  }
  if (current === null) return operand;
  const cur = numeric(current);
  if (cur?.kind !== op.kind) {
    throw mismatch(
      op.kind === "KvU64"
        ? `Failed to perform '${kind}' mutation on a non-U64 value in the database`
        : `Failed to perform '${kind}' mutation with a number on a value that is not a number`,
    );
  }
  const keepCurrent = kind === "min" ? cur.value <= op.value : cur.value >= op.value;
  return keepCurrent ? current : operand;
}

function concat(
  kind: "append" | "prepend",
  current: EncodedValue | null,
  operand: EncodedValue,
): EncodedValue {
  const items = decodeValue(operand);
  if (!Array.isArray(items))
    throw new KvError("INVALID_ARGUMENT", `${kind} value must be an array`);
  if (current === null) return operand;
  const existing = decodeValue(current);
  if (!Array.isArray(existing)) {
    throw mismatch(`Failed to perform '${kind}' mutation on a value that is not an array`);
  }
  const result = encodeValue(kind === "append" ? existing.concat(items) : items.concat(existing));
  if (encodedSize(result) > limits.maxValueBytes) {
    throw new KvError(
      "VALUE_TOO_LARGE",
      `Value too large (max ${limits.maxValueBytes} bytes) after ${kind}`,
    );
  }
  return result;
}

export const readModifyWrite = {
  sum,
  min: (current: EncodedValue | null, operand: EncodedValue) => extremum("min", current, operand),
  max: (current: EncodedValue | null, operand: EncodedValue) => extremum("max", current, operand),
  append: (current: EncodedValue | null, operand: EncodedValue) =>
    concat("append", current, operand),
  prepend: (current: EncodedValue | null, operand: EncodedValue) =>
    concat("prepend", current, operand),
} as const;
