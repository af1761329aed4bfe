/**
 * The pure parsers, fuzzed: each returns, or throws a `KvError` with a code from the table, never
 * another exception (a TypeError, a stack overflow). Round trips where a writer exists.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseDuration } from "../../src/codec/duration.js";
import { decodeKey, encodeKey, type KvKey } from "../../src/codec/key-codec.js";
import { decodeValue, serializeV8, ValueEncoding } from "../../src/codec/value-codec.js";
import { KvError } from "../../src/kv-error.js";
import {
  commitFromWire,
  countFromWire,
  keysFromWire,
  rangesFromWire,
} from "../../src/protocol/database-wire.js";
import { changesRequestFromWire, feedRangesFromWire } from "../../src/protocol/feed-wire.js";
import { formatKeyPath, parseKeyPath } from "../../src/protocol/key-path.js";
import { claimRequestFromWire, deadLetterQueryFromWire } from "../../src/protocol/queue-wire.js";
import {
  formatSearchQuery,
  parseSearchQuery,
  searchIndexOf,
} from "../../src/protocol/search-query.js";
import { indexFromWire, searchFromWire } from "../../src/protocol/search-wire.js";
import { fromTagged, keyFromJson, keyToJson } from "../../src/protocol/tagged-json.js";
import { filterToWhere, parsePath, parseWhere } from "../../src/protocol/where-filter.js";
import {
  asJson,
  Deep,
  edgeString,
  edgeStrings,
  fuzz,
  hostileValue,
  jsonKey,
  nearValid,
  returnsOrKvError,
  where,
} from "./fuzz.js";

/** Strings a key path is made of: edge cases, typed parts, percent escapes. */
const pathPart = fc.oneof(
  edgeString,
  fc
    .tuple(fc.constantFrom("string", "number", "bigint", "bool", "bytes", "x", ""), edgeString)
    .map(([type, rest]) => `${type}:${rest}`),
  fc
    .array(fc.nat({ max: 255 }), { maxLength: 4 })
    .map((bytes) => bytes.map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")),
);

/** Search query text from the grammar's tokens, and noise. */
const searchText = fc.oneof(
  edgeString,
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          "AND",
          "OR",
          "NOT",
          "(",
          ")",
          '"',
          "-",
          "*",
          "react",
          "type*",
          '"a b"',
          "é",
        ),
        edgeString,
      ),
      { maxLength: 30 },
    )
    .map((tokens) => tokens.join(" ")),
  fc.nat({ max: 40 }).map((n) => `${"(".repeat(n)}a${")".repeat(n)}`),
);

const validKey: fc.Arbitrary<KvKey> = fc.array(
  fc.oneof(
    fc.string({ unit: "grapheme", maxLength: 10 }),
    fc.double(),
    fc.bigInt({ min: -(2n ** 2000n), max: 2n ** 2000n }),
    fc.boolean(),
    fc.uint8Array({ maxLength: 10 }),
  ),
  { maxLength: 5 },
);

describe("key paths", () => {
  it("parseKeyPath returns or refuses with a KvError", () => {
    fc.assert(
      fc.property(fc.array(pathPart, { maxLength: 6 }), fc.boolean(), (parts, slash) => {
        const path = (slash ? "/" : "") + parts.join("/");
        returnsOrKvError(() => parseKeyPath(path));
      }),
      fuzz(400),
    );
  });

  it("parseKeyPath reads back what formatKeyPath writes", () => {
    fc.assert(
      fc.property(
        validKey.filter((k) => k.length > 0),
        (key) => {
          expect(parseKeyPath(formatKeyPath(key))).toEqual(key);
        },
      ),
      fuzz(200),
    );
  });
});

describe("where filters", () => {
  it("parseWhere returns or refuses with INVALID_FILTER, on hostile and near-valid filters", () => {
    fc.assert(
      fc.property(fc.oneof(hostileValue, nearValid(where)), (input) => {
        const w = asJson(input);
        const result = returnsOrKvError(() => parseWhere(w));
        if (result instanceof KvError) expect(result.code).toBe("INVALID_FILTER");
        else if (result !== undefined) expect(parseWhere(filterToWhere(result))).toEqual(result);
      }),
      fuzz(300),
    );
  });

  it("parsePath returns or refuses with INVALID_FILTER", () => {
    fc.assert(
      fc.property(fc.oneof(edgeString, fc.stringMatching(/^[a-z.[\]0-9$ ]{0,40}$/)), (text) => {
        const result = returnsOrKvError(() => parsePath(text, "where"));
        if (result instanceof KvError) expect(result.code).toBe("INVALID_FILTER");
      }),
      fuzz(300),
    );
  });

  it("refuses a deep operand it cannot use with INVALID_FILTER, not a stack overflow", () => {
    const deep = JSON.parse(`${"[".repeat(100_000)}${"]".repeat(100_000)}`);
    for (const filter of [{ a: deep }, { a: { $eq: deep } }, { a: { $contains: deep } }]) {
      expect(() => parseWhere(filter)).toThrowError(
        expect.objectContaining({ code: "INVALID_FILTER" }),
      );
    }
  });
});

