/**
 * Opening a database in this process: a SQLite file (or `:memory:`) or PostgreSQL, each behind an
 * `Engine`. The SDK adds servers (`http(s)://`); the server opens only these.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PostgresBackend, type PostgresOptions } from "../backends/postgres/postgres-backend.js";
import { schemaExists } from "../backends/postgres/schema-exists.js";
import { SqliteBackend, type SqliteOptions } from "../backends/sqlite/sqlite-backend.js";
import { type Duration, parseDuration } from "../codec/duration.js";
import type { Database } from "../engine/database.js";
import { type CommitObserver, Engine } from "../engine/engine.js";
import { KvError } from "../kv-error.js";

export interface LocalOptions extends SqliteOptions, PostgresOptions {
  /**
   * How long the change history is kept for watches resuming from a cursor (default `"1h"`, and
   * at most the newest million changes). Embedded and server databases only.
   */
  changeRetention?: Duration;
  /**
   * Whether this process removes expired entries, and change records older than
   * `changeRetention`, in the background (default true). Turn it off where another process sweeps
   * the same database: reads hide expired entries either way, but they take space, and watches
   * hear of their expiry, only once swept. Embedded and server databases only.
   */
  sweep?: boolean;
  /** Told of each group commit (its size and duration): for metrics. Embedded and server databases only. */
  commitObserver?: CommitObserver;
}

/** Where `openKv()` and `new Kv()` keep data when given no path. */
export const DEFAULT_PATH = "./cairn-data/cairn.db";

/** Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`). */
export const isPostgresUrl = (location: string) => /^postgres(ql)?:\/\//i.test(location);

/** The engine over the SQLite file, `file://` URL, `:memory:` or `postgres://` URL `location`. */
export function openLocalDatabase(location: string, options: LocalOptions = {}): Database {
  const changeRetentionMs =
    options.changeRetention === undefined
      ? undefined
      : parseDuration(options.changeRetention, "changeRetention");
  const engineOptions = {
    changeRetentionMs,
    sweep: options.sweep,
    commitObserver: options.commitObserver,
  };
  if (isPostgresUrl(location)) {
    return new Engine(new PostgresBackend(location, options), engineOptions);
  }
  return new Engine(new SqliteBackend(sqlitePathOf(location), options), engineOptions);
}

/** The SQLite file `location` names: a path or `:memory:` as is, a `file://` URL as its path. */
function sqlitePathOf(location: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return location;
  if (!location.startsWith("file://")) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `Unsupported database URL ${location}: Cairn opens SQLite files (a path, file:// URL or ":memory:"), PostgreSQL (postgres://) and servers (http:// or https://)`,
    );
  }
  return fileURLToPath(location);
}

/**
 * Whether a database exists at `location`, without making one: its SQLite file, or its
 * PostgreSQL schema. An in-memory database exists only while it is open.
 */
export async function localDatabaseExists(location: string): Promise<boolean> {
  if (isPostgresUrl(location)) return schemaExists(location);
  if (location === ":memory:") return false;
  return existsSync(sqlitePathOf(location));
}
