/**
 * The full-text query language, parsed once at the edge into the tree backends compile
 * (backends/search.ts), and written back for the wire:
 *
 *   typescript            a word
 *   react hooks           both words (AND is implied)
 *   JavaScript AND Node   both words
 *   Python OR TypeScript  either word
 *   react NOT vue         react without vue (also `react -vue`)
 *   "state management"    a phrase: the words one after the other
 *   type*                 a word starting with "type"
 *   (a OR b) c            parentheses group
 *
 * AND, OR and NOT are operators only in upper case; NOT binds tightest, then AND, then OR. A word
 * is a run of characters other than spaces, quotes and parentheses; its punctuation separates
 * words (`node.js` is the phrase "node js"). A negated query needs a positive one beside it.
 */
import {
  type FieldPath,
  type SearchIndex,
  type SearchQuery,
  type SearchRequest,
  TOKENIZERS,
  type Tokenizer,
} from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { parsePath, parseWhere, show } from "./where-filter.js";

function invalid(message: string): KvError {
  return new KvError("INVALID_ARGUMENT", `Invalid search query: ${message}`);
}

type Token =
  | { type: "word"; text: string; prefix: boolean }
  | { type: "and" | "or" | "not" | "minus" | "open" | "close" };

const HAS_WORD = /[\p{L}\p{N}]/u;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "(" || c === ")") {
      tokens.push({ type: c === "(" ? "open" : "close" });
      i++;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end === -1) throw invalid("a phrase is missing its closing quote");
      const phrase = text.slice(i + 1, end);
      if (!HAS_WORD.test(phrase)) throw invalid(`the phrase "${phrase}" has no letters or digits`);
      i = end + 1;
      const prefix = text[i] === "*";
      while (text[i] === "*") i++;
      tokens.push({ type: "word", text: phrase, prefix });
    } else if (c === "-" && i + 1 < text.length && !/[\s()]/.test(text[i + 1]!)) {
      tokens.push({ type: "minus" });
      i++;
    } else {
      let end = i;
      while (end < text.length && !/[\s()"]/.test(text[end]!)) end++;
      const word = text.slice(i, end);
      i = end;
      if (word === "AND" || word === "OR" || word === "NOT") {
        tokens.push({ type: word.toLowerCase() as "and" | "or" | "not" });
        continue;
      }
      const prefix = word.endsWith("*");
      const bare = prefix ? word.replace(/\*+$/, "") : word;
      if (!HAS_WORD.test(bare)) throw invalid(`"${word}" has no letters or digits`);
      tokens.push({ type: "word", text: bare, prefix });
    }
  }
  return tokens;
}

class Parser {
  #at = 0;
  #depth = 0;
  constructor(readonly tokens: Token[]) {}

  #peek(): Token | undefined {
    return this.tokens[this.#at];
  }

