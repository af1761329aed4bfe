/**
 * The SQLite backend (better-sqlite3): one file in WAL mode, keys as a `WITHOUT ROWID` BLOB
 * primary key, JSON values as TEXT so SQLite's JSON functions can read them. A group of commits
 * runs in one `BEGIN IMMEDIATE` transaction (one fsync), each commit inside its own savepoint.
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { suffixVersionstamp } from "../../codec/key-codec.js";
import type { EncodedValue } from "../../codec/value-codec.js";
import { versionstampFromCounter } from "../../codec/versionstamp.js";
import { KvError } from "../../kv-error.js";
import type {
  Backend,
  CommitOutcome,
  KeyRange,
  RawEntry,
  StorageCommit,
  StorageMutation,
} from "../backend.js";

/** Append-only: each entry runs once, in order; `PRAGMA user_version` counts those applied. */
const MIGRATIONS = [
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
];

// Statements take positional parameters (faster to bind than named ones); `now` always comes last.
/** Versionstamp counters reserved per write of the meta row. */
const COUNTER_BLOCK = 4096;

const LIVE = "(expires_at IS NULL OR expires_at > ?)";
const ENTRY = "key, data, encoding, versionstamp";

const SQL = {
  get: `SELECT ${ENTRY} FROM kv WHERE key = ? AND ${LIVE}`,
  scan: `SELECT ${ENTRY} FROM kv WHERE key >= ? AND key < ? AND ${LIVE} ORDER BY key LIMIT ?`,
  scanReverse: `SELECT ${ENTRY} FROM kv WHERE key >= ? AND key < ? AND ${LIVE} ORDER BY key DESC LIMIT ?`,
  set: `INSERT INTO kv (key, data, encoding, versionstamp, expires_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET data = excluded.data, encoding = excluded.encoding,
          versionstamp = excluded.versionstamp, expires_at = excluded.expires_at`,
  delete: `DELETE FROM kv WHERE key = ? AND ${LIVE}`,
  deleteRange: `DELETE FROM kv WHERE key >= ? AND key < ? AND ${LIVE}`,
  purgeExpired: `DELETE FROM kv WHERE key IN
                   (SELECT key FROM kv WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`,
  nextExpiry: "SELECT min(expires_at) AS at FROM kv WHERE expires_at IS NOT NULL",
  readReserved: "SELECT versionstamp FROM meta WHERE id = 0",
  writeReserved: "UPDATE meta SET versionstamp = ? WHERE id = 0",
  dataVersion: "PRAGMA data_version",
} as const;

export interface SqliteOptions {
  /**
   * `"full"` (default): every acknowledged commit is fsynced and survives power loss.
   * `"relaxed"`: commits survive a crash of the process but the last ones may be lost on power
   * loss or an OS crash (SQLite `synchronous=NORMAL` in WAL mode); several times faster for
   * sequential writes.
   */
  durability?: "full" | "relaxed";
}

type Statement = BetterSqlite3.Statement;
/** A row of `ENTRY` columns. */
type Row = [key: Buffer, data: Buffer | string, encoding: number, versionstamp: number];

function entry(row: Row): RawEntry {
  return {
    key: row[0],
    data: row[1],
    encoding: row[2],
    versionstamp: versionstampFromCounter(row[3]),
  } as RawEntry;
}

/** Maps driver errors to `KvError` where they enter. */
function storageError(e: unknown): KvError {
  if (e instanceof KvError) return e;
  const code = (e as { code?: string }).code ?? "";
  const message = `SQLite: ${(e as Error).message}`;
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new KvError("UNAVAILABLE", message, { cause: e });
  }
  return new KvError("INTERNAL", message, { cause: e });
}

