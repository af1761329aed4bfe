/**
 * The DynamoDB face's attribute values and numbers, against DynamoDB's documented and observed
 * behaviour: numbers parse to DynamoDB's canonical form and compute exactly (checked against
 * BigInt arithmetic on the values the texts denote), number keys sort as numbers, and
 * `checkValue`/`checkItem` answer bad input with DynamoDB's exceptions and messages — and with
 * nothing else, for any JSON or JavaScript value.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AttributeValue,
  binaryOf,
  checkItem,
  checkValue,
  compare,
  equals,
  itemSize,
  valueSize,
} from "../src/faces/dynamodb/attribute-value.js";
import {
  addNumbers,
  compareNumbers,
  numberKey,
  numberOfKey,
  numberSize,
  parseNumber,
  subtractNumbers,
} from "../src/faces/dynamodb/decimal.js";
import { DynamoFault } from "../src/faces/dynamodb/errors.js";
import { KvError } from "../src/kv-error.js";
import { edgeString, fuzz, returnsOrKvError } from "./fuzz/fuzz.js";

const NOT_NUMERIC = "The parameter cannot be converted to a numeric value";
const OVERFLOW =
  "Number overflow. Attempting to store a number with magnitude larger than supported range";
const UNDERFLOW =
  "Number underflow. Attempting to store a number with magnitude smaller than supported range";
const TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number";
const INVALID = "One or more parameter values were invalid: ";
const EMPTY =
  "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const SEVERAL =
  "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
const TOO_DEEP =
  "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
const STRUCTURE = "Start of structure or map found where not expected";

/** The exception and message `run` fails with (it must fail with a face error). */
function failure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof KvError && error.cause instanceof DynamoFault) {
      return `${error.cause.type}: ${error.message}`;
    }
    throw error;
  }
  throw new Error("expected a failure");
}

const invalid = (message: string) => `ValidationException: ${message}`;
const unreadable = (message: string) => `SerializationException: ${message}`;

// ---- an exact reference: a decimal as coefficient × 10^exponent ----

interface Exact {
  readonly coefficient: bigint;
  readonly exponent: number;
}

const pow10 = (n: number) => 10n ** BigInt(n);

/** The value a number's text denotes, as `parseNumber`'s grammar reads it. */
function exactOf(text: string): Exact {
  const [, sign, whole = "", fraction = "", exponent = "0"] =
    /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text)!;
  const coefficient = BigInt(`${sign === "-" ? "-" : ""}${whole + fraction || "0"}`);
  return { coefficient, exponent: Number(exponent) - fraction.length };
}

function compareExact(a: Exact, b: Exact): number {
  const e = Math.min(a.exponent, b.exponent);
  const x = a.coefficient * pow10(a.exponent - e);
  const y = b.coefficient * pow10(b.exponent - e);
  return x < y ? -1 : x > y ? 1 : 0;
}

function addExact(a: Exact, b: Exact): Exact {
  const e = Math.min(a.exponent, b.exponent);
  return {
    coefficient: a.coefficient * pow10(a.exponent - e) + b.coefficient * pow10(b.exponent - e),
    exponent: e,
  };
}

/** The message DynamoDB refuses a non-zero exact value with, if any (`tooPrecise` for > 38 digits). */
function refusalOf({ coefficient, exponent }: Exact, tooPrecise: string): string | undefined {
  const digits = (coefficient < 0n ? -coefficient : coefficient).toString();
  const leading = exponent + digits.length - 1;
  if (leading > 125) return OVERFLOW;
  if (leading < -130) return UNDERFLOW;
  if (digits.replace(/0+$/, "").length > 38) return tooPrecise;
  return undefined;
}

const CANONICAL = /^(0|-?(0\.\d*[1-9]|[1-9]\d*(\.\d*[1-9])?))$/;

// ---- arbitraries ----

const digitString = (max: number) => fc.stringMatching(new RegExp(`^0{0,3}[0-9]{0,${max}}0{0,3}$`));

