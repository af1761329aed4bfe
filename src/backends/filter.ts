/**
 * The filter tree: a validated where filter, as the storage contract carries it. Backends compile
 * it to their own query language (SQLite: `sqlite-filter.ts`); nothing here is SQL. Built only by
 * `parseWhere` (protocol/where-filter.ts), so backends may trust its shape.
 *
 * Semantics every backend implements (the README has the user-facing table):
 *
 * - An empty filter (`and` of nothing, see `matchesAll`) restricts nothing. Any other filter
 *   matches only entries whose value is stored as JSON text: values in another encoding (V8, raw
 *   bytes, KvU64) match no such filter, negated or not.
 * - A `path` selects a value inside the stored JSON: object keys (strings) and array indexes
 *   (non-negative integers), from the top. A path that leads nowhere selects nothing ("missing").
 * - Logic is two-valued: every test is true or false, never unknown, so `not` is the exact
 *   complement and a negated test (`eq` with `negate`, `in` with `negate`, …) matches exactly the
 *   entries the test does not, missing fields included.
 * - Values compare only within their JSON type: numbers with numbers (integers and reals alike),
 *   strings with strings (by Unicode code point), booleans equal booleans only. A field of another
 *   type fails `eq`, `compare`, `between`, `in` and the text tests.
 * - `null` as an `eq`/`in` operand matches a JSON null or a missing field (like the `null` test).
 * - A `now` operand is the server's time at query or commit time plus `offset`, in epoch ms.
 */

/** Object keys and array indexes from the top of the value; never empty. */
export type FieldPath = readonly (string | number)[];

/** Server time: `now + offset` epoch ms, resolved where the filter runs. */
export interface NowOperand {
  readonly now: true;
  readonly offset: number;
}

/** A scalar operand. Numbers are finite. */
export type Operand = string | number | boolean | null | NowOperand;

/** An operand that orders: a number, a string, or server time (a number). */
export type OrderedOperand = string | number | NowOperand;

export type Filter =
  /** True when every filter is (an empty list is true). */
  | { readonly kind: "and"; readonly filters: readonly Filter[] }
  /** True when any filter is (an empty list is false). */
  | { readonly kind: "or"; readonly filters: readonly Filter[] }
  | { readonly kind: "not"; readonly filter: Filter }
  /** The field equals `value` (same JSON type); with `negate`, it does not. */
  | {
      readonly kind: "eq";
      readonly path: FieldPath;
      readonly value: Operand;
      readonly negate: boolean;
    }
  /** The field is of the operand's type and `field <op> value`. */
  | {
      readonly kind: "compare";
      readonly path: FieldPath;
      readonly op: "gt" | "gte" | "lt" | "lte";
      readonly value: OrderedOperand;
    }
  /** `low <= field <= high`; `low` and `high` have the same type (numbers or strings). */
  | {
      readonly kind: "between";
      readonly path: FieldPath;
      readonly low: OrderedOperand;
      readonly high: OrderedOperand;
    }
  /** The field equals one of `values` (an empty list matches nothing); with `negate`, none. */
  | {
      readonly kind: "in";
      readonly path: FieldPath;
      readonly values: readonly Operand[];
      readonly negate: boolean;
    }
  /**
   * A string test. `contains`: the field is a string containing `value`, or an array with a string
   * element equal to `value`. `startsWith` / `endsWith`: the field is a string with that prefix or
   * suffix. `caseInsensitive` folds ASCII letters only. With `negate`, the complement.
   */
  | {
      readonly kind: "text";
      readonly path: FieldPath;
      readonly match: "contains" | "startsWith" | "endsWith";
      readonly value: string;
      readonly caseInsensitive: boolean;
      readonly negate: boolean;
    }
  /** The field is missing or JSON null; with `negate`, present and not null. */
  | { readonly kind: "null"; readonly path: FieldPath; readonly negate: boolean }
  /**
   * The field is missing, null, `""`, `[]` or `{}`; with `negate`, anything else.
   */
  | { readonly kind: "empty"; readonly path: FieldPath; readonly negate: boolean };

/** The filter that matches every entry, whatever its encoding. */
export const MATCH_ALL: Filter = { kind: "and", filters: [] };

/** True for a filter with no conditions (`{}`), which does not restrict anything. */
export function matchesAll(filter: Filter): boolean {
  return filter.kind === "and" && filter.filters.every(matchesAll);
}
