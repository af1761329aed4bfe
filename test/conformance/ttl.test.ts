import { beforeEach, expect, it } from "vitest";
import { type KvListOptions, type KvListSelector, limits } from "../../src/index.js";
import { collect, conformance, sleep, until } from "../targets.js";

conformance("TTL", (kv) => {
  it("hides an expired key from get, getMany, list and delete counts", async () => {
    await kv().set(["session", 1], "short", { expireIn: 500 });
    await kv().set(["session", 2], "long", { expiresIn: "1h" });
    expect((await kv().get(["session", 1])).value).toBe("short");
    await sleep(600);
    expect(await kv().get(["session", 1])).toEqual({
      key: ["session", 1],
      value: null,
      versionstamp: null,
    });
    expect(
      (
        await kv().getMany([
          ["session", 1],
          ["session", 2],
        ])
      ).map((e) => e.value),
    ).toEqual([null, "long"]);
    expect((await collect(kv().list({ prefix: ["session"] }))).map((e) => e.key)).toEqual([
      ["session", 2],
    ]);
    expect(await kv().delete(["session"])).toEqual({ success: true, deletedCount: 1 });
  });

  it("refuses a TTL past limits.maxExpireInMs with INVALID_ARGUMENT, writing nothing", async () => {
    await kv().set(["far"], "before");
    for (const expireIn of [limits.maxExpireInMs + 1, 9.3e18]) {
      const write = kv().set(["far"], "after", { expireIn });
      await expect(write).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      const atomic = kv().atomic().set(["far"], "after", { expireIn }).commit();
      await expect(atomic).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    expect((await kv().get(["far"])).value).toBe("before");
    await kv().set(["far"], "longest", { expireIn: limits.maxExpireInMs });
    expect((await kv().get(["far"])).value).toBe("longest");
  });

  it("treats an expired key as absent in checks", async () => {
    await kv().set(["lock"], "held", { expireIn: 30 });
    await sleep(60);
    const result = await kv()
      .atomic()
      .check({ key: ["lock"], versionstamp: null })
      .set(["lock"], "mine")
      .commit();
    expect(result.ok).toBe(true);
    expect((await kv().get(["lock"])).value).toBe("mine");
  });

  it("treats an expired value as missing in sum", async () => {
    await kv().set(["n"], "not a number", { expireIn: 30 });
    await sleep(60);
    await kv().atomic().sum(["n"], 5n).commit();
    expect((await kv().get(["n"])).value?.valueOf()).toBe(5n);
  });

  it("expires immediately with expireIn 0", async () => {
    await kv().set(["gone"], 1, { expireIn: 0 });
    expect((await kv().get(["gone"])).value).toBeNull();
  });

  it("clears the TTL when a key is set again without one", async () => {
    await kv().set(["k"], 1, { expireIn: 40 });
    await kv().set(["k"], 2);
    await sleep(80);
    expect((await kv().get(["k"])).value).toBe(2);
  });

  it("replaces a TTL with a later one", async () => {
    await kv().set(["k"], 1, { expireIn: 40 });
    await kv().set(["k"], 2, { expireIn: "1h" });
    await sleep(80);
    expect((await kv().get(["k"])).value).toBe(2);
  });

  it("accepts every duration format", async () => {
    for (const d of [1000, "500ms", "30s", "5m", "1h", "7d", "1w", "1y", "1.5h"]) {
      expect((await kv().set(["d", String(d)], d, { expireIn: d })).ok).toBe(true);
    }
    expect(await collect(kv().list({ prefix: ["d"] }))).toHaveLength(9);
    for (const bad of ["1 fortnight", "h", "-5s", "", Number.NaN, Number.POSITIVE_INFINITY, {}]) {
      await expect(kv().set(["bad"], 1, { expireIn: bad as never })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
    }
    expect((await kv().get(["bad"])).versionstamp).toBeNull();
  });
});

/**
 * Every read on keys that have expired but are still stored: with the sweep off, nothing removes
 * them, so each read path must hide them itself.
 */
conformance(
  "TTL: expired but not yet swept",
  (kv) => {
    const TTL = 50;
    const kept = { title: "typescript kept", n: 1 };
    /** The versionstamps of a commit before the expiring one, and of the expiring one. */
    let before: string;
    let expiring: string;

    beforeEach(async () => {
      await kv().createIndex(["posts"], { fields: ["title"] });
      before = (await kv().set(["marker"], 0)).versionstamp;
      const result = await kv()
        .atomic()
        .set(["posts", 1], { title: "typescript expired", n: 1 }, { expireIn: TTL })
        .set(["posts", 1, "child"], { title: "typescript expired child", n: 1 }, { expireIn: TTL })
        .set(["posts", 2], kept)
        .set(["posts", 3], { title: "typescript expired too", n: 1 }, { expireIn: TTL })
        .commit();
      if (!result.ok) throw new Error("the set-up commit failed");
      expiring = result.versionstamp;
      // The commit's clock read at most now: past this, the entries have expired.
      const expiredBy = Date.now() + TTL;
      await until(() => Date.now() > expiredBy);
    });

    it("hides them from get and getMany", async () => {
      expect(await kv().get(["posts", 1])).toEqual({
        key: ["posts", 1],
        value: null,
        versionstamp: null,
      });
      const entries = await kv().getMany([
        ["posts", 1],
        ["posts", 2],
        ["posts", 3],
      ]);
      expect(entries.map((e) => [e.value, e.versionstamp])).toEqual([
        [null, null],
        [kept, expiring],
        [null, null],
      ]);
    });

    it("hides them from list, forwards, in reverse, by range and with a limit", async () => {
      const keys = async (selector: KvListSelector, options?: KvListOptions) =>
        (await collect(kv().list(selector, options))).map((e) => e.key);
      expect(await keys({ prefix: ["posts"] })).toEqual([["posts", 2]]);
      expect(await keys({ prefix: ["posts"] }, { reverse: true })).toEqual([["posts", 2]]);
      expect(await keys({ start: ["posts", 1], end: ["posts", 4] })).toEqual([["posts", 2]]);
      expect(await keys({ prefix: ["posts"] }, { limit: 1 })).toEqual([["posts", 2]]);
      expect(await keys({ prefix: ["posts"] }, { limit: 1, reverse: true })).toEqual([
        ["posts", 2],
      ]);
    });

    it("hides them from a where-filtered list", async () => {
      const listed = await collect(kv().list(["posts"], { where: { n: 1 } }));
      expect(listed.map((e) => e.key)).toEqual([["posts", 2]]);
      const reversed = await collect(kv().list(["posts"], { where: { n: 1 }, reverse: true }));
      expect(reversed.map((e) => e.key)).toEqual([["posts", 2]]);
    });

    it("does not count them, with or without a filter", async () => {
      expect(await kv().count(["posts"])).toBe(1);
      expect(await kv().count(["posts"], { where: { n: 1 } })).toBe(1);
      expect(await kv().count([])).toBe(2);
    });

    it("leaves them out of pages", async () => {
      const page = await kv().paginate(["posts"], { limit: 10 });
      expect(page.entries.map((e) => e.key)).toEqual([["posts", 2]]);
      expect(page.hasMore).toBe(false);
      const first = await kv().paginate(["posts"], { limit: 1 });
      expect(first.entries.map((e) => e.key)).toEqual([["posts", 2]]);
      if (first.hasMore) {
        const rest = await kv().paginate(["posts"], { limit: 1, cursor: first.cursor });
        expect(rest.entries).toEqual([]);
      }
      const filtered = await kv().paginate(["posts"], { limit: 10, where: { n: 1 } });
      expect(filtered.entries.map((e) => e.key)).toEqual([["posts", 2]]);
    });

    it("does not find them in a full-text search", async () => {
      const found = await collect(kv().search(["posts"], "typescript"));
      expect(found.map((e) => e.key)).toEqual([["posts", 2]]);
      const filtered = await collect(kv().search(["posts"], "typescript", { where: { n: 1 } }));
      expect(filtered.map((e) => e.key)).toEqual([["posts", 2]]);
    });

    it("treats them as absent in checks", async () => {
      const stale = await kv()
        .atomic()
        .check({ key: ["posts", 1], versionstamp: expiring })
        .set(["posts", 1], "stale check")
        .commit();
      expect(stale.ok).toBe(false);
      const absent = await kv()
        .atomic()
        .check({ key: ["posts", 1], versionstamp: null })
        .check({ key: ["posts", 2], versionstamp: expiring })
        .set(["posts", 1], "mine")
        .commit();
      expect(absent.ok).toBe(true);
      expect((await kv().get(["posts", 1])).value).toBe("mine");
    });

    it("shows them as absent in a watch's initial entries", async () => {
      const calls: { key: unknown; value: unknown }[][] = [];
      const exact = kv().watch(
        [
          ["posts", 1],
          ["posts", 2],
        ],
        (entries) => {
          calls.push(entries.map(({ key, value }) => ({ key, value })));
        },
        { exact: true },
      );
      await exact.ready;
      const prefix = kv().watch(["posts"], (entries) => {
        calls.push(entries.map(({ key, value }) => ({ key, value })));
      });
      await prefix.ready;
      exact.stop();
      prefix.stop();
      expect(calls).toEqual([
        [
          { key: ["posts", 1], value: null },
          { key: ["posts", 2], value: kept },
        ],
        [{ key: ["posts", 2], value: kept }],
      ]);
      const reader = kv()
        .watch([
          ["posts", 1],
          ["posts", 2],
        ])
        .getReader();
      const first = await reader.read();
      expect(first.value!.map((e) => [e.value, e.versionstamp])).toEqual([
        [null, null],
        [kept, expiring],
      ]);
      await reader.cancel();
    });

    it("drops a key that expired from the next chunk of a watch stream that showed it", async () => {
      const ttl = 300;
      const set = await kv().set(["s", 1], "short", { expireIn: ttl });
      const expiredBy = Date.now() + ttl;
      await kv().set(["s", 2], 1);
      const reader = kv()
        .watch([
          ["s", 1],
          ["s", 2],
        ])
        .getReader();
      const first = (await reader.read()).value!;
      // Live when read, unless this machine took longer than the TTL to get here.
      expect([null, set.versionstamp]).toContain(first[0]!.versionstamp);
      await until(() => Date.now() > expiredBy);
      await kv().set(["s", 2], 2); // a change to the other key: a new chunk, with both keys
      const next = (await reader.read()).value!;
      expect(next.map((e) => [e.value, e.versionstamp === null])).toEqual([
        [null, true],
        [2, false],
      ]);
      await reader.cancel();
    });

    it("reports them as deleted to a watch resuming from before they were set", async () => {
      const calls: [unknown, unknown][][] = [];
      const resumed = kv().watch(
        ["posts"],
        (entries) => {
          calls.push(entries.map(({ key, value }) => [key, value]));
        },
        { cursor: before },
      );
      await until(() => calls.length === 1);
      resumed.stop();
      expect(calls).toEqual([
        [
          [["posts", 1], null],
          [["posts", 1, "child"], null],
          [["posts", 2], kept],
          [["posts", 3], null],
        ],
      ]);
    });
  },
  { sweep: false },
);