/** Number texts in every spelling DynamoDB reads, in and out of range, with too many digits. */
const numberText = fc
  .record({
    sign: fc.constantFrom("", "+", "-"),
    whole: digitString(42),
    fraction: fc.option(digitString(42)),
    exponent: fc.option(
      fc.record({
        e: fc.constantFrom("e", "E"),
        sign: fc.constantFrom("", "+", "-"),
        value: fc.oneof(fc.nat(10), fc.integer({ min: 110, max: 175 })),
      }),
    ),
  })
  .filter(({ whole, fraction }) => whole.length + (fraction ?? "").length > 0)
  .map(({ sign, whole, fraction, exponent }) => {
    const point = fraction === null ? "" : `.${fraction}`;
    const e = exponent ? `${exponent.e}${exponent.sign}${exponent.value}` : "";
    return `${sign}${whole}${point}${e}`;
  });

const textOf = (negative: boolean, coefficient: bigint, exponent: number) =>
  `${negative ? "-" : ""}${coefficient}e${exponent}`;

/** Canonical numbers, crowded at the ends of the range and around small integers. */
const number = fc
  .oneof(
    fc.integer({ min: -20, max: 20 }).map(String),
    fc
      .record({
        negative: fc.boolean(),
        coefficient: fc.bigInt({ min: 0n, max: pow10(38) - 1n }),
        exponent: fc.oneof(
          fc.integer({ min: -170, max: 130 }),
          fc.integer({ min: -170, max: -125 }),
          fc.integer({ min: 85, max: 130 }),
        ),
      })
      .map(({ negative, coefficient, exponent }) => textOf(negative, coefficient, exponent)),
  )
  .map((text) => returnsOrKvError(() => parseNumber(text)))
  .filter((n): n is string => typeof n === "string");

/** Pairs of numbers, some of them nearly cancelling or a digit apart. */
const numberPair = fc.oneof(
  fc.tuple(number, number),
  fc
    .record({
      coefficient: fc.bigInt({ min: 0n, max: pow10(38) - 1n }),
      delta: fc.bigInt({ min: -1000n, max: 1000n }),
      exponent: fc.integer({ min: -170, max: 125 }),
      shift: fc.integer({ min: -2, max: 2 }),
      negative: fc.boolean(),
    })
    .map(({ coefficient, delta, exponent, shift, negative }) => [
      returnsOrKvError(() => parseNumber(textOf(false, coefficient, exponent))),
      returnsOrKvError(() => parseNumber(textOf(negative, coefficient + delta, exponent + shift))),
    ])
    .filter((pair): pair is [string, string] => pair.every((n) => typeof n === "string")),
);

