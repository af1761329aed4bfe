/**
 * What the fuzz suite shares: run counts and seeds from the environment, the property every
 * parser must keep (return, or refuse with a `KvError` whose code is in the table), and
 * arbitraries for hostile input: edge-case strings and numbers, tagged values with bad contents,
 * deep and huge values, and valid inputs with one field mutated ("near-valid").
 *
 *   CAIRN_FUZZ_RUNS=10000 npx vitest run test/fuzz     more cases for every property
 *   CAIRN_FUZZ_SEED=42 CAIRN_FUZZ_PATH="3:1" npx vitest run test/fuzz -t "<property>"
 *                                                       replays a failure fast-check reported
 */
import fc from "fast-check";
import { errorStatus, KvError } from "../../src/kv-error.js";

const envNumber = (name: string) => {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${text}`);
  return n;
};

const RUNS = envNumber("CAIRN_FUZZ_RUNS");
const SEED = envNumber("CAIRN_FUZZ_SEED");
const PATH = process.env.CAIRN_FUZZ_PATH || undefined;

/** The cases a property runs: `runs` in `npm test`, `CAIRN_FUZZ_RUNS` when set. */
export const runsOf = (runs: number) => RUNS ?? runs;

/**
 * fast-check parameters for a property of `runs` cases. A failure reports its seed and path
 * (fast-check's message); CAIRN_FUZZ_SEED and CAIRN_FUZZ_PATH replay it.
 */
export function fuzz(runs: number): fc.Parameters<unknown> {
  return { numRuns: runsOf(runs), seed: SEED, path: PATH };
}

/** A vitest timeout for a property of `runs` cases taking up to `msPerRun` each. */
export const timeoutFor = (runs: number, msPerRun: number) =>
  Math.max(30_000, runsOf(runs) * msPerRun * 3);

/** Whether `code` is one of the stable codes of src/kv-error.ts. */
export const isErrorCode = (code: unknown): boolean =>
  typeof code === "string" && Object.hasOwn(errorStatus, code);

/**
 * Runs a pure parser: it returns, or throws a `KvError` with a code from the table. Anything
 * else (a TypeError, a stack overflow's RangeError) fails the property, with the error as cause.
 */
export function returnsOrKvError<T>(parse: () => T): T | KvError {
  try {
    return parse();
  } catch (e) {
    if (e instanceof KvError && isErrorCode(e.code)) return e;
    throw new Error(`The parser threw ${describeError(e)}, not a KvError`, { cause: e });
  }
}

export function describeError(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name}: ${e.message.slice(0, 200)}` : String(e);
}

// ---- hostile values ----

/** `[0, 1, …, length - 1]` as JSON text, printed short in counterexamples. */
export class HugeArray {
  constructor(readonly length: number) {}

  get text(): string {
    return `[${Array.from({ length: this.length }, (_, i) => i).join(",")}]`;
  }

  [fc.toStringMethod](): string {
    return `HugeArray(${this.length})`;
  }
}

/** Strings that break parsers: lone surrogates, NUL, BOM, percent signs, prototype names, … */
export const edgeStrings = [
  "",
  " ",
  "\u0000",
  "\uD800",
  "\uDFFF",
  "a\uD83Db",
  "\uDC00\uD800",
  "😀",
  "\uFEFF",
  "\u202E",
  "%",
  "%FF",
  "%E0%A4%A",
  "%00",
  "%2F",
  "/",
  "//",
  "..",
  "__proto__",
  "constructor",
  "prototype",
  "__type",
  "toString",
  "NaN",
  "Infinity",
  "-0",
  "1e309",
  "0x10",
  "9".repeat(400),
  "string:",
  "number:",
  "bigint:",
  "bool:",
  "bytes:",
  "bytes:!!",
  "number:1e309",
  "bigint:-",
  "$now",
  "$eq",
  "$and",
  "a.b",
  "[0]",
  "items[99999999999]",
  "AND",
  "OR",
  "NOT",
  "(",
  ")",
  '"',
  "*",
  "-",
  "x".repeat(3000),
];

export const edgeString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...edgeStrings) },
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 500, maxLength: 5000 }) },
);

/** A number written as JSON text as is, including what JSON.stringify cannot write. */
export class RawNumber {
  constructor(readonly text: string) {}
}

export const edgeNumbers = [
  0,
  -0,
  1,
  -1,
  0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
  1e21,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_VALUE,
  1000,
  1001,
  65_536,
];

