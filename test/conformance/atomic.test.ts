import { expect, it } from "vitest";
import { KvError, KvU64 } from "../../src/index.js";
import { collect, conformance, until } from "../targets.js";

const MAX_U64 = 2n ** 64n - 1n;

conformance("atomic", (kv) => {
  it("commits checks and mutations together under one versionstamp", async () => {
    const result = await kv()
      .atomic()
      .check({ key: ["a"], versionstamp: null })
      .set(["a"], 1)
      .set(["b"], 2)
      .commit();
    expect(result.ok).toBe(true);
    const [a, b] = await kv().getMany([["a"], ["b"]]);
    expect(a!.versionstamp).toBe(result.ok && result.versionstamp);
    expect(b!.versionstamp).toBe(a!.versionstamp);
  });

  it("applies nothing when a check fails", async () => {
    const { versionstamp } = await kv().set(["a"], 1);
    const stale = await kv()
      .atomic()
      .check({ key: ["a"], versionstamp: null })
      .set(["b"], 2)
      .commit();
    expect(stale).toEqual({ ok: false });
    const wrong = await kv()
      .atomic()
      .check({ key: ["a"], versionstamp: "00000000000000ff0000" })
      .delete(["a"])
      .commit();
    expect(wrong).toEqual({ ok: false });
    expect(await kv().get(["a"])).toMatchObject({ value: 1, versionstamp });
    expect((await kv().get(["b"])).versionstamp).toBeNull();
    const right = await kv()
      .atomic()
      .check({ key: ["a"], versionstamp })
      .check({ key: ["b"], versionstamp: null })
      .set(["b"], 2)
      .commit();
    expect(right.ok).toBe(true);
  });

  it("gives every commit a new, greater versionstamp, also empty ones", async () => {
    const first = await kv().atomic().commit();
    const second = await kv().atomic().commit();
    expect(first.ok && second.ok).toBe(true);
    if (first.ok && second.ok) expect(second.versionstamp > first.versionstamp).toBe(true);
  });

  it("composes several mutations of one key in order", async () => {
    await kv().atomic().set(["k"], 1).delete(["k"]).commit();
    expect((await kv().get(["k"])).versionstamp).toBeNull();
    await kv().atomic().delete(["k"]).sum(["k"], 2n).sum(["k"], 3n).commit();
    expect((await kv().get<KvU64>(["k"])).value).toEqual(new KvU64(5n));
    await kv().atomic().sum(["k"], 1n).sum(["k"], 1n).set(["k"], "set wins").commit();
    expect((await kv().get(["k"])).value).toBe("set wins");
  });

  it("sums KvU64 values with wrap-around, a missing key taking the operand", async () => {
    await kv().atomic().sum(["n"], 10n).commit();
    expect((await kv().get(["n"])).value).toEqual(new KvU64(10n));
    await kv().atomic().sum(["n"], new KvU64(MAX_U64)).commit(); // 10 + (2^64 - 1) wraps to 9
    expect((await kv().get(["n"])).value).toEqual(new KvU64(9n));
    await kv()
      .atomic()
      .mutate({ type: "sum", key: ["n"], value: new KvU64(1n) })
      .commit();
    expect((await kv().get(["n"])).value).toEqual(new KvU64(10n));
  });

  it("sums plain numbers and bigints", async () => {
    await kv().atomic().sum(["views"], 1).sum(["views"], 2.5).commit();
    expect((await kv().get(["views"])).value).toBe(3.5);
    await kv().set(["big"], 2n ** 70n);
    await kv()
      .atomic()
      .mutate({ type: "sum", key: ["big"], value: 5n })
      .commit();
    expect((await kv().get(["big"])).value).toBe(2n ** 70n + 5n);
    await kv().set(["u"], new KvU64(1n));
    await kv()
      .atomic()
      .mutate({ type: "sum", key: ["u"], value: 2n })
      .commit();
    expect((await kv().get(["u"])).value).toEqual(new KvU64(3n));
  });

  it("fails sums on mismatched types with Deno's texts, applying nothing", async () => {
    await kv().set(["s"], "text");
    await kv().set(["num"], 1);
    await kv().set(["bigint"], 0n);
    const cases: [() => Promise<unknown>, string][] = [
      [
        () => kv().atomic().set(["x"], 1).sum(["s"], 1n).commit(),
        "Failed to perform 'sum' mutation on a non-U64 value in the database",
      ],
      [
        () => kv().atomic().sum(["bigint"], 1n).commit(),
        "Failed to perform 'sum' mutation on a non-U64 value in the database",
      ],
      [
        () => kv().atomic().sum(["num"], 1n).commit(),
        "Failed to perform 'sum' mutation on a non-U64 value in the database",
      ],
      [
        () =>
          kv()
            .atomic()
            .mutate({ type: "sum", key: ["bigint"], value: 1 })
            .commit(),
        "Cannot sum BigInt with Number",
      ],
      [
        () =>
          kv()
            .atomic()
            .mutate({ type: "sum", key: ["num"], value: 1n })
            .commit(),
        "Cannot sum Number with BigInt",
      ],
    ];
    for (const [commit, message] of cases) {
      const error = await commit().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KvError);
      expect(error).toMatchObject({ code: "TYPE_MISMATCH", message });
    }
    expect((await kv().get(["x"])).versionstamp).toBeNull();
    expect((await kv().getMany([["s"], ["num"], ["bigint"]])).map((e) => e.value)).toEqual([
      "text",
      1,
      0n,
    ]);
  });

  it("bounds number and bigint sums: out of range fails, clamp moves to the bound", async () => {
    const sum = (key: string, value: number | bigint, bounds: object) =>
      kv()
        .atomic()
        .mutate({ type: "sum", key: [key], value, ...bounds })
        .commit();
    await sum("big", 50n, { max: 10n }); // a missing key takes the operand, unchecked
    expect((await kv().get(["big"])).value).toBe(50n);
    await kv().set(["big"], 42n);
    await sum("big", 2n, { max: 44n });
    expect((await kv().get(["big"])).value).toBe(44n);
    await sum("big", 10n, { max: 50n, clamp: true });
    expect((await kv().get(["big"])).value).toBe(50n);
    await sum("big", -100n, { min: 0n, max: 100n, clamp: true });
    expect((await kv().get(["big"])).value).toBe(0n);
    await kv().set(["n"], 1.5);
    await sum("n", -1, { min: 0 });
    expect((await kv().get(["n"])).value).toBe(0.5);
    await sum("n", 10, { min: 0, max: 2, clamp: true });
    expect((await kv().get(["n"])).value).toBe(2);
    // With clamp and min > max, the maximum wins, as in denokv.
    await sum("n", 0, { min: 5, max: 3, clamp: true });
    expect((await kv().get(["n"])).value).toBe(3);

    const before = await kv().getMany([["big"], ["n"]]);
    const outOfRange = [
      () =>
        kv()
          .atomic()
          .set(["x"], 1)
          .mutate({ type: "sum", key: ["big"], value: 1n, max: 0n }),
      () =>
        kv()
          .atomic()
          .mutate({ type: "sum", key: ["n"], value: -4, min: 0 }),
    ];
    for (const op of outOfRange) {
      await expect(op().commit()).rejects.toMatchObject({
        code: "OUT_OF_RANGE",
        status: 400,
        message: "The result of a Sum operation would exceed its range limit",
      });
    }
    expect(await kv().getMany([["big"], ["n"], ["x"]])).toEqual([...before, expect.anything()]);
    expect((await kv().get(["x"])).versionstamp).toBeNull();
  });

  it("keeps Deno's KvU64-plus-bigint rule only for sums without bounds", async () => {
    await kv().set(["u"], new KvU64(1n));
    await kv()
      .atomic()
      .mutate({ type: "sum", key: ["u"], value: 2n })
      .commit();
    expect((await kv().get(["u"])).value).toEqual(new KvU64(3n));
    await expect(
      kv()
        .atomic()
        .mutate({ type: "sum", key: ["u"], value: 2n, clamp: true })
        .commit(),
    ).rejects.toMatchObject({ code: "TYPE_MISMATCH", message: "Cannot sum KvU64 with BigInt" });
    await kv().set(["s"], "text");
    await expect(
      kv()
        .atomic()
        .mutate({ type: "sum", key: ["s"], value: 1 })
        .commit(),
    ).rejects.toMatchObject({ code: "TYPE_MISMATCH", message: "unsupported value type" });
    expect((await kv().getMany([["u"], ["s"]])).map((e) => e.value)).toEqual([
      new KvU64(3n),
      "text",
    ]);
  });

  it("rejects sum bounds that do not fit the operand, with denokv's texts", () => {
    const op = kv().atomic();
    const sum = (value: unknown, bounds: object) => () =>
      op.mutate({ type: "sum", key: ["k"], value, ...bounds } as never);
    expect(sum(1n, { min: 0 })).toThrow("Min/max parameters have different types than the operand");
    expect(sum(1, { max: 0n })).toThrow("Min/max parameters have different types than the operand");
    expect(sum(1, { max: "9" })).toThrow("Some of the parameters are not valid V8 values");
    expect(sum(new KvU64(1n), { max: 5n })).toThrow(
      "Cannot use min/max parameters with KvU64 operands",
    );
    expect(sum("1", {})).toThrow("The operand of 'sum' must be a bigint, KvU64 or number");
    expect(sum(1, { clamp: "yes" })).toThrow("clamp must be a boolean");
  });

  it("rejects invalid sum operands before committing", () => {
    expect(() => kv().atomic().sum(["n"], -1n)).toThrow("Value must be a positive bigint");
    expect(() =>
      kv()
        .atomic()
        .sum(["n"], 2n ** 64n),
    ).toThrow("Value must fit in a 64-bit unsigned integer");
    expect(() =>
      kv()
        .atomic()
        .sum(["n"], "1" as never),
    ).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("takes unsigned min and max of KvU64 values, and of numbers", async () => {
    await kv().atomic().max(["hi"], 100n).min(["lo"], 50n).commit();
    await kv().atomic().max(["hi"], 99n).min(["lo"], 51n).commit();
    expect((await kv().getMany([["hi"], ["lo"]])).map((e) => e.value)).toEqual([
      new KvU64(100n),
      new KvU64(50n),
    ]);
    await kv().atomic().max(["hi"], MAX_U64).min(["lo"], 0n).commit();
    expect((await kv().getMany([["hi"], ["lo"]])).map((e) => e.value)).toEqual([
      new KvU64(MAX_U64),
      new KvU64(0n),
    ]);
    await kv().atomic().max(["score"], 7).max(["score"], 3).commit();
    expect((await kv().get(["score"])).value).toBe(7);
    await kv().set(["str"], "x");
    await expect(kv().atomic().min(["str"], 1n).commit()).rejects.toThrow(
      "Failed to perform 'min' mutation on a non-U64 value in the database",
    );
    await expect(kv().atomic().max(["hi"], 5).commit()).rejects.toMatchObject({
      code: "TYPE_MISMATCH",
    });
  });

  it("appends and prepends arrays", async () => {
    await kv().atomic().append(["tags"], ["a"]).commit();
    await kv().atomic().append(["tags"], ["b", "c"]).prepend(["tags"], [0n]).commit();
    expect((await kv().get(["tags"])).value).toEqual([0n, "a", "b", "c"]);
    expect(() =>
      kv()
        .atomic()
        .append(["tags"], "x" as never),
    ).toThrow("append value must be an array");
    await kv().set(["obj"], { a: 1 });
    await expect(kv().atomic().append(["obj"], [1]).commit()).rejects.toMatchObject({
      code: "TYPE_MISMATCH",
    });
  });

  it("clears a TTL on sum, min, max and append, like Deno", async () => {
    // ["ttl"] expires with the others' old TTL: once it has, theirs would have too. The first
    // read waits for a new database to be ready, so that the TTL runs from a ready one.
    await kv().get(["ttl"]);
    await kv()
      .atomic()
      .set(["ttl"], 0, { expireIn: 200 })
      .set(["sum"], new KvU64(1n), { expireIn: 200 })
      .set(["min"], new KvU64(5n), { expireIn: 200 })
      .set(["max"], new KvU64(5n), { expireIn: 200 })
      .set(["append"], [1], { expireIn: 200 })
      .commit();
    const modified = await kv()
      .atomic()
      .sum(["sum"], 1n)
      .min(["min"], 3n)
      .max(["max"], 7n)
      .append(["append"], [2])
      .commit();
    expect(modified.ok).toBe(true);
    await until(async () => (await kv().get(["ttl"])).versionstamp === null);
    const values = await kv().getMany([["sum"], ["min"], ["max"], ["append"]]);
    expect(values.map((e) => e.value)).toEqual([
      new KvU64(2n),
      new KvU64(3n),
      new KvU64(7n),
      [1, 2],
    ]);
  });

  it("accepts Deno's mutate shapes and rejects malformed ones", async () => {
    await kv()
      .atomic()
      .mutate(
        { type: "set", key: ["a"], value: 1, expireIn: 60_000 },
        { type: "set", key: ["b"], value: 2 },
        { type: "delete", key: ["b"] },
        { type: "max", key: ["m"], value: new KvU64(3n) },
        { type: "append", key: ["l"], value: [1] },
      )
      .commit();
    expect((await collect(kv().list({ prefix: [] }))).map((e) => e.key)).toEqual([
      ["a"],
      ["l"],
      ["m"],
    ]);
    const op = kv().atomic();
    expect(() => op.mutate({ type: "delete", key: ["a"], value: 1 } as never)).toThrow(
      "Invalid mutation 'delete' with value",
    );
    expect(() => op.mutate({ type: "sum", key: ["a"] } as never)).toThrow(
      "Invalid mutation 'sum' without value",
    );
    expect(() => op.mutate({ type: "explode", key: ["a"] } as never)).toThrow(
      /Invalid mutation type "explode"/,
    );
    expect(() => op.check({ key: ["a"], versionstamp: "xyz" })).toThrow("Invalid versionstamp");
  });

  it("writes under the commit's versionstamp with commitVersionstamp()", async () => {
    const result = await kv().atomic().set(["log", kv().commitVersionstamp()], "entry").commit();
    expect(result.ok).toBe(true);
    const [entry] = await collect(kv().list({ prefix: ["log"] }));
    expect(entry!.key).toEqual(["log", result.ok && result.versionstamp]);
    expect(entry!.versionstamp).toBe(result.ok && result.versionstamp);
  });

  it("enforces Deno's limits with its messages, applying nothing", async () => {
    const checks = kv().atomic();
    for (let i = 0; i < 101; i++) checks.check({ key: ["c", i], versionstamp: null });
    await expect(checks.set(["x"], 1).commit()).rejects.toThrow("Too many checks (max 100)");

    const mutations = kv().atomic();
    for (let i = 0; i < 1001; i++) mutations.set(["m", i], i);
    await expect(mutations.commit()).rejects.toThrow("Too many mutations (max 1000)");

    const big = kv().atomic();
    for (let i = 0; i < 13; i++) big.set(["b", i], new Uint8Array(65_000));
    await expect(big.commit()).rejects.toThrow("Total mutation size too large (max 819200 bytes)");

    const keys = kv().atomic();
    for (let i = 0; i < 41; i++) keys.set([new Uint8Array(2000).fill(1), i], 1);
    await expect(keys.commit()).rejects.toThrow("Total key size too large (max 81920 bytes)");

    await expect(big.commit()).rejects.toMatchObject({ code: "ATOMIC_TOO_LARGE", status: 400 });
    expect(await collect(kv().list({ prefix: [] }))).toEqual([]);

    const atLimit = kv().atomic();
    for (let i = 0; i < 100; i++) atLimit.check({ key: ["c", i], versionstamp: null });
    for (let i = 0; i < 1000; i++) atLimit.set(["m", i], i);
    expect((await atLimit.commit()).ok).toBe(true);
  });
});
