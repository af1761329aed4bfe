/**
 * A connection pool to a PostgreSQL database: the driver, loaded only when a database is opened,
 * the schema the URL names, statements sent pipelined, and driver errors as `KvError`.
 */
import { createRequire } from "node:module";
import type * as Postgres from "postgres";
import { KvError } from "../../kv-error.js";
import { storageError } from "../storage-error.js";

export type Sql = Postgres.Sql<Record<string, never>>;
export type Tx = Postgres.TransactionSql<Record<string, never>>;

/** Schema names Cairn creates (always quoted); at most 63 bytes, which PostgreSQL would cut. */
const SCHEMA = /^[a-z_][a-z0-9_-]{0,62}$/;

/**
 * A pool of up to `maxConnections` connections to the database at `url` (`postgres://…`), whose
 * `?schema=` names the schema to use (default `cairn`; `INVALID_ARGUMENT` for a name Cairn does
 * not create). Nothing is sent until the pool is first used.
 */
export function connect(url: string, maxConnections: number): { sql: Sql; schema: string } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get("schema") ?? "cairn";
  if (!SCHEMA.test(schema)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `Invalid schema ${JSON.stringify(schema)}: use at most 63 lowercase letters, digits, _ and -, starting with a letter or _`,
    );
  }
  parsed.searchParams.delete("schema");
  // Loaded here so that importing Cairn does not load the driver unless PostgreSQL is used.
  const postgres = createRequire(import.meta.url)("postgres") as typeof Postgres.default;
  const sql = postgres(parsed.toString(), {
    max: maxConnections,
    onnotice: () => {},
    connection: { search_path: `"${schema}"`, application_name: "cairn" },
    // int8 columns (counters, epoch ms) fit in a double.
    types: {
      bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: Number },
    },
  }) as unknown as Sql;
  return { sql, schema };
}

/**
 * Sends a prepared statement at once (postgres.js waits for `await` otherwise), so that
 * statements issued one after another travel pipelined; rows as arrays, with `count`.
 */
export function sendQuery<Row extends unknown[] = unknown[]>(
  q: Sql | Tx,
  text: string,
  params: unknown[],
): Promise<Row[] & { count: number }> {
  const query = q
    .unsafe(text, params as never[], { prepare: true })
    .values()
    .execute();
  return query as unknown as Promise<Row[] & { count: number }>;
}

/** The first column of the first row. */
export async function queryValue<T>(
  q: Sql | Tx,
  text: string,
  params: unknown[],
): Promise<T | undefined> {
  const [row] = await sendQuery<[T]>(q, text, params);
  return row?.[0];
}

/**
 * A driver error as `KvError`: `UNAVAILABLE` for connection trouble, serialization failures,
 * deadlocks and too many connections, which may pass when tried again.
 */
export const postgresError = (e: unknown): KvError =>
  storageError(
    e,
    "PostgreSQL",
    (code) =>
      /^(ECONN|ETIMEDOUT|ENOTFOUND|EAI_|CONNECT_TIMEOUT|CONNECTION_)/.test(code) ||
      ["40001", "40P01", "53300", "57P01", "57P03"].includes(code) ||
      code.startsWith("08"),
  );
