import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { StorageCommit, StorageMutation, StoredChanges } from "../src/backends/backend.js";
import { SqliteBackend } from "../src/backends/sqlite/sqlite-backend.js";
import { type EncodedValue, ValueEncoding } from "../src/codec/value-codec.js";
import { counterFromVersionstamp, versionstampFromCounter } from "../src/codec/versionstamp.js";
import { openKv } from "../src/index.js";
import { KvError } from "../src/kv-error.js";
import { collect, startNode, until } from "./targets.js";

const dirs: string[] = [];
function tempPath(): string {
  const dir = join(tmpdir(), `cairn-sqlite-${randomUUID()}`);
  dirs.push(dir);
  return join(dir, "nested", "db.sqlite");
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function rows(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe("SQLite backend", () => {
  it("creates the file and its directory, and keeps data and versionstamps across reopening", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.set(["a"], { n: 1 });
    const { versionstamp } = await kv.set(["b"], 2n);
    await kv.close();

    const again = await openKv(`file://${path}`);
    expect((await again.getMany([["a"], ["b"]])).map((e) => e.value)).toEqual([{ n: 1 }, 2n]);
    const next = await again.set(["c"], 3);
    expect(next.versionstamp > versionstamp).toBe(true);
    await again.close();
  });

  it("keeps versionstamps increasing across two connections writing to one file", async () => {
    const path = tempPath();
    const a = await openKv(path);
    const b = await openKv(path);
    const stamps: string[] = [];
    for (let i = 0; i < 30; i++) {
      const writer = i % 3 === 0 ? b : a; // runs of several commits on each side
      stamps.push((await writer.set(["k", i], i)).versionstamp);
    }
    expect([...stamps].sort()).toEqual(stamps);
    expect(new Set(stamps).size).toBe(30);
    await a.close();
    await b.close();
    const again = await openKv(path);
    expect((await again.set(["after"], 1)).versionstamp > stamps.at(-1)!).toBe(true);
    await again.close();
  });

  it("wakes a commit listener when another connection commits, through the WAL file's events", async () => {
    const path = tempPath();
    const writer = await openKv(path);
    // A poll an hour apart: only the watched WAL file can wake this listener within the test.
    const listening = new SqliteBackend(path, { externalCommitPollMs: 3_600_000 });
    let woken = 0;
    const stop = listening.onCommit(() => woken++);
    try {
      await writer.set(["from", "elsewhere"], 1);
      await until(() => woken === 1);
      await writer.set(["from", "elsewhere"], 2);
      await until(() => woken === 2);
    } finally {
      stop();
      await listening.close();
      await writer.close();
    }
  });

  it("lets several processes open a new file at the same moment (each migration runs once)", async () => {
    const path = tempPath();
    const script = `
      const { openKv } = await import(${JSON.stringify(join(__dirname, "../dist/index.js"))});
      const kv = await openKv(process.argv[1]);
      await kv.set(["opened", process.pid], true);
      await kv.close();
      console.log("done");`;
    const openers = Array.from({ length: 4 }, () =>
      startNode(["--input-type=module", "-e", script, path], /^done$/),
    );
    await Promise.all(openers); // each printed "done" after closing its database
    const kv = await openKv(path);
    expect(await collect(kv.list({ prefix: ["opened"] }))).toHaveLength(4);
    await kv.close();
  });

  it("groups concurrent commits into one transaction (one WAL commit, one fsync)", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.set(["warm"], 0);
    // Under the auto-checkpoint threshold the WAL only grows, by one page-sized frame per page written.
    const walFrames = () => statSync(`${path}-wal`).size / (4096 + 24);
    const before = walFrames();
    await Promise.all(Array.from({ length: 200 }, (_, i) => kv.set(["k", i], i)));
    const grouped = walFrames() - before;
    for (let i = 0; i < 20; i++) await kv.set(["s", i], i);
    const sequential = walFrames() - before - grouped;
    expect(sequential).toBeGreaterThanOrEqual(20); // at least one frame per transaction
    expect(grouped).toBeLessThan(20); // 200 commits in a handful of pages
    await kv.close();
  });

  it("checkpoints the WAL into the file once it holds 4000 pages", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    const walFrames = () => statSync(`${path}-wal`).size / (4096 + 24);
    let largest = 0;
    for (let i = 0; i < 330; i++) {
      // ~15 overflow pages per commit, each rewritten (SQLite skips overflow pages left unchanged)
      await kv.set(["big", i % 10], randomBytes(60_000));
      largest = Math.max(largest, walFrames());
    }
    // SQLite reuses the WAL from its start after a checkpoint, so the file stops growing there.
    expect(largest).toBeGreaterThan(3900);
    expect(largest).toBeLessThan(4000 + 40);
    expect(statSync(path).size).toBeGreaterThan(10 * 60_000); // the pages reached the file
    await kv.close();
  });

  // /proc/self/maps lists a process's memory maps on Linux only.
  it.runIf(process.platform === "linux")(
    "reads the database file through a memory map",
    async () => {
      const path = tempPath();
      const kv = await openKv(path);
      // The file itself, not its -shm (which SQLite maps in any case)
      const mapped = () =>
        readFileSync("/proc/self/maps", "utf8")
          .split("\n")
          .some((line) => line.endsWith(` ${path}`));
      await kv.set(["k"], "v");
      expect((await kv.get(["k"])).value).toBe("v");
      expect(mapped()).toBe(true);
      await kv.close();
      expect(mapped()).toBe(false);
    },
  );

  it("uses WAL, a WITHOUT ROWID table, and JSON text that SQLite's JSON functions read", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.set(["user", 1], { name: "Alice", tags: ["x"] });
    await kv.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'kv'").pluck().get()).toMatch(
        /WITHOUT ROWID/,
      );
      expect(db.prepare("SELECT json_extract(data, '$.tags[0]') FROM kv").pluck().get()).toBe("x");
    } finally {
      db.close();
    }
  });

  it("keeps one search document per indexed key however often the key is rewritten", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.createIndex(["post"], { fields: ["title"] });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) await kv.set(["post", i], { title: `take ${round}` });
    }
    await kv.atomic().sum(["post", 9], 1n).sum(["post", 9], 1n).commit();
    await kv.close();
    const db = new Database(path, { readonly: true });
    try {
      const count = (sql: string) => db.prepare(sql).pluck().get();
      expect(count("SELECT count(*) FROM search_keys")).toBe(5);
      // A rewrite replaces the row: the old document must leave the full-text index with it.
      expect(count("SELECT count(*) FROM search_1")).toBe(5);
    } finally {
      db.close();
    }
  });

  it("sweeps expired entries out of the file in the background", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.set(["keep"], 1);
    for (let i = 0; i < 5; i++) await kv.set(["temp", i], i, { expireIn: 400 });
    expect(rows(path)).toBe(6);
    await until(() => rows(path) === 1);
    await kv.close();
  });

  it("sweeps entries that expired while the database was closed once reopened", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.set(["temp"], 1, { expireIn: 20 });
    await kv.close();
    const db = new Database(path, { readonly: true });
    const expiresAt = db.prepare("SELECT expires_at FROM kv").pluck().get() as number;
    db.close();
    await until(() => Date.now() > expiresAt); // expired while closed
    const again = await openKv(path);
    await until(() => rows(path) === 0);
    await again.close();
  });

  it("refuses a file whose schema is from a newer Cairn, and leaves it as it was", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.set(["k"], "v");
    await kv.close();
    const db = new Database(path);
    const newer = (db.pragma("user_version", { simple: true }) as number) + 1;
    db.pragma(`user_version = ${newer}`);
    db.close();
    await expect(openKv(path)).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(/from a newer Cairn.*upgrade Cairn/),
    });
    const after = new Database(path, { readonly: true });
    try {
      expect(after.pragma("user_version", { simple: true })).toBe(newer);
      expect(after.prepare("SELECT count(*) FROM kv").pluck().get()).toBe(1);
    } finally {
      after.close();
    }
  });

  it("reports a path it cannot open as INVALID_ARGUMENT", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.close();
    await expect(openKv(join(path, "inside-a-file.sqlite"))).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(openKv("redis://localhost:6379/")).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
  });
});

