import { expect, it } from "vitest";
import { KvError, KvU64 } from "../../src/index.js";
import { collect, conformance } from "../targets.js";

const structuredValues: [string, unknown][] = [
  ["object", { name: "Alice", tags: ["a", "b"], nested: { ok: true, n: null } }],
  ["array", [1, "two", [3], { four: 4 }]],
  ["string", "héllo \u0000 wörld"],
  ["empty string", ""],
  ["integer", 42],
  ["float", 1.5],
  ["negative zero", -0],
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-Infinity", Number.NEGATIVE_INFINITY],
  ["bigint", 12345678901234567890n],
  ["negative bigint", -(2n ** 100n)],
  ["true", true],
  ["false", false],
  ["null", null],
  ["undefined", undefined],
  ["Date", new Date("2026-11-22T10:00:00.123Z")],
  [
    "Map",
    new Map<unknown, unknown>([
      ["a", 1],
      [2, { b: 3n }],
    ]),
  ],
  ["Set", new Set([1, "two", 3n])],
  ["RegExp", /ab+c/gi],
  ["Int16Array", new Int16Array([1, -2, 300])],
  ["Float64Array", new Float64Array([1.5, Number.NaN])],
  ["BigUint64Array", new BigUint64Array([1n, 2n ** 63n])],
  ["nested Uint8Array", { bytes: new Uint8Array([0, 1, 2]) }],
  ["ArrayBuffer", new Uint8Array([9, 8, 7]).buffer],
  ["object with undefined", { a: undefined, b: 1 }],
  // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
  ["array with holes", [1, , 3]],
  ["nested NaN and -0", { x: Number.NaN, y: -0, z: [Number.NEGATIVE_INFINITY] }],
  ["nested bigint", { count: 10n }],
  ["Date inside object", { at: new Date(0) }],
  ["nested KvU64 (stored as a plain object)", { u: { value: 1n } }],
];

