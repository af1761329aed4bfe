import { expect, it } from "vitest";
import { KvError, KvU64 } from "../../src/index.js";
import { conformance } from "../targets.js";

conformance("concurrent commits", (kv) => {
  it("gives each of many concurrent commits its own increasing versionstamp", async () => {
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => kv().set(["k", i], i)));
    const stamps = results.map((r) => r.versionstamp);
    expect(new Set(stamps).size).toBe(300);
    expect([...stamps].sort()).toEqual(stamps); // issued in call order
    const entries = await kv().get(Array.from({ length: 300 }, (_, i) => ["k", i]));
    expect(entries.map((e) => e.versionstamp)).toEqual(stamps);
  });

  it("lets exactly one of many concurrent checked writes to one key win", async () => {
    const { versionstamp } = await kv().set(["counter"], 0);
    const attempts = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        kv()
          .atomic()
          .check({ key: ["counter"], versionstamp })
          .set(["counter"], i + 1)
          .commit(),
      ),
    );
    const winners = attempts.filter((r) => r.ok);
    expect(winners).toHaveLength(1);
    expect((await kv().get(["counter"])).versionstamp).toBe(
      winners[0]!.ok && winners[0]!.versionstamp,
    );
  });

  it("loses no update when concurrent writers retry optimistic increments", async () => {
    await kv().set(["balance"], 0);
    const increment = async () => {
      for (;;) {
        const current = await kv().get<number>(["balance"]);
        const result = await kv()
          .atomic()
          .check(current)
          .set(["balance"], current.value! + 1)
          .commit();
        if (result.ok) return;
      }
    };
    await Promise.all(Array.from({ length: 40 }, increment));
    expect((await kv().get(["balance"])).value).toBe(40);
  });

  it("keeps a failing commit from affecting the others in its group", async () => {
    await kv().set(["text"], "not a number");
    const [good1, bad, good2] = await Promise.allSettled([
      kv().atomic().sum(["a"], 1n).commit(),
      kv().atomic().set(["never"], 1).sum(["text"], 1n).commit(),
      kv().atomic().sum(["a"], 2n).commit(),
    ]);
    expect(good1).toMatchObject({ status: "fulfilled", value: { ok: true } });
    expect(good2).toMatchObject({ status: "fulfilled", value: { ok: true } });
    expect(bad.status).toBe("rejected");
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(KvError);
    expect((await kv().get(["a"])).value).toEqual(new KvU64(3n));
    expect((await kv().get(["never"])).versionstamp).toBeNull();
  });

  it("sums atomically under concurrency", async () => {
    await Promise.all(Array.from({ length: 200 }, () => kv().atomic().sum(["hits"], 1n).commit()));
    expect((await kv().get(["hits"])).value).toEqual(new KvU64(200n));
  });
});

conformance("close", (kv) => {
  it("finishes pending commits, then fails every call with CLOSED", async () => {
    const pending = Array.from({ length: 20 }, (_, i) => kv().set(["p", i], i));
    const list = kv().list({ prefix: ["p"] });
    const op = kv().atomic().set(["late"], 1);
    await kv().close();
    expect((await Promise.all(pending)).every((r) => r.ok)).toBe(true);
    const calls: (() => unknown)[] = [
      () => kv().get(["a"]),
      () => kv().getMany([["a"]]),
      () => kv().set(["a"], 1),
      () => kv().delete(["a"]),
      () => kv().list({ prefix: [] }),
      () => kv().atomic(),
      () => list.next(),
      () => op.commit(),
    ];
    for (const call of calls) {
      const error = await (async () => call())().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "CLOSED", status: 409 });
    }
    await kv().close(); // idempotent
  });
});