  parse(): SearchQuery {
    if (this.tokens.length === 0) throw invalid("it has no words");
    const query = this.#or();
    if (this.#at < this.tokens.length) throw invalid("a closing parenthesis has no opening one");
    return query;
  }

  #or(): SearchQuery {
    const queries = [this.#and()];
    while (this.#peek()?.type === "or") {
      this.#at++;
      queries.push(this.#and());
    }
    return queries.length === 1 ? queries[0]! : { kind: "or", queries };
  }

  #and(): SearchQuery {
    const queries: SearchQuery[] = [];
    const not: SearchQuery[] = [];
    for (;;) {
      const token = this.#peek();
      if (token === undefined || token.type === "or" || token.type === "close") break;
      if (token.type === "and") {
        if (queries.length + not.length === 0) throw invalid("AND needs a query on its left");
        this.#at++;
        continue;
      }
      if (token.type === "not" || token.type === "minus") {
        this.#at++;
        not.push(this.#primary());
      } else queries.push(this.#primary());
    }
    if (queries.length === 0) {
      throw invalid(
        not.length > 0
          ? "NOT (or -) needs a query it is not part of, e.g. react NOT vue"
          : "an operator is missing a query beside it",
      );
    }
    return queries.length === 1 && not.length === 0 ? queries[0]! : { kind: "and", queries, not };
  }

  #primary(): SearchQuery {
    const token = this.tokens[this.#at++];
    switch (token?.type) {
      case "word":
        return { kind: "term", text: token.text, prefix: token.prefix };
      case "open": {
        if (++this.#depth > limits.maxSearchDepth) {
          throw invalid(`parentheses may nest at most ${limits.maxSearchDepth} deep`);
        }
        const query = this.#or();
        if (this.tokens[this.#at++]?.type !== "close") {
          throw invalid("an opening parenthesis has no closing one");
        }
        this.#depth--;
        return query;
      }
      default:
        throw invalid("an operator is missing a query beside it");
    }
  }
}

/** Parses a query string (`INVALID_ARGUMENT` naming the problem). */
export function parseSearchQuery(text: unknown): SearchQuery {
  if (typeof text !== "string") throw invalid("query must be a string");
  if (text.length > limits.maxSearchQueryLength) {
    throw invalid(`it may have at most ${limits.maxSearchQueryLength} characters`);
  }
  const tokens = tokenize(text);
  if (tokens.filter((t) => t.type === "word").length > limits.maxSearchTerms) {
    throw invalid(`it may have at most ${limits.maxSearchTerms} words and phrases`);
  }
  return new Parser(tokens).parse();
}

/** Writes a query back so that `parseSearchQuery` reads the same tree. */
export function formatSearchQuery(query: SearchQuery): string {
  switch (query.kind) {
    case "term":
      // A quote inside a phrase cannot be written; it separates words anyway.
      return `"${query.text.replaceAll('"', " ")}"${query.prefix ? "*" : ""}`;
    case "and":
      return `(${[
        ...query.queries.map(formatSearchQuery),
        ...query.not.map((q) => `NOT ${formatSearchQuery(q)}`),
      ].join(" ")})`;
    case "or":
      return `(${query.queries.map(formatSearchQuery).join(" OR ")})`;
  }
}

function invalidArgument(message: string): KvError {
  return new KvError("INVALID_ARGUMENT", message);
}

/** Checks an index definition: `options` is `{ fields, tokenize? }` (the SDK's `createIndex`). */
export function searchIndexOf(prefix: Uint8Array, options: unknown): SearchIndex {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw invalidArgument(
      'createIndex needs options { fields, tokenize? }, e.g. { fields: ["title"] }',
    );
  }
  const { fields, tokenize = "unicode61" } = options as Record<string, unknown>;
  if (!Array.isArray(fields) || fields.length === 0) {
    throw invalidArgument(
      'fields must be a non-empty array of field paths, e.g. ["title", "author.name"]',
    );
  }
  if (fields.length > limits.maxIndexFields) {
    throw invalidArgument(`An index may have at most ${limits.maxIndexFields} fields`);
  }
  const paths = fields.map((field, i): FieldPath => {
    if (typeof field !== "string") throw invalidArgument(`fields[${i}] must be a string`);
    try {
      return parsePath(field, `fields[${i}]`);
    } catch (e) {
      throw invalidArgument((e as Error).message.replace("Invalid where filter at", "Invalid"));
    }
  });
  if (!TOKENIZERS.includes(tokenize as Tokenizer)) {
    throw invalidArgument(
      `tokenize must be "unicode61", "porter" or "ascii"; got ${show(tokenize)}`,
    );
  }
  return { prefix, fields: paths, tokenize: tokenize as Tokenizer };
}

/** Checks a search: `options` is `{ limit?, where? }` (the SDK's `search`). */
export function searchRequestOf(
  prefix: Uint8Array,
  query: unknown,
  options: { readonly limit?: unknown; readonly where?: unknown } = {},
): SearchRequest {
  if (options === null || typeof options !== "object") {
    throw invalidArgument("search options must be an object { limit?, where? }");
  }
  const { limit = limits.defaultSearchLimit, where } = options;
  if (
    typeof limit !== "number" ||
    !Number.isInteger(limit) ||
    limit < 1 ||
    limit > limits.maxSearchLimit
  ) {
    throw invalidArgument(
      `limit must be an integer from 1 to ${limits.maxSearchLimit}: received ${show(limit)}`,
    );
  }
  return {
    prefix,
    query: parseSearchQuery(query),
    limit,
    filter: where === undefined || where === null ? undefined : parseWhere(where),
  };
}
