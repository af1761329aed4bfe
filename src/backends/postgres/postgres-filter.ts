/**
 * Compiles a filter tree (backends/filter.ts) to a PostgreSQL boolean expression over `d.doc`, the
 * row's JSON value as `jsonb` (NULL for the other encodings), with the same semantics as the
 * SQLite compiler. Everything the filter holds is a bound parameter, field paths included (as SQL/
 * JSON paths in strict mode, so `."0"` never selects an array element); only fixed SQL is spliced.
 *
 * Every test is two-valued (never NULL) so that `NOT` is the exact complement: each is wrapped in
 * `coalesce(…, <its value for a missing field>)`. Strings compare in code point order
 * (`COLLATE "C"`, UTF-8), and case folding is ASCII-only (`translate`), as in SQLite.
 */
import { ValueEncoding } from "../../codec/value-codec.js";
import type { FieldPath, Filter, Operand } from "../filter.js";
import { matchesAll } from "../filter.js";

export interface CompiledFilter {
  readonly sql: string;
  readonly params: unknown[];
}

/** The JSON value of a row, once per row: `FROM kv, ${DOC}`. */
export const DOC = `LATERAL (SELECT CASE WHEN kv.encoding = ${ValueEncoding.JSON} THEN kv.text::jsonb END AS doc) d`;

/** The SQL/JSON path of `path`: `strict $."a"[0]."b"`. */
export function jsonPath(path: FieldPath): string {
  let out = "strict $";
  for (const part of path) {
    out +=
      typeof part === "number" ? `[${part}]` : `."${part.replaceAll(/["\\]/g, (c) => `\\${c}`)}"`;
  }
  return out;
}

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";

function join(parts: string[], op: "AND" | "OR", empty: string): string {
  if (parts.length === 0) return empty;
  return parts.length === 1 ? parts[0]! : `(${parts.join(` ${op} `)})`;
}

class Compiler {
  readonly params: unknown[] = [];
  readonly #first: number;
  readonly #now: number;

  constructor(first: number, now: number) {
    this.#first = first;
    this.#now = now;
  }

