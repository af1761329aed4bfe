/**
 * Compiles a filter tree (backends/filter.ts) to a SQLite boolean expression over the `kv` row's
 * `data` and `encoding` columns, with SQLite's JSON functions. Everything the filter holds is a
 * bound parameter, field paths included (as JSON path strings); only fixed SQL text is spliced.
 *
 * Every test is written to be two-valued (never NULL), so that `NOT` is the exact complement:
 * types are read with `ifnull(json_type(...), '')` (`''`: missing), and a value comparison, NULL
 * for a missing field, is always ANDed with a type test, false for a missing field. The value is
 * compared before the type is tested: most rows fail the comparison, and each JSON function call
 * parses the value again.
 */
import { ValueEncoding } from "../../codec/value-codec.js";
import type { FieldPath, Filter } from "../filter.js";
import { matchesAll } from "../filter.js";
import { FilterCompiler, jsonPathFrom, type Resolved } from "../filter-compiler.js";

export interface CompiledFilter {
  readonly sql: string;
  readonly params: unknown[];
}

const NUMBER_TYPES = "('integer','real')";

/**
 * The value as JSON text, NULL for the other encodings, whose bytes would make the JSON functions
 * fail. Guarding each use (rather than wrapping the whole filter in one CASE) keeps the filter in
 * WHERE context, where SQLite evaluates AND and OR lazily: a value expression evaluates both sides.
 */
const DATA = `(CASE WHEN encoding = ${ValueEncoding.JSON} THEN data END)`;

/** The JSON path of `path` for SQLite: `$."a"[0]."b"`. */
export const jsonPath = (path: FieldPath): string => jsonPathFrom("$", path);

/** Characters `JSON.stringify` escapes inside strings (and surrogates, to stay simple). */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Joins as a balanced tree, so that long `$or` lists stay within SQLite's expression depth limit. */
function balanced(parts: string[], op: "AND" | "OR"): string {
  if (parts.length === 1) return parts[0]!;
  const half = parts.length >> 1;
  return `(${balanced(parts.slice(0, half), op)} ${op} ${balanced(parts.slice(half), op)})`;
}

class Compiler extends FilterCompiler {
  protected join(parts: string[], op: "AND" | "OR"): string {
    if (parts.length === 0) return op === "AND" ? "1" : "0";
    return balanced(parts, op);
  }