/** Numbers, with JSON texts that parse to Infinity, -0, 0 and precision loss. */
export const edgeNumber: fc.Arbitrary<number | RawNumber> = fc.oneof(
  fc.constantFrom(...edgeNumbers),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(
    ...["1e309", "-1e309", "-0", "1e-400", "123456789012345678901234567890", "-0.0e0", "1E+2"].map(
      (text) => new RawNumber(text),
    ),
  ),
);

/**
 * Arrays (or `{ "a": … }` objects) nested `depth` deep around a 1, as JSON text (`jsonText`):
 * kept as a description, so that fast-check can print a counterexample holding one.
 */
export class Deep {
  constructor(
    readonly depth: number,
    readonly object = false,
  ) {}

  get text(): string {
    const [open, close] = this.object ? ['{"a":', "}"] : ["[", "]"];
    return `${open.repeat(this.depth)}1${close.repeat(this.depth)}`;
  }

  [fc.toStringMethod](): string {
    return `Deep(${this.depth}${this.object ? ", objects" : ""})`;
  }
}

export const TAGS = [
  "bigint",
  "kvu64",
  "bytes",
  "arraybuffer",
  "v8",
  "date",
  "map",
  "set",
  "regexp",
  "undefined",
  "number",
  "object",
  "Int8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
  "Uint8Array",
  "DataView",
  "Buffer",
  "Function",
  "__proto__",
  "",
];

/** Contents a tag might carry, valid or not. */
const tagContent: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    "123",
    "-123",
    "18446744073709551616",
    "-1",
    "1".repeat(2000),
    "AQID",
    "AQI",
    "!!!",
    "",
    "2026-01-01T00:00:00.000Z",
    "+275760-09-13T00:00:00.001Z",
    "not a date",
    "NaN",
    "-0",
    "Infinity",
    "1e309",
    "/w8AAAA=",
    "/w9vIgFhSQJ7AQ==",
    "/xBcAQ==",
    "/w8=",
  ),
  fc.base64String({ maxLength: 64 }),
  fc.constantFrom(
    null,
    0,
    true,
    [],
    {},
    [[1, 2]],
    [[1]],
    [["k", { __type: "bigint", value: "x" }]],
    { source: "a+", flags: "g" },
    { source: "(", flags: "" },
    { source: "a", flags: "gg" },
    { source: "a", flags: "z" },
    { __type: "object", value: { __type: "object", value: {} } },
  ),
  edgeString,
);

export const taggedValue: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ __type: fc.constantFrom(...TAGS), value: tagContent }),
  fc.record({ __type: fc.constantFrom(...TAGS) }),
  fc.record({ __type: fc.oneof(edgeString, fc.integer(), fc.constant(null)), value: tagContent }),
);

/** Any JSON-ish value: edge strings and numbers, tags, deep values, huge arrays. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 4, arbitrary: edgeString },
    { weight: 4, arbitrary: edgeNumber },
    { weight: 2, arbitrary: fc.constantFrom(null, true, false) },
    { weight: 3, arbitrary: taggedValue },
    { weight: 2, arbitrary: fc.array(tie("value"), { maxLength: 4 }) },
    {
      weight: 2,
      arbitrary: fc.dictionary(
        fc.oneof(edgeString, fc.constantFrom("__type", "value")),
        tie("value"),
        {
          maxKeys: 4,
        },
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 95, max: 130 }), fc.boolean())
        .map(([d, object]) => new Deep(d, object)),
    },
    { weight: 1, arbitrary: fc.constantFrom(new Deep(20_000), new Deep(20_000, true)) },
    { weight: 1, arbitrary: fc.constantFrom(1001, 10_001).map((n) => new HugeArray(n)) },
  ),
})).value;

/**
 * JSON text for `value`: `RawNumber`s are written as their text, `undefined` fields dropped.
 * Deep values are written without recursion's stack limit.
 */
export function jsonText(value: unknown): string {
  const out: string[] = [];
  const stack: unknown[] = [value];
  const raw = (text: string) => new RawNumber(text); // punctuation, written as is
  while (stack.length > 0) {
    const v = stack.pop();
    if (v instanceof RawNumber || v instanceof Deep || v instanceof HugeArray) out.push(v.text);
    else if (Array.isArray(v)) {
      stack.push(raw("]"));
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push(v[i] === undefined ? null : v[i]);
        if (i > 0) stack.push(raw(","));
      }
      out.push("[");
    } else if (v !== null && typeof v === "object") {
      const entries = Object.entries(v).filter(([, item]) => item !== undefined);
      stack.push(raw("}"));
      for (let i = entries.length - 1; i >= 0; i--) {
        stack.push(entries[i]![1]);
        stack.push(raw(`${JSON.stringify(entries[i]![0])}:`));
        if (i > 0) stack.push(raw(","));
      }
      out.push("{");
    } else out.push(JSON.stringify(v) ?? "null");
  }
  return out.join("");
}

