import { beforeEach, expect, it } from "vitest";
import { KvU64, type KvWhere } from "../../src/index.js";
import { collect, conformance } from "../targets.js";

/** The Buntime seed's where-filter fixture (reference/seed-systems.md §1.6). */
const users = [
  {
    id: 1,
    name: "Alice",
    email: "alice@example.com",
    age: 30,
    status: "active",
    tags: ["admin", "user"],
  },
  { id: 2, name: "Bob", email: "bob@test.com", age: 25, status: "inactive", tags: ["user"] },
  { id: 3, name: "Charlie", email: "charlie@example.com", age: 35, status: "active", tags: [] },
  {
    id: 4,
    name: "Diana",
    email: "diana@test.com",
    age: 28,
    status: "pending",
    tags: ["moderator"],
  },
  { id: 5, name: "Eve", email: null, age: 40, status: "active", tags: ["admin"] },
];

/** Filter → the names it selects, in key order. */
const table: [string, KvWhere, string[]][] = [
  ["$eq string", { status: { $eq: "active" } }, ["Alice", "Charlie", "Eve"]],
  ["$eq number", { age: { $eq: 30 } }, ["Alice"]],
  ["shorthand", { status: "active" }, ["Alice", "Charlie", "Eve"]],
  ["$ne string", { status: { $ne: "active" } }, ["Bob", "Diana"]],
  ["$ne number", { age: { $ne: 30 } }, ["Bob", "Charlie", "Diana", "Eve"]],
  ["$gt number", { age: { $gt: 30 } }, ["Charlie", "Eve"]],
  ["$gt string", { name: { $gt: "Charlie" } }, ["Diana", "Eve"]],
  ["$gte", { age: { $gte: 30 } }, ["Alice", "Charlie", "Eve"]],
  ["$lt", { age: { $lt: 30 } }, ["Bob", "Diana"]],
  ["$lte", { age: { $lte: 30 } }, ["Alice", "Bob", "Diana"]],
  ["$between", { age: { $between: [25, 35] } }, ["Alice", "Bob", "Charlie", "Diana"]],
  ["$in", { status: { $in: ["active", "pending"] } }, ["Alice", "Charlie", "Diana", "Eve"]],
  ["$in numbers", { age: { $in: [25, 30, 40] } }, ["Alice", "Bob", "Eve"]],
  ["$in empty", { age: { $in: [] } }, []],
  ["$nin", { status: { $nin: ["active", "pending"] } }, ["Bob"]],
  ["$nin empty", { age: { $nin: [] } }, ["Alice", "Bob", "Charlie", "Diana", "Eve"]],
  ["$contains", { email: { $contains: "@example" } }, ["Alice", "Charlie"]],
  ["$contains is case-sensitive", { name: { $contains: "alice" } }, []],
  ["$contains an array element", { tags: { $contains: "admin" } }, ["Alice", "Eve"]],
  // A missing or null field does not contain anything, so its complement matches it (Eve).
  ["$notContains", { email: { $notContains: "@test" } }, ["Alice", "Charlie", "Eve"]],
  ["$startsWith", { name: { $startsWith: "A" } }, ["Alice"]],
  ["$endsWith", { email: { $endsWith: ".com" } }, ["Alice", "Bob", "Charlie", "Diana"]],
  ["$containsi", { name: { $containsi: "alice" } }, ["Alice"]],
  ["$containsi upper", { name: { $containsi: "CHARLIE" } }, ["Charlie"]],
  ["$containsi array", { tags: { $containsi: "ADMIN" } }, ["Alice", "Eve"]],
  ["$notContainsi", { name: { $notContainsi: "a" } }, ["Bob", "Eve"]],
  ["$startsWithi", { name: { $startsWithi: "a" } }, ["Alice"]],
  ["$endsWithi", { name: { $endsWithi: "E" } }, ["Alice", "Charlie", "Eve"]],
  ["$null true", { email: { $null: true } }, ["Eve"]],
  ["$null false", { email: { $null: false } }, ["Alice", "Bob", "Charlie", "Diana"]],
  ["$null on a missing field", { nickname: { $null: true } }, users.map((u) => u.name)],
  ["$eq null is $null", { email: null }, ["Eve"]],
  ["$ne null", { email: { $ne: null } }, ["Alice", "Bob", "Charlie", "Diana"]],
  ["$empty true", { tags: { $empty: true } }, ["Charlie"]],
  ["$empty false", { tags: { $empty: false } }, ["Alice", "Bob", "Diana", "Eve"]],
  ["$notEmpty", { tags: { $notEmpty: true } }, ["Alice", "Bob", "Diana", "Eve"]],
  ["$empty on null", { email: { $empty: true } }, ["Eve"]],
  ["$and", { $and: [{ status: { $eq: "active" } }, { age: { $gte: 35 } }] }, ["Charlie", "Eve"]],
  [
    "$and nested",
    { $and: [{ status: "active" }, { email: { $contains: "@example" } }] },
    ["Alice", "Charlie"],
  ],
  ["$or", { $or: [{ status: { $eq: "inactive" } }, { age: { $gte: 40 } }] }, ["Bob", "Eve"]],
  ["$not", { $not: { status: { $eq: "active" } } }, ["Bob", "Diana"]],
  ["several fields", { status: "active", age: { $gte: 30 } }, ["Alice", "Charlie", "Eve"]],
  [
    "$and with $or",
    { $and: [{ status: "active" }, { $or: [{ age: { $lt: 32 } }, { age: { $gte: 40 } }] }] },
    ["Alice", "Eve"],
  ],
  ["several operators", { age: { $gte: 25, $lte: 35 } }, ["Alice", "Bob", "Charlie", "Diana"]],
  ["empty filter", {}, ["Alice", "Bob", "Charlie", "Diana", "Eve"]],
  ["$and empty", { $and: [] }, ["Alice", "Bob", "Charlie", "Diana", "Eve"]],
  ["$or empty", { $or: [] }, []],
  ["no match", { age: { $gt: 100 } }, []],
  ["array index", { "tags[0]": "admin" }, ["Alice", "Eve"]],
  ["array index past the end", { "tags[1]": { $null: true } }, ["Bob", "Charlie", "Diana", "Eve"]],
  // Types never mix: a string operand never orders against numbers, 1 is not true.
  ["type mismatch", { age: { $gt: "18" } }, []],
  ["type mismatch $ne", { age: { $ne: "30" } }, users.map((u) => u.name)],
];

