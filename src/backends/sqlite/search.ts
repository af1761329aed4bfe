/**
 * Full-text search on SQLite: each index is an FTS5 table `search_<id>` (contentless: it holds
 * the words, not the text) whose rowids are those of `search_keys`, which maps them to keys. Three
 * triggers per index on `kv` keep it exact: whatever statement writes or removes a row under the
 * prefix, in whatever commit, updates the index in the same transaction. Relevance is FTS5's
 * bm25 `rank`.
 */
import { ValueEncoding } from "../../codec/value-codec.js";
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
import type { Connection } from "./connection.js";
import { compileFilter, jsonPath } from "./sqlite-filter.js";
import { entry, type Row, SEARCH_SQL } from "./statements.js";

const FTS5_TOKENIZERS: Record<Tokenizer, string> = {
  unicode61: "unicode61",
  porter: "porter unicode61",
  ascii: "ascii",
};

const blob = (bytes: Uint8Array) => `X'${Buffer.from(bytes).toString("hex")}'`;
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The index's document for the `kv` row `row` (`new`, `old` or `kv`): NULL when it has no text. */
function documentText(row: string, fields: readonly FieldPath[]): string {
  const texts = fields.map((field) => {
    const path = literal(jsonPath(field));
    return `CASE WHEN json_type(${row}.data, ${path}) IN ('text','integer','real','array','object')
              THEN json_extract(${row}.data, ${path}) END`;
  });
  return `CASE WHEN ${row}.encoding = ${ValueEncoding.JSON} THEN concat_ws(' ', ${texts.join(", ")}) END`;
}

/** The FTS5 table of index `id`. */
const searchTable = (id: number) => `search_${id}`;

/**
 * Creates index `id`'s table and triggers, and indexes every row already under its prefix.
 * Everything spliced is generated here: ids are integers, keys hex, paths quoted literals.
 */
function createIndexSql(id: number, index: SearchIndex): string {
  const table = searchTable(id);
  const start = blob(Buffer.concat([index.prefix, Buffer.from([0x00])]));
  const end = blob(Buffer.concat([index.prefix, Buffer.from([0xff])]));
  const under = (row: string) => `${row}.key >= ${start} AND ${row}.key < ${end}`;
  const docid = (row: string) =>
    `(SELECT id FROM search_keys WHERE index_id = ${id} AND key = ${row}.key)`;
  return `
    CREATE VIRTUAL TABLE ${table} USING fts5(text, content='', contentless_delete=1,
      tokenize=${literal(FTS5_TOKENIZERS[index.tokenize])});
    CREATE TRIGGER ${table}_insert AFTER INSERT ON kv WHEN ${under("new")} BEGIN
      INSERT INTO search_keys (index_id, key) VALUES (${id}, new.key);
      INSERT INTO ${table} (rowid, text) VALUES (last_insert_rowid(), ${documentText("new", index.fields)});
    END;
    CREATE TRIGGER ${table}_update AFTER UPDATE ON kv WHEN ${under("new")} BEGIN
      DELETE FROM ${table} WHERE rowid = ${docid("new")};
      INSERT INTO ${table} (rowid, text) VALUES (${docid("new")}, ${documentText("new", index.fields)});
    END;
    CREATE TRIGGER ${table}_delete AFTER DELETE ON kv WHEN ${under("old")} BEGIN
      DELETE FROM ${table} WHERE rowid = ${docid("old")};
      DELETE FROM search_keys WHERE index_id = ${id} AND key = old.key;
    END;
    INSERT INTO search_keys (index_id, key) SELECT ${id}, key FROM kv WHERE ${under("kv")};
    INSERT INTO ${table} (rowid, text)
      SELECT s.id, ${documentText("kv", index.fields)} FROM search_keys s JOIN kv ON kv.key = s.key
      WHERE s.index_id = ${id};`;
}

function dropIndexSql(id: number): string {
  const table = searchTable(id);
  return `
    DROP TRIGGER ${table}_insert;
    DROP TRIGGER ${table}_update;
    DROP TRIGGER ${table}_delete;
    DROP TABLE ${table};
    DELETE FROM search_keys WHERE index_id = ${id};
    DELETE FROM search_indexes WHERE id = ${id};`;
}

/**
 * The query as an FTS5 query string. Every term is a quoted FTS5 string, so only our operators
 * are ever FTS5 syntax and the index's tokenizer splits the term into words.
 */
function matchExpression(query: SearchQuery): string {
  switch (query.kind) {
    case "term":
      return `"${query.text.replaceAll('"', '""')}"${query.prefix ? " *" : ""}`;
    case "and": {
      const all = query.queries.map(matchExpression).join(" AND ");
      return `(${[`(${all})`, ...query.not.map((q) => `(${matchExpression(q)})`)].join(" NOT ")})`;
    }
    case "or":
      return `(${query.queries.map(matchExpression).join(" OR ")})`;
  }
}

/** Creates `index` (backend.ts), replacing any index on the same prefix, in one transaction. */
export function createIndex({ db, sql }: Connection, index: SearchIndex): void {
  db.transaction(() => {
    const existing = sql.indexId.get(index.prefix) as number | undefined;
    if (existing !== undefined) db.exec(dropIndexSql(existing));
    const fields = JSON.stringify(index.fields);
    const id = sql.addIndex.get(index.prefix, fields, index.tokenize) as number;
    db.exec(createIndexSql(id, index));
  }).immediate();
}

/** Removes the index on `prefix`; returns whether there was one. */
export function removeIndex({ db, sql }: Connection, prefix: Uint8Array): boolean {
  return db
    .transaction(() => {
      const id = sql.indexId.get(prefix) as number | undefined;
      if (id !== undefined) db.exec(dropIndexSql(id));
      return id !== undefined;
    })
    .immediate();
}

export function listIndexes({ sql }: Connection): SearchIndex[] {
  return (sql.listIndexes.all() as [Buffer, string, Tokenizer][]).map(storedIndex);
}

/** The live entries under the index on `request.prefix` that match (backend.ts); one snapshot. */
export function search(
  { sql, cache, snapshot }: Connection,
  request: SearchRequest,
  now: number,
): RawEntry[] {
  const rows = snapshot(() => {
    const id = sql.indexId.get(request.prefix) as number | undefined;
    if (id === undefined) throw new KvError("NOT_FOUND", "No search index on this prefix");
    const compiled = request.filter && compileFilter(request.filter, now);
    const text = SEARCH_SQL.replaceAll("TABLE", searchTable(id)).replace(
      "FILTER",
      compiled?.sql ?? "1",
    );
    return cache
      .prepared(text)
      .raw()
      .all(matchExpression(request.query), now, ...(compiled?.params ?? []), request.limit);
  }) as Row[];
  return rows.map(entry);
}