describe("parseNumber", () => {
  it("reads every spelling to the canonical form of the same value, or refuses it as DynamoDB does", () => {
    fc.assert(
      fc.property(numberText, (text) => {
        const exact = exactOf(text);
        const result = returnsOrKvError(() => parseNumber(text));
        const expected =
          exact.coefficient === 0n
            ? exact.exponent > 125
              ? OVERFLOW
              : exact.exponent < -130
                ? UNDERFLOW
                : undefined
            : refusalOf(exact, TOO_PRECISE);
        if (expected) {
          expect(result).toBeInstanceOf(KvError);
          expect((result as KvError).message).toBe(expected);
        } else {
          expect(result).toMatch(CANONICAL);
          expect(compareExact(exactOf(result as string), exact)).toBe(0);
        }
      }),
      fuzz(2000),
    );
  });

  it("is idempotent", () => {
    fc.assert(
      fc.property(number, (n) => {
        expect(parseNumber(n)).toBe(n);
      }),
      fuzz(1000),
    );
  });

  it("writes numbers in plain notation, as DynamoDB returns them", () => {
    const cases: [string, string][] = [
      ["01.50", "1.5"],
      ["-0", "0"],
      ["0.000", "0"],
      ["+0e5", "0"],
      ["1e2", "100"],
      ["1.0E-3", "0.001"],
      ["+3", "3"],
      [".123", "0.123"],
      ["5.", "5"],
      ["0001.23", "1.23"],
      ["1e+5", "100000"],
      ["-17.4E37", "-174000000000000000000000000000000000000"],
      ["0042.1200", "42.12"],
      ["1E125", `1${"0".repeat(125)}`],
      ["-1E-130", `-0.${"0".repeat(129)}1`],
      ["0e125", "0"],
      ["9.9999999999999999999999999999999999999E+125", `${"9".repeat(38)}${"0".repeat(88)}`],
      ["3.1415926535897932384626433832795028841", "3.1415926535897932384626433832795028841"],
      [
        "31415926535897932384626433832795028841e30",
        `31415926535897932384626433832795028841${"0".repeat(30)}`,
      ],
      ["12345678901234567890123456789012345678e2", "1234567890123456789012345678901234567800"],
    ];
    for (const [text, canonical] of cases) expect(parseNumber(text), text).toBe(canonical);
  });

  it("refuses what DynamoDB refuses, with its messages", () => {
    const cases: [string, string][] = [
      ["", `${NOT_NUMERIC}: `],
      ["abc", `${NOT_NUMERIC}: abc`],
      ["1.2.3", `${NOT_NUMERIC}: 1.2.3`],
      [" 1", `${NOT_NUMERIC}:  1`],
      ["1 ", `${NOT_NUMERIC}: 1 `],
      ["0x10", `${NOT_NUMERIC}: 0x10`],
      ["1e", `${NOT_NUMERIC}: 1e`],
      [".", `${NOT_NUMERIC}: .`],
      ["+", `${NOT_NUMERIC}: +`],
      ["--1", `${NOT_NUMERIC}: --1`],
      ["NaN", `${NOT_NUMERIC}: NaN`],
      ["Infinity", `${NOT_NUMERIC}: Infinity`],
      ["-Infinity", `${NOT_NUMERIC}: -Infinity`],
      ["١٢", `${NOT_NUMERIC}: ١٢`],
      ["1e9223372036854775808", `${NOT_NUMERIC}: 1e9223372036854775808`],
      ["1e-9223372036854775809", `${NOT_NUMERIC}: 1e-9223372036854775809`],
      ["1e99999999999", OVERFLOW],
      ["-1e99999999999", OVERFLOW],
      ["1e2147483647", OVERFLOW],
      ["1e9223372036854775807", OVERFLOW],
      ["1e-99999999999", UNDERFLOW],
      ["1e-9223372036854775808", UNDERFLOW],
      ["1e126", OVERFLOW],
      ["11e125", OVERFLOW],
      ["-1e126", OVERFLOW],
      ["1e-131", UNDERFLOW],
      ["0.9e-130", UNDERFLOW],
      ["-1e-131", UNDERFLOW],
      ["0e126", OVERFLOW],
      ["0e-131", UNDERFLOW],
      ["123456789012345678901234567890123456789", TOO_PRECISE],
      ["-1.23456789012345678901234567890123456789", TOO_PRECISE],
      ["3.14159265358979323846264338327950288419", TOO_PRECISE],
      ["1234567890123456789012345678901234567890", TOO_PRECISE],
    ];
    for (const [text, message] of cases) {
      expect(
        failure(() => parseNumber(text)),
        text,
      ).toBe(invalid(message));
    }
  });

  it("reads a long text in linear time", () => {
    const started = performance.now();
    expect(parseNumber(`0.${"0".repeat(200_000)}1e200001`)).toBe("1");
    expect(parseNumber(`1${"0".repeat(200_000)}e-200000`)).toBe("1");
    expect(failure(() => parseNumber(`1${"0".repeat(200_000)}1`))).toBe(invalid(OVERFLOW));
    expect(failure(() => parseNumber(`${"1".repeat(200_000)}x`))).toContain(NOT_NUMERIC);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe("addNumbers and subtractNumbers", () => {
  const exactly = (result: string | KvError, exact: Exact) => {
    const expected = exact.coefficient === 0n ? undefined : refusalOf(exact, OVERFLOW);
    if (expected) {
      expect(result).toBeInstanceOf(KvError);
      expect((result as KvError).message).toBe(expected);
    } else {
      expect(result).toMatch(CANONICAL);
      expect(compareExact(exactOf(result as string), exact)).toBe(0);
    }
  };

  it("are exact, and refuse results DynamoDB cannot store", () => {
    fc.assert(
      fc.property(numberPair, ([a, b]) => {
        const x = exactOf(a);
        const y = exactOf(b);
        exactly(
          returnsOrKvError(() => addNumbers(a, b)),
          addExact(x, y),
        );
        exactly(
          returnsOrKvError(() => subtractNumbers(a, b)),
          addExact(x, { coefficient: -y.coefficient, exponent: y.exponent }),
        );
      }),
      fuzz(2000),
    );
  });

  it("answer as DynamoDB does at the limits", () => {
    expect(addNumbers("1", "10000000000000000000000")).toBe("10000000000000000000001");
    expect(subtractNumbers("10000000000000000000000", "1")).toBe("9999999999999999999999");
    expect(addNumbers("0.1", "0.2")).toBe("0.3");
    expect(subtractNumbers("1.5", "1.5")).toBe("0");
    expect(addNumbers(parseNumber("9e125"), parseNumber("9e124"))).toBe(parseNumber("9.9e125"));
    expect(failure(() => addNumbers(parseNumber("9e125"), parseNumber("9e125")))).toBe(
      invalid(OVERFLOW),
    );
    expect(failure(() => subtractNumbers(parseNumber("9e125"), parseNumber("-9e125")))).toBe(
      invalid(OVERFLOW),
    );
    // DynamoDB calls a result that needs more than 38 digits an overflow, whatever its size.
    expect(failure(() => addNumbers(parseNumber("1e50"), "1"))).toBe(invalid(OVERFLOW));
    expect(failure(() => subtractNumbers(parseNumber("1e50"), "1"))).toBe(invalid(OVERFLOW));
    const tiny = parseNumber("1.0000000000000000000000000000000000001e-100");
    expect(failure(() => subtractNumbers(tiny, parseNumber("1e-100")))).toBe(invalid(UNDERFLOW));
  });
});

describe("numberKey", () => {
  it("orders bytes as the numbers they encode, and decodes to the same number", () => {
    fc.assert(
      fc.property(numberPair, ([a, b]) => {
        const expected = compareExact(exactOf(a), exactOf(b));
        expect(Math.sign(Buffer.compare(numberKey(a), numberKey(b)))).toBe(expected);
        expect(compareNumbers(a, b)).toBe(expected);
        expect(numberOfKey(numberKey(a))).toBe(a);
        expect(numberOfKey(numberKey(b))).toBe(b);
      }),
      fuzz(3000),
    );
  });

  it("gives equal numbers equal bytes and keeps prefixes in order", () => {
    expect(numberKey(parseNumber("1e3"))).toEqual(numberKey(parseNumber("1000.000")));
    const sorted = [
      "-1e125",
      "-1.23",
      "-1.2",
      "-1",
      "-1e-130",
      "0",
      "1e-130",
      "1",
      "1.2",
      "1.23",
      "1e125",
    ];
    const keys = sorted.map((n) => Buffer.from(numberKey(parseNumber(n))));
    expect([...keys].sort(Buffer.compare)).toEqual(keys);
  });
});

describe("numberSize", () => {
  // Measured against DynamoDB's 400 KB item limit, byte by byte (paritysuite/dynamodb-conformance,
  // src/item-size.ts): one byte, one per base-100 digit pair, one for the sign.
  const measured: [string, number][] = [
    ["0", 1],
    ["1", 2],
    ["12", 2],
    ["123", 3],
    ["1234", 3],
    ["12345678901234567890123456789012345678", 20],
    ["0042", 2],
    ["100", 2],
    ["1010", 3],
    ["0.0000001", 2],
    ["1E125", 2],
    ["1E-100", 2],
    ["1.5", 3],
    ["15", 2],
    ["1.2", 3],
    ["1.200", 3],
    ["1.234", 4],
    ["3.14159", 5],
    ["123456", 4],
    ["100.5", 4],
    ["0.15", 2],
    ["-42", 3],
    ["-0", 1],
  ];
  it.each(measured)("sizes %s at %i bytes", (text, bytes) => {
    expect(numberSize(parseNumber(text))).toBe(bytes);
  });
});

// ---- attribute values ----

/** `depth` levels of single-entry maps around `leaf` (the outermost map is level 1). */
function deep(depth: number, leaf: unknown = { S: "leaf" }): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { M: { n: value } };
  return value;
}

const junk = fc.oneof(
  fc.jsonValue({ maxDepth: 1 }),
  edgeString,
  fc.constantFrom(null, 1.5, true, [], {}, "AA==", "1e126", "-0"),
);

/** Attribute values as requests send them: mostly well-formed, some with a member gone wrong. */
const attributeLike = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ S: fc.oneof(fc.string(), junk) }),
    fc.record({ N: fc.oneof(numberText, number, junk) }),
    fc.record({ B: fc.oneof(fc.base64String(), junk) }),
    fc.record({ BOOL: fc.oneof(fc.boolean(), junk) }),
    fc.record({ NULL: fc.oneof(fc.constant(true), junk) }),
    fc.record({ SS: fc.oneof(fc.array(fc.oneof(fc.string({ maxLength: 2 }), junk)), junk) }),
    fc.record({ NS: fc.oneof(fc.array(fc.oneof(numberText, number)), fc.array(junk)) }),
    fc.record({ BS: fc.oneof(fc.array(fc.base64String({ maxLength: 8 })), fc.array(junk)) }),
    fc.record({ L: fc.oneof(fc.array(tie("value"), { maxLength: 4 }), junk) }),
    fc.record({ M: fc.oneof(fc.dictionary(fc.string(), tie("value"), { maxKeys: 4 }), junk) }),
    fc.dictionary(
      fc.constantFrom("S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS", "x"),
      junk,
    ),
    junk,
  ),
})).value;