conformance("where filters", (kv) => {
  beforeEach(async () => {
    const op = kv().atomic();
    for (const user of users) op.set(["users", user.id], user);
    await op.commit();
  });

  const names = async (where: KvWhere, options = {}) =>
    (await collect(kv().list<{ name: string }>(["users"], { where, ...options }))).map(
      (e) => e.value.name,
    );

  it("evaluates every operator as the semantics table says", async () => {
    const results = [];
    for (const [name, where] of table) results.push([name, await names(where)]);
    expect(results).toEqual(table.map(([name, , expected]) => [name, expected]));
  });

  it("filters nested paths, array indexes and nested objects", async () => {
    const op = kv().atomic();
    op.set(["products", 1], {
      name: "Laptop",
      details: { price: 1000, stock: 5 },
      items: [{ price: 50 }],
    });
    op.set(["products", 2], {
      name: "Phone",
      details: { price: 500, stock: 10 },
      items: [{ price: 150 }],
    });
    op.set(["products", 3], { name: "Tablet", details: { price: 750, stock: 0 }, items: [] });
    op.set(["products", 4], { name: "Odd", "with space": { "and-dash": true } });
    await op.commit();
    const products = async (where: KvWhere) =>
      (await collect(kv().list<{ name: string }>(["products"], { where }))).map(
        (e) => e.value.name,
      );
    expect(await products({ "details.price": { $gte: 600 } })).toEqual(["Laptop", "Tablet"]);
    expect(await products({ details: { price: { $gte: 600 }, stock: 0 } })).toEqual(["Tablet"]);
    expect(await products({ "items[0].price": { $gt: 100 } })).toEqual(["Phone"]);
    expect(await products({ "with space.and-dash": true })).toEqual(["Odd"]);
    expect(await products({ "details.price": { $null: true } })).toEqual(["Odd"]);
  });

  it("keeps booleans, numbers and strings apart", async () => {
    const op = kv().atomic();
    op.set(["t", 1], { v: true });
    op.set(["t", 2], { v: 1 });
    op.set(["t", 3], { v: "1" });
    op.set(["t", 4], { v: false });
    op.set(["t", 5], { v: 0 });
    op.set(["t", 6], { v: 1.5 });
    await op.commit();
    const ids = async (where: KvWhere) =>
      (await collect(kv().list(["t"], { where }))).map((e) => e.key[1]);
    expect(await ids({ v: true })).toEqual([1]);
    expect(await ids({ v: 1 })).toEqual([2]);
    expect(await ids({ v: "1" })).toEqual([3]);
    expect(await ids({ v: false })).toEqual([4]);
    expect(await ids({ v: { $gt: 0 } })).toEqual([2, 6]);
    expect(await ids({ v: { $in: [true, 0, "1"] } })).toEqual([1, 3, 5]);
    expect(await ids({ v: { $ne: true } })).toEqual([2, 3, 4, 5, 6]);
  });

  it("matches text with LIKE and GLOB wildcards and quotes literally", async () => {
    const op = kv().atomic();
    op.set(["s", 1], { text: "Hello % World" });
    op.set(["s", 2], { text: "Hello _ World" });
    op.set(["s", 7], { text: "glob * ? [a-z] ]" });
    op.set(["s", 8], { text: "glob x y a ]" });
    op.set(["s", 3], { text: "Hello \\ World" });
    op.set(["s", 4], { text: 'it\'s "quoted"' });
    op.set(["s", 5], { text: "Ünïcödé" });
    op.set(["s", 6], { text: "line\nbreak 😀" });
    await op.commit();
    const ids = async (where: KvWhere) =>
      (await collect(kv().list(["s"], { where }))).map((e) => e.key[1]);
    expect(await ids({ text: { $contains: "%" } })).toEqual([1]);
    expect(await ids({ text: { $contains: "_" } })).toEqual([2]);
    expect(await ids({ text: { $containsi: "\\" } })).toEqual([3]);
    expect(await ids({ text: { $contains: "'s \"q" } })).toEqual([4]);
    expect(await ids({ text: { $startsWith: "Ün" } })).toEqual([5]);
    expect(await ids({ text: { $endsWith: "dé" } })).toEqual([5]);
    expect(await ids({ text: { $endsWithi: "WORLD" } })).toEqual([1, 2, 3]);
    expect(await ids({ text: { $startsWith: "" } })).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await ids({ text: "line\nbreak 😀" })).toEqual([6]);
    expect(await ids({ text: { $endsWith: "😀" } })).toEqual([6]);
    expect(await ids({ text: { $contains: "\nb" } })).toEqual([6]);
    expect(await ids({ text: "glob * ? [a-z] ]" })).toEqual([7]);
    expect(await ids({ text: { $contains: "* ?" } })).toEqual([7]);
    expect(await ids({ text: { $contains: "[a-z]" } })).toEqual([7]);
    expect(await ids({ text: { $startsWith: "glob *" } })).toEqual([7]);
    expect(await ids({ text: { $endsWith: "? [a-z] ]" } })).toEqual([7]);
    expect(await ids({ text: { $contains: "[" } })).toEqual([7]);
  });

  it("never matches values that are not stored as JSON, negated or not", async () => {
    const op = kv().atomic();
    op.set(["users", 10], { name: "Big", age: 50n }); // a bigint: stored in V8 format
    op.set(["users", 11], new Uint8Array([1, 2, 3]));
    op.set(["users", 12], new KvU64(5n));
    op.set(["users", 13], "just a string");
    await op.commit();
    expect(await names({ name: "Big" })).toEqual([]);
    // A top-level string is JSON: it has no field `name`, so the complement matches it.
    const negated = await collect(kv().list(["users"], { where: { $not: { name: "Nobody" } } }));
    expect(negated.map((e) => e.key[1])).toEqual([1, 2, 3, 4, 5, 13]);
    expect(await collect(kv().list(["users"], { where: {} }))).toHaveLength(9);
  });

  it("combines filters with ranges, reverse, limit and batches", async () => {
    const active = { status: "active" };
    expect(await names(active, { reverse: true })).toEqual(["Eve", "Charlie", "Alice"]);
    expect(await names(active, { limit: 2 })).toEqual(["Alice", "Charlie"]);
    expect(await names(active, { batchSize: 1 })).toEqual(["Alice", "Charlie", "Eve"]);
    expect(await names(active, { start: ["users", 2], end: ["users", 5] })).toEqual(["Charlie"]);
    const selector = await collect(kv().list({ prefix: ["users"] }, { where: active, limit: 1 }));
    expect(selector.map((e) => e.key)).toEqual([["users", 1]]);
  });

  it("resumes a filtered listing from its cursor", async () => {
    const first = kv().list(["users"], { where: { status: "active" }, limit: 2 });
    expect((await collect(first)).map((e) => e.key)).toEqual([
      ["users", 1],
      ["users", 3],
    ]);
    const rest = await collect(
      kv().list(["users"], { where: { status: "active" }, cursor: first.cursor }),
    );
    expect(rest.map((e) => e.key)).toEqual([["users", 5]]);
  });

  it("handles long $or and $in lists", async () => {
    const many = Array.from({ length: 400 }, (_, i) => ({ age: i }));
    expect(await names({ $or: many })).toEqual(["Alice", "Bob", "Charlie", "Diana", "Eve"]);
    expect(await names({ age: { $in: Array.from({ length: 900 }, (_, i) => i + 26) } })).toEqual([
      "Alice",
      "Charlie",
      "Diana",
      "Eve",
    ]);
  });
});