describe("search queries", () => {
  it("parseSearchQuery returns or refuses with INVALID_ARGUMENT, and reads back what it writes", () => {
    fc.assert(
      fc.property(searchText, (text) => {
        const result = returnsOrKvError(() => parseSearchQuery(text));
        if (result instanceof KvError) expect(result.code).toBe("INVALID_ARGUMENT");
        else expect(parseSearchQuery(formatSearchQuery(result))).toEqual(result);
      }),
      fuzz(400),
    );
  });

  it("searchIndexOf returns or refuses with a KvError", () => {
    const options = fc.record(
      {
        fields: fc.oneof(fc.array(fc.oneof(edgeString, fc.constant("title")), { maxLength: 40 })),
        tokenize: fc.constantFrom("unicode61", "porter", "ascii", "trigram", "", null),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(hostileValue, nearValid(options)), (input) => {
        returnsOrKvError(() => searchIndexOf(new Uint8Array(), asJson(input)));
      }),
      fuzz(200),
    );
  });
});

describe("durations", () => {
  it("parseDuration returns a finite number of ms of at least 0, or refuses with INVALID_ARGUMENT", () => {
    const text = fc.oneof(
      edgeString,
      fc
        .tuple(
          fc.oneof(
            fc.stringMatching(/^\d{1,400}(\.\d{0,5})?$/),
            fc.constantFrom("1e3", "-1", ".5"),
          ),
          fc.constantFrom("", "ms", "s", "m", "h", "d", "w", "y", " s", "S", "sec"),
        )
        .map(([n, unit]) => n + unit),
    );
    fc.assert(
      fc.property(fc.oneof(text, hostileValue, fc.double()), (input) => {
        const result = returnsOrKvError(() => parseDuration(input));
        if (result instanceof KvError) expect(result.code).toBe("INVALID_ARGUMENT");
        else expect(Number.isFinite(result) && result >= 0).toBe(true);
      }),
      fuzz(400),
    );
  });

  it("refuses an object without a prototype with INVALID_ARGUMENT", () => {
    expect(() => parseDuration(Object.create(null))).toThrowError(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });

  it("refuses a duration too large for a number", () => {
    for (const d of ["9".repeat(400), `${"9".repeat(400)}y`, `${"9".repeat(310)}.5ms`]) {
      expect(() => parseDuration(d)).toThrowError(
        expect.objectContaining({ code: "INVALID_ARGUMENT" }),
      );
    }
  });
});

describe("tagged JSON", () => {
  it("fromTagged returns or refuses with a KvError", () => {
    fc.assert(
      fc.property(fc.oneof(hostileValue, nearValid(fc.jsonValue({ maxDepth: 3 }))), (input) => {
        const json = asJson(input);
        returnsOrKvError(() => fromTagged(json));
      }),
      fuzz(400),
    );
  });

  it("keyFromJson returns or refuses with INVALID_KEY or INVALID_VALUE, and keyToJson reads back", () => {
    fc.assert(
      fc.property(fc.oneof(hostileValue, nearValid(jsonKey)), (input) => {
        const json = asJson(input);
        const result = returnsOrKvError(() => keyFromJson(json));
        if (result instanceof KvError)
          expect(["INVALID_KEY", "INVALID_VALUE"]).toContain(result.code);
        else expect(keyFromJson(asJson(keyToJson(result)))).toEqual(result);
      }),
      fuzz(400),
    );
  });
});

describe("the key codec", () => {
  it("decodeKey of any bytes returns or refuses with INVALID_KEY", () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      // Valid encodings truncated or with a byte changed.
      fc
        .tuple(validKey, fc.nat(), fc.nat({ max: 255 }), fc.boolean())
        .map(([key, at, byte, truncate]) => {
          const encoded = new Uint8Array(encodeKey(key));
          if (encoded.length === 0) return encoded;
          if (truncate) return encoded.subarray(0, at % encoded.length);
          encoded[at % encoded.length] = byte;
          return encoded;
        }),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        const result = returnsOrKvError(() => decodeKey(b));
        if (result instanceof KvError) expect(result.code).toBe("INVALID_KEY");
      }),
      fuzz(500),
    );
  });

  it("decodeKey reads back what encodeKey writes", () => {
    fc.assert(
      fc.property(validKey, (key) => {
        expect(decodeKey(encodeKey(key))).toEqual(key);
      }),
      fuzz(200),
    );
  });

  it("encodeKey of hostile parts returns or refuses with a KvError", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(edgeString, fc.anything()), { maxLength: 4 }), (key) => {
        const result = returnsOrKvError(() => encodeKey(key as KvKey));
        if (!(result instanceof KvError)) expect(decodeKey(result)).toEqual(key);
      }),
      fuzz(200),
    );
  });
});

