import { expect, it } from "vitest";
import { KvU64 } from "../../src/index.js";
import { conformance } from "../targets.js";

type Account = { balance: number };

conformance("transactions", (kv) => {
  it("commits reads and buffered writes together, returning fn's value", async () => {
    await kv().set(["accounts", "a"], { balance: 100 });
    await kv().set(["accounts", "b"], { balance: 0 });
    const result = await kv().transaction(async (tx) => {
      const from = await tx.get<Account>(["accounts", "a"]);
      const to = await tx.get<Account>(["accounts", "b"]);
      tx.set(["accounts", "a"], { balance: from.value!.balance - 30 });
      tx.set(["accounts", "b"], { balance: to.value!.balance + 30 });
      // Buffered: neither the database nor the transaction's own reads see the writes yet.
      expect((await kv().get<Account>(["accounts", "a"])).value).toEqual({ balance: 100 });
      expect((await tx.get<Account>(["accounts", "a"])).value).toEqual({ balance: 100 });
      return { transferred: 30 };
    });
    expect(result).toEqual({
      ok: true,
      value: { transferred: 30 },
      versionstamp: expect.stringMatching(/^[0-9a-f]{20}$/),
    });
    const [a, b] = await kv().getMany<[Account, Account]>([
      ["accounts", "a"],
      ["accounts", "b"],
    ]);
    expect([a.value, b.value]).toEqual([{ balance: 70 }, { balance: 30 }]);
    expect(a.versionstamp).toBe(result.ok && result.versionstamp);
  });

  it("supports every buffered write and batch reads", async () => {
    await kv().set(["gone"], 1);
    await kv().transaction(async (tx) => {
      const entries = await tx.get([["gone"], ["missing"]]);
      expect(entries.map((e) => e.value)).toEqual([1, null]);
      tx.delete(["gone"])
        .sum(["views"], 2n)
        .max(["best"], 10)
        .min(["least"], 3)
        .append(["log"], ["b"])
        .prepend(["log"], ["a"]);
    });
    const values = (await kv().get([["gone"], ["views"], ["best"], ["least"], ["log"]])).map(
      (e) => e.value,
    );
    expect(values).toEqual([null, new KvU64(2n), 10, 3, ["a", "b"]]);
  });

  it("returns { ok: false } after its retries when a key read keeps changing", async () => {
    await kv().set(["hot"], 0);
    let calls = 0;
    const result = await kv().transaction(
      async (tx) => {
        calls++;
        const entry = await tx.get<number>(["hot"]);
        await kv().set(["hot"], entry.value! + 100); // a concurrent writer
        tx.set(["hot"], -1);
      },
      { maxRetries: 2, retryDelay: 1 },
    );
    expect(result).toEqual({ ok: false, error: "conflict" });
    expect(calls).toBe(3);
    expect((await kv().get(["hot"])).value).toBe(300);
  });

  it("detects a conflict on a key that was absent when read", async () => {
    let calls = 0;
    const result = await kv().transaction(
      async (tx) => {
        calls++;
        const entry = await tx.get(["slot"]);
        if (calls === 1) await kv().set(["slot"], "taken by someone else");
        if (entry.value === null) tx.set(["slot"], "mine");
        return entry.value;
      },
      { maxRetries: 1, retryDelay: 1 },
    );
    expect(result).toMatchObject({ ok: true, value: "taken by someone else" });
    expect(calls).toBe(2);
    expect((await kv().get(["slot"])).value).toBe("taken by someone else");
  });

  it("loses no update among many concurrent read-modify-write transactions", async () => {
    await kv().set(["counter"], 0);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        kv().transaction(
          async (tx) => {
            const current = await tx.get<number>(["counter"]);
            tx.set(["counter"], current.value! + 1);
          },
          { maxRetries: 1000, retryDelay: 1 },
        ),
      ),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect((await kv().get(["counter"])).value).toBe(20);
  });

  it("rejects with fn's error and applies nothing when fn throws", async () => {
    await kv().set(["k"], "before");
    const error = new Error("fn failed");
    await expect(
      kv().transaction(async (tx) => {
        tx.set(["k"], "after");
        throw error;
      }),
    ).rejects.toBe(error);
    expect((await kv().get(["k"])).value).toBe("before");
  });

  it("refuses a tx used after its attempt finished, and bad options", async () => {
    let saved: Parameters<Parameters<ReturnType<typeof kv>["transaction"]>[0]>[0] | undefined;
    await kv().transaction((tx) => {
      saved = tx;
    });
    expect(() => saved!.set(["late"], 1)).toThrow("This transaction attempt has finished");
    await expect(kv().transaction(() => 1, { maxRetries: -1 })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(kv().transaction(() => 1, { retryDelay: "soon" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect((await kv().get(["late"])).value).toBe(null);
  });
});