const badFilters: [string, unknown, string][] = [
  ["unknown operator", { age: { $gtx: 1 } }, 'unknown operator "$gtx"'],
  ["unknown top-level operator", { $where: "1=1" }, 'unknown operator "$where"'],
  ["raw JSON path", { "$.age') OR 1=1 --": 1 }, "unknown operator"],
  ["injection in a field name", { "age') OR 1=1 --": 1 }, "malformed field path"],
  ["quote in a field name", { 'a"b': 1 }, "malformed field path"],
  ["semicolon in a field name", { "a; DROP TABLE kv": 1 }, "malformed field path"],
  ["empty path part", { "a..b": 1 }, "malformed field path"],
  ["trailing dot", { "a.": 1 }, "malformed field path"],
  ["bad index", { "items[x]": 1 }, "malformed field path"],
  ["negative index", { "items[-1]": 1 }, "malformed field path"],
  ["empty path", { "": 1 }, "a field path cannot be empty"],
  ["operand object", { age: { $eq: { a: 1 } } }, "an operand must be"],
  ["array shorthand", { tags: ["a"] }, "use { $in: [...] }"],
  ["NaN", { age: { $gt: Number.NaN } }, "must be finite"],
  ["bigint", { age: { $gt: 1n } }, "bigint operands are not supported"],
  ["Date", { at: { $lt: new Date() } }, "Date operands are not supported"],
  ["boolean order", { age: { $gt: true } }, "compares numbers, strings or kv.now()"],
  ["$between shape", { age: { $between: [1] } }, "$between takes [low, high]"],
  ["$between types", { age: { $between: [1, "z"] } }, "must both be numbers"],
  ["$in not array", { age: { $in: 5 } }, "$in takes an array"],
  ["$contains number", { name: { $contains: 5 } }, "$contains takes a string"],
  ["$null string", { name: { $null: "yes" } }, "$null takes true or false"],
  ["$and not array", { $and: { a: 1 } }, "$and takes an array"],
  ["$or of strings", { $or: ["a"] }, "a filter must be an object"],
  ["mixed keys", { age: { $gt: 1, b: 2 } }, "mixes operators with field names"],
  ["not an object", "status = 'active'", "a filter must be an object"],
  ["undefined operand", { age: undefined }, "an operand must be"],
  ["bad server time", { at: { $now: true, offset: "1h" } }, "a finite number of milliseconds"],
  ["too deep", JSON.parse(`${'{"$not":'.repeat(30)}{}${"}".repeat(30)}`), "nest at most"],
  [
    "too many terms",
    { age: { $in: Array.from({ length: 1001 }, (_, i) => i) } },
    "at most 1000 conditions",
  ],
];

