import { expect, it } from "vitest";
import type { KvWhere } from "../../src/index.js";
import { collect, conformance } from "../targets.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

conformance("server time", (kv) => {
  it("stores kv.now() as the commit's time in epoch ms, with offsets", async () => {
    const before = Date.now();
    await kv().set(["event"], {
      at: kv().now(),
      later: kv().now().add("1h"),
      nested: [{ earlier: kv().now().sub(1000) }],
      seedForm: { $now: true, offset: 60_000 },
    });
    const after = Date.now();
    const { value } = await kv().get<{
      at: number;
      later: number;
      nested: { earlier: number }[];
      seedForm: number;
    }>(["event"]);
    expect(value!.at).toBeGreaterThanOrEqual(before);
    expect(value!.at).toBeLessThanOrEqual(after);
    expect(value).toEqual({
      at: value!.at,
      later: value!.at + HOUR,
      nested: [{ earlier: value!.at - 1000 }],
      seedForm: value!.at + 60_000,
    });
  });

  it("resolves kv.now() in atomic sets and in values that are not JSON", async () => {
    const when = new Date("2026-01-01T00:00:00.000Z");
    await kv()
      .atomic()
      .set(["a"], { at: kv().now(), when })
      .set(["b"], [kv().now().add(5)])
      .commit();
    const [a, b] = await kv().getMany<[{ at: number; when: Date }, number[]]>([["a"], ["b"]]);
    expect(a.value!.when).toEqual(when);
    expect(typeof a.value!.at).toBe("number");
    expect(b.value).toEqual([a.value!.at + 5]);
  });

  it("compares against the database's time in filters", async () => {
    const now = Date.now();
    const op = kv().atomic();
    op.set(["posts", 1], { publishedAt: now - 10 * DAY });
    op.set(["posts", 2], { publishedAt: now - DAY });
    op.set(["posts", 3], { publishedAt: now + DAY });
    await op.commit();
    const ids = async (where: KvWhere) =>
      (await collect(kv().list(["posts"], { where }))).map((e) => e.key[1]);
    expect(await ids({ publishedAt: { $lte: kv().now().sub("7d") } })).toEqual([1]);
    expect(await ids({ publishedAt: { $lt: kv().now() } })).toEqual([1, 2]);
    expect(await ids({ publishedAt: { $gt: kv().now() } })).toEqual([3]);
    expect(
      await ids({ publishedAt: { $between: [kv().now().sub("2d"), kv().now().add("2d")] } }),
    ).toEqual([2, 3]);
    expect(
      await kv().count(["posts"], { where: { publishedAt: { $gte: kv().now().sub("1w") } } }),
    ).toBe(2);
  });

  it("deletes what has expired by a stored time, as the seed's sessions example", async () => {
    await kv().set(["sessions", "old"], { expiresAt: kv().now().sub("1m") });
    await kv().set(["sessions", "new"], { expiresAt: kv().now().add("1h") });
    const result = await kv().delete(["sessions"], { where: { expiresAt: { $lt: kv().now() } } });
    expect(result.deletedCount).toBe(1);
    expect((await collect(kv().list(["sessions"]))).map((e) => e.key)).toEqual([
      ["sessions", "new"],
    ]);
  });

  it("rejects invalid durations", () => {
    expect(() => kv().now().add("soon")).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });
});