describe("V8 values", () => {
  const v8Bytes = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.uint8Array({ maxLength: 64 }).map((b) => new Uint8Array([0xff, 0x0f, ...b])),
    fc.uint8Array({ maxLength: 64 }).map((b) => new Uint8Array([0xff, 0x10, ...b])),
    // Valid V8 bytes with a byte changed, or cut short.
    fc
      .tuple(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.constantFrom(
            new Map([[1, [2n]]]),
            new Set(["a"]),
            new Date(0),
            /a+/g,
            new Float64Array([1, 2]),
            new Uint8Array([1, 2, 3]),
            Number.NaN,
            -0,
            { a: undefined },
            Object.assign([1], { 2: 3 }), // a hole at 1
          ),
        ),
        fc.nat(),
        fc.nat({ max: 255 }),
        fc.boolean(),
      )
      .map(([value, at, byte, truncate]) => {
        const bytes = new Uint8Array(serializeV8(value));
        if (truncate) return bytes.subarray(0, 2 + (at % Math.max(1, bytes.length - 2)));
        bytes[2 + (at % Math.max(1, bytes.length - 2))] = byte;
        return bytes;
      }),
  );

  it("decodeValue of any V8 bytes returns (undecodable bytes as a KvV8Value) or refuses with a KvError", () => {
    fc.assert(
      fc.property(v8Bytes, (data) => {
        returnsOrKvError(() => decodeValue({ encoding: ValueEncoding.V8, data }));
      }),
      fuzz(500),
    );
  });
});

describe("the database wire (the SDK's /api/db/* bodies)", () => {
  const b64key = (key: unknown[]) => Buffer.from(encodeKey(key as KvKey)).toString("base64");
  const range = fc.record({
    start: fc.constantFrom(b64key([]), b64key(["users"]), ""),
    end: fc.constantFrom(b64key(["users", 9]), "/w==", ""),
    limit: fc.constantFrom(1, 10, 100),
    reverse: fc.boolean(),
    where,
  });
  const bodies = fc.oneof(
    hostileValue,
    nearValid(
      fc.record({
        keys: fc.array(
          jsonKey.map(() => b64key(["users", 1])),
          { maxLength: 3 },
        ),
      }),
    ),
    nearValid(fc.record({ ranges: fc.array(range, { maxLength: 3 }) })),
    nearValid(
      fc.record({
        checks: fc.constant([{ key: b64key(["a"]), versionstamp: null }]),
        mutations: fc.constant([
          { type: "set", key: b64key(["a"]), value: { encoding: 4, data: "1" } },
          { type: "sum", key: b64key(["n"]), value: { encoding: 2, data: "AQAAAAAAAAA=" } },
          { type: "delete", key: b64key(["b"]) },
        ]),
      }),
    ),
    nearValid(
      fc.record({ limit: fc.constant(10), waitMs: fc.constant(0), leaseMs: fc.constant(100) }),
    ),
    nearValid(
      fc.record({ prefix: fc.constantFrom("", b64key(["posts"])), fields: fc.constant(["title"]) }),
    ),
    nearValid(fc.record({ prefix: fc.constant(""), query: searchText, limit: fc.constant(5) })),
  );
  const parsers = {
    keysFromWire,
    rangesFromWire,
    countFromWire,
    commitFromWire,
    changesRequestFromWire,
    claimRequestFromWire,
    feedRangesFromWire: (body: unknown) => feedRangesFromWire(body as Record<string, unknown>),
    deadLetterQueryFromWire,
    indexFromWire,
    searchFromWire,
  };

  it("every request parser returns or refuses with a KvError", () => {
    fc.assert(
      fc.property(bodies, fc.constantFrom(...Object.values(parsers)), (input, parse) => {
        const body = asJson(input);
        returnsOrKvError(() => parse(body));
      }),
      fuzz(500),
    );
  });

  it("names a deep mutation type in its refusal without overflowing the stack", () => {
    const deep = asJson(new Deep(100_000));
    expect(() => commitFromWire({ mutations: [{ type: deep, key: "AmEA" }] })).toThrowError(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
    expect(() => searchIndexOf(new Uint8Array(), { fields: ["a"], tokenize: deep })).toThrowError(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });

  it("refuses a body that is not an object with INVALID_ARGUMENT (feedRangesFromWire)", () => {
    for (const body of [null, 1, "x", []]) {
      expect(() => feedRangesFromWire(body as never)).toThrowError(
        expect.objectContaining({ code: "INVALID_ARGUMENT" }),
      );
    }
  });
});

it("the edge strings are distinct (a typo would hide a case)", () => {
  expect(new Set(edgeStrings).size).toBe(edgeStrings.length);
});