conformance("where filters: bad input", (kv) => {
  it("rejects every malformed filter with INVALID_FILTER naming the problem, changing nothing", async () => {
    await kv().set(["users", 1], { name: "Alice", age: 30 });
    const outcomes = [];
    for (const [name, where, message] of badFilters) {
      const attempts = [
        () => collect(kv().list(["users"], { where: where as KvWhere })),
        () => kv().count(["users"], { where: where as KvWhere }),
        () => kv().paginate(["users"], { where: where as KvWhere }),
        () => kv().delete(["users"], { where: where as KvWhere }),
        () => kv().delete([["users", 1]], { exact: true, where: where as KvWhere }),
      ];
      for (const attempt of attempts) {
        const error = await (async () => {
          try {
            await attempt();
          } catch (e) {
            return e as { code: string; message: string };
          }
        })();
        outcomes.push({
          name,
          code: error?.code,
          names: error?.message.includes(message) ?? false,
        });
      }
    }
    expect(outcomes).toEqual(
      badFilters.flatMap(([name]) => Array(5).fill({ name, code: "INVALID_FILTER", names: true })),
    );
    expect((await kv().get(["users", 1])).value).toEqual({ name: "Alice", age: 30 });
  });

  it("names where in the filter the problem is", () => {
    expect(() => kv().list(["users"], { where: { $or: [{ a: 1 }, { b: { $nope: 1 } }] } })).toThrow(
      'Invalid where filter at where.$or[1].b.$nope: unknown operator "$nope"',
    );
  });
});