describe("checkValue", () => {
  it("returns a value or throws the face's error, for any JSON or JavaScript value", () => {
    fc.assert(
      fc.property(fc.oneof(attributeLike, fc.jsonValue(), fc.anything()), (raw) => {
        const result = returnsOrKvError(() => checkValue(raw));
        if (result instanceof KvError) {
          expect(result.cause).toBeInstanceOf(DynamoFault);
          return;
        }
        expect(checkValue(result)).toEqual(result);
        expect(equals(result, structuredClone(result))).toBe(true);
        expect(Number.isInteger(valueSize(result))).toBe(true);
      }),
      fuzz(3000),
    );
  });

  it("normalizes numbers everywhere and keeps the rest of the wire form", () => {
    expect(
      checkValue({
        M: {
          n: { N: "01.50" },
          ns: { NS: ["1e2", "-0"] },
          l: { L: [{ N: "+7" }, { S: " 7 " }, { B: "AAE=" }, { BOOL: false }, { NULL: true }] },
          ss: { SS: ["b", "a"] },
          bs: { BS: ["AA==", "/w=="] },
        },
        Ignored: 1,
      }),
    ).toEqual({
      M: {
        n: { N: "1.5" },
        ns: { NS: ["100", "0"] },
        l: { L: [{ N: "7" }, { S: " 7 " }, { B: "AAE=" }, { BOOL: false }, { NULL: true }] },
        ss: { SS: ["b", "a"] },
        bs: { BS: ["AA==", "/w=="] },
      },
    });
    expect(checkValue({ S: "x", N: null })).toEqual({ S: "x" });
    expect(checkValue({ BOOL: "yes" })).toEqual({ BOOL: true });
    expect(checkValue({ M: { __proto__: { S: "p" } } as unknown })).toEqual({ M: {} });
    const map = checkValue(JSON.parse('{"M":{"__proto__":{"S":"p"}}}'));
    expect("M" in map && Object.keys(map.M)).toEqual(["__proto__"]);
  });

  it("refuses bad values with DynamoDB's ValidationException messages", () => {
    const cases: [unknown, string][] = [
      [{}, EMPTY],
      [{ a: "" }, EMPTY],
      [{ S: null }, EMPTY],
      [null, EMPTY],
      [{ M: { a: {} } }, EMPTY],
      [{ L: [{}] }, EMPTY],
      [{ L: [{ a: {} }] }, EMPTY],
      [{ S: "a", N: "1" }, SEVERAL],
      [{ S: "a", N: "b" }, `${NOT_NUMERIC}: b`],
      [{ S: "", N: "" }, `${NOT_NUMERIC}: `],
      [{ NULL: false }, `${INVALID}Null attribute value types must have the value of true`],
      [{ NULL: "no" }, `${INVALID}Null attribute value types must have the value of true`],
      [{ SS: [] }, `${INVALID}An string set  may not be empty`],
      [{ NS: [] }, `${INVALID}An number set  may not be empty`],
      [{ BS: [] }, `${INVALID}Binary sets should not be empty`],
      [{ SS: ["b", "a", "b"] }, `${INVALID}Input collection ["a", "b", "b"] contains duplicates.`],
      [{ SS: ["", ""] }, `${INVALID}Input collection ["", ""] contains duplicates.`],
      [
        { BS: ["/w==", "AA==", "AA=="] },
        `${INVALID}Input collection ["AA==","/w==","AA=="]of type BS contains duplicates.`,
      ],
      [{ NS: ["2", "1", "2"] }, `${INVALID}Input collection contains duplicates.`],
      [{ NS: ["1", "1.0"] }, `${INVALID}Input collection contains duplicates.`],
      [{ NS: ["1", "b"] }, `${NOT_NUMERIC}: b`],
      [{ NS: ["1", ""] }, `${NOT_NUMERIC}: `],
      [{ N: "1e126" }, OVERFLOW],
      [{ M: { x: { L: [{ N: "1e-131" }] } } }, UNDERFLOW],
      [{ N: "123456789012345678901234567890123456789" }, TOO_PRECISE],
      [deep(32), TOO_DEEP],
      [deep(40, { N: "abc" }), TOO_DEEP],
      [{ M: { d: deep(40), bad: { N: "abc" } } }, TOO_DEEP],
      [{ M: { bad: { N: "abc" }, d: deep(40) } }, `${NOT_NUMERIC}: abc`],
      [deep(100_000), TOO_DEEP],
    ];
    for (const [index, [raw, message]] of cases.entries()) {
      expect(
        failure(() => checkValue(raw)),
        `case ${index}`,
      ).toBe(invalid(message));
    }
    expect(checkValue(deep(31))).toEqual(deep(31));
    let list: unknown = { NULL: true };
    for (let i = 0; i < 31; i++) list = { L: [list] };
    expect(checkValue(list)).toEqual(list);
    expect(failure(() => checkValue({ L: [list] }))).toBe(invalid(TOO_DEEP));
  });

  it("refuses JSON of the wrong type with DynamoDB's SerializationException messages", () => {
    const cases: [unknown, string][] = [
      ["x", "Unexpected value type in payload"],
      [5, "Unexpected value type in payload"],
      [true, "Unexpected value type in payload"],
      [[], "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"],
      [{ L: [5] }, "Unexpected value type in payload"],
      [
        { M: { a: [] } },
        "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue",
      ],
      [{ S: 5 }, "NUMBER_VALUE cannot be converted to String"],
      [{ S: 2147483648 }, "NUMBER_VALUE cannot be converted to String"],
      [{ S: 34.56 }, "DECIMAL_VALUE cannot be converted to String"],
      [{ S: true }, "TRUE_VALUE cannot be converted to String"],
      [{ N: false }, "FALSE_VALUE cannot be converted to String"],
      [{ N: 123 }, "NUMBER_VALUE cannot be converted to String"],
      [{ S: [] }, "Unrecognized collection type class java.lang.String"],
      [{ S: {} }, STRUCTURE],
      [{ BOOL: "x" }, "Unexpected token received from parser"],
      [{ BOOL: "23" }, "Unexpected token received from parser"],
      [{ BOOL: 23 }, "NUMBER_VALUE cannot be converted to Boolean"],
      [{ NULL: 34.56 }, "DECIMAL_VALUE cannot be converted to Boolean"],
      [{ BOOL: [] }, "Unrecognized collection type class java.lang.Boolean"],
      [{ NULL: {} }, STRUCTURE],
      [{ B: true }, "only base-64-encoded strings are convertible to bytes"],
      [{ B: 23 }, "only base-64-encoded strings are convertible to bytes"],
      [{ B: [] }, "Unrecognized collection type class java.nio.ByteBuffer"],
      [{ B: {} }, STRUCTURE],
      [{ B: "23456" }, "Base64 encoded length is expected a multiple of 4 bytes but found: 5"],
      [{ B: "=+/=" }, "Invalid last non-pad Base64 character dectected"],
      [{ B: "+/+=" }, "Invalid last non-pad Base64 character dectected"],
      [{ BS: ["AA==", "!!!!"] }, "Invalid last non-pad Base64 character dectected"],
      [{ SS: "23" }, "Unexpected field type"],
      [{ NS: true }, "Unexpected field type"],
      [{ L: 23 }, "Unexpected field type"],
      [{ BS: {} }, STRUCTURE],
      [{ SS: [1] }, "NUMBER_VALUE cannot be converted to String"],
      [{ M: "23" }, "Unexpected field type"],
      [
        { M: [] },
        "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>",
      ],
      // The whole request is read before anything in it is validated.
      [{ L: [{ N: "x" }, { S: 5 }] }, "NUMBER_VALUE cannot be converted to String"],
      [{ S: "a", N: "1", B: 1 }, "only base-64-encoded strings are convertible to bytes"],
    ];
    for (const [raw, message] of cases) {
      expect(
        failure(() => checkValue(raw)),
        JSON.stringify(raw),
      ).toBe(unreadable(message));
    }
  });
});

