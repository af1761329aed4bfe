/**
 * Server time: `kv.now()` is a placeholder for the database's clock, resolved where the query or
 * commit runs (never on the caller's machine), to epoch milliseconds plus an offset.
 *
 * In stored values a placeholder travels as the plain object `{ "$now": true, "$offset": ms }`
 * (the Buntime client writes `offset`, its server read `$offset`: both are accepted) and the engine
 * replaces every such object with the number `now + offset` at commit time.
 */

import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { type Duration, parseDuration } from "./duration.js";

const BRAND = Symbol.for("kv.now");

/** The server's current time plus `offset` milliseconds; `add` and `sub` return new placeholders. */
export class KvNow {
  readonly [BRAND] = true;
  /** Milliseconds added to the server's clock (negative: earlier). */
  readonly offset: number;

  constructor(offset = 0) {
    this.offset = offset;
  }

  add(duration: Duration): KvNow {
    return new KvNow(this.offset + parseDuration(duration, "now().add()"));
  }

  sub(duration: Duration): KvNow {
    return new KvNow(this.offset - parseDuration(duration, "now().sub()"));
  }

  /** The Buntime client's wire form. */
  toJSON(): { $now: true; offset: number } {
    return { $now: true, offset: this.offset };
  }
}

export function isKvNow(value: unknown): value is KvNow {
  return (
    value instanceof KvNow ||
    (typeof value === "object" &&
      value !== null &&
      (value as { [BRAND]?: unknown })[BRAND] === true)
  );
}

/**
 * The offset of a `{ "$now": true, "offset" | "$offset"?: ms }` object, `undefined` for anything
 * else (including objects with other fields). A non-finite offset is `INVALID_ARGUMENT`.
 */
export function placeholderOffset(value: unknown): number | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const object = value as Record<string, unknown>;
  if (object.$now !== true) return undefined;
  for (const k in object) if (k !== "$now" && k !== "offset" && k !== "$offset") return undefined;
  const offset = object.$offset ?? object.offset ?? 0;
  if (typeof offset !== "number" || !Number.isFinite(offset)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `The offset of a { "$now": true } placeholder must be a finite number of milliseconds; got ${JSON.stringify(offset)}`,
    );
  }
  return offset;
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * `value` with every `KvNow` turned into a placeholder object, and whether it holds any
 * placeholder (also one given as a plain `{ "$now": true }` object). Looks inside arrays and
 * plain objects only; returns `value` itself when there is nothing to replace.
 */
export function withPlaceholders(value: unknown): { value: unknown; placeholders: boolean } {
  let placeholders = false;
  // A value within the size limit has fewer objects; the count keeps one that reaches an object
  // along many paths (cycles, shared parts) from taking exponential time.
  let objectsLeft = limits.maxValueBytes / 2;
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v !== "object" || v === null || depth > 64 || --objectsLeft < 0) return v;
    if (isKvNow(v)) {
      placeholders = true;
      return { $now: true, $offset: v.offset };
    }
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const item = walk(v[i], depth + 1);
        if (item !== v[i]) {
          out ??= [...v];
          out[i] = item;
        }
      }
      return out ?? v;
    }
    if (!isPlain(v)) return v;
    if (placeholderOffset(v) !== undefined) {
      placeholders = true;
      return v;
    }
    let out: Record<string, unknown> | undefined;
    for (const k in v) {
      const item = (v as Record<string, unknown>)[k];
      const replaced = walk(item, depth + 1);
      if (replaced !== item) {
        out ??= { ...(v as Record<string, unknown>) };
        out[k] = replaced;
      }
    }
    return out ?? v;
  };
  const result = walk(value, 0);
  return { value: result, placeholders };
}

/** `value` (decoded) with every placeholder object replaced by `now + offset`. */
export function resolvePlaceholders(value: unknown, now: number): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => resolvePlaceholders(item, now));
  if (!isPlain(value)) return value;
  const offset = placeholderOffset(value);
  if (offset !== undefined) return now + offset;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = resolvePlaceholders(v, now);
  return out;
}
