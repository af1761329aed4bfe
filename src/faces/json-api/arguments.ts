/**
 * What the JSON API's routes read from bodies and query strings, checked once: JSON objects with
 * known fields, limits, enqueue arguments, and entries written back as tagged JSON.
 */
import { parseDuration } from "../../codec/duration.js";
import type { KvEnqueueOptions } from "../../kv/queue.js";
import type { KvEntryMaybe } from "../../kv/types.js";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import { fromTagged, keyFromJson, keyToJson, toTagged } from "../../protocol/tagged-json.js";
import { show } from "../../protocol/where-filter.js";
import { fields } from "../http-io.js";

/** The arguments of `kv.enqueue` from `{ value, options?: { delay, backoffSchedule, keysIfUndelivered } }`. */
export function enqueueArguments(value: unknown, what = "The body"): [unknown, KvEnqueueOptions] {
  const b = fields(value, ["value", "options"], what);
  if (!("value" in b)) throw new KvError("INVALID_ARGUMENT", `${what} needs a value to enqueue`);
  const options =
    b.options === undefined || b.options === null
      ? {}
      : fields(b.options, ["delay", "backoffSchedule", "keysIfUndelivered"], `${what}'s options`);
  const present = (v: unknown) => v !== undefined && v !== null;
  const list = (v: unknown, name: string, of: string) => {
    if (!present(v)) return undefined;
    if (!Array.isArray(v))
      throw new KvError("INVALID_ARGUMENT", `${name} must be an array of ${of}`);
    return v;
  };
  return [
    fromTagged(b.value),
    {
      delay: present(options.delay) ? parseDuration(options.delay, "delay") : undefined,
      backoffSchedule: list(options.backoffSchedule, "backoffSchedule", "durations")?.map((d) =>
        parseDuration(d, "backoffSchedule"),
      ),
      keysIfUndelivered: list(options.keysIfUndelivered, "keysIfUndelivered", "keys")?.map((k, i) =>
        keyFromJson(k, `keysIfUndelivered[${i}]`),
      ),
    },
  ];
}

/** An entry as JSON, its key and value tagged (protocol/tagged-json.ts). */
export const entryToJson = (e: KvEntryMaybe) => ({
  key: keyToJson(e.key),
  value: toTagged(e.value),
  versionstamp: e.versionstamp,
});

/** A list limit from a body or query: default 100, capped at 1000, a positive integer. */
export function limitOf(value: unknown): number {
  if (value === undefined || value === null || value === "") return limits.defaultListLimit;
  // Only numbers and their text: Number() of a deeply nested array overflows the stack.
  const n = typeof value === "number" || typeof value === "string" ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n <= 0) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `limit must be a positive integer: received ${show(value)}`,
    );
  }
  return Math.min(n, limits.maxListLimit);
}