describe("checkItem", () => {
  it("returns an item or throws the face's error, for any JSON value", () => {
    fc.assert(
      fc.property(fc.oneof(fc.dictionary(fc.string(), attributeLike), fc.jsonValue()), (raw) => {
        const result = returnsOrKvError(() => checkItem(raw));
        if (result instanceof KvError) expect(result.cause).toBeInstanceOf(DynamoFault);
        else expect(checkItem(result)).toEqual(result);
      }),
      fuzz(1000),
    );
  });

  it("checks each attribute, and its name", () => {
    expect(checkItem({ id: { S: "a" }, n: { N: "1.0" } })).toEqual({
      id: { S: "a" },
      n: { N: "1" },
    });
    expect(failure(() => checkItem({ "": { S: "a" } }))).toBe(invalid("Empty attribute name"));
    expect(failure(() => checkItem({ a: { N: "x" } }))).toBe(invalid(`${NOT_NUMERIC}: x`));
    expect(failure(() => checkItem({ a: { N: "x" }, b: { S: 1 } }))).toBe(
      unreadable("NUMBER_VALUE cannot be converted to String"),
    );
    expect(failure(() => checkItem([]))).toBe(
      unreadable(
        "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>",
      ),
    );
    expect(failure(() => checkItem("x"))).toBe(unreadable("Unexpected field type"));
    expect(failure(() => checkItem({ a: 1 }))).toBe(unreadable("Unexpected value type in payload"));
  });
});

