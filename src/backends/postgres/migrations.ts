/**
 * The PostgreSQL schema: its migrations, and how a database (a schema) is brought up to date,
 * one process at a time. The versions applied are rows of `migrations`.
 */
import { ValueEncoding } from "../../codec/value-codec.js";
import type { Sql } from "./connection.js";

/** The migration that adds full-text search (search.ts). */
const SEARCH_MIGRATION = `
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

/** Append-only: each entry runs once, in order, recorded in `migrations`. */
const MIGRATIONS = [
  `CREATE TABLE kv (
     key bytea PRIMARY KEY,
     data bytea, -- the value's bytes, or NULL for the JSON encoding (then in text)
     text text,
     encoding smallint NOT NULL,
     versionstamp bigint NOT NULL,
     expires_at bigint
   );
   CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
   -- versionstamp: the last counter issued; changes_horizon: every change above it is retained.
   CREATE TABLE meta (
     id int PRIMARY KEY CHECK (id = 0),
     versionstamp bigint NOT NULL,
     changes_horizon bigint NOT NULL
   );
   INSERT INTO meta VALUES (0, 0, 0);
   -- A change names the key a commit touched; what it wrote is the key's row in kv, as long as no
   -- later commit has touched the key again (then that later change reports it).
   CREATE TABLE changes (
     versionstamp bigint NOT NULL,
     key bytea NOT NULL,
     deleted boolean NOT NULL,
     committed_at bigint NOT NULL,
     PRIMARY KEY (versionstamp, key)
   );
   -- ready_at: when the message may be claimed: its delivery time while pending (lease NULL),
   -- its lease's end while leased. An expired lease is as good as pending.
   CREATE TABLE queue (
     seq bigserial PRIMARY KEY,
     id text NOT NULL UNIQUE,
     data bytea,
     text text,
     encoding smallint NOT NULL,
     ready_at bigint NOT NULL,
     lease text,
     attempts int NOT NULL,
     backoff text NOT NULL, -- JSON array of ms
     undelivered text NOT NULL, -- JSON array of base64 keys
     created_at bigint NOT NULL
   );
   CREATE INDEX queue_ready_at ON queue (ready_at, seq);
   CREATE TABLE dead_letters (
     seq bigserial PRIMARY KEY,
     id text NOT NULL UNIQUE,
     data bytea,
     text text,
     encoding smallint NOT NULL,
     error text NOT NULL,
     attempts int NOT NULL,
     backoff text NOT NULL,
     undelivered text NOT NULL,
     created_at bigint NOT NULL,
     failed_at bigint NOT NULL
   );
   CREATE INDEX dead_letters_failed_at ON dead_letters (failed_at);`,
  SEARCH_MIGRATION,
];

/** Takes advisory lock $1 until the transaction ends, waiting for whoever holds it. */
const LOCK = "SELECT pg_advisory_xact_lock($1)";

/** The advisory lock that serializes migrations of one database (its schema), across processes. */
function lockId(schema: string): number {
  let h = 0;
  for (const c of `cairn:${schema}`) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return h;
}

/**
 * Brings schema `schema` up to date, creating it if needed; other processes migrating the same
 * schema wait for the advisory lock and then find nothing left to do.
 */
export async function migrate(sql: Sql, schema: string): Promise<void> {
  await sql.begin(async (tx) => {
    // One process migrates at a time.
    await tx.unsafe(LOCK, [lockId(schema)]);
    await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await tx.unsafe("CREATE TABLE IF NOT EXISTS migrations (version int PRIMARY KEY)");
    const [row] = await tx.unsafe("SELECT coalesce(max(version), 0) FROM migrations").values();
    for (let i = Number(row![0]); i < MIGRATIONS.length; i++) {
      await tx.unsafe(MIGRATIONS[i]!);
      await tx.unsafe("INSERT INTO migrations VALUES ($1)", [i + 1]);
    }
  });
}
