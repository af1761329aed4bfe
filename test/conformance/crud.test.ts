import { expect, it } from "vitest";
import type { KvKey } from "../../src/index.js";
import { collect, conformance } from "../targets.js";

const VERSIONSTAMP = /^[0-9a-f]{20}$/;

conformance("get, set, delete", (kv) => {
  it("sets and gets an entry with its versionstamp", async () => {
    const result = await kv().set(["users", 123], { name: "Alice" });
    expect(result).toEqual({ ok: true, versionstamp: expect.stringMatching(VERSIONSTAMP) });
    expect(await kv().get(["users", 123])).toEqual({
      key: ["users", 123],
      value: { name: "Alice" },
      versionstamp: result.versionstamp,
    });
  });

  it("returns value and versionstamp null for a missing key", async () => {
    expect(await kv().get(["users", 404])).toEqual({
      key: ["users", 404],
      value: null,
      versionstamp: null,
    });
  });

  it("overwrites with a new, greater versionstamp", async () => {
    const first = await kv().set(["k"], 1);
    const second = await kv().set(["k"], 2);
    expect(second.versionstamp > first.versionstamp).toBe(true);
    expect(await kv().get(["k"])).toMatchObject({ value: 2, versionstamp: second.versionstamp });
  });

  it("stores null as a value distinct from absence", async () => {
    const { versionstamp } = await kv().set(["n"], null);
    expect(await kv().get(["n"])).toEqual({ key: ["n"], value: null, versionstamp });
  });

  it("reads a batch in request order with get([k1, k2]) and getMany, duplicates included", async () => {
    await kv().set(["users", 1], "one");
    await kv().set(["users", 2], "two");
    const keys: KvKey[] = [
      ["users", 2],
      ["users", 404],
      ["users", 1],
      ["users", 2],
    ];
    const expected = [
      { key: ["users", 2], value: "two" },
      { key: ["users", 404], value: null, versionstamp: null },
      { key: ["users", 1], value: "one" },
      { key: ["users", 2], value: "two" },
    ];
    expect(await kv().get(keys)).toMatchObject(expected);
    expect(await kv().getMany(keys)).toMatchObject(expected);
    expect(await kv().getMany([])).toEqual([]);
  });

  it("limits getMany to 10 keys (Deno) and the seed's batch get to 1000", async () => {
    const keys = (n: number): KvKey[] => Array.from({ length: n }, (_, i) => ["k", i]);
    expect(await kv().getMany(keys(10))).toHaveLength(10);
    await expect(kv().getMany(keys(11))).rejects.toThrow("Too many ranges (max 10)");
    expect(await kv().get(keys(1000))).toHaveLength(1000);
    await expect(kv().get(keys(1001))).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("deletes a key and its children by default, counting what it removed", async () => {
    await kv().set(["users", 123], "u");
    await kv().set(["users", 123, "posts", 1], "p1");
    await kv().set(["users", 123, "posts", 2], "p2");
    await kv().set(["users", 1234], "other");
    expect(await kv().delete(["users", 123])).toEqual({ success: true, deletedCount: 3 });
    expect((await collect(kv().list({ prefix: [] }))).map((e) => e.key)).toEqual([["users", 1234]]);
  });

  it("deletes only the key with { exact: true }", async () => {
    await kv().set(["users", 123], "u");
    await kv().set(["users", 123, "posts", 1], "p1");
    expect(await kv().delete(["users", 123], { exact: true })).toEqual({
      success: true,
      deletedCount: 1,
    });
    expect((await kv().get(["users", 123])).value).toBeNull();
    expect((await kv().get(["users", 123, "posts", 1])).value).toBe("p1");
    expect(await kv().delete(["users", 123], { exact: true })).toEqual({
      success: true,
      deletedCount: 0,
    });
  });

  it("deletes several keys in one commit", async () => {
    for (const k of ["a", "b", "c"]) await kv().set([k], k);
    await kv().set(["a", "child"], 1);
    expect(await kv().delete([["a"], ["b"], ["zzz"]])).toEqual({ success: true, deletedCount: 3 });
    expect((await collect(kv().list({ prefix: [] }))).map((e) => e.key)).toEqual([["c"]]);
  });

  it("accepts the seed's expiresIn and Deno's expireIn on set", async () => {
    await kv().set(["a"], 1, { expiresIn: "1h" });
    await kv().set(["b"], 2, { expireIn: 3_600_000 });
    expect((await kv().getMany([["a"], ["b"]])).map((e) => e.value)).toEqual([1, 2]);
  });

  it("rejects bad options without writing anything", async () => {
    await expect(kv().set(["a"], 1, { expireIn: "soon" })).rejects.toThrow(
      /Invalid duration format for expireIn: "soon"/,
    );
    await expect(kv().set(["a"], 1, { expireIn: -5 })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect((await kv().get(["a"])).versionstamp).toBeNull();
  });
});