/** The JavaScript value the JSON text of `value` parses to. */
export const asJson = (value: unknown): unknown => JSON.parse(jsonText(value));

type Path = (string | number)[];

/** Stand-ins for text the generators write themselves, not values to walk into. */
const isOpaque = (v: object) =>
  v instanceof RawNumber || v instanceof Deep || v instanceof HugeArray;

/** Every path to a field or element of `value` (not into deep values). */
function pathsOf(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  if (at.length > 6 || value === null || typeof value !== "object" || isOpaque(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    const path = [...at, Array.isArray(value) ? Number(k) : k];
    out.push(path);
    pathsOf(v, path, out);
  }
  return out;
}

function withField(value: unknown, path: Path, replace: (old: unknown) => unknown): unknown {
  if (path.length === 0) return replace(value);
  const [head, ...rest] = path;
  if (Array.isArray(value)) {
    const copy = [...value];
    copy[head as number] = withField(copy[head as number], rest, replace);
    return copy.filter((v) => v !== undefined);
  }
  const copy = { ...(value as Record<string, unknown>) };
  copy[head as string] = withField(copy[head as string], rest, replace);
  return copy;
}

/**
 * `valid` inputs with one change: a field (or element) replaced by a hostile value or removed, or
 * an unknown field added. Paths in `frozen` (top-level names) are left alone.
 */
export function nearValid<T>(
  valid: fc.Arbitrary<T>,
  frozen: readonly string[] = [],
): fc.Arbitrary<unknown> {
  return valid.chain((base) => {
    const paths = pathsOf(base).filter((p) => !frozen.includes(String(p[0])));
    const changes: fc.Arbitrary<unknown>[] = [
      fc.constant(base),
      fc
        .tuple(fc.oneof(edgeString, fc.constant("__type")), hostileValue)
        .map(([name, v]) =>
          base !== null && typeof base === "object" && !Array.isArray(base)
            ? { ...base, [name]: v }
            : v,
        ),
    ];
    if (paths.length > 0) {
      const path = fc.constantFrom(...paths);
      changes.push(
        fc.tuple(path, hostileValue).map(([p, v]) => withField(base, p, () => v)),
        fc.tuple(path, hostileValue).map(([p, v]) => withField(base, p, () => v)),
        path.map((p) => withField(base, p, () => undefined)),
      );
    }
    return fc.oneof(...changes);
  });
}

// ---- valid building blocks ----

export const keyPart: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom("users", "posts", "n", "big", 1, 2, "a"),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.boolean(),
  fc.bigInt().map((n) => ({ __type: "bigint", value: n.toString() })),
  fc.uint8Array({ maxLength: 6 }).map((b) => ({
    __type: "bytes",
    value: Buffer.from(b).toString("base64"),
  })),
);

/** A key as JSON; mostly the fixture's keys, so that near-valid requests reach stored data. */
export const jsonKey: fc.Arbitrary<readonly unknown[]> = fc.oneof(
  fc.constantFrom(["users", 1], ["users"], ["posts", "a"], ["n"], ["big"], ["posts"]),
  fc.array(keyPart, { minLength: 1, maxLength: 4 }),
);

export const where: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    { age: { $gte: 18 } },
    { name: "Ada" },
    { $or: [{ age: { $lt: 10 } }, { "tags[0]": { $in: ["x", "y"] } }] },
    { $not: { title: { $containsi: "HELLO" } } },
    { at: { $lt: { $now: true, offset: -1000 } } },
    { age: { $between: [1, 100] }, name: { $startsWith: "A" } },
    { profile: { verified: true } },
    { tags: { $empty: false } },
  ),
);

export const value: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    { __type: "bigint", value: "12" },
    { __type: "kvu64", value: "5" },
    { __type: "map", value: [["a", 1]] },
    { __type: "date", value: "2026-01-01T00:00:00.000Z" },
    { $now: true, offset: 5 },
    { name: "Ada", age: 36 },
  ),
);

export const duration: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom("500ms", "30s", "5m", "1h", "7d", "1w", "1y", "1.5s", 0, 1000, 60_000),
  fc.nat({ max: 10 ** 9 }),
);
