import { expect, it } from "vitest";
import { collect, conformance, sleep } from "../targets.js";

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
