/**
 * A connection to a SQLite file: the driver, loaded only when a file is opened, the pragmas every
 * connection sets, its prepared statements, and driver errors as `KvError`.
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { KvError } from "../../kv-error.js";
import { storageError } from "../storage-error.js";
import { migrate } from "./migrations.js";
import { prepareStatements, StatementCache, type Statements } from "./statements.js";

/**
 * WAL pages after which a commit checkpoints them into the database file (SQLite's default:
 * 1000, 4 MB). A checkpoint copies each page once however often the WAL holds it, so a longer WAL
 * copies fewer pages per commit where writes revisit pages (B-tree interior pages, the change
 * log's tail, hot keys): durable PUTs of random keys in the server ran 10–13% faster (measured
 * interleaved, 64 connections). The price: a longer pause at each checkpoint (p99 11 → 17 ms
 * there), a WAL file of up to ~16 MB, longer WAL-index lookups for often-written pages (sequential
 * relaxed sets ~6% slower), and, until the WAL file has grown to that size once after opening,
 * fsyncs that also commit its new size (sequential durable sets on a fresh file ~8% slower).
 */
const WAL_CHECKPOINT_PAGES = 4000;

/**
 * How much of the database file SQLite reads through a memory map rather than by copying pages
 * into its page cache (pages still in the WAL are read from there; writes go through write()).
 * Random point reads in the server ran 8–15% faster for 10-key batches (interleaved, 64
 * connections). The mapped pages are the OS's file cache, shared between processes on the same
 * file, and count towards the process's RSS. What SQLite gives up: an I/O error while reading
 * the file ends the process (a signal) instead of failing the read.
 */
const MMAP_BYTES = 2 ** 30;

/** An open database with its statements: what the parts of the backend work with. */
export interface Connection {
  readonly db: BetterSqlite3.Database;
  readonly sql: Statements;
  /** Statements whose text is built at run time. */
  readonly cache: StatementCache;
  /** Runs `read` in one transaction, so that everything it reads is from one snapshot. */
  readonly snapshot: <T>(read: () => T) => T;
}

/**
 * Opens (creating if needed) the database at `path`, or an in-memory one for `":memory:"`, brings
 * its schema up to date and prepares its statements; `INVALID_ARGUMENT` when it cannot be opened.
 */
export function openConnection(
  path: string,
  durability: "full" | "relaxed" | undefined,
): Connection {
  const db = openDatabase(path, durability);
  const snapshot = db.transaction((read: () => unknown) => read());
  return {
    db,
    sql: prepareStatements(db),
    cache: new StatementCache(db),
    snapshot: <T>(read: () => T) => snapshot(read) as T,
  };
}

function openDatabase(
  path: string,
  durability: "full" | "relaxed" | undefined,
): BetterSqlite3.Database {
  // Loaded here so that importing Cairn does not load the driver unless SQLite is used.
  const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;
  let db: BetterSqlite3.Database | undefined;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: 5000 });
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${durability === "relaxed" ? "NORMAL" : "FULL"}`);
    db.pragma("cache_size = -65536");
    db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    db.pragma(`mmap_size = ${MMAP_BYTES}`);
    // A set is an INSERT OR REPLACE (cheaper than an upsert); its replacing deletes the old row
    // through the delete triggers of search indexes only with recursive triggers on.
    db.pragma("recursive_triggers = ON");
    migrate(db);
    return db;
  } catch (e) {
    db?.close();
    throw new KvError(
      "INVALID_ARGUMENT",
      `Cannot open SQLite database at ${path}: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** A driver error as `KvError`: `UNAVAILABLE` while the file is busy or locked. */
export const sqliteError = (e: unknown): KvError =>
  storageError(
    e,
    "SQLite",
    (code) => code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"),
  );
