import { parseDuration } from "../codec/duration.js";
import {
  checkKeySize,
  encodeKey,
  encodeReadKey,
  encodeWriteKey,
  type KvKey,
  VERSIONSTAMP_PART_BYTES,
} from "../codec/key-codec.js";
import { KvU64 } from "../codec/kv-u64.js";
import { withPlaceholders } from "../codec/server-time.js";
import { type EncodedValue, encodeValueChecked } from "../codec/value-codec.js";
import { isVersionstamp } from "../codec/versionstamp.js";
import { checkCommit } from "../engine/commit-limits.js";
import type { Check, Database, Mutation } from "../engine/database.js";
import { sumBounds } from "../engine/mutations.js";
import { KvError } from "../kv-error.js";
import { enqueueMutation, type KvEnqueueOptions } from "./queue.js";
import type { AtomicCheck, KvCommitError, KvCommitResult, KvSetOptions } from "./types.js";

/** The placeholder `kv.commitVersionstamp()` returns: as a key's last part, it becomes the commit's versionstamp. */
export const commitVersionstamp: unique symbol = Symbol("kv.commitVersionstamp");

/** A key that may end with `commitVersionstamp` (in `set` only). */
export type KvWriteKey = KvKey | readonly [...KvKey, typeof commitVersionstamp];

/** Deno's `mutate` shapes, plus Cairn's `append` / `prepend`. */
export type KvMutation =
  | {
      type: "set";
      key: KvWriteKey;
      value: unknown;
      expireIn?: number | string;
      expiresIn?: number | string;
    }
  | { type: "delete"; key: KvKey }
  /**
   * `value`: a KvU64, or a number or plain bigint (a V8 sum; see the README's mutation table).
   * A number or bigint sum takes bounds of its own type: a result below `min` or above `max`
   * fails the commit (`OUT_OF_RANGE`), or with `clamp` becomes that bound.
   */
  | {
      type: "sum";
      key: KvKey;
      value: KvU64 | bigint | number;
      min?: bigint | number;
      max?: bigint | number;
      clamp?: boolean;
    }
  | { type: "min" | "max"; key: KvKey; value: KvU64 | bigint | number }
  | { type: "append" | "prepend"; key: KvKey; value: readonly unknown[] };

/** The TTL from `expireIn` (Deno) or `expiresIn` (seed), in ms. */
export function expiryOf(options: KvSetOptions | undefined): number | undefined {
  const duration = options?.expireIn ?? options?.expiresIn;
  return duration === undefined ? undefined : parseDuration(duration, "expireIn");
}

/**
 * Encodes a set's value; `resolveNow` when it holds `kv.now()` placeholders (or the seed's
 * `{ "$now": true }` objects), which the database replaces with its time at commit.
 */
export function encodeSetValue(value: unknown): { value: EncodedValue; resolveNow: boolean } {
  const { value: stored, placeholders } = withPlaceholders(value);
  return { value: encodeValueChecked(stored), resolveNow: placeholders };
}

/** Encodes a set's key, resolving a trailing `commitVersionstamp`. */
export function encodeSetKey(key: KvWriteKey): { key: Uint8Array; suffixVersionstamp: boolean } {
  const suffixVersionstamp =
    Array.isArray(key) && key.length > 0 && key[key.length - 1] === commitVersionstamp;
  if (!suffixVersionstamp) return { key: encodeWriteKey(key as KvKey), suffixVersionstamp };
  const encoded = checkKeySize(
    encodeKey(key.slice(0, -1) as KvKey),
    "write",
    VERSIONSTAMP_PART_BYTES,
  );
  return { key: encoded, suffixVersionstamp };
}

function operand(type: "sum" | "min" | "max", value: unknown): EncodedValue {
  if (typeof value === "bigint") return encodeValueChecked(new KvU64(value));
  if (value instanceof KvU64 || (typeof value === "number" && Number.isFinite(value)))
    return encodeValueChecked(value);
  throw new KvError(
    "INVALID_ARGUMENT",
    `The operand of '${type}' must be a bigint, KvU64 or finite number`,
  );
}

/**
 * Checks and mutations applied together or not at all. `commit()` resolves `{ ok: true,
 * versionstamp }`, or `{ ok: false }` when a check failed; it rejects with a `KvError` for bad
 * input, exceeded limits, or a mutation that cannot apply (`TYPE_MISMATCH`), with nothing applied.
 */
export class AtomicOperation {
  readonly #database: () => Database;
  readonly #checks: Check[] = [];
  readonly #mutations: Mutation[] = [];

  /** @internal Use `kv.atomic()`. */
  constructor(database: () => Database) {
    this.#database = database;
  }

