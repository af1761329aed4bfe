import { KvError } from "../kv-error.js";

/** Milliseconds, or a string such as `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"`, `"1w"`, `"1y"`. */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_557_600_000,
};
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?$/;

/** Parses a duration to milliseconds; throws `INVALID_ARGUMENT` naming `what` on anything else. */
export function parseDuration(value: unknown, what = "duration"): number {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return value;
  } else if (typeof value === "string") {
    const m = DURATION.exec(value.trim());
    const ms = m ? Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "ms"]!) : Number.NaN;
    if (Number.isFinite(ms)) return ms; // hundreds of digits overflow to Infinity
  }
  let shown: string;
  try {
    shown = String(value);
  } catch {
    shown = typeof value; // an object without a prototype has no string form
  }
  throw new KvError(
    "INVALID_ARGUMENT",
    `Invalid duration format for ${what}: ${JSON.stringify(shown)}; use milliseconds (e.g. 1000) or a string like "500ms", "30s", "5m", "1h", "7d"`,
  );
}
