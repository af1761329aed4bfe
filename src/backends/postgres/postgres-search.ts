/**
 * Full-text search on PostgreSQL: one `search_docs` row per entry under an index's prefix, with
 * its document as a `tsvector` (GIN-indexed), kept exact by statement-level triggers on `kv`, so
 * whatever statement writes or removes rows, in whatever commit, updates the index in the same
 * transaction. Relevance is `ts_rank`.
 *
 * Tokenizers: `unicode61` and `ascii` use the `simple` configuration (lower-cased words, no
 * stemming, no stop words); `porter` uses `cairn_porter`, English Snowball stemming without stop
 * words (SQLite's porter drops none either). Before PostgreSQL's parser sees it, text has its
 * punctuation replaced by spaces (`search_words`), so that words split where SQLite splits them
 * (PostgreSQL's parser would keep `node.js` or an e-mail address as one token).
 */
import type { FieldPath } from "../filter.js";
import type { SearchQuery, Tokenizer } from "../search.js";
import { jsonPath } from "./postgres-filter.js";

export const TEXT_SEARCH_CONFIGS: Record<Tokenizer, string> = {
  unicode61: "simple",
  porter: "cairn_porter",
  ascii: "simple",
};

/** The SQL/JSON paths of an index's fields, as a JSON array (for `search_indexes.paths`). */
export const pathsJson = (fields: readonly FieldPath[]) => JSON.stringify(fields.map(jsonPath));

/**
 * The query as a `tsquery` expression over the index's configuration `config` (SQL), its words
 * as parameters numbered from `$first`: each term is `phraseto_tsquery` of its words.
 */
export function compileQuery(
  query: SearchQuery,
  config: string,
  first: number,
): { sql: string; params: string[] } {
  const params: string[] = [];
  const compile = (q: SearchQuery): string => {
    switch (q.kind) {
      case "term": {
        params.push(q.text);
        const words = `phraseto_tsquery(${config}, search_words($${first + params.length - 1}::text))`;
        return q.prefix ? `(${words}::text || ':*')::tsquery` : words;
      }
      case "and":
        return `(${[...q.queries.map(compile), ...q.not.map((n) => `!!${compile(n)}`)].join(" && ")})`;
      case "or":
        return `(${q.queries.map(compile).join(" || ")})`;
    }
  };
  return { sql: compile(query), params };
}