conformance("filtered delete", (kv) => {
  beforeEach(async () => {
    const op = kv().atomic();
    for (const user of users) op.set(["users", user.id], user);
    op.set(["users", 2, "child"], { status: "inactive" });
    op.set(["users"], { status: "inactive" });
    await op.commit();
  });

  const remaining = async () => (await collect(kv().list({ prefix: [] }))).map((e) => e.key);

  it("deletes only matching keys under a prefix, the prefix key included", async () => {
    expect(await kv().delete(["users"], { where: { status: "inactive" } })).toEqual({
      success: true,
      deletedCount: 3,
    });
    expect(await remaining()).toEqual([
      ["users", 1],
      ["users", 3],
      ["users", 4],
      ["users", 5],
    ]);
  });

  it("deletes an exact key only when it matches", async () => {
    expect(await kv().delete(["users", 1], { exact: true, where: { age: { $gt: 30 } } })).toEqual({
      success: true,
      deletedCount: 0,
    });
    expect(await kv().delete(["users", 1], { exact: true, where: { age: 30 } })).toEqual({
      success: true,
      deletedCount: 1,
    });
    expect(await kv().count(["users"])).toBe(5);
  });

  it("deletes a batch of keys with a filter in one commit", async () => {
    const result = await kv().delete(
      [
        ["users", 1],
        ["users", 2],
        ["users", 5],
      ],
      { where: { $or: [{ age: { $lt: 26 } }, { email: null }] } },
    );
    expect(result.deletedCount).toBe(3); // Bob, his child, Eve
    expect(await kv().count(["users"])).toBe(3);
  });

  it("deletes a batch of 1000 keys with one large filter", async () => {
    const op = kv().atomic();
    for (let i = 0; i < 1000; i++) op.set(["many", i], { tag: `tag-${i % 3}-${"x".repeat(24)}` });
    await op.commit();
    const tags = Array.from({ length: 999 }, (_, i) => `tag-${i}-${"x".repeat(24)}`);
    const keys = Array.from({ length: 1000 }, (_, i) => ["many", i]);
    const result = await kv().delete(keys, { exact: true, where: { tag: { $in: tags.slice(1) } } });
    expect(result.deletedCount).toBe(666);
    expect(await kv().count(["many"])).toBe(334);
  });

  it("never deletes or counts expired entries", async () => {
    await kv().set(["users", 9], { status: "inactive" }, { expireIn: 1 });
    await kv().set(["users", 10], { status: "inactive" }, { expireIn: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await kv().count(["users"], { where: { status: "inactive" } })).toBe(3);
    // Bob, his child, the prefix key and the live one.
    expect((await kv().delete(["users"], { where: { status: "inactive" } })).deletedCount).toBe(4);
  });
});
