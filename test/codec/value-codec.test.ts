import { describe, expect, it } from "vitest";
import { KvU64 } from "../../src/codec/kv-u64.js";
import { KvV8Value } from "../../src/codec/kv-v8-value.js";
import { decodeValue, encodeValue, ValueEncoding } from "../../src/codec/value-codec.js";
import { fromTagged, toTagged } from "../../src/protocol/tagged-json.js";

const v8 = (hex: string) =>
  ({ encoding: ValueEncoding.V8, data: new Uint8Array(Buffer.from(hex, "hex")) }) as const;

describe("value codec", () => {
  it("stores JSON-shaped values as JSON text, so SQL can look inside them", () => {
    for (const value of [
      { a: [1, "x", null, true] },
      "s",
      1.5,
      null,
      false,
      [{}],
      Object.create(null),
    ]) {
      const encoded = encodeValue(value);
      expect(encoded.encoding).toBe(ValueEncoding.JSON);
      expect(JSON.parse(encoded.data as string)).toEqual(value);
    }
  });

  it("stores everything else in V8 format 15, bytes raw and KvU64 as 8 bytes little-endian", () => {
    for (const value of [
      1n,
      -0,
      Number.NaN,
      undefined,
      new Date(0),
      new Map(),
      { a: undefined },
      { d: new Date(0) },
    ]) {
      const encoded = encodeValue(value);
      expect(encoded.encoding).toBe(ValueEncoding.V8);
      expect(
        Buffer.from(encoded.data as Uint8Array)
          .subarray(0, 2)
          .toString("hex"),
      ).toBe("ff0f");
    }
    expect(encodeValue(new Uint8Array([1, 2]))).toEqual({
      encoding: ValueEncoding.BYTES,
      data: new Uint8Array([1, 2]),
    });
    const u64 = encodeValue(new KvU64(42n));
    expect(u64.encoding).toBe(ValueEncoding.LE64);
    expect(Buffer.from(u64.data as Uint8Array).toString("hex")).toBe("2a00000000000000");
  });

  it("writes typed arrays as V8 views that Deno can read, not Node host objects", () => {
    const data = Buffer.from(encodeValue({ a: new Int16Array([1]) }).data as Uint8Array);
    expect(data.includes(0x56)).toBe(true); // 'V': ArrayBufferView
    expect(data.includes(0x5c)).toBe(false); // '\': host object
  });

  it("reads V8 format 16 as written by Deno 2.9", () => {
    expect(decodeValue(v8("ff10220568656c6c6f"))).toBe("hello");
    expect(decodeValue(v8("ff1030"))).toBe(null);
    expect(decodeValue(v8("ff10490e"))).toBe(7);
    expect(decodeValue(v8("ff104e000000000000f83f"))).toBe(1.5);
    expect(decodeValue(v8("ff105a10d20a1feb8ca954ab"))).toBe(12345678901234567890n);
    expect(decodeValue(v8("ff106f22046e616d652205616c6963652203616765493c7b02"))).toEqual({
      name: "alice",
      age: 30,
    });
  });

  it("wraps V8 bytes Node cannot decode, and encodes the wrapper back to exactly those bytes", () => {
    // Deno's DOMException: format 16, tag '\' (host object).
    const hostObject = "ff105cffffffff0f6f22047479706522044572726f727b01";
    const value = decodeValue(v8(hostObject));
    expect(value).toEqual(new KvV8Value(new Uint8Array(Buffer.from(hostObject, "hex"))));
    expect(encodeValue(value)).toEqual(v8(hostObject));
    const tagged = toTagged(value);
    expect(tagged).toEqual({
      __type: "v8",
      value: Buffer.from(hostObject, "hex").toString("base64"),
    });
    expect(fromTagged(JSON.parse(JSON.stringify(tagged)))).toEqual(value);
    expect(() => new KvV8Value("ff10" as never)).toThrow("must be a Uint8Array");
  });
});
