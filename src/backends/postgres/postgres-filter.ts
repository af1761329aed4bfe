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
import type { FieldPath, Filter } from "../filter.js";
import { matchesAll } from "../filter.js";
import { FilterCompiler, jsonPathFrom, type Resolved } from "../filter-compiler.js";

export interface CompiledFilter {
  readonly sql: string;
  readonly params: unknown[];
}

/** The JSON value of a row, once per row: `FROM kv, ${DOC}`. */
export const DOC = `LATERAL (SELECT CASE WHEN kv.encoding = ${ValueEncoding.JSON} THEN kv.text::jsonb END AS doc) d`;

/** The SQL/JSON path of `path`: `strict $."a"[0]."b"`. */
export const jsonPath = (path: FieldPath): string => jsonPathFrom("strict $", path);

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";

class Compiler extends FilterCompiler {
  readonly #first: number;

  constructor(first: number, now: number) {
    super(now);
    this.#first = first;
  }

  protected join(parts: string[], op: "AND" | "OR"): string {
    if (parts.length === 0) return op === "AND" ? "true" : "false";
    return parts.length === 1 ? parts[0]! : `(${parts.join(` ${op} `)})`;
  }

  #param(value: unknown, cast = ""): string {
    this.params.push(value);
    return `$${this.#first + this.params.length - 1}${cast}`;
  }

  /** The field, as jsonb; NULL when the path leads nowhere. */
  #field(path: FieldPath): string {
    return `jsonb_path_query_first(d.doc, ${this.#param(jsonPath(path), "::jsonpath")}, '{}', true)`;
  }

  protected equals(path: FieldPath, v: Resolved): string {
    if (v === null) return this.isNull(path);
    // jsonb equality: same type, numbers numerically, strings exactly. The operand travels as
    // JSON text, so that the driver does not type it.
    const json = this.#param(JSON.stringify(v), "::text::jsonb");
    return `coalesce(${this.#field(path)} = ${json}, false)`;
  }

  protected oneOf(path: FieldPath, values: readonly Resolved[]): string {
    // One look at the field for the whole list: an IN over the operands as one jsonb array.
    const present = values.filter((v) => v !== null);
    const tests: string[] = [];
    if (values.length > present.length) tests.push(this.equals(path, null));
    if (present.length > 0) {
      const list = this.#param(JSON.stringify(present), "::text::jsonb");
      tests.push(`coalesce(${this.#field(path)} IN (SELECT jsonb_array_elements(${list})), false)`);
    }
    return this.join(tests, "OR");
  }

  protected ordered(path: FieldPath, numeric: boolean, test: (field: string) => string): string {
    const field = this.#field(path);
    // CASE, not AND: PostgreSQL may evaluate AND's sides in any order, and the cast fails on non-numbers.
    const typed = numeric
      ? `CASE WHEN jsonb_typeof(${field}) = 'number' THEN (${field})::numeric END`
      : `CASE WHEN jsonb_typeof(${field}) = 'string' THEN (${field} #>> '{}') COLLATE "C" END`;
    return `coalesce(${test(typed)}, false)`;
  }

  protected ordinal(v: string | number): string {
    return typeof v === "number" ? this.#param(v, "::numeric") : this.#param(v, "::text");
  }

  protected text(f: Extract<Filter, { kind: "text" }>): string {
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

  protected isNull(path: FieldPath): string {
    return `coalesce(jsonb_typeof(${this.#field(path)}) = 'null', true)`;
  }

  protected isEmpty(path: FieldPath): string {
    const field = this.#field(path);
    return `coalesce(jsonb_typeof(${field}) = 'null' OR ${field} IN ('""', '[]', '{}'), true)`;
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