conformance("values", (kv) => {
  it.each(structuredValues)("round-trips %s", async (_name, value) => {
    await kv().set(["v"], value);
    const entry = await kv().get(["v"]);
    expect(entry.value).toStrictEqual(value);
    if (typeof value === "number") expect(Object.is(entry.value, value)).toBe(true);
  });

  it("keeps -0 and NaN exact, also in getMany and list", async () => {
    await kv().set(["a"], -0);
    await kv().set(["b"], Number.NaN);
    expect(Object.is((await kv().get(["a"])).value, -0)).toBe(true);
    expect(Number.isNaN((await kv().get(["b"])).value)).toBe(true);
    const [a, b] = await kv().getMany([["a"], ["b"]]);
    expect(Object.is(a!.value, -0)).toBe(true);
    expect(Number.isNaN(b!.value)).toBe(true);
    const listed = await collect(kv().list({ prefix: [] }));
    expect(listed.map((e) => e.key)).toEqual([["a"], ["b"]]);
    expect(Object.is(listed[0]!.value, -0)).toBe(true);
    expect(Number.isNaN(listed[1]!.value)).toBe(true);
  });

  it("returns a top-level Uint8Array as raw bytes", async () => {
    const bytes = new Uint8Array([0, 1, 2, 255]);
    await kv().set(["bytes"], bytes);
    const { value } = await kv().get<Uint8Array>(["bytes"]);
    expect(value).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(value)).toBe(false);
    expect([...value!]).toEqual([0, 1, 2, 255]);
  });

  it("stores the bytes and objects as they were when set was called", async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const object = { n: 1 };
    const writes = [kv().set(["bytes"], bytes), kv().set(["object"], object)];
    bytes[0] = 99;
    object.n = 99;
    await Promise.all(writes);
    expect([...((await kv().get<Uint8Array>(["bytes"])).value as Uint8Array)]).toEqual([1, 2, 3]);
    expect((await kv().get(["object"])).value).toEqual({ n: 1 });
  });

  it("returns a KvU64 as a KvU64", async () => {
    await kv().set(["u"], new KvU64(2n ** 64n - 1n));
    const { value } = await kv().get<KvU64>(["u"]);
    expect(value).toBeInstanceOf(KvU64);
    expect(value!.value).toBe(2n ** 64n - 1n);
  });

  it("rejects KvU64s outside 0..2^64-1 with Deno's messages", () => {
    expect(() => new KvU64(-1n)).toThrow("Value must be a positive bigint");
    expect(() => new KvU64(2n ** 64n)).toThrow("Value must fit in a 64-bit unsigned integer");
    expect(() => new KvU64(1 as never)).toThrow("Value must be a bigint");
  });

  it("accepts values up to 65536 encoded bytes and rejects larger ones, leaving data untouched", async () => {
    await kv().set(["big"], new Uint8Array(65_536));
    expect(((await kv().get<Uint8Array>(["big"])).value as Uint8Array).length).toBe(65_536);
    const error = await kv()
      .set(["big"], new Uint8Array(65_537))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({
      code: "VALUE_TOO_LARGE",
      message: "Value too large (max 65536 bytes)",
    });
    await expect(kv().set(["s"], "é".repeat(40_000))).rejects.toThrow(
      "Value too large (max 65536 bytes)",
    );
    expect(((await kv().get<Uint8Array>(["big"])).value as Uint8Array).length).toBe(65_536);
    expect((await kv().get(["s"])).value).toBeNull();
  });

  it("accepts values nested 100 levels deep and refuses deeper ones everywhere, storing nothing", async () => {
    const nested = (levels: number, leaf: unknown = 1): unknown => {
      let value = leaf;
      for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { a: value };
      return value;
    };
    for (const value of [nested(100), nested(99, new Map([[1, 2n]])), nested(98, [new Set([1])])]) {
      await kv().set(["deep"], value);
      expect((await kv().get(["deep"])).value).toStrictEqual(value);
    }
    const tooDeep = [nested(101), nested(3000), nested(100, new Map([[1, [2]]]))];
    for (const value of tooDeep) {
      await expect(kv().set(["too"], value)).rejects.toMatchObject({ code: "VALUE_TOO_DEEP" });
      await expect(kv().enqueue(value)).rejects.toMatchObject({ code: "VALUE_TOO_DEEP" });
      expect(() => kv().atomic().set(["too"], value)).toThrow(
        expect.objectContaining({ code: "VALUE_TOO_DEEP" }),
      );
    }
    // An append's operand is an array of the items: it cannot carry an item of the limit's depth.
    expect(() =>
      kv()
        .atomic()
        .append(["list"], [nested(100)]),
    ).toThrow(expect.objectContaining({ code: "VALUE_TOO_DEEP" }));
    expect((await kv().get(["too"])).versionstamp).toBeNull();
    expect(await kv().queueStats()).toMatchObject({ total: 0 });
  });

  it("round-trips a cyclic value, which has no depth", async () => {
    type Cyclic = { name: string; self?: unknown; list: unknown[] };
    const cyclic: Cyclic = { name: "c", list: [] };
    cyclic.self = cyclic;
    cyclic.list.push(cyclic, cyclic);
    await kv().set(["cyclic"], cyclic);
    const { value } = await kv().get<Cyclic>(["cyclic"]);
    expect(value!.name).toBe("c");
    expect(value!.self).toBe(value);
    expect(value!.list[0]).toBe(value);
    expect(value!.list[1]).toBe(value);
  });

  it("rejects values that cannot be structured-cloned", async () => {
    for (const value of [() => 1, Symbol("s"), { f() {} }, new WeakMap()]) {
      await expect(kv().set(["bad"], value)).rejects.toMatchObject({ code: "INVALID_VALUE" });
    }
    expect((await kv().get(["bad"])).versionstamp).toBeNull();
  });
});