  #param(value: unknown, cast = ""): string {
    this.params.push(value);
    return `$${this.#first + this.params.length - 1}${cast}`;
  }

  /** The field, as jsonb; NULL when the path leads nowhere. */
  #field(path: FieldPath): string {
    return `jsonb_path_query_first(d.doc, ${this.#param(jsonPath(path), "::jsonpath")}, '{}', true)`;
  }

  #resolve(v: Operand): string | number | boolean | null {
    return typeof v === "object" && v !== null ? this.#now + v.offset : v;
  }

  /** The field has the operand's type and equals it (`null`: missing or JSON null). */
  #equals(path: FieldPath, operand: Operand): string {
    const v = this.#resolve(operand);
    if (v === null) return `coalesce(jsonb_typeof(${this.#field(path)}) = 'null', true)`;
    // jsonb equality: same type, numbers numerically, strings exactly. The operand travels as
    // JSON text, so that the driver does not type it.
    const json = this.#param(JSON.stringify(v), "::text::jsonb");
    return `coalesce(${this.#field(path)} = ${json}, false)`;
  }

  /** The field is a number (or a string, for string operands) and `field <test>`. */
  #ordered(path: FieldPath, value: string | number, test: (field: string) => string): string {
    const field = this.#field(path);
    // CASE, not AND: PostgreSQL may evaluate AND's sides in any order, and the cast fails on non-numbers.
    const typed =
      typeof value === "number"
        ? `CASE WHEN jsonb_typeof(${field}) = 'number' THEN (${field})::numeric END`
        : `CASE WHEN jsonb_typeof(${field}) = 'string' THEN (${field} #>> '{}') COLLATE "C" END`;
    return `coalesce(${test(typed)}, false)`;
  }

  #ordinal(v: string | number): string {
    return typeof v === "number" ? this.#param(v, "::numeric") : this.#param(v, "::text");
  }

  #text(f: Extract<Filter, { kind: "text" }>): string {
    const fold = (sql: string) =>
      f.caseInsensitive ? `translate(${sql}, '${UPPER}', '${LOWER}')` : sql;
    const field = this.#field(f.path);
    const string = `(${field} #>> '{}')`;
    const value = fold(this.#param(f.value, "::text"));
    const isString = `jsonb_typeof(${field}) = 'string'`;
    switch (f.match) {
      case "contains": {
        const inString = `(${isString} AND strpos(${fold(string)}, ${value}) > 0)`;
        const elements = `jsonb_array_elements(CASE WHEN jsonb_typeof(${field}) = 'array' THEN ${field} ELSE '[]' END)`;
        const element = `EXISTS (SELECT 1 FROM ${elements} e WHERE jsonb_typeof(e) = 'string' AND ${fold("(e #>> '{}')")} = ${value})`;
        return `coalesce(${inString} OR ${element}, false)`;
      }
      case "startsWith":
        return `coalesce(${isString} AND starts_with(${fold(string)}, ${value}), false)`;
      case "endsWith":
        return `coalesce(${isString} AND right(${fold(string)}, length(${value})) = ${value}, false)`;
    }
  }

  compile(f: Filter): string {
    switch (f.kind) {
      case "and":
        return join(
          f.filters.map((c) => this.compile(c)),
          "AND",
          "true",
        );
      case "or":
        return join(
          f.filters.map((c) => this.compile(c)),
          "OR",
          "false",
        );
      case "not":
        return `NOT (${this.compile(f.filter)})`;
      case "eq": {
        const test = this.#equals(f.path, f.value);
        return f.negate ? `NOT (${test})` : test;
      }
      case "compare": {
        const v = this.#resolve(f.value) as string | number;
        const op = { gt: ">", gte: ">=", lt: "<", lte: "<=" }[f.op];
        return this.#ordered(f.path, v, (field) => `${field} ${op} ${this.#ordinal(v)}`);
      }
      case "between": {
        const low = this.#resolve(f.low) as string | number;
        const high = this.#resolve(f.high) as string | number;
        return this.#ordered(
          f.path,
          low,
          (field) => `${field} BETWEEN ${this.#ordinal(low)} AND ${this.#ordinal(high)}`,
        );
      }
      case "in": {
        // One look at the field for the whole list: an IN over the operands as one jsonb array.
        const values = f.values.map((v) => this.#resolve(v));
        const present = values.filter((v) => v !== null);
        const tests: string[] = [];
        if (values.length > present.length) tests.push(this.#equals(f.path, null));
        if (present.length > 0) {
          const list = this.#param(JSON.stringify(present), "::text::jsonb");
          tests.push(
            `coalesce(${this.#field(f.path)} IN (SELECT jsonb_array_elements(${list})), false)`,
          );
        }
        const test = join(tests, "OR", "false");
        return f.negate ? `NOT (${test})` : test;
      }
      case "text": {
        const test = this.#text(f);
        return f.negate ? `NOT (${test})` : test;
      }
      case "null": {
        const test = `coalesce(jsonb_typeof(${this.#field(f.path)}) = 'null', true)`;
        return f.negate ? `NOT (${test})` : test;
      }
      case "empty": {
        const field = this.#field(f.path);
        const test = `coalesce(jsonb_typeof(${field}) = 'null' OR ${field} IN ('""', '[]', '{}'), true)`;
        return f.negate ? `NOT (${test})` : test;
      }
    }
  }
}

/**
 * The filter as a condition on `d.doc` (see `DOC`), its parameters numbered from `$first`,
 * server-time operands resolved to `now`; `undefined` when it matches everything. Values not
 * stored as JSON never match.
 */
export function compileFilter(
  filter: Filter,
  now: number,
  first: number,
): CompiledFilter | undefined {
  if (matchesAll(filter)) return undefined;
  const compiler = new Compiler(first, now);
  const test = compiler.compile(filter);
  return { sql: `(d.doc IS NOT NULL AND ${test})`, params: compiler.params };
}
