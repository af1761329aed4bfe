import { describe, expect, it } from "vitest";
import { encodeKey } from "../src/codec/key-codec.js";
import { decodeValue } from "../src/codec/value-codec.js";
import type { Database } from "../src/engine/database.js";
import { GroupedReads } from "../src/engine/grouped-reads.js";
import { Kv, openDatabase } from "../src/sdk/kv.js";

/** `database` with its `get` replaced by `get`; every other method is the database's own. */
function withGet(database: Database, get: Database["get"]): Database {
  return new Proxy(database, {
    get(target, name) {
      if (name === "get") return get;
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The engine on SQLite in memory, with every storage-level `get` it receives recorded. */
function recordingDatabase(): { database: Database; gets: number[][] } {
  const engine = openDatabase(":memory:");
  const gets: number[][] = [];
  const database = withGet(engine, (keys) => {
    gets.push(keys.map((key) => key.length));
    return engine.get(keys);
  });
  return { database, gets };
}

const values = (entries: readonly ({ data: unknown } | null)[]) =>
  entries.map((entry) => (entry === null ? null : decodeValue(entry as never)));

describe("grouped reads", () => {
  it("merges the gets of one turn into one storage read, each caller getting its own entries", async () => {
    const { database, gets } = recordingDatabase();
    const grouped = new GroupedReads(database);
    const kv = new Kv(grouped);
    await kv.set(["a"], "A");
    await kv.set(["b"], { n: 2 });
    gets.length = 0;

    const [one, two, three] = await Promise.all([
      grouped.get([encodeKey(["a"])]),
      grouped.get([encodeKey(["b"]), encodeKey(["missing"]), encodeKey(["a"])]),
      grouped.get([encodeKey(["b"])]),
    ]);
    expect(values(one)).toEqual(["A"]);
    expect(values(two)).toEqual([{ n: 2 }, null, "A"]);
    expect(values(three)).toEqual([{ n: 2 }]);
    expect(gets).toHaveLength(1);
    expect(gets[0]).toHaveLength(5);
    await kv.close();
  });

  it("reads what was committed before the read was asked for", async () => {
    const { database } = recordingDatabase();
    const kv = new Kv(new GroupedReads(database));
    for (let i = 0; i < 20; i++) {
      const [write] = await Promise.all([kv.set(["k"], i), kv.get(["k"])]);
      expect(write.ok).toBe(true);
      expect((await kv.get(["k"])).value).toBe(i);
    }
    await kv.close();
  });

  it("rejects every read of a group when storage fails, and answers queued reads before closing", async () => {
    const { database } = recordingDatabase();
    const failing = new GroupedReads(
      withGet(database, () => Promise.reject(new Error("disk on fire"))),
    );
    const reads = [failing.get([encodeKey(["a"])]), failing.get([encodeKey(["b"])])];
    for (const read of reads) await expect(read).rejects.toThrow("disk on fire");

    const grouped = new GroupedReads(database);
    await new Kv(grouped).set(["a"], 1);
    const queued = grouped.get([encodeKey(["a"])]);
    await grouped.close();
    expect(values(await queued)).toEqual([1]);
  });
});
