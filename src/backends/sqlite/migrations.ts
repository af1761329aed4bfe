/**
 * The SQLite schema: its migrations, and how a file is brought up to date. The version applied is
 * `PRAGMA user_version`.
 */
import type BetterSqlite3 from "better-sqlite3";
import { GroupChanges } from "./change-log.js";

/**
 * Append-only: each entry runs once, in order; `PRAGMA user_version` counts those applied. SQL,
 * or a function for a step that moves data SQL cannot encode.
 */
const MIGRATIONS: (string | ((db: BetterSqlite3.Database) => void))[] = [
  `CREATE TABLE kv (
     key BLOB NOT NULL PRIMARY KEY,
     data BLOB NOT NULL,
     encoding INTEGER NOT NULL,
     versionstamp INTEGER NOT NULL,
     expires_at INTEGER
   ) WITHOUT ROWID;
   CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL;
   -- meta.versionstamp: every versionstamp issued so far is below it (see #nextCounter).
   CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 0), versionstamp INTEGER NOT NULL);
   INSERT INTO meta (id, versionstamp) VALUES (0, 0);`,
  // The change feed, the queue and its dead letters.
  // A change names the key a commit touched; what it wrote is the key's row in kv, as long as no
  // later commit has touched the key again (then that later change reports it).
  `CREATE TABLE changes (
     versionstamp INTEGER NOT NULL,
     key BLOB NOT NULL,
     deleted INTEGER NOT NULL,
     committed_at INTEGER NOT NULL,
     PRIMARY KEY (versionstamp, key)
   ) WITHOUT ROWID;
   -- meta.changes_horizon: every change above this versionstamp counter is still in changes.
   ALTER TABLE meta ADD COLUMN changes_horizon INTEGER NOT NULL DEFAULT 0;
   -- ready_at: when the message may be claimed: its delivery time while pending (lease NULL),
   -- its lease's end while leased. An expired lease is as good as pending.
   CREATE TABLE queue (
     id TEXT NOT NULL UNIQUE,
     data BLOB NOT NULL,
     encoding INTEGER NOT NULL,
     ready_at INTEGER NOT NULL,
     lease TEXT,
     attempts INTEGER NOT NULL,
     backoff TEXT NOT NULL, -- JSON array of ms
     undelivered TEXT NOT NULL, -- JSON array of base64 keys
     created_at INTEGER NOT NULL
   );
   CREATE INDEX queue_ready_at ON queue (ready_at);
   CREATE TABLE dead_letters (
     id TEXT NOT NULL UNIQUE,
     data BLOB NOT NULL,
     encoding INTEGER NOT NULL,
     error TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     backoff TEXT NOT NULL,
     undelivered TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     failed_at INTEGER NOT NULL
   );
   CREATE INDEX dead_letters_failed_at ON dead_letters (failed_at);`,
  // Full-text indexes (search.ts): their definitions, and each indexed key's document id.
  `CREATE TABLE search_indexes (
     id INTEGER PRIMARY KEY,
     prefix BLOB NOT NULL UNIQUE,
     fields TEXT NOT NULL, -- JSON array of field paths (arrays of names and array indexes)
     tokenize TEXT NOT NULL
   );
   CREATE TABLE search_keys (
     id INTEGER PRIMARY KEY,
     index_id INTEGER NOT NULL,
     key BLOB NOT NULL,
     UNIQUE (index_id, key)
   );`,
  // The change feed as one row per group commit (change-log.ts) rather than one per change.
  (db) => {
    db.exec(`CREATE TABLE change_log (
       last INTEGER PRIMARY KEY, -- the newest versionstamp counter among the row's changes
       total INTEGER NOT NULL, -- changes recorded in this row and in every row before it
       committed_at INTEGER NOT NULL,
       changes BLOB NOT NULL
     );
     CREATE INDEX change_log_total ON change_log (total);`);
    moveChangeRows(db);
    db.exec("DROP TABLE changes");
  },
];

/** Moves the rows of the old per-change table into `change_log`, a row for each commit. */
function moveChangeRows(db: BetterSqlite3.Database): void {
  const next = db.prepare("SELECT min(versionstamp) FROM changes WHERE versionstamp > ?").pluck();
  const window = db
    .prepare(`SELECT versionstamp, key, deleted, committed_at FROM changes
              WHERE versionstamp >= ? AND versionstamp < ? ORDER BY versionstamp, key`)
    .raw();
  const insert = db.prepare(
    "INSERT INTO change_log (last, total, committed_at, changes) VALUES (?, ?, ?, ?)",
  );
  let total = 0;
  let start = next.get(-1) as number | null;
  while (start !== null) {
    const rows = window.all(start, start + 4096) as [number, Buffer, number, number][];
    for (let i = 0; i < rows.length; ) {
      const [counter, , , committedAt] = rows[i]!;
      const commit = new GroupChanges();
      for (; i < rows.length && rows[i]![0] === counter; i++) {
        commit.add(counter, rows[i]![1], rows[i]![2] === 1);
      }
      total += commit.size;
      insert.run(counter, total, committedAt, commit.encode().blob);
    }
    start = next.get(start + 4095) as number | null;
  }
}

/**
 * Brings the schema up to date. The version is read again inside each write transaction: another
 * process opening the same new file at the same moment (a `--workers` server) may have applied
 * the migration first.
 */
export function migrate(db: BetterSqlite3.Database): void {
  const version = () => db.pragma("user_version", { simple: true }) as number;
  while (version() < MIGRATIONS.length) {
    db.transaction(() => {
      const applied = version();
      if (applied >= MIGRATIONS.length) return;
      const migration = MIGRATIONS[applied]!;
      if (typeof migration === "string") db.exec(migration);
      else migration(db);
      db.pragma(`user_version = ${applied + 1}`);
    }).immediate();
  }
  if (version() > MIGRATIONS.length) {
    throw new Error(
      `its schema (version ${version()}) is from a newer Cairn than this one (schema version ` +
        `${MIGRATIONS.length}): upgrade Cairn to open it`,
    );
  }
}
