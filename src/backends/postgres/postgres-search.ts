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
import { ValueEncoding } from "../../codec/value-codec.js";
import type { FieldPath } from "../filter.js";
import type { SearchQuery, Tokenizer } from "../search.js";
import { jsonPath } from "./postgres-filter.js";

export const TEXT_SEARCH_CONFIGS: Record<Tokenizer, string> = {
  unicode61: "simple",
  porter: "cairn_porter",
  ascii: "simple",
};

/** The migration that adds full-text search. */
export const SEARCH_MIGRATION = `
  CREATE TABLE search_indexes (
    id serial PRIMARY KEY,
    prefix bytea NOT NULL UNIQUE,
    range_start bytea NOT NULL, -- the entries under prefix: [range_start, range_end)
    range_end bytea NOT NULL,
    fields jsonb NOT NULL, -- field paths, as arrays of names and array indexes
    paths text[] NOT NULL, -- the same, as SQL/JSON paths
    tokenize text NOT NULL,
    config regconfig NOT NULL
  );
  CREATE TABLE search_docs (
    index_id int NOT NULL,
    key bytea NOT NULL,
    tsv tsvector NOT NULL,
    PRIMARY KEY (index_id, key)
  );
  CREATE INDEX search_docs_key ON search_docs (key);
  CREATE INDEX search_docs_tsv ON search_docs USING gin (tsv);
  CREATE TEXT SEARCH DICTIONARY cairn_english_stem (TEMPLATE = snowball, LANGUAGE = english);
  CREATE TEXT SEARCH CONFIGURATION cairn_porter (COPY = pg_catalog.english);
  ALTER TEXT SEARCH CONFIGURATION cairn_porter
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH cairn_english_stem;
  CREATE FUNCTION search_words(t text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT regexp_replace(t, '[[:punct:][:space:]]+', ' ', 'g') $$;
  -- The document of a kv row for an index: its fields' text (backends/search.ts).
  CREATE FUNCTION search_vector(config regconfig, paths text[], encoding smallint, body text)
    RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN encoding = ${ValueEncoding.JSON} THEN to_tsvector(config, search_words(coalesce((
      SELECT string_agg(CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}'
                          WHEN 'number' THEN v::text WHEN 'array' THEN v::text
                          WHEN 'object' THEN v::text END, ' ')
      FROM unnest(paths) p, LATERAL (SELECT jsonb_path_query_first(body::jsonb, p::jsonpath, '{}', true) AS v) x
    ), ''))) ELSE ''::tsvector END $$;
  CREATE FUNCTION search_write() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF EXISTS (SELECT FROM search_indexes) THEN
      INSERT INTO search_docs (index_id, key, tsv)
      SELECT i.id, n.key, search_vector(i.config, i.paths, n.encoding, n.text)
      FROM new_rows n JOIN search_indexes i ON n.key >= i.range_start AND n.key < i.range_end
      ON CONFLICT (index_id, key) DO UPDATE SET tsv = excluded.tsv;
    END IF;
    RETURN NULL;
  END $$;
  CREATE FUNCTION search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF EXISTS (SELECT FROM search_indexes) THEN
      DELETE FROM search_docs d USING old_rows o WHERE d.key = o.key;
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER kv_search_insert AFTER INSERT ON kv REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_write();
  CREATE TRIGGER kv_search_update AFTER UPDATE ON kv REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_write();
  CREATE TRIGGER kv_search_delete AFTER DELETE ON kv REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_delete();`;

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
