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
import type { FieldPath, Filter, Operand } from "../filter.js";
import { matchesAll } from "../filter.js";

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
export function jsonPath(path: FieldPath): string {
  let out = "$";
  for (const part of path) {
    out +=
      typeof part === "number" ? `[${part}]` : `."${part.replaceAll(/["\\]/g, (c) => `\\${c}`)}"`;
  }
  return out;
}

/** Characters `JSON.stringify` escapes inside strings (and surrogates, to stay simple). */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Joins as a balanced tree, so that long `$or` lists stay within SQLite's expression depth limit. */
function join(parts: string[], op: "AND" | "OR", empty: string): string {
  if (parts.length === 0) return empty;
  if (parts.length === 1) return parts[0]!;
  const half = parts.length >> 1;
  return `(${join(parts.slice(0, half), op, empty)} ${op} ${join(parts.slice(half), op, empty)})`;
}

class Compiler {
  readonly params: unknown[] = [];
  readonly #now: number;

  constructor(now: number) {
    this.#now = now;
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

  #resolve(v: Operand): string | number | boolean | null {
    return typeof v === "object" && v !== null ? this.#now + v.offset : v;
  }

  /** A test that the field has `value`'s type and equals it (`null`: missing or null). */
  #equals(path: FieldPath, operand: Operand): string {
    const v = this.#resolve(operand);
    if (v === null) return `${this.#type(path)} IN ('null','')`;
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

  /** A test that the field is a string, or a number for numeric operands, and `field <sql>`. */
  #ordered(path: FieldPath, isNumber: boolean, test: (field: string) => string): string {
    const types = isNumber ? NUMBER_TYPES : "('text')";
    return `(${test(this.#value(path))} AND ${this.#type(path)} IN ${types})`;
  }

  #text(f: Extract<Filter, { kind: "text" }>): string {
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

  compile(f: Filter): string {
    switch (f.kind) {
      case "and":
        return join(
          f.filters.map((c) => this.compile(c)),
          "AND",
          "1",
        );
      case "or":
        return join(
          f.filters.map((c) => this.compile(c)),
          "OR",
          "0",
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
        return this.#ordered(
          f.path,
          typeof v === "number",
          (field) => `${field} ${op} ${this.#param(v)}`,
        );
      }
      case "between": {
        const low = this.#resolve(f.low) as string | number;
        const high = this.#resolve(f.high) as string | number;
        return this.#ordered(
          f.path,
          typeof low === "number",
          (field) => `${field} BETWEEN ${this.#param(low)} AND ${this.#param(high)}`,
        );
      }
      case "in": {
        const test = join(
          f.values.map((v) => this.#equals(f.path, v)),
          "OR",
          "0",
        );
        return f.negate ? `NOT (${test})` : test;
      }
      case "text": {
        const test = this.#text(f);
        return f.negate ? `NOT (${test})` : test;
      }
      case "null": {
        const test = `${this.#type(f.path)} IN ('null','')`;
        return f.negate ? `NOT (${test})` : test;
      }
      case "empty": {
        const missing = `${this.#type(f.path)} IN ('null','')`;
        const string = `(${this.#type(f.path)} = 'text' AND ${this.#value(f.path)} = '')`;
        const container = `${this.#type(f.path)} IN ('array','object')`;
        this.params.push(jsonPath(f.path));
        const test = `(${missing} OR ${string} OR (${container} AND NOT EXISTS (SELECT 1 FROM json_each(${DATA}, ?))))`;
        return f.negate ? `NOT (${test})` : test;
      }
    }
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