export class SqliteBackend implements Backend {
  readonly #db: BetterSqlite3.Database;
  readonly #get: Statement;
  readonly #scan: Statement;
  readonly #scanReverse: Statement;
  readonly #set: Statement;
  readonly #delete: Statement;
  readonly #deleteRange: Statement;
  readonly #purgeExpired: Statement;
  readonly #nextExpiry: Statement;
  readonly #readReserved: Statement;
  readonly #writeReserved: Statement;
  readonly #dataVersion: Statement;
  /** The last versionstamp counter this connection issued, and the reserved bound above it. */
  #counter = 0;
  #reserved = 0;
  /** `PRAGMA data_version` at this connection's last write; it changes when another connection commits. */
  #seenDataVersion = -1;
  readonly #commitGroup: BetterSqlite3.Transaction<
    (group: readonly StorageCommit[], now: number) => CommitOutcome[]
  >;
  readonly #commitOne: BetterSqlite3.Transaction<
    (commit: StorageCommit, now: number, counter: number) => number
  >;
  readonly #snapshot: BetterSqlite3.Transaction<(read: () => unknown) => unknown>;

  /** Opens (creating if needed) the database at `path`, or an in-memory one for `":memory:"`. */
  constructor(path: string, options: SqliteOptions = {}) {
    // Loaded here so that importing Cairn does not load the driver unless SQLite is used.
    const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      this.#db = new Database(path, { timeout: 5000 });
      this.#db.pragma("journal_mode = WAL");
      this.#db.pragma(`synchronous = ${options.durability === "relaxed" ? "NORMAL" : "FULL"}`);
      this.#db.pragma("cache_size = -65536");
      this.#migrate();
    } catch (e) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `Cannot open SQLite database at ${path}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    const db = this.#db;
    // Rows as arrays: cheaper than the driver's objects, and entries get one shape (see `entry`).
    this.#get = db.prepare(SQL.get).raw();
    this.#scan = db.prepare(SQL.scan).raw();
    this.#scanReverse = db.prepare(SQL.scanReverse).raw();
    this.#set = db.prepare(SQL.set);
    this.#delete = db.prepare(SQL.delete);
    this.#deleteRange = db.prepare(SQL.deleteRange);
    this.#purgeExpired = db.prepare(SQL.purgeExpired);
    this.#nextExpiry = db.prepare(SQL.nextExpiry).pluck();
    this.#readReserved = db.prepare(SQL.readReserved).pluck();
    this.#writeReserved = db.prepare(SQL.writeReserved);
    this.#dataVersion = db.prepare(SQL.dataVersion).pluck();
    this.#commitGroup = db.transaction((group, now) => this.#applyGroup(group, now));
    this.#commitOne = db.transaction((commit, now, counter) =>
      this.#applyCommit(commit, now, counter),
    );
    this.#snapshot = db.transaction((read) => read());
  }

  #migrate(): void {
    const applied = this.#db.pragma("user_version", { simple: true }) as number;
    for (let i = applied; i < MIGRATIONS.length; i++) {
      this.#db
        .transaction(() => {
          this.#db.exec(MIGRATIONS[i]!);
          this.#db.pragma(`user_version = ${i + 1}`);
        })
        .immediate();
    }
  }

  async get(keys: readonly Uint8Array[], now: number): Promise<(RawEntry | null)[]> {
    try {
      if (keys.length === 1) return [this.#read(keys[0]!, now)];
      return this.#snapshot(() => keys.map((key) => this.#read(key, now))) as (RawEntry | null)[];
    } catch (e) {
      throw storageError(e);
    }
  }

  async scan(ranges: readonly KeyRange[], now: number): Promise<RawEntry[][]> {
    const scanOne = (r: KeyRange) =>
      ((r.reverse ? this.#scanReverse : this.#scan).all(r.start, r.end, now, r.limit) as Row[]).map(
        entry,
      );
    try {
      return ranges.length === 1
        ? [scanOne(ranges[0]!)]
        : (this.#snapshot(() => ranges.map(scanOne)) as RawEntry[][]);
    } catch (e) {
      throw storageError(e);
    }
  }

  async commit(group: readonly StorageCommit[], now: number): Promise<CommitOutcome[]> {
    try {
      return this.#commitGroup.immediate(group, now);
    } catch (e) {
      this.#seenDataVersion = -1; // rolled back, maybe with a reservation: re-read the meta row
      // A commit alone in its group fails the whole transaction; that is its outcome, not a storage failure.
      if (group.length === 1) return [{ ok: "error", error: storageError(e) }];
      throw storageError(e);
    }
  }

  #applyGroup(group: readonly StorageCommit[], now: number): CommitOutcome[] {
    this.#syncCounter();
    const outcomes: CommitOutcome[] = [];
    for (const commit of group) {
      if (!this.#checksPass(commit, now)) {
        outcomes.push({ ok: false });
        continue;
      }
      try {
        // Alone in its group, a failing commit rolls back the whole transaction (see `commit`);
        // otherwise only its savepoint.
        const counter = this.#nextCounter();
        const deleted =
          group.length === 1
            ? this.#applyCommit(commit, now, counter)
            : this.#commitOne(commit, now, counter);
        outcomes.push({ ok: true, versionstamp: versionstampFromCounter(counter), deleted });
      } catch (error) {
        if (group.length === 1) throw error;
        outcomes.push({ ok: "error", error: storageError(error) });
      }
    }
    return outcomes;
  }

  /**
   * Versionstamp counters are handed out from a reserved block, so that most commits do not write
   * the meta row. Called inside the write transaction: if another connection (another process on
   * the same file) committed since our last write, continue above everything it may have issued.
   * Gaps are allowed; after a crash, counting resumes above the reserved block.
   */
  #syncCounter(): void {
    const dataVersion = this.#dataVersion.get() as number;
    if (dataVersion !== this.#seenDataVersion) {
      this.#counter = this.#reserved = this.#readReserved.get() as number;
      this.#seenDataVersion = dataVersion;
    }
  }

  #nextCounter(): number {
    this.#counter++;
    if (this.#counter >= this.#reserved) {
      this.#reserved = this.#counter + COUNTER_BLOCK;
      this.#writeReserved.run(this.#reserved);
    }
    return this.#counter;
  }

  #checksPass(commit: StorageCommit, now: number): boolean {
    for (const check of commit.checks) {
      if ((this.#read(check.key, now)?.versionstamp ?? null) !== check.versionstamp) return false;
    }
    return true;
  }

  /** Applies one commit's mutations at `counter`; returns how many live entries it deleted. */
  #applyCommit(commit: StorageCommit, now: number, counter: number): number {
    let deleted = 0;
    for (const m of commit.mutations) deleted += this.#applyMutation(m, now, counter);
    return deleted;
  }

  #applyMutation(m: StorageMutation, now: number, counter: number): number {
    switch (m.type) {
      case "set": {
        const key = m.suffixVersionstamp
          ? suffixVersionstamp(m.key, versionstampFromCounter(counter))
          : m.key;
        this.#write(key, m.value, counter, m.expiresAt);
        return 0;
      }
      case "delete":
        return this.#delete.run(m.key, now).changes;
      case "deleteRange":
        return this.#deleteRange.run(m.start, m.end, now).changes;
      case "modify": {
        this.#write(m.key, m.apply(this.#read(m.key, now)), counter, null);
        return 0;
      }
      case "purgeExpired":
        return this.#purgeExpired.run(now, m.limit).changes;
    }
  }

  #read(key: Uint8Array, now: number): RawEntry | null {
    const row = this.#get.get(key, now) as Row | undefined;
    return row ? entry(row) : null;
  }

  #write(key: Uint8Array, value: EncodedValue, counter: number, expiresAt: number | null): void {
    this.#set.run(key, value.data, value.encoding, counter, expiresAt);
  }

  async nextExpiry(): Promise<number | null> {
    try {
      return this.#nextExpiry.get() as number | null;
    } catch (e) {
      throw storageError(e);
    }
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