describe("equals and compare", () => {
  const v = (raw: unknown) => checkValue(raw);

  it("compare DynamoDB's way", () => {
    expect(equals(v({ N: "1.0" }), v({ N: "1" }))).toBe(true);
    expect(equals(v({ NS: ["1", "2"] }), v({ NS: ["2.0", "1"] }))).toBe(true);
    expect(equals(v({ NS: ["1", "2"] }), v({ NS: ["1"] }))).toBe(false);
    expect(equals(v({ SS: ["a", "b"] }), v({ SS: ["b", "a"] }))).toBe(true);
    expect(equals(v({ BS: ["AA==", "AQ=="] }), v({ BS: ["AQ==", "AA=="] }))).toBe(true);
    expect(equals(v({ L: [{ S: "a" }, { N: "1" }] }), v({ L: [{ N: "1" }, { S: "a" }] }))).toBe(
      false,
    );
    expect(equals(v({ L: [{ S: "a" }] }), v({ L: [{ S: "a" }] }))).toBe(true);
    expect(
      equals(
        v({ M: { a: { N: "1" }, b: { NULL: true } } }),
        v({ M: { b: { NULL: true }, a: { N: "1.00" } } }),
      ),
    ).toBe(true);
    expect(equals(v({ M: { a: { N: "1" } } }), v({ M: { a: { N: "1" }, b: { S: "" } } }))).toBe(
      false,
    );
    expect(equals(v({ M: {} }), v({ L: [] }))).toBe(false);
    expect(equals(v({ S: "1" }), v({ N: "1" }))).toBe(false);
    expect(equals(v({ SS: ["1"] }), v({ NS: ["1"] }))).toBe(false);
    expect(equals(v({ BOOL: true }), v({ BOOL: true }))).toBe(true);
    expect(equals(v({ BOOL: true }), v({ BOOL: false }))).toBe(false);
  });

  it("order strings by UTF-8 bytes, numbers by value, binaries by unsigned bytes", () => {
    // U+FFFF is one UTF-16 unit above U+1F600's first, but its UTF-8 bytes sort first.
    expect(compare({ S: "\uffff" }, { S: "😀" })).toBe(-1);
    expect(compare({ S: "a" }, { S: "B" })).toBe(1);
    expect(compare({ S: "ab" }, { S: "ab" })).toBe(0);
    expect(compare(v({ N: "-10" }), v({ N: "9" }))).toBe(-1);
    expect(compare(v({ N: "1e2" }), v({ N: "100.0" }))).toBe(0);
    expect(compare({ B: "/w==" }, { B: "AAA=" })).toBe(1);
    expect(compare({ B: "AA==" }, { B: "AAA=" })).toBe(-1);
    expect(compare({ S: "1" }, { N: "1" })).toBeUndefined();
    expect(compare({ BOOL: true }, { BOOL: true })).toBeUndefined();
    expect(compare({ SS: ["a"] }, { SS: ["a"] })).toBeUndefined();
    expect(binaryOf("AAE=")).toEqual(Buffer.from([0, 1]));
  });
});

describe("valueSize and itemSize", () => {
  it("follow DynamoDB's item size rules", () => {
    const sizes: [AttributeValue, number][] = [
      [{ S: "abc" }, 3],
      [{ S: "é😀" }, 6],
      [{ N: "-42" }, 3],
      [{ B: "AAE=" }, 2],
      [{ B: "" }, 0],
      [{ BOOL: false }, 1],
      [{ NULL: true }, 1],
      [{ SS: ["ab", "c"] }, 3],
      [{ NS: ["1", "123"] }, 5],
      [{ BS: ["AA==", "AAAA"] }, 4],
      [{ L: [] }, 3],
      [{ L: [{ S: "ab" }, { N: "1" }] }, 3 + (1 + 2) + (1 + 2)],
      [{ M: {} }, 3],
      [{ M: { ab: { S: "c" }, é: { NULL: true } } }, 3 + (1 + 2 + 1) + (1 + 2 + 1)],
    ];
    for (const [value, size] of sizes) expect(valueSize(value), JSON.stringify(value)).toBe(size);
    expect(itemSize({ id: { S: "abc" }, n: { N: "12" }, é: { BOOL: true } })).toBe(
      2 + 3 + 1 + 2 + 2 + 1,
    );
  });
});
