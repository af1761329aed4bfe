/**
 * The walk over a filter tree (filter.ts) that both SQL backends' filter compilers share: the
 * tree's `and`, `or` and `not`, negated tests, the comparison operators, and server-time operands
 * resolved to `now`. A backend's compiler (sqlite/sqlite-filter.ts, postgres/postgres-filter.ts)
 * writes each test in its SQL, pushing the test's parameters to `params` in the order its SQL
 * text uses them.
 */
import type { FieldPath, Filter, Operand } from "./filter.js";

/** An operand with a server-time offset resolved to epoch ms. */
export type Resolved = string | number | boolean | null;

/**
 * `path` as a JSON path (SQLite's, or PostgreSQL's SQL/JSON path) that starts with `root`:
 * `$."a"[0]."b"`, names quoted, so that `."0"` is never an array element.
 */
export function jsonPathFrom(root: string, path: FieldPath): string {
  let out = root;
  for (const part of path) {
    out +=
      typeof part === "number" ? `[${part}]` : `."${part.replaceAll(/["\\]/g, (c) => `\\${c}`)}"`;
  }
  return out;
}

const OPERATORS = { gt: ">", gte: ">=", lt: "<", lte: "<=" } as const;

const negated = (negate: boolean, test: string) => (negate ? `NOT (${test})` : test);

export abstract class FilterCompiler {
  readonly params: unknown[] = [];
  readonly #now: number;

  constructor(now: number) {
    this.#now = now;
  }

  /** `parts` joined by `op`; with no parts, true for `AND` and false for `OR`. */
  protected abstract join(parts: string[], op: "AND" | "OR"): string;

  /** The field has `value`'s type and equals it (`null`: the field is missing or null). */
  protected abstract equals(path: FieldPath, value: Resolved): string;

  /** The field equals one of `values` (none: false). */
  protected abstract oneOf(path: FieldPath, values: readonly Resolved[]): string;

  /** The field is a number (`numeric`) or else a string, and `test(field)` holds. */
  protected abstract ordered(
    path: FieldPath,
    numeric: boolean,
    test: (field: string) => string,
  ): string;

  /** A parameter for `value`, compared with a field in `ordered`. */
  protected abstract ordinal(value: string | number): string;

  /** A `text` test, without its negation. */
  protected abstract text(f: Extract<Filter, { kind: "text" }>): string;

  /** The field is missing or null. */
  protected abstract isNull(path: FieldPath): string;

  /** The field is missing, null, `""`, `[]` or `{}`. */
  protected abstract isEmpty(path: FieldPath): string;

  compile(f: Filter): string {
    switch (f.kind) {
      case "and":
        return this.join(
          f.filters.map((c) => this.compile(c)),
          "AND",
        );
      case "or":
        return this.join(
          f.filters.map((c) => this.compile(c)),
          "OR",
        );
      case "not":
        return `NOT (${this.compile(f.filter)})`;
      case "eq":
        return negated(f.negate, this.equals(f.path, this.#resolve(f.value)));
      case "compare": {
        const v = this.#resolve(f.value) as string | number;
        const op = OPERATORS[f.op];
        return this.ordered(
          f.path,
          typeof v === "number",
          (field) => `${field} ${op} ${this.ordinal(v)}`,
        );
      }
      case "between": {
        const low = this.#resolve(f.low) as string | number;
        const high = this.#resolve(f.high) as string | number;
        return this.ordered(
          f.path,
          typeof low === "number",
          (field) => `${field} BETWEEN ${this.ordinal(low)} AND ${this.ordinal(high)}`,
        );
      }
      case "in":
        return negated(
          f.negate,
          this.oneOf(
            f.path,
            f.values.map((v) => this.#resolve(v)),
          ),
        );
      case "text":
        return negated(f.negate, this.text(f));
      case "null":
        return negated(f.negate, this.isNull(f.path));
      case "empty":
        return negated(f.negate, this.isEmpty(f.path));
    }
  }

  #resolve(v: Operand): Resolved {
    return typeof v === "object" && v !== null ? this.#now + v.offset : v;
  }
}