  // Each helper pushes its parameters in the order its SQL text uses them.
  #type(path: FieldPath): string {
    this.params.push(jsonPath(path));
    return `ifnull(json_type(${DATA}, ?), '')`;
  }

  #value(path: FieldPath): string {
    this.params.push(jsonPath(path));
    return `json_extract(${DATA}, ?)`;
  }

  #param(value: unknown): string {
    this.params.push(value);
    return "?";
  }

  /**
   * `test`, preceded by a check that the raw JSON text contains `needle`, a form of the string
   * `value` as it appears in JSON. Stored JSON text is
   * exactly `JSON.stringify`'s output (backend.ts), so a string that needs no escaping appears
   * verbatim in the text of any value holding it; searching the text is much cheaper than parsing
   * it, and rejects most rows before `test` parses them.
   */
  #prefiltered(value: string, needle: string, test: () => string): string {
    if (value === "" || ESCAPED.test(value)) return test();
    // GLOB reads other encodings' bytes without failing; the filter's encoding test rejects them.
    // It skips ahead to each occurrence of the needle's first character, where instr compares at
    // every position: over a large prefix, that is a tenth of the whole filtered scan.
    // The pattern is `+?`, not `?`: for a GLOB whose pattern is a bare parameter, SQLite's planner
    // notes the parameter's value (for an index it could use) and prepares the statement again
    // after every new binding, which for a large filter costs far more than running it.
    const check = `data GLOB +${this.#param(`*${needle.replaceAll(/[*?[]/g, "[$&]")}*`)}`;
    return `(${check} AND ${test()})`;
  }

  protected equals(path: FieldPath, v: Resolved): string {
    if (v === null) return this.isNull(path);
    if (typeof v === "boolean") return `${this.#type(path)} = '${v}'`;
    if (typeof v === "number") {
      return `(${this.#value(path)} = ${this.#param(v)} AND ${this.#type(path)} IN ${NUMBER_TYPES})`;
    }
    return this.#prefiltered(
      v,
      `"${v}"`,
      () => `(${this.#value(path)} = ${this.#param(v)} AND ${this.#type(path)} = 'text')`,
    );
  }

  protected oneOf(path: FieldPath, values: readonly Resolved[]): string {
    return this.join(
      values.map((v) => this.equals(path, v)),
      "OR",
    );
  }

  protected ordered(path: FieldPath, numeric: boolean, test: (field: string) => string): string {
    const types = numeric ? NUMBER_TYPES : "('text')";
    return `(${test(this.#value(path))} AND ${this.#type(path)} IN ${types})`;
  }

  protected ordinal(value: string | number): string {
    return this.#param(value);
  }

  protected text(f: Extract<Filter, { kind: "text" }>): string {
    const fold = (sql: string) => (f.caseInsensitive ? `lower(${sql})` : sql);
    const isText = () => `${this.#type(f.path)} = 'text'`;
    if (f.value === "" && f.match !== "contains") return isText();
    // Case-sensitive tests look for the operand in the raw text first (see `#prefiltered`).
    const prefilter = (needle: string, test: () => string) =>
      f.caseInsensitive ? test() : this.#prefiltered(f.value, needle, test);
    switch (f.match) {
      case "contains":
        return prefilter(f.value, () => {
          const inString =
            f.value === ""
              ? isText()
              : `(instr(${fold(this.#value(f.path))}, ${fold(this.#param(f.value))}) > 0 AND ${isText()})`;
          const array = `${this.#type(f.path)} = 'array'`;
          this.params.push(jsonPath(f.path));
          const element = `EXISTS (SELECT 1 FROM json_each(${DATA}, ?) WHERE type = 'text' AND ${fold("value")} = ${fold(this.#param(f.value))})`;
          return `(${inString} OR (${array} AND ${element}))`;
        });
      case "startsWith":
        return prefilter(
          `"${f.value}`,
          () =>
            `(${fold(`substr(${this.#value(f.path)}, 1, length(${this.#param(f.value)}))`)} = ${fold(this.#param(f.value))} AND ${isText()})`,
        );
      case "endsWith":
        return prefilter(
          `${f.value}"`,
          () =>
            `(${fold(`substr(${this.#value(f.path)}, -length(${this.#param(f.value)}))`)} = ${fold(this.#param(f.value))} AND ${isText()})`,
        );
    }
  }

  protected isNull(path: FieldPath): string {
    return `${this.#type(path)} IN ('null','')`;
  }

  protected isEmpty(path: FieldPath): string {
    const missing = this.isNull(path);
    const string = `(${this.#type(path)} = 'text' AND ${this.#value(path)} = '')`;
    const container = `${this.#type(path)} IN ('array','object')`;
    this.params.push(jsonPath(path));
    return `(${missing} OR ${string} OR (${container} AND NOT EXISTS (SELECT 1 FROM json_each(${DATA}, ?))))`;
  }
}

/**
 * The filter as a SQL condition for a WHERE clause, with its parameters, resolving server-time
 * operands to `now`; `undefined` when it matches everything. Values not stored as JSON text
 * never match.
 */
export function compileFilter(filter: Filter, now: number): CompiledFilter | undefined {
  if (matchesAll(filter)) return undefined;
  const compiler = new Compiler(now);
  const test = compiler.compile(filter);
  return {
    sql: `(encoding = ${ValueEncoding.JSON} AND ${test})`,
    params: compiler.params,
  };
}