  check(...checks: AtomicCheck[]): this {
    for (const check of checks) {
      const key = encodeReadKey(check.key);
      const { versionstamp } = check;
      if (versionstamp !== null && !isVersionstamp(versionstamp)) {
        throw new KvError(
          "INVALID_ARGUMENT",
          "Invalid versionstamp: expected null or 20 lowercase hex characters",
        );
      }
      this.#checks.push({ key, versionstamp });
    }
    return this;
  }

  mutate(...mutations: KvMutation[]): this {
    for (const m of mutations) {
      switch (m?.type) {
        case "set":
          this.set(m.key, m.value, m);
          break;
        case "delete":
          if ("value" in m && m.value !== undefined) {
            throw new KvError("INVALID_ARGUMENT", "Invalid mutation 'delete' with value");
          }
          this.delete(m.key);
          break;
        case "sum":
        case "min":
        case "max":
        case "append":
        case "prepend":
          if (!Object.hasOwn(m, "value")) {
            throw new KvError("INVALID_ARGUMENT", `Invalid mutation '${m.type}' without value`);
          }
          // Unlike the builder methods, a plain bigint stays a bigint here (Deno's V8 sum).
          if (m.type === "append" || m.type === "prepend") this[m.type](m.key, m.value);
          else if (m.type === "sum") this.#sum(m);
          else this.#readModifyWrite(m.type, m.key, encodeValueChecked(m.value));
          break;
        default:
          throw new KvError(
            "INVALID_ARGUMENT",
            `Invalid mutation type ${JSON.stringify((m as unknown as { type?: unknown })?.type)}: expected set, delete, sum, min, max, append or prepend`,
          );
      }
    }
    return this;
  }

  set(key: KvWriteKey, value: unknown, options?: KvSetOptions): this {
    const target = encodeSetKey(key);
    const encoded = encodeSetValue(value);
    const expireIn = expiryOf(options);
    this.#mutations.push({
      type: "set",
      key: target.key,
      value: encoded.value,
      suffixVersionstamp: target.suffixVersionstamp,
      resolveNow: encoded.resolveNow,
      expireIn,
    });
    return this;
  }

  /** Deletes exactly `key` (not its children). */
  delete(key: KvKey): this {
    this.#mutations.push({ type: "delete", key: encodeWriteKey(key) });
    return this;
  }

  /** Adds `n`: a bigint is taken as a `KvU64` (wrapping modulo 2^64), a number sums as a number. */
  sum(key: KvKey, n: KvU64 | bigint | number): this {
    return this.#readModifyWrite("sum", key, operand("sum", n));
  }

  min(key: KvKey, n: KvU64 | bigint | number): this {
    return this.#readModifyWrite("min", key, operand("min", n));
  }

  max(key: KvKey, n: KvU64 | bigint | number): this {
    return this.#readModifyWrite("max", key, operand("max", n));
  }

  /** Appends `items` to the array stored at `key` (a missing key takes `items`). */
  append(key: KvKey, items: readonly unknown[]): this {
    return this.#readModifyWrite("append", key, this.#array("append", items));
  }

  prepend(key: KvKey, items: readonly unknown[]): this {
    return this.#readModifyWrite("prepend", key, this.#array("prepend", items));
  }

  /** Adds `value` to the queue if, and only if, this operation commits. */
  enqueue(value: unknown, options?: KvEnqueueOptions): this {
    this.#mutations.push(enqueueMutation(value, options));
    return this;
  }

  #array(type: string, items: readonly unknown[]): EncodedValue {
    if (!Array.isArray(items))
      throw new KvError("INVALID_ARGUMENT", `${type} value must be an array`);
    return encodeValueChecked(items);
  }

  #sum(m: Extract<KvMutation, { type: "sum" }>): void {
    const { value } = m;
    if (!(value instanceof KvU64) && typeof value !== "bigint" && typeof value !== "number") {
      throw new KvError(
        "INVALID_ARGUMENT",
        "The operand of 'sum' must be a bigint, KvU64 or number",
      );
    }
    const encoded = encodeValueChecked(value);
    if (m.clamp !== undefined && typeof m.clamp !== "boolean")
      throw new KvError("INVALID_ARGUMENT", "clamp must be a boolean");
    const bounds = sumBounds(encoded, m.min, m.max, m.clamp === true);
    this.#mutations.push({ type: "sum", key: encodeWriteKey(m.key), value: encoded, bounds });
  }

  #readModifyWrite(
    type: "sum" | "min" | "max" | "append" | "prepend",
    key: KvKey,
    value: EncodedValue,
  ): this {
    this.#mutations.push({ type, key: encodeWriteKey(key), value });
    return this;
  }

  async commit(): Promise<KvCommitResult | KvCommitError> {
    const commit = { checks: this.#checks, mutations: this.#mutations };
    const result = await this.#database().commit(checkCommit(commit));
    return result.ok ? { ok: true, versionstamp: result.versionstamp } : { ok: false };
  }
}
