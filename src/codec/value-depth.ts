/**
 * How deeply a value nests: arrays, objects, Maps and Sets each add a level (`[[1]]` is 2 deep, a
 * scalar 0). Values deeper than `limits.maxValueDepth` are refused where they enter, so every
 * reader, recursive ones included, can walk what is stored.
 */
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { KvV8Value } from "./kv-v8-value.js";

export function tooDeep(): KvError {
  return new KvError(
    "VALUE_TOO_DEEP",
    `The value nests arrays and objects more than ${limits.maxValueDepth} levels deep`,
  );
}

/** Objects whose contents do not nest further (they are stored as bytes or text). */
const isLeaf = (v: object) =>
  ArrayBuffer.isView(v) ||
  v instanceof ArrayBuffer ||
  v instanceof Date ||
  v instanceof RegExp ||
  v instanceof KvV8Value;

/**
 * `VALUE_TOO_DEEP` when `value` nests deeper than `maxValueDepth`. Walked without recursion, each
 * object once, so cycles (which structured cloning allows) end the walk.
 */
export function assertValueDepth(value: unknown, max: number = limits.maxValueDepth): void {
  if (typeof value !== "object" || value === null) return;
  const seen = new Set<object>();
  const pending: [object, number][] = [[value, 1]];
  const visit = (child: unknown, depth: number) => {
    if (typeof child === "object" && child !== null && !seen.has(child)) {
      pending.push([child, depth]);
    }
  };
  while (pending.length > 0) {
    const [v, depth] = pending.pop()!;
    if (seen.has(v) || isLeaf(v)) continue;
    if (depth > max) throw tooDeep();
    seen.add(v);
    if (Array.isArray(v)) for (const item of v) visit(item, depth + 1);
    else if (v instanceof Map) {
      for (const [k, item] of v) {
        visit(k, depth + 1);
        visit(item, depth + 1);
      }
    } else if (v instanceof Set) for (const item of v) visit(item, depth + 1);
    else for (const item of Object.values(v)) visit(item, depth + 1);
  }
}
