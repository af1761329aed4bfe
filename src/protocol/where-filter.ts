/**
 * Where filters as users write them (the Buntime seed's syntax), validated once into the filter
 * tree the storage contract carries (backends/filter.ts), and written back for the wire.
 *
 *   { status: "active" }                          shorthand for { status: { $eq: "active" } }
 *   { age: { $gte: 18, $lt: 65 } }                several operators on one field: all must hold
 *   { "profile.verified": true, "items[0].price": { $gt: 100 } }   nested paths
 *   { profile: { verified: true } }               the same as "profile.verified" (no `$` keys)
 *   { $and: [...], $or: [...], $not: {...} }      logic; several fields in one object: all must hold
 *
 * Operators: `$eq $ne $gt $gte $lt $lte $between $in $nin $contains $notContains $startsWith
 * $endsWith` and `$containsi $notContainsi $startsWithi $endsWithi`, `$null $empty $notEmpty`.
 * Operands are strings, finite numbers, booleans, null and server time (`kv.now()`, or on the wire
 * `{ "$now": true, "offset" | "$offset": ms }`). Anything else is `INVALID_FILTER`, naming where.
 */
import { isKvNow, placeholderOffset } from "../codec/server-time.js";
import type { FieldPath, Filter, Operand, OrderedOperand } from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";

/** A where filter as the SDK takes it: field conditions by path, and `$and` / `$or` / `$not`. */
export type KvWhere = {
  readonly $and?: readonly KvWhere[];
  readonly $or?: readonly KvWhere[];
  readonly $not?: KvWhere;
} & { readonly [field: string]: unknown };

const TEXT_OPERATORS = {
  $contains: ["contains", false, false],
  $notContains: ["contains", false, true],
  $startsWith: ["startsWith", false, false],
  $endsWith: ["endsWith", false, false],
  $containsi: ["contains", true, false],
  $notContainsi: ["contains", true, true],
  $startsWithi: ["startsWith", true, false],
  $endsWithi: ["endsWith", true, false],
} as const;

const OPERATORS = [
  "$eq",
  "$ne",
  "$gt",
  "$gte",
  "$lt",
  "$lte",
  "$between",
  "$in",
  "$nin",
  ...Object.keys(TEXT_OPERATORS),
  "$null",
  "$empty",
  "$notEmpty",
];

