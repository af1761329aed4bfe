import { beforeEach, expect, it } from "vitest";
import type { KvKey, KvPage, KvWhere } from "../../src/index.js";
import { conformance, sleep } from "../targets.js";

conformance("count", (kv) => {
  beforeEach(async () => {
    const op = kv().atomic();
    op.set(["n"], "the prefix key");
    for (let i = 0; i < 30; i++) op.set(["n", i], { i, even: i % 2 === 0 });
    op.set(["n", 3, "child"], { i: 3 });
    op.set(["other"], 1);
    await op.commit();
  });

  it("counts the keys under a prefix, not the prefix itself", async () => {
    expect(await kv().count(["n"])).toBe(31);
    expect(await kv().count(["n", 3])).toBe(1);
    expect(await kv().count(["none"])).toBe(0);
    expect(await kv().count([])).toBe(33);
  });

  it("counts with a filter and a range", async () => {
    expect(await kv().count(["n"], { where: { even: true } })).toBe(15);
    expect(await kv().count(["n"], { where: { i: { $gte: 25 } } })).toBe(5);
    expect(await kv().count(["n"], { start: ["n", 10], end: ["n", 20] })).toBe(10);
    expect(
      await kv().count(["n"], { start: ["n", 10], end: ["n", 20], where: { even: false } }),
    ).toBe(5);
  });

  it("never counts expired keys", async () => {
    await kv().set(["n", 100], { even: true }, { expireIn: 1 });
    await sleep(20);
    expect(await kv().count(["n"])).toBe(31);
    expect(await kv().count(["n"], { where: { even: true } })).toBe(15);
  });
});

conformance("paginate", (kv) => {
  beforeEach(async () => {
    const op = kv().atomic();
    for (let i = 1; i <= 10; i++) op.set(["items", i], { i, odd: i % 2 === 1 });
    await op.commit();
  });

  const pages = async (options: { limit: number; reverse?: boolean; where?: KvWhere }) => {
    const out: KvKey[][] = [];
    let cursor: string | null = null;
    for (;;) {
      const page: KvPage = await kv().paginate(["items"], { ...options, cursor });
      out.push(page.entries.map((e) => e.key));
      expect(page.hasMore).toBe(page.cursor !== null);
      if (!page.hasMore) return out;
      cursor = page.cursor;
    }
  };

  it("pages with limit 3, forwards and in reverse", async () => {
    const forward = await pages({ limit: 3 });
    expect(forward.map((p) => p.map((k) => k[1]))).toEqual([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]);
    const reverse = await pages({ limit: 3, reverse: true });
    expect(reverse.map((p) => p.map((k) => k[1]))).toEqual([[10, 9, 8], [7, 6, 5], [4, 3, 2], [1]]);
  });

  it("reports no more pages when the last page is exactly full", async () => {
    const page = await kv().paginate(["items"], { limit: 10 });
    expect(page).toMatchObject({ hasMore: false, cursor: null });
    expect(page.entries).toHaveLength(10);
    const first = await kv().paginate(["items"], { limit: 5 });
    expect(first.hasMore).toBe(true);
    const second = await kv().paginate(["items"], { limit: 5, cursor: first.cursor });
    expect(second).toMatchObject({ hasMore: false, cursor: null });
  });

  it("pages through filtered entries", async () => {
    const odd = await pages({ limit: 2, where: { odd: true } });
    expect(odd.map((p) => p.map((k) => k[1]))).toEqual([[1, 3], [5, 7], [9]]);
  });

  it("neither repeats nor skips entries that exist throughout while data changes", async () => {
    const first = await kv().paginate<{ i: number }>(["items"], { limit: 4 });
    await kv().delete(["items", 2], { exact: true }); // already seen
    await kv().delete(["items", 6], { exact: true }); // not yet seen
    await kv().set(["items", 0], { i: 0 }); // before the cursor: not shown
    await kv().set(["items", 5.5], { i: 5.5 }); // after the cursor: shown
    const rest: unknown[] = [];
    let cursor = first.cursor;
    while (cursor !== null) {
      const page = await kv().paginate<{ i: number }>(["items"], { limit: 4, cursor });
      rest.push(...page.entries.map((e) => e.value.i));
      cursor = page.cursor;
    }
    expect(first.entries.map((e) => e.value.i)).toEqual([1, 2, 3, 4]);
    expect(rest).toEqual([5, 5.5, 7, 8, 9, 10]);
  });

  it("uses a default limit of 100, rejects a limit above 1000 and bad cursors", async () => {
    for (const from of [11, 561]) {
      const op = kv().atomic();
      for (let i = from; i < from + 550; i++) op.set(["items", i], i);
      await op.commit();
    }
    const page = await kv().paginate(["items"]);
    expect(page.entries).toHaveLength(100);
    const big = await kv().paginate(["items"], { limit: 1000 });
    expect(big).toMatchObject({ hasMore: true });
    expect(big.entries).toHaveLength(1000);
    const tail = await kv().paginate(["items"], { limit: 1000, cursor: big.cursor });
    expect(tail.entries).toHaveLength(110);
    expect(tail.hasMore).toBe(false);
    await expect(kv().paginate(["items"], { limit: 1001 })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    // Not base64, not a key, a key of another prefix: refused, never an empty last page.
    const other = (await kv().paginate(["items"], { limit: 1 })).cursor!;
    await kv().set(["other", 1], 1);
    for (const cursor of ["not a cursor!", "garbage", "-1", "AA", "//8"]) {
      await expect(kv().paginate(["items"], { cursor })).rejects.toMatchObject({
        code: "INVALID_CURSOR",
      });
      expect(() => kv().list({ prefix: ["items"] }, { cursor })).toThrow(
        expect.objectContaining({ code: "INVALID_CURSOR" }),
      );
    }
    // A cursor is relative to its listing's prefix: another listing's may name a key outside.
    await expect(
      kv().paginate(["items"], { cursor: other, start: ["items", 500] }),
    ).rejects.toMatchObject({ code: "INVALID_CURSOR" });
  });

  it("skips expired entries", async () => {
    await kv().set(["items", 3], { i: 3 }, { expireIn: 1 });
    await sleep(20);
    const page = await kv().paginate(["items"], { limit: 3 });
    expect(page.entries.map((e) => e.key[1])).toEqual([1, 2, 4]);
  });
});
