import { expect, it } from "vitest";
import { KvError, type KvKey } from "../../src/index.js";
import { collect, conformance } from "../targets.js";

conformance("keys", (kv) => {
  it("orders parts by type, then value: bytes < string < bigint < number < false < true", async () => {
    const keys: KvKey[] = [
      [true],
      [false],
      [Number.NaN],
      [Number.POSITIVE_INFINITY],
      [1.5],
      [0],
      [-0],
      [-1],
      [Number.NEGATIVE_INFINITY],
      [2n ** 70n],
      [256n],
      [1n],
      [0n],
      [-1n],
      [-(2n ** 70n)],
      ["b"],
      ["a\u0000"],
      ["a"],
      [""],
      [new Uint8Array([1])],
      [new Uint8Array([0])],
      [new Uint8Array([])],
    ];
    for (const key of keys) await kv().set(key, "v");
    const listed = (await collect(kv().list({ prefix: [] }))).map((e) => e.key);
    expect(listed).toEqual([...keys].reverse());
    expect(Object.is(listed[15]![0], -0)).toBe(true);
  });

  it("orders numbers numerically and strings by UTF-8 bytes", async () => {
    for (const n of [10, -2, 3.5, 100, 0.1]) await kv().set(["n", n], n);
    for (const s of ["é", "z", "Z", "aa", "a"]) await kv().set(["s", s], s);
    expect((await collect(kv().list({ prefix: ["n"] }))).map((e) => e.value)).toEqual([
      -2, 0.1, 3.5, 10, 100,
    ]);
    expect((await collect(kv().list({ prefix: ["s"] }))).map((e) => e.value)).toEqual([
      "Z",
      "a",
      "aa",
      "z",
      "é",
    ]);
  });

  it("matches prefixes part by part", async () => {
    await kv().set(["users", "a"], 1);
    await kv().set(["users", "a", "x"], 2);
    await kv().set(["users", "ab"], 3);
    await kv().set(["users", "ab", "x"], 4);
    expect((await collect(kv().list({ prefix: ["users", "a"] }))).map((e) => e.value)).toEqual([2]);
    expect(await kv().delete(["users", "a"])).toEqual({ success: true, deletedCount: 2 });
    expect((await collect(kv().list({ prefix: ["users"] }))).map((e) => e.value)).toEqual([3, 4]);
  });

  it("round-trips every key part type through set, get and list", async () => {
    const key: KvKey = [
      new Uint8Array([0, 1, 255]),
      "nul\u0000ok",
      "ünï",
      42n,
      -(2n ** 64n),
      -0,
      1e300,
      false,
      true,
    ];
    await kv().set(key, "value");
    const entry = await kv().get(key);
    expect(entry.value).toBe("value");
    expect(entry.key).toEqual(key);
    const [listed] = await collect(kv().list({ prefix: [] }));
    expect(listed!.key).toEqual(key);
    expect(listed!.key[0]).toBeInstanceOf(Uint8Array);
  });

  it("accepts keys up to 2048 encoded bytes for writes and 2049 for reads", async () => {
    const max = [new Uint8Array(2046).fill(1)]; // 1 tag + 2046 + 1 terminator = 2048
    expect((await kv().set(max, 1)).ok).toBe(true);
    expect((await kv().get(max)).value).toBe(1);
    const over = [new Uint8Array(2047).fill(1)];
    await expect(kv().set(over, 1)).rejects.toThrow("Key too large for write (max 2048 bytes)");
    expect((await kv().get(over)).value).toBeNull(); // 2049 bytes may be read
    const wayOver = [new Uint8Array(2048).fill(1)];
    await expect(kv().get(wayOver)).rejects.toThrow("Key too large for read (max 2049 bytes)");
    await expect(kv().set(over, 1)).rejects.toMatchObject({ code: "KEY_TOO_LARGE", status: 400 });
  });

  it("rejects invalid keys with INVALID_KEY and a message naming the problem", async () => {
    const bad: unknown[] = [
      [null],
      [undefined],
      [{}],
      [Symbol("s")],
      [[1]],
      "users",
      123,
      null,
      [new Date()],
    ];
    for (const key of bad) {
      const error = await kv()
        .set(key as KvKey, 1)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KvError);
      expect((error as KvError).code).toBe("INVALID_KEY");
    }
    await expect(kv().set([{}] as never, 1)).rejects.toThrow(
      "Key part 0 is an object (Object); key parts must be string, number, bigint, boolean or Uint8Array",
    );
    await expect(kv().get("users" as never)).rejects.toThrow(
      'A key must be an array of parts, e.g. ["users", 123]',
    );
    expect(await collect(kv().list({ prefix: [] }))).toEqual([]);
  });

  it("refuses a string part with a lone surrogate (UTF-8 would store another key)", async () => {
    for (const part of ["\ud800x", "x\udfff", "\udc00\ud800"]) {
      await expect(kv().set(["utf", part], 1)).rejects.toMatchObject({ code: "INVALID_KEY" });
      await expect(kv().get(["utf", part])).rejects.toMatchObject({ code: "INVALID_KEY" });
      expect(() => kv().list({ prefix: ["utf", part] })).toThrow(
        expect.objectContaining({ code: "INVALID_KEY" }),
      );
    }
    expect(await collect(kv().list({ prefix: ["utf"] }))).toEqual([]);
    await kv().set(["utf", "\ud83d\ude00"], 1); // a pair is one character: 😀
    expect((await kv().get(["utf", "😀"])).value).toBe(1);
  });

  it("refuses to write the empty key but reads it as absent", async () => {
    await expect(kv().set([], 1)).rejects.toThrow("Key cannot be empty");
    await expect(kv().delete([])).rejects.toThrow("Key cannot be empty");
    expect(await kv().get([])).toEqual({ key: [], value: null, versionstamp: null });
  });
});
