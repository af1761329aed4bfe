/**
 * The ceiling: the workloads as a hand-written app would do them on better-sqlite3, with minimal
 * SQL and the same durability as Cairn's default (WAL, synchronous=FULL: an fsync per commit).
 */
import Database from "better-sqlite3";
import {
  BATCH,
  measure,
  needsPreload,
  PRELOAD_KEYS,
  randomKeys,
  rewrittenValue,
  VALUE,
} from "./workloads.js";

export function open(path) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("cache_size = -65536");
  db.exec("CREATE TABLE kv (key BLOB PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID");
  return db;
}

/** Key `["k", i]` as an app would spell it: "k", a separator, then `i` big-endian, so keys sort by `i`. */
export function keyOf(i) {
  const key = Buffer.alloc(6);
  key.write("k\0", "latin1");
  key.writeUInt32BE(i, 2);
  return key;
}

const PREFIX_START = Buffer.from("k\0", "latin1");
const PREFIX_END = Buffer.from("k\x01", "latin1");

function statements(db) {
  const upsert = db.prepare("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)");
  const select = db.prepare("SELECT value FROM kv WHERE key = ?").pluck();
  const range = db.prepare(
    "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT 100",
  );
  const put = (i, value = VALUE) => upsert.run(keyOf(i), JSON.stringify(value));
  const get = (i) => JSON.parse(select.get(keyOf(i)));
  return {
    put,
    get,
    putRows: db.transaction((from, count) => {
      for (let i = from; i < from + count; i++) put(i);
    }),
    getThenPut: db.transaction((i, value) => {
      get(i);
      put(i, value);
    }),
    list: () => range.all(PREFIX_START, PREFIX_END).map((row) => JSON.parse(row.value)),
  };
}

const rawWorkloads = {
  E1: (sql) => (from, count) => {
    for (let i = from; i < from + count; i++) sql.put(i);
  },
  E2: (sql) => {
    const next = randomKeys();
    return (_from, count) => {
      for (let n = 0; n < count; n++) sql.get(next());
    };
  },
  E3: (sql) => {
    const next = randomKeys();
    return (from, count) => {
      for (let n = from; n < from + count; n++) sql.getThenPut.immediate(next(), rewrittenValue(n));
    };
  },
  E4: (sql) => (_from, count) => {
    for (let n = 0; n < count; n++) {
      const values = sql.list();
      if (values.length !== 100) throw new Error(`Listed ${values.length} rows, expected 100`);
    }
  },
  E5: (sql) => (from, count) => {
    for (let row = from; row < from + count; row += BATCH) {
      sql.putRows(row, Math.min(BATCH, from + count - row));
    }
  },
};

/** Writes keys `["k", 0]` … `["k", PRELOAD_KEYS - 1]`, BATCH rows per commit. */
export function preload(db) {
  rawWorkloads.E5(statements(db))(0, PRELOAD_KEYS);
}

/** Creates the database at `path`, preloads it if the workload needs it, and measures the workload. */
export async function measureRaw(path, spec) {
  const db = open(path);
  try {
    if (needsPreload(spec.workload)) preload(db);
    return await measure(rawWorkloads[spec.workload](statements(db)), spec);
  } finally {
    db.close();
  }
}
