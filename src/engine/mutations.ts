/**
 * The read-modify-write mutations. Each function takes the key's current live value (or `null`)
 * and the operand, and returns the value to store. A missing key takes the operand.
 *
 * - `sum` with a KvU64 operand: Deno's semantics, the stored value must be a KvU64 and the result
 *   wraps modulo 2^64. With a number or bigint operand (V8 sum, denokv's `sum_v8`): numbers add
 *   as floats, bigints exactly, and the result is checked against the sum's bounds (`SumBounds`);
 *   a bigint in [0, 2^64) added to a stored KvU64 without bounds is a KvU64 sum.
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
import type { SumBounds } from "./database.js";

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

export function sum(
  current: EncodedValue | null,
  operand: EncodedValue,
  bounds?: SumBounds,
): EncodedValue {
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
  if (!cur) throw mismatch("unsupported value type");
  if (
    cur.kind === "KvU64" &&
    op.kind === "BigInt" &&
    bounds === undefined &&
    op.value >= 0n &&
    op.value < U64_MODULUS
  ) {
    return u64((cur.value + op.value) % U64_MODULUS);
  }
  if (cur.kind === "Number" && op.kind === "Number")
    return encodeValue(bounded(cur.value + op.value, bounds));
  if (cur.kind === "BigInt" && op.kind === "BigInt")
    return encodeValue(bounded(cur.value + op.value, bounds));
  throw mismatch(`Cannot sum ${cur.kind} with ${op.kind}`);
}

function bounded<T extends number | bigint>(result: T, bounds: SumBounds | undefined): T {
  if (bounds === undefined) return result;
  let value = result;
  // denokv's order: the minimum first, so with min > max a clamped result ends at max.
  if (bounds.min !== undefined && value < bounds.min) {
    if (!bounds.clamp) throw outOfRange();
    value = bounds.min as T;
  }
  if (bounds.max !== undefined && value > bounds.max) {
    if (!bounds.clamp) throw outOfRange();
    value = bounds.max as T;
  }
  return value;
}

const outOfRange = () =>
  new KvError("OUT_OF_RANGE", "The result of a Sum operation would exceed its range limit");

/**
 * Validates a sum's bounds against its operand with denokv's texts, for the SDK and every face to
 * call before committing: bounds must be numbers or bigints (`INVALID_ARGUMENT`) of the operand's
 * type, and a KvU64 sum takes none (`TYPE_MISMATCH`). `undefined` bounds mean none; the result is
 * `undefined` for a sum without bounds or clamp, which keeps Deno's KvU64-plus-bigint rule.
 */
export function sumBounds(
  operand: EncodedValue,
  min: unknown,
  max: unknown,
  clamp: boolean,
): SumBounds | undefined {
  let op: Numeric | undefined;
  try {
    op = numeric(operand);
  } catch {
    op = undefined; // undecodable V8 bytes
  }
  if (op?.kind === "KvU64") {
    if (min !== undefined || max !== undefined)
      throw mismatch("Cannot use min/max parameters with KvU64 operands");
    return undefined;
  }
  const kinds = [min, max]
    .filter((b) => b !== undefined)
    .map((b) => (typeof b === "number" ? "Number" : typeof b === "bigint" ? "BigInt" : undefined));
  if (!op || kinds.includes(undefined))
    throw new KvError("INVALID_ARGUMENT", "Some of the parameters are not valid V8 values");
  if (kinds.some((kind) => kind !== op.kind)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "Min/max parameters have different types than the operand",
    );
  }
  if (min === undefined && max === undefined && !clamp) return undefined;
  return { min: min as SumBounds["min"], max: max as SumBounds["max"], clamp };
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
  min: (current: EncodedValue | null, operand: EncodedValue) => extremum("min", current, operand),
  max: (current: EncodedValue | null, operand: EncodedValue) => extremum("max", current, operand),
  append: (current: EncodedValue | null, operand: EncodedValue) =>
    concat("append", current, operand),
  prepend: (current: EncodedValue | null, operand: EncodedValue) =>
    concat("prepend", current, operand),
} as const;
