import { beforeEach, expect, it } from "vitest";
import type { KvKey } from "../../src/index.js";
import { collect, conformance } from "../targets.js";

const keysOf = async (iterable: AsyncIterable<{ key: KvKey }>) =>
  (await collect(iterable)).map((e) => e.key);

conformance("list", (kv) => {
  beforeEach(async () => {
    const op = kv().atomic();
    op.set(["data"], "the prefix key itself");
    for (let i = 1; i <= 10; i++) op.set(["data", i], i);
    op.set(["data", "a"], "string parts sort before numbers");
    op.set(["other", 1], "outside");
    await op.commit();
  });

  it("lists a prefix in key order, excluding the prefix key itself", async () => {
    expect(await keysOf(kv().list({ prefix: ["data"] }))).toEqual([
      ["data", "a"],
      ...Array.from({ length: 10 }, (_, i) => ["data", i + 1]),
    ]);
  });

  it("lists the whole database with an empty prefix", async () => {
    expect(await keysOf(kv().list({ prefix: [] }))).toHaveLength(13);
  });

  it("narrows a prefix with start (inclusive) or end (exclusive)", async () => {
    expect(await keysOf(kv().list({ prefix: ["data"], start: ["data", 9] }))).toEqual([
      ["data", 9],
      ["data", 10],
    ]);
    expect(await keysOf(kv().list({ prefix: ["data"], end: ["data", 2] }))).toEqual([
      ["data", "a"],
      ["data", 1],
    ]);
  });

  it("lists a [start, end) range", async () => {
    expect(await keysOf(kv().list({ start: ["data", 3], end: ["data", 6] }))).toEqual([
      ["data", 3],
      ["data", 4],
      ["data", 5],
    ]);
    expect(await keysOf(kv().list({ start: ["data", 3], end: ["data", 3] }))).toEqual([]);
  });

  it("supports reverse and limit", async () => {
    expect(await keysOf(kv().list({ prefix: ["data"] }, { reverse: true, limit: 3 }))).toEqual([
      ["data", 10],
      ["data", 9],
      ["data", 8],
    ]);
  });

  it("gives the same result for every batch size", async () => {
    const all = await keysOf(kv().list({ prefix: ["data"] }));
    for (const batchSize of [1, 2, 3, 7, 1000]) {
      expect(await keysOf(kv().list({ prefix: ["data"] }, { batchSize }))).toEqual(all);
      expect(await keysOf(kv().list({ prefix: ["data"] }, { batchSize, reverse: true }))).toEqual(
        [...all].reverse(),
      );
      expect(await keysOf(kv().list({ prefix: ["data"] }, { batchSize, limit: 5 }))).toEqual(
        all.slice(0, 5),
      );
    }
  });

  it("accepts the seed's list(prefix, { start, end, limit, reverse })", async () => {
    expect(
      await keysOf(kv().list(["data"], { start: ["data", 2], end: ["data", 5], reverse: true })),
    ).toEqual([
      ["data", 4],
      ["data", 3],
      ["data", 2],
    ]);
    expect(await keysOf(kv().list(["data"], { limit: 2 }))).toEqual([
      ["data", "a"],
      ["data", 1],
    ]);
    expect(await keysOf(kv().list(["data"], { start: ["a"], end: ["zzz"] }))).toHaveLength(11);
  });

  it("produces Deno's cursors and resumes from them", async () => {
    const it1 = kv().list({ prefix: ["data"], start: ["data", 1] }, { limit: 1 });
    expect((await collect(it1)).map((e) => e.key)).toEqual([["data", 1]]);
    expect(it1.cursor).toBe("Ib_wAAAAAAAA");

    const range = kv().list({ start: ["data", 1], end: ["data", 100] }, { limit: 1 });
    await collect(range);
    expect(range.cursor).toBe("v_AAAAAAAAA=");

    const rest = await keysOf(
      kv().list({ prefix: ["data"] }, { cursor: "Ib_wAAAAAAAA", limit: 2 }),
    );
    expect(rest).toEqual([
      ["data", 2],
      ["data", 3],
    ]);
  });

  it("pages through a listing with cursors, forwards and in reverse", async () => {
    for (const reverse of [false, true]) {
      const all = await keysOf(kv().list({ prefix: ["data"] }, { reverse }));
      const paged: KvKey[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = kv().list(
          { prefix: ["data"] },
          { limit: 4, reverse, ...(cursor ? { cursor } : {}) },
        );
        const keys = await keysOf(page);
        paged.push(...keys);
        if (keys.length < 4) break;
        cursor = page.cursor;
      }
      expect(paged).toEqual(all);
    }
  });

  it("throws for cursor before the first iteration and returns '' once exhausted", async () => {
    const iter = kv().list({ prefix: ["data"] });
    expect(() => iter.cursor).toThrow("Cannot get cursor before first iteration");
    await collect(iter);
    expect(iter.cursor).toBe("");
    const resumed = kv().list({ prefix: ["data"] }, { cursor: "Ib_wAAAAAAAA" });
    expect(resumed.cursor).toBe("Ib_wAAAAAAAA");
  });

  it("rejects invalid selectors with Deno's messages", () => {
    const cases: [unknown, string][] = [
      [{ start: ["a"] }, "Selector must specify either 'prefix' or both 'start' and 'end' key"],
      [{}, "Selector must specify either 'prefix' or both 'start' and 'end' key"],
      [
        { prefix: ["a"], start: ["a", 1], end: ["a", 2] },
        "Selector can not specify both 'start' and 'end' key when specifying 'prefix'",
      ],
      [{ prefix: ["a"], start: ["b", 1] }, "Start key is not in the keyspace defined by prefix"],
      [{ prefix: ["a"], start: ["a"] }, "Start key is not in the keyspace defined by prefix"],
      [{ prefix: ["a"], end: ["b"] }, "End key is not in the keyspace defined by prefix"],
      [{ start: ["b"], end: ["a"] }, "Start key is greater than end key"],
    ];
    for (const [selector, message] of cases) {
      expect(() => kv().list(selector as never)).toThrow(message);
    }
    expect(() => kv().list({ start: ["b"], end: ["a"] })).toThrow(
      expect.objectContaining({ code: "INVALID_SELECTOR" }),
    );
  });

  it("rejects bad options and cursors", () => {
    expect(() => kv().list({ prefix: ["data"] }, { limit: 0 })).toThrow(
      "limit must be a positive integer",
    );
    expect(() => kv().list({ prefix: ["data"] }, { limit: 1.5 })).toThrow(
      "limit must be a positive integer",
    );
    expect(() => kv().list({ prefix: ["data"] }, { batchSize: 1001 })).toThrow(
      "Too many entries (max 1000)",
    );
    expect(() => kv().list({ prefix: ["data"] }, { cursor: "not a cursor!" })).toThrow(
      expect.objectContaining({ code: "INVALID_CURSOR" }),
    );
    expect(() => kv().list({ start: ["data", 2], end: ["data", 3] }, { cursor: "AA==" })).toThrow(
      "cursor out of bounds",
    );
  });
});
