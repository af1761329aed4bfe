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
import { KvError } from "../../kv-error.js";
import type { RawEntry } from "../backend.js";
import type { FieldPath } from "../filter.js";
import {
  type SearchIndex,
  type SearchQuery,
  type SearchRequest,
  storedIndex,
  type Tokenizer,
} from "../search.js";
import { queryValue, type Sql, sendQuery } from "./connection.js";
import { compileFilter, jsonPath } from "./postgres-filter.js";
import { type EntryRow, entry, SEARCH_SQL, SQL } from "./statements.js";

const TEXT_SEARCH_CONFIGS: Record<Tokenizer, string> = {
  unicode61: "simple",
  porter: "cairn_porter",
  ascii: "simple",
};

/** The SQL/JSON paths of an index's fields, as a JSON array (for `search_indexes.paths`). */
const pathsJson = (fields: readonly FieldPath[]) => JSON.stringify(fields.map(jsonPath));

/**
 * The query as a `tsquery` expression over the index's configuration `config` (SQL), its words
 * as parameters numbered from `$first`: each term is `phraseto_tsquery` of its words.
 */
function compileQuery(
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

/**
 * Creates `index` (backend.ts), replacing any index on the same prefix, and indexes what is stored
 * under it, in one transaction.
 */
export async function createIndex(sql: Sql, index: SearchIndex): Promise<void> {
  await sql.begin(async (tx) => {
    await sendQuery(tx, SQL.lockMeta, []);
    await sendQuery(tx, SQL.removeIndex, [index.prefix]);
    const id = await queryValue<number>(tx, SQL.addIndex, [
      index.prefix,
      Buffer.concat([index.prefix, Buffer.from([0x00])]),
      Buffer.concat([index.prefix, Buffer.from([0xff])]),
      JSON.stringify(index.fields),
      pathsJson(index.fields),
      index.tokenize,
      TEXT_SEARCH_CONFIGS[index.tokenize],
    ]);
    await sendQuery(tx, SQL.backfillIndex, [id]);
    // Without statistics of the new documents the planner scans them all rather than the GIN index.
    await sendQuery(tx, "ANALYZE search_docs", []);
  });
}

/** Removes the index on `prefix`; resolves whether there was one. */
export function removeIndex(sql: Sql, prefix: Uint8Array): Promise<boolean> {
  return sql.begin(async (tx) => {
    await sendQuery(tx, SQL.lockMeta, []);
    return Number(await queryValue(tx, SQL.removeIndex, [prefix])) > 0;
  }) as Promise<boolean>;
}

export async function listIndexes(sql: Sql): Promise<SearchIndex[]> {
  const rows = await sendQuery<[Buffer, string, Tokenizer]>(sql, SQL.listIndexes, []);
  return rows.map(storedIndex);
}

/** The live entries under the index on `request.prefix` that match (backend.ts). */
export async function search(sql: Sql, request: SearchRequest, now: number): Promise<RawEntry[]> {
  const [index] = await sendQuery<[number, string]>(sql, SQL.indexConfig, [request.prefix]);
  if (index === undefined) throw new KvError("NOT_FOUND", "No search index on this prefix");
  const [id, config] = index;
  const query = compileQuery(request.query, "$4::regconfig", 5);
  const filter = request.filter && compileFilter(request.filter, now, 5 + query.params.length);
  const text = SEARCH_SQL.replace("QUERY", query.sql).replace("FILTER", filter?.sql ?? "true");
  const rows = await sendQuery(sql, text, [
    id,
    now,
    request.limit,
    config,
    ...query.params,
    ...(filter?.params ?? []),
  ]);
  return rows.map((row) => entry(row as EntryRow));
}
