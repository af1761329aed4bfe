/**
 * Full-text search, as the storage contract carries it: index definitions and the query tree.
 * Backends compile a query to their own engine (SQLite: FTS5, sqlite/search.ts; PostgreSQL:
 * tsvector/tsquery, postgres/search.ts). Built only by `parseSearchQuery` and the SDK's checks
 * (protocol/search-query.ts, sdk/search.ts), so backends may trust their shape.
 *
 * Semantics every backend implements (the README has the user-facing notes):
 *
 * - An index on `prefix` covers every stored entry strictly under it (not `prefix` itself). Its
 *   document is the text of its `fields`, joined by spaces: a string as it is, a number as its
 *   JSON text, an array or object as its JSON text; booleans, null, missing fields and values not
 *   stored as JSON text contribute nothing.
 * - Text is split into words at every character that is not a letter or a digit, and compared
 *   case-insensitively. `porter` also reduces English words to their stem ("running" → "run").
 * - A `term` matches documents holding its words as consecutive words (one word: that word);
 *   with `prefix`, the last word may be the start of a longer one.
 */
import type { FieldPath, Filter } from "./filter.js";

/** The tokenizers an index may use (the seed's names, after SQLite FTS5's). */
export const TOKENIZERS = ["unicode61", "porter", "ascii"] as const;
export type Tokenizer = (typeof TOKENIZERS)[number];

export interface SearchIndex {
  /** The encoded key under which entries are indexed. */
  readonly prefix: Uint8Array;
  /** The fields whose text is indexed; at least one. */
  readonly fields: readonly FieldPath[];
  readonly tokenize: Tokenizer;
}

export type SearchQuery =
  /** Words (at least one letter or digit) that must appear in this order. */
  | { readonly kind: "term"; readonly text: string; readonly prefix: boolean }
  /** Every query in `queries` (at least one) matches and none in `not` does. */
  | {
      readonly kind: "and";
      readonly queries: readonly SearchQuery[];
      readonly not: readonly SearchQuery[];
    }
  /** At least one of `queries` (at least two) matches. */
  | { readonly kind: "or"; readonly queries: readonly SearchQuery[] };

export interface SearchRequest {
  /** Exactly the prefix of an existing index (`NOT_FOUND` otherwise). */
  readonly prefix: Uint8Array;
  readonly query: SearchQuery;
  /** At most this many entries (1 to 1000). */
  readonly limit: number;
  /** Only entries whose value matches (filter.ts), evaluated with the query. */
  readonly filter?: Filter;
}

/** An index read back from the columns a backend stores it in: its fields as JSON text. */
export function storedIndex([prefix, fields, tokenize]: [
  Uint8Array,
  string,
  Tokenizer,
]): SearchIndex {
  return { prefix: new Uint8Array(prefix), fields: JSON.parse(fields), tokenize };
}
