/**
 * Whether a Cairn database exists on PostgreSQL without making one: its schema, looked up. The
 * server asks before it opens a named database that a request only reads.
 */
import { connect, postgresError, queryValue } from "./connection.js";

/**
 * Whether the schema the `postgres://` URL `url` names exists (a database Cairn made there), asked
 * on a connection of its own.
 */
export async function schemaExists(url: string): Promise<boolean> {
  const { sql, schema } = connect(url, 1);
  try {
    const found = await queryValue(sql, "SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    return found !== undefined;
  } catch (error) {
    throw postgresError(error);
  } finally {
    await sql.end();
  }
}
