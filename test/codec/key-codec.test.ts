import { describe, expect, it } from "vitest";
import { decodeKey, encodeKey, type KvKey } from "../../src/codec/key-codec.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

// Worked examples from reference/kv-connect.md §2, as Deno 2.9 stores them.
const examples: [KvKey, string][] = [
  [["users", 123], "02757365727300" + "21c05ec00000000000"],
  [["a", 1n, true, new Uint8Array([1, 2])], "026100" + "1501" + "27" + "01010200"],
  [["nul", "a\u0000b"], "026e756c00026100ff6200"],
  [[1.0], "21bff0000000000000"],
  [[-1.5], "214007ffffffffffff"],
  [[0], "218000000000000000"],
  [[-0], "217fffffffffffffff"],
  [[Number.POSITIVE_INFINITY], "21fff0000000000000"],
  [[Number.NEGATIVE_INFINITY], "21000fffffffffffff"],
  [[Number.NaN], "21fff8000000000000"],
  [[0n], "14"],
  [[255n], "15ff"],
  [[256n], "160100"],
  [[-1n], "13fe"],
  [[-256n], "12feff"],
  [[2n ** 64n], "1d09010000000000000000"],
  [[-(2n ** 64n)], "0bf6feffffffffffffffff"],
  [[false], "26"],
  [[true], "27"],
  [[], ""],
];

describe("key codec", () => {
  it.each(examples)("encodes worked example %# as Deno does", (key, expected) => {
    expect(hex(encodeKey(key))).toBe(expected);
    const decoded = decodeKey(encodeKey(key));
    expect(decoded).toEqual(key);
    if (Object.is(key[0], -0)) expect(Object.is(decoded[0], -0)).toBe(true);
  });

  it("orders encodings like the values they encode", () => {
    const ordered: KvKey[] = [
      [new Uint8Array([])],
      [new Uint8Array([0])],
      [new Uint8Array([0, 0])],
      [new Uint8Array([1])],
      [""],
      ["\u0000"],
      ["a"],
      ["a", 1],
      ["a\u0000"],
      ["b"],
      [-(2n ** 80n)],
      [-(2n ** 64n)],
      [-256n],
      [-1n],
      [0n],
      [1n],
      [256n],
      [2n ** 64n],
      [2n ** 80n],
      [Number.NEGATIVE_INFINITY],
      [-1e300],
      [-1],
      [-0],
      [0],
      [1e-300],
      [1],
      [Number.POSITIVE_INFINITY],
      [Number.NaN],
      [false],
      [true],
    ];
    const encoded = ordered.map(encodeKey);
    const sorted = [...encoded].sort(Buffer.compare);
    expect(sorted.map(hex)).toEqual(encoded.map(hex));
  });

  it("round-trips long and escaped parts", () => {
    const key: KvKey = [
      "x".repeat(5000),
      new Uint8Array([0, 0, 255, 0]),
      "😀\u0000",
      2n ** 2000n,
      -(2n ** 2000n),
    ];
    expect(decodeKey(encodeKey(key))).toEqual(key);
  });

  it("rejects bytes that no key encodes to", () => {
    expect(() => decodeKey(new Uint8Array([0x99]))).toThrow("unknown tag 0x99");
    expect(() => decodeKey(new Uint8Array([0x02, 0x61]))).toThrow("unterminated part");
    expect(() => decodeKey(new Uint8Array([0x21, 0x00]))).toThrow("short number");
  });

  it("rejects bigints of more than 255 bytes", () => {
    expect(() => encodeKey([2n ** 2048n])).toThrow("at most 255 bytes");
  });
});