function fail(at: string, message: string): never {
  throw new KvError("INVALID_FILTER", `Invalid where filter at ${at}: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * `value` for an error message: its JSON, cut to 80 characters. Never throws, whatever a request
 * sent (JSON.stringify overflows its stack on values nested some thousands deep).
 */
export function show(value: unknown): string {
  let text: string | undefined;
  try {
    text = typeof value === "bigint" ? `${value}n` : JSON.stringify(value);
  } catch {
    // Too deep for JSON.stringify's stack: the message names the kind of value only.
  }
  text ??= Array.isArray(value)
    ? "an array"
    : typeof value === "object"
      ? "an object"
      : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// Field names are bound as parameters, never spliced into SQL, but a narrow alphabet keeps every
// backend's path syntax trivial and turns injection attempts into a clear error.
const NAME = /([\p{L}\p{M}\p{N}_$@: -]+)/uy;
const INDEX = /\[(0|[1-9]\d{0,8})\]/y;

/** Parses one field path: `a`, `a.b`, `items[0].price`, `[2]`. */
export function parsePath(text: string, at: string): FieldPath {
  if (text.length === 0) fail(at, "a field path cannot be empty");
  if (text.length > limits.maxFilterPathLength) {
    fail(at, `a field path may have at most ${limits.maxFilterPathLength} characters`);
  }
  const parts: (string | number)[] = [];
  let i = 0;
  let malformed = false;
  while (i < text.length && !malformed) {
    const pattern = text[i] === "[" ? INDEX : NAME;
    if (pattern === NAME && parts.length > 0) {
      if (text[i] !== ".") break;
      i++;
    }
    pattern.lastIndex = i;
    const m = pattern.exec(text);
    if (m) parts.push(pattern === INDEX ? Number(m[1]) : m[1]!);
    else malformed = true;
    i = pattern.lastIndex;
  }
  if (malformed || i < text.length) {
    fail(
      at,
      `malformed field path ${JSON.stringify(text)}: write names separated by dots and array indexes in brackets, e.g. "profile.name" or "items[0].price"; names may hold letters, digits, spaces and _ - $ @ :`,
    );
  }
  if (parts.length > limits.maxFilterPathParts) {
    fail(at, `a field path may have at most ${limits.maxFilterPathParts} parts`);
  }
  return parts;
}

/** Writes a path back so that `parsePath` reads it as the same parts. */
export function formatPath(path: FieldPath): string {
  return path
    .map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join("");
}

/** The offset of a `{ "$now": true, … }` object, `undefined` for other values. */
function nowOffset(value: unknown, at: string): number | undefined {
  try {
    return placeholderOffset(value);
  } catch (e) {
    return fail(at, (e as Error).message);
  }
}

function operand(value: unknown, at: string): Operand {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) fail(at, `a number operand must be finite, not ${value}`);
      return value;
    case "bigint":
      fail(
        at,
        `bigint operands are not supported (${value}n): values holding bigints are not stored as JSON and never match; store and compare numbers`,
      );
  }
  if (value === null) return null;
  if (isKvNow(value)) return { now: true, offset: value.offset };
  const offset = nowOffset(value, at);
  if (offset !== undefined) return { now: true, offset };
  if (value instanceof Date) {
    fail(at, "Date operands are not supported: store and compare epoch ms, e.g. date.getTime()");
  }
  return fail(
    at,
    `an operand must be a string, a finite number, a boolean, null or kv.now(); got ${show(value)}`,
  );
}

function ordered(value: unknown, at: string): OrderedOperand {
  const v = operand(value, at);
  if (v === null || typeof v === "boolean") {
    fail(at, `this operator compares numbers, strings or kv.now(); got ${show(v)}`);
  }
  return v;
}

const typeOf = (v: OrderedOperand) => (typeof v === "string" ? "string" : "number");

class Parser {
  #terms = 0;

  #term(at: string, count = 1): void {
    this.#terms += count;
    if (this.#terms > limits.maxFilterTerms) {
      fail(at, `a filter may have at most ${limits.maxFilterTerms} conditions and $in values`);
    }
  }

  /** A filter object: field conditions and `$and` / `$or` / `$not`, all of which must hold. */
  object(value: unknown, at: string, depth: number): Filter {
    if (depth > limits.maxFilterDepth) {
      fail(at, `filters may nest at most ${limits.maxFilterDepth} levels deep`);
    }
    if (!isPlainObject(value)) {
      fail(at, `a filter must be an object such as { "status": "active" }; got ${show(value)}`);
    }
    const filters: Filter[] = [];
    for (const [key, v] of Object.entries(value)) {
      const here = `${at}.${key}`;
      if (key === "$and" || key === "$or") {
        if (!Array.isArray(v)) fail(here, `${key} takes an array of filters`);
        filters.push({
          kind: key === "$and" ? "and" : "or",
          filters: v.map((f, i) => this.object(f, `${here}[${i}]`, depth + 1)),
        });
      } else if (key === "$not") {
        filters.push({ kind: "not", filter: this.object(v, here, depth + 1) });
      } else if (key.startsWith("$")) {
        fail(
          here,
          `unknown operator ${JSON.stringify(key)}: a filter object holds field names and $and, $or, $not; field operators (${OPERATORS.join(" ")}) go inside a field, e.g. { "age": { "$gt": 18 } }`,
        );
      } else {
        filters.push(...this.#field(parsePath(key, here), v, here, depth));
      }
    }
    return filters.length === 1 ? filters[0]! : { kind: "and", filters };
  }

  #field(path: FieldPath, value: unknown, at: string, depth: number): Filter[] {
    if (isPlainObject(value) && nowOffset(value, at) === undefined) {
      const keys = Object.keys(value);
      const operators = keys.filter((k) => k.startsWith("$"));
      if (operators.length === 0) {
        // A nested object without operators: conditions on the fields inside.
        if (depth + 1 > limits.maxFilterDepth) {
          fail(at, `filters may nest at most ${limits.maxFilterDepth} levels deep`);
        }
        return keys.flatMap((k) =>
          this.#field([...path, ...parsePath(k, `${at}.${k}`)], value[k], `${at}.${k}`, depth + 1),
        );
      }
      if (operators.length !== keys.length) {
        fail(
          at,
          `an object mixes operators with field names (${keys.join(", ")}); write nested fields as "a.b" or in their own object`,
        );
      }
      return operators.map((op) => this.#operator(path, op, value[op], `${at}.${op}`));
    }
    if (Array.isArray(value)) {
      fail(
        at,
        "an array cannot be matched by equality; use { $in: [...] } to match one of several values",
      );
    }
    this.#term(at);
    return [{ kind: "eq", path, value: operand(value, at), negate: false }];
  }

  #operator(path: FieldPath, op: string, value: unknown, at: string): Filter {
    this.#term(at);
    switch (op) {
      case "$eq":
      case "$ne":
        return { kind: "eq", path, value: operand(value, at), negate: op === "$ne" };
      case "$gt":
      case "$gte":
      case "$lt":
      case "$lte":
        return {
          kind: "compare",
          path,
          op: op.slice(1) as "gt" | "gte" | "lt" | "lte",
          value: ordered(value, at),
        };
      case "$between": {
        if (!Array.isArray(value) || value.length !== 2) {
          fail(at, `$between takes [low, high]; got ${show(value)}`);
        }
        const low = ordered(value[0], `${at}[0]`);
        const high = ordered(value[1], `${at}[1]`);
        if (typeOf(low) !== typeOf(high)) {
          fail(at, "the bounds of $between must both be numbers (or kv.now()) or both strings");
        }
        return { kind: "between", path, low, high };
      }
      case "$in":
      case "$nin": {
        if (!Array.isArray(value)) fail(at, `${op} takes an array of values; got ${show(value)}`);
        this.#term(at, value.length);
        return {
          kind: "in",
          path,
          values: value.map((v, i) => operand(v, `${at}[${i}]`)),
          negate: op === "$nin",
        };
      }
      case "$null":
      case "$empty":
      case "$notEmpty": {
        if (typeof value !== "boolean") fail(at, `${op} takes true or false; got ${show(value)}`);
        const kind = op === "$null" ? "null" : "empty";
        return { kind, path, negate: op === "$notEmpty" ? value : !value };
      }
    }
    const text = TEXT_OPERATORS[op as keyof typeof TEXT_OPERATORS];
    if (text === undefined) {
      fail(at, `unknown operator ${JSON.stringify(op)}; the operators are ${OPERATORS.join(" ")}`);
    }
    if (typeof value !== "string") fail(at, `${op} takes a string; got ${show(value)}`);
    const [match, caseInsensitive, negate] = text;
    return { kind: "text", path, match, value, caseInsensitive, negate };
  }
}

/**
 * Validates a where filter into a filter tree; `INVALID_FILTER` naming the first problem.
 * `what` names the filter in messages (e.g. `where`).
 */
export function parseWhere(where: unknown, what = "where"): Filter {
  return new Parser().object(where, what, 0);
}

function operandToWhere(v: Operand): unknown {
  return typeof v === "object" && v !== null ? { $now: true, $offset: v.offset } : v;
}

/** A filter tree as a where filter that `parseWhere` reads back as the same filter (for the wire). */
export function filterToWhere(filter: Filter): Record<string, unknown> {
  const field = (path: FieldPath, op: string, value: unknown) => ({
    [formatPath(path)]: { [op]: value },
  });
  switch (filter.kind) {
    case "and":
      return { $and: filter.filters.map(filterToWhere) };
    case "or":
      return { $or: filter.filters.map(filterToWhere) };
    case "not":
      return { $not: filterToWhere(filter.filter) };
    case "eq":
      return field(filter.path, filter.negate ? "$ne" : "$eq", operandToWhere(filter.value));
    case "compare":
      return field(filter.path, `$${filter.op}`, operandToWhere(filter.value));
    case "between":
      return field(filter.path, "$between", [filter.low, filter.high].map(operandToWhere));
    case "in":
      return field(filter.path, filter.negate ? "$nin" : "$in", filter.values.map(operandToWhere));
    case "null":
      return field(filter.path, "$null", !filter.negate);
    case "empty":
      return field(filter.path, "$empty", !filter.negate);
    case "text": {
      const negatable = filter.match === "contains";
      const name =
        (filter.negate && negatable ? "$notContains" : `$${filter.match}`) +
        (filter.caseInsensitive ? "i" : "");
      const test = field(filter.path, name, filter.value);
      return filter.negate && !negatable ? { $not: test } : test;
    }
  }
}