/** The change feed's storage: one `change_log` row per group commit. */
describe("SQLite change log", () => {
  const ZERO = versionstampFromCounter(0);
  const value: EncodedValue = { encoding: ValueEncoding.JSON, data: "1" };
  const set = (key: string): StorageMutation => ({
    type: "set",
    key: Buffer.from(key),
    value,
    expiresAt: null,
  });
  const commit = (...mutations: StorageMutation[]): StorageCommit => ({ checks: [], mutations });
  /** Each commit's changes as `key` or `-key` (deleted). */
  const shape = (page: StoredChanges) =>
    page.commits.map((c) =>
      c.changes.map((ch) => `${ch.entry ? "" : "-"}${Buffer.from(ch.key).toString("latin1")}`),
    );
  const backends: SqliteBackend[] = [];
  const open = (path = tempPath()) => {
    const backend = new SqliteBackend(path);
    backends.push(backend);
    return backend;
  };
  afterEach(async () => {
    for (const backend of backends.splice(0)) await backend.close();
  });

  it("writes one row per group, without the changes of a commit that failed in its savepoint", async () => {
    const path = tempPath();
    const backend = open(path);
    const failing: StorageMutation = {
      type: "modify",
      key: Buffer.from("c"),
      apply: () => {
        throw new KvError("INVALID_ARGUMENT", "not this one");
      },
    };
    const outcomes = await backend.commit(
      [commit(set("a")), commit(set("b"), failing), commit(set("d"), set("a"), set("d"))],
      Date.now(),
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, "error", true]);
    // The first commit set "a" again later: the later change reports it.
    expect(shape(await backend.readChanges(ZERO, 100))).toEqual([[], ["a", "d"]]);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare("SELECT count(*) FROM change_log").pluck().get()).toBe(1);
    } finally {
      db.close();
    }
  });

  it("pages whole commits, a larger one alone, and resumes from a cursor inside a group", async () => {
    const backend = open();
    const [a, b] = (await backend.commit(
      [
        commit(set("a")),
        commit(set("b")),
        commit(set("c1"), set("c2"), set("c3")),
        commit(set("e")),
      ],
      Date.now(),
    )) as { versionstamp: string }[];
    expect(shape(await backend.readChanges(ZERO, 2))).toEqual([["a"], ["b"]]);
    expect(shape(await backend.readChanges(a!.versionstamp, 2))).toEqual([["b"]]);
    expect(shape(await backend.readChanges(b!.versionstamp, 2))).toEqual([["c1", "c2", "c3"]]);
    expect(shape(await backend.readChanges(b!.versionstamp, 4))).toEqual([
      ["c1", "c2", "c3"],
      ["e"],
    ]);
  });

  it("reports a deletion, and leaves out a change that a later commit superseded", async () => {
    const backend = open();
    await backend.commit([commit(set("a"), set("b"))], Date.now());
    await backend.commit([commit({ type: "delete", key: Buffer.from("a") })], Date.now());
    await backend.commit([commit(set("b"))], Date.now());
    expect(shape(await backend.readChanges(ZERO, 100))).toEqual([[], ["-a"], ["b"]]);
  });

  it("prunes whole groups: those committed before the cutoff and those past the newest kept", async () => {
    const backend = open();
    const group = (...keys: string[]) =>
      backend.commit(
        keys.map((key) => commit(set(key))),
        1000,
      ) as Promise<{ versionstamp: string }[]>;
    const g1 = await group("a", "b", "c");
    const g2 = await group("d", "e", "f");
    await group("g", "h", "i");
    const prune = (before: number, keep: number) =>
      backend.commit([commit({ type: "pruneChanges", before, keep })], 2000);
    // The newest 4 changes reach into the second group, which stays whole.
    await prune(0, 4);
    let page = await backend.readChanges(ZERO, 100);
    expect(page.horizon).toBe(g1.at(-1)!.versionstamp);
    expect(shape(page)).toEqual([["d"], ["e"], ["f"], ["g"], ["h"], ["i"]]);
    expect(shape(await backend.readChanges(g2[0]!.versionstamp, 100))).toHaveLength(5);
    // Every group was committed before 1500.
    await prune(1500, 100);
    page = await backend.readChanges(ZERO, 100);
    expect(page.commits).toEqual([]);
    expect(page.horizon).toBe(page.head);
    expect(counterFromVersionstamp(page.head)).toBeGreaterThan(
      counterFromVersionstamp(g2[2]!.versionstamp),
    );
  });

  it("moves the change rows of a file from before the change log into it", async () => {
    const path = tempPath();
    const kv = await openKv(path);
    await kv.set(["m", 1], 1);
    await kv.atomic().set(["m", 2], 2).set(["m", 3], 3).commit();
    await kv.close();
    // Back to schema version 3: one `changes` row per key a commit changed, and a deletion.
    const db = new Database(path);
    const keys = db.prepare("SELECT key FROM kv ORDER BY versionstamp, key").pluck().all();
    const [k1, k2, k3] = (keys as Buffer[]).map((key) => key.toString("latin1"));
    db.exec(`CREATE TABLE changes (
               versionstamp INTEGER NOT NULL,
               key BLOB NOT NULL,
               deleted INTEGER NOT NULL,
               committed_at INTEGER NOT NULL,
               PRIMARY KEY (versionstamp, key)
             ) WITHOUT ROWID;
             INSERT INTO changes SELECT versionstamp, key, 0, 1000 FROM kv;
             INSERT INTO changes SELECT max(versionstamp) + 1, CAST('gone' AS BLOB), 1, 1000 FROM kv;
             DROP TABLE change_log;
             PRAGMA user_version = 3;`);
    db.close();
    const page = await open(path).readChanges(ZERO, 100);
    expect(shape(page)).toEqual([[k1], [k2, k3], ["-gone"]]);
  });
});
