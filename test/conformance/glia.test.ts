/**
 * The Glia Functions KV Store facade (`gliaKvStoreFactory(kv)`, seed 003) on every target: the
 * seed's "Common Use Cases" as written, then each method's contract (reference/seed-systems.md §3).
 */
import { expect, it } from "vitest";
import {
  type GliaItem,
  type GliaKvStore,
  gliaKvStoreFactory,
  type Kv,
  KvError,
} from "../../src/index.js";
import { collect, conformance, errorOf, until } from "../targets.js";

async function expectCode(call: () => unknown, code: string): Promise<void> {
  const error = await errorOf(call);
  expect(error).toBeInstanceOf(KvError);
  expect(error).toMatchObject({ code });
}

/** The keys an iteration yields. */
async function keysOf(iterable: AsyncIterable<{ key: string }>): Promise<string[]> {
  return (await collect(iterable)).map((item) => item.key);
}

/** Asserts `expires` is `ms` after a moment between `before` and `after` (epoch ms). */
function expectExpiresIn(expires: unknown, ms: number, before: number, after: number): void {
  expect(expires).toBeTypeOf("number");
  expect(expires as number).toBeGreaterThanOrEqual(before + ms);
  expect(expires as number).toBeLessThanOrEqual(after + ms);
}

conformance("glia: the seed's common use cases", (kv) => {
  it("Session Storage: the session reads back with its value and expires an hour from now", async () => {
    const kvStore = gliaKvStoreFactory(kv()).initializeKvStore("app");
    const sessionId = "3f9c2a";
    const before = Date.now();

    // Store session data
    await kvStore.set({
      key: `session_${sessionId}`,
      value: { userId: 123, lastAccess: Date.now() },
      expirationTtl: 3600, // 1 hour TTL
    });

    // Retrieve session data
    const session = await kvStore.get(`session_${sessionId}`);

    const after = Date.now();
    expect(session).toEqual({
      key: "session_3f9c2a",
      value: { userId: 123, lastAccess: expect.any(Number) },
      expires: expect.any(Number),
    });
    const { lastAccess } = session!.value as { lastAccess: number };
    expect(lastAccess).toBeGreaterThanOrEqual(before);
    expect(lastAccess).toBeLessThanOrEqual(after);
    expectExpiresIn(session!.expires, 3_600_000, before, after);
  });

  it("Caching: a miss computes and stores the value, a hit returns it without computing again", async () => {
    const kvStore = gliaKvStoreFactory(kv()).initializeKvStore("app");
    let computations = 0;
    const expensiveOperation = async () => {
      computations++;
      return { report: "quarterly", total: 1234.5, run: computations };
    };

    async function cached(key: string) {
      // Try to get cached value
      const cachedData = await kvStore.get(`cache_${key}`);
      // biome-ignore lint/complexity/useOptionalChain: the seed's code, as written
      if (cachedData && cachedData.value) {
        return cachedData.value;
      }

      // If not found, compute the value
      const computedValue = await expensiveOperation();

      // Store in cache with TTL
      await kvStore.set({
        key: `cache_${key}`,
        value: computedValue,
        expirationTtl: 300, // 5 minutes
      });

      return computedValue;
    }

    const before = Date.now();
    const first = await cached("report-q3");
    const after = Date.now();
    expect(first).toEqual({ report: "quarterly", total: 1234.5, run: 1 });
    expect(computations).toBe(1);
    const stored = await kvStore.get("cache_report-q3");
    expect(stored).toMatchObject({ key: "cache_report-q3", value: first });
    expectExpiresIn(stored!.expires, 300_000, before, after);

    expect(await cached("report-q3")).toEqual({ report: "quarterly", total: 1234.5, run: 1 });
    expect(computations).toBe(1);
    // Another key is a miss of its own.
    expect(await cached("report-q4")).toEqual({ report: "quarterly", total: 1234.5, run: 2 });
    expect(computations).toBe(2);
  });

  it("Rate Limiting: counts each request and throws 'Rate limit exceeded' at the limit, per user", async () => {
    const kvStore = gliaKvStoreFactory(kv()).initializeKvStore("app");
    const MAX_REQUESTS_PER_MINUTE = 3;

    // The seed is JavaScript: only `get`'s type argument is added, for TypeScript to read `.count`.
    async function request(userId: string) {
      // Get current rate limit counter
      const rateLimit = await kvStore.get<{ count: number }>(`ratelimit_${userId}`);
      const currentCount = rateLimit?.value?.count || 0;

      if (currentCount >= MAX_REQUESTS_PER_MINUTE) {
        throw new Error("Rate limit exceeded");
      }

      // Increment counter
      await kvStore.set({
        key: `ratelimit_${userId}`,
        value: { count: currentCount + 1 },
        expirationTtl: 60, // Reset after 1 minute
      });
    }

    const before = Date.now();
    for (let n = 1; n <= 3; n++) {
      await request("u1");
      expect((await kvStore.get("ratelimit_u1"))?.value).toEqual({ count: n });
    }
    const after = Date.now();
    await expect(request("u1")).rejects.toThrow(new Error("Rate limit exceeded"));
    await expect(request("u1")).rejects.toThrow("Rate limit exceeded");
    const counter = await kvStore.get("ratelimit_u1");
    expect(counter?.value).toEqual({ count: 3 });
    expectExpiresIn(counter!.expires, 60_000, before, after);
    // Another user has a counter of their own.
    await request("u2");
    expect((await kvStore.get("ratelimit_u2"))?.value).toEqual({ count: 1 });
  });
});

conformance("glia: get, set, delete", (kv) => {
  const store = (namespace = "app") => gliaKvStoreFactory(kv()).initializeKvStore(namespace);

  it("get answers the item, or null for a key never set", async () => {
    const kvStore = store();
    expect(await kvStore.get("missing")).toBeNull();
    await kvStore.set({ key: "greeting", value: "hello" });
    expect(await kvStore.get("greeting")).toEqual({
      key: "greeting",
      value: "hello",
      expires: null,
    });
  });

  it("set stores and answers a value of every JSON shape, with expires null without a TTL", async () => {
    const kvStore = store();
    const values: [string, unknown][] = [
      ["object", { name: "Ada", tags: ["x", "y"], nested: { ok: true, n: null, z: -0.5 } }],
      ["empty-object", {}],
      ["array", [1, "two", { three: 3 }, [4], null, false]],
      ["empty-array", []],
      ["integer", 42],
      ["zero", 0],
      ["negative", -17],
      ["float", 1234.5678],
      ["large", 1e300],
      ["true", true],
      ["false", false],
      ["string", "plain text"],
      ["empty-string", ""],
      ["unicode", "żółw 🐢 ключ"],
    ];
    for (const [key, value] of values) {
      expect(await kvStore.set({ key, value })).toEqual({ key, value, expires: null });
    }
    for (const [key, value] of values) {
      expect(await kvStore.get(key)).toEqual({ key, value, expires: null });
    }
  });

  it("set overwrites a value, and a set without a TTL clears the previous one", async () => {
    const kvStore = store();
    await kvStore.set({ key: "k", value: 1, expirationTtl: 3600 });
    expect((await kvStore.get("k"))?.expires).toBeTypeOf("number");
    expect(await kvStore.set({ key: "k", value: [2] })).toEqual({
      key: "k",
      value: [2],
      expires: null,
    });
    expect(await kvStore.get("k")).toEqual({ key: "k", value: [2], expires: null });
  });

  it("set with value null deletes the key and answers { key, value: null }", async () => {
    const kvStore = store();
    await kvStore.set({ key: "doomed", value: { a: 1 } });
    expect(await kvStore.set({ key: "doomed", value: null })).toEqual({
      key: "doomed",
      value: null,
    });
    expect(await kvStore.get("doomed")).toBeNull();
    expect(await kv().get(["glia", "app", "doomed"])).toMatchObject({ versionstamp: null });
    // Of a key that is absent too.
    expect(await kvStore.set({ key: "never", value: null })).toEqual({
      key: "never",
      value: null,
    });
    expect(await kvStore.get("never")).toBeNull();
  });

  it("set with value undefined rejects with INVALID_ARGUMENT and leaves the key as it was", async () => {
    const kvStore = store();
    await kvStore.set({ key: "kept", value: "original" });
    await expectCode(() => kvStore.set({ key: "kept", value: undefined }), "INVALID_ARGUMENT");
    await expectCode(() => kvStore.set({ key: "fresh" } as never), "INVALID_ARGUMENT");
    expect(await kvStore.get("kept")).toEqual({ key: "kept", value: "original", expires: null });
    expect(await kvStore.get("fresh")).toBeNull();
  });

  it("rejects an empty, non-string or over-512-byte key with INVALID_ARGUMENT", async () => {
    const kvStore = store();
    const longest = "é".repeat(256); // 512 UTF-8 bytes
    expect(await kvStore.set({ key: longest, value: 1 })).toEqual({
      key: longest,
      value: 1,
      expires: null,
    });
    expect((await kvStore.get(longest))?.value).toBe(1);
    for (const key of ["", `${longest}x`, 7, null, undefined]) {
      await expectCode(() => kvStore.get(key as never), "INVALID_ARGUMENT");
      await expectCode(() => kvStore.set({ key: key as never, value: 1 }), "INVALID_ARGUMENT");
      await expectCode(() => kvStore.delete(key as never), "INVALID_ARGUMENT");
    }
    expect(await keysOf(kvStore.itemsAsyncIterator())).toEqual([longest]);
  });

  it("delete removes the key and answers { key, deleted: true }, for an absent key too", async () => {
    const kvStore = store();
    await kvStore.set({ key: "a", value: "x" });
    await kvStore.set({ key: "b", value: "y" });
    expect(await kvStore.delete("a")).toEqual({ key: "a", deleted: true });
    expect(await kvStore.get("a")).toBeNull();
    expect(await kvStore.get("b")).toEqual({ key: "b", value: "y", expires: null });
    expect(await kvStore.delete("never-set")).toEqual({ key: "never-set", deleted: true });
  });
});

conformance("glia: testAndSet", (kv) => {
  const store = () => gliaKvStoreFactory(kv()).initializeKvStore("app");
  const notMet = (key: string) => ({ key, value: null, expires: null, conditionMet: false });

  it("writes when the value deep-equals oldValue, with the object keys in another order", async () => {
    const kvStore = store();
    await kvStore.set({ key: "doc", value: { a: 1, b: { c: [1, 2], d: "x" } } });
    const result = await kvStore.testAndSet({
      key: "doc",
      oldValue: { b: { d: "x", c: [1, 2] }, a: 1 },
      newValue: { a: 2 },
    });
    expect(result).toEqual({ key: "doc", value: { a: 2 }, expires: null, conditionMet: true });
    expect(await kvStore.get("doc")).toEqual({ key: "doc", value: { a: 2 }, expires: null });
  });

  it("writes over a string, a number, a boolean and an array equal to oldValue", async () => {
    const kvStore = store();
    for (const [key, value] of [
      ["s", "old"],
      ["n", 5],
      ["b", false],
      ["arr", [1, { x: 2 }]],
    ] as const) {
      await kvStore.set({ key, value });
      expect(
        await kvStore.testAndSet({ key, oldValue: structuredClone(value), newValue: "new" }),
      ).toEqual({ key, value: "new", expires: null, conditionMet: true });
      expect((await kvStore.get(key))?.value).toBe("new");
    }
  });

  it("with oldValue null creates an absent key, and fails on a present one", async () => {
    const kvStore = store();
    expect(await kvStore.testAndSet({ key: "lock", oldValue: null, newValue: "me" })).toEqual({
      key: "lock",
      value: "me",
      expires: null,
      conditionMet: true,
    });
    expect(await kvStore.get("lock")).toEqual({ key: "lock", value: "me", expires: null });
    expect(await kvStore.testAndSet({ key: "lock", oldValue: null, newValue: "you" })).toEqual(
      notMet("lock"),
    );
    expect(await kvStore.get("lock")).toEqual({ key: "lock", value: "me", expires: null });
  });

  it("with newValue null deletes the key when the condition holds", async () => {
    const kvStore = store();
    await kvStore.set({ key: "lock", value: { owner: "me" } });
    expect(
      await kvStore.testAndSet({ key: "lock", oldValue: { owner: "me" }, newValue: null }),
    ).toEqual({ key: "lock", value: null, expires: null, conditionMet: true });
    expect(await kvStore.get("lock")).toBeNull();
    expect(await kv().get(["glia", "app", "lock"])).toMatchObject({ versionstamp: null });
  });

  it("when the condition fails answers conditionMet false and changes nothing", async () => {
    const kvStore = store();
    await kvStore.set({ key: "k", value: { n: 1, list: [1, 2] }, expirationTtl: 3600 });
    const before = await kvStore.get("k");
    const raw = await kv().get(["glia", "app", "k"]);
    for (const oldValue of [
      { n: 2, list: [1, 2] },
      { n: 1, list: [2, 1] },
      { n: "1", list: [1, 2] },
      { n: 1 },
      { n: 1, list: [1, 2], extra: true },
      "k",
    ]) {
      expect(await kvStore.testAndSet({ key: "k", oldValue, newValue: "changed" })).toEqual(
        notMet("k"),
      );
      expect(await kvStore.testAndSet({ key: "k", oldValue, newValue: null })).toEqual(notMet("k"));
    }
    expect(await kvStore.get("k")).toEqual(before);
    expect((await kv().get(["glia", "app", "k"])).versionstamp).toBe(raw.versionstamp);
    // An absent key never equals a non-null oldValue, and stays absent.
    expect(await kvStore.testAndSet({ key: "absent", oldValue: "x", newValue: "y" })).toEqual(
      notMet("absent"),
    );
    expect(await kvStore.get("absent")).toBeNull();
  });

  it("sets the TTL it is given in seconds", async () => {
    const kvStore = store();
    const before = Date.now();
    const result = await kvStore.testAndSet({
      key: "t",
      oldValue: null,
      newValue: 1,
      expirationTtl: 120,
    });
    const after = Date.now();
    expect(result).toMatchObject({ key: "t", value: 1, conditionMet: true });
    expectExpiresIn(result.expires, 120_000, before, after);
    expect((await kvStore.get("t"))?.expires).toBe(result.expires);
  });

  it("rejects an undefined oldValue or newValue with INVALID_ARGUMENT and writes nothing", async () => {
    const kvStore = store();
    await kvStore.set({ key: "k", value: 1 });
    await expectCode(
      () => kvStore.testAndSet({ key: "k", oldValue: undefined, newValue: 2 }),
      "INVALID_ARGUMENT",
    );
    await expectCode(
      () => kvStore.testAndSet({ key: "k", oldValue: 1, newValue: undefined }),
      "INVALID_ARGUMENT",
    );
    await expectCode(
      () => kvStore.testAndSet({ key: "", oldValue: null, newValue: 2 }),
      "INVALID_ARGUMENT",
    );
    expect(await kvStore.get("k")).toEqual({ key: "k", value: 1, expires: null });
  });

  it("of 10 concurrent calls expecting the same value exactly one wins, and its value is stored", async () => {
    const kvStore = store();
    await kvStore.set({ key: "counter", value: { v: 0 } });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        kvStore.testAndSet({ key: "counter", oldValue: { v: 0 }, newValue: { v: i + 1 } }),
      ),
    );
    const winners = results.filter((r) => r.conditionMet);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    expect(winner).toEqual({
      key: "counter",
      value: expect.objectContaining({ v: expect.any(Number) }),
      expires: null,
      conditionMet: true,
    });
    for (const loser of results.filter((r) => !r.conditionMet)) {
      expect(loser).toEqual(notMet("counter"));
    }
    expect(await kvStore.get("counter")).toEqual({
      key: "counter",
      value: winner.value,
      expires: null,
    });
  });
});

conformance("glia: processBatchOperations", (kv) => {
  const store = () => gliaKvStoreFactory(kv()).initializeKvStore("app");

  it("runs every operation in order and answers each result in order", async () => {
    const kvStore = store();
    await kvStore.set({ key: "k2", value: "two" });
    await kvStore.set({ key: "k3", value: "old" });
    await kvStore.set({ key: "k4", value: "four" });
    await kvStore.set({ key: "k5", value: { n: 5 } });
    const results = await kvStore.processBatchOperations([
      { op: "set", key: "k1", value: "value1" },
      { op: "get", key: "k2" },
      { op: "test-and-set", key: "k3", oldValue: "old", newValue: "new" },
      { op: "delete", key: "k4" },
      { op: "get", key: "missing" },
      { op: "SET", key: "k6", value: [6], expirationTtl: 0 },
      { op: "Get", key: "k1" },
      { op: "testAndSet", key: "k5", oldValue: { n: 5 }, newValue: null },
      { op: "TESTANDSET", key: "k2", oldValue: "wrong", newValue: "x" },
      { op: "Test-And-Set", key: "k7", oldValue: null, newValue: true },
      { op: "DELETE", key: "k1" },
      { op: "set", key: "k2", value: null },
    ]);
    expect(results).toEqual([
      { key: "k1", value: "value1", expires: null },
      { key: "k2", value: "two", expires: null },
      { key: "k3", value: "new", expires: null, conditionMet: true },
      { key: "k4", deleted: true },
      null,
      { key: "k6", value: [6], expires: null },
      { key: "k1", value: "value1", expires: null },
      { key: "k5", value: null, expires: null, conditionMet: true },
      { key: "k2", value: null, expires: null, conditionMet: false },
      { key: "k7", value: true, expires: null, conditionMet: true },
      { key: "k1", deleted: true },
      { key: "k2", value: null },
    ]);
    expect(await collect(kvStore.itemsAsyncIterator())).toEqual([
      { key: "k3", value: "new", expires: null },
      { key: "k6", value: [6], expires: null },
      { key: "k7", value: true, expires: null },
    ]);
  });

  it("an op named like an Object.prototype property (constructor, __proto__) is an invalid operation", async () => {
    const kvStore = store();
    for (const op of ["constructor", "__proto__", "Constructor", "toString", "hasOwnProperty"]) {
      await expectCode(
        () =>
          kvStore.processBatchOperations([
            { op: "set", key: "a", value: 1 },
            { op, key: "x" },
          ]),
        "INVALID_ARGUMENT",
      );
    }
    expect(await kvStore.get("a")).toBeNull();
  });

  it("an empty batch answers no results", async () => {
    expect(await store().processBatchOperations([])).toEqual([]);
  });

  it("a batch with one invalid operation rejects with INVALID_ARGUMENT and applies none of the others", async () => {
    const kvStore = store();
    await kvStore.set({ key: "present", value: "kept" });
    const valid = [
      { op: "set", key: "a", value: 1 },
      { op: "delete", key: "present" },
      { op: "testAndSet", key: "lock", oldValue: null, newValue: "mine" },
    ];
    const invalid: unknown[] = [
      { op: "rename", key: "x" },
      { op: "", key: "x" },
      { key: "x" },
      { op: "get" },
      { op: "get", key: "" },
      { op: "get", key: 5 },
      { op: "get", key: "x", value: 1 },
      { op: "delete", key: "x", oldValue: 1 },
      { op: "set", key: "x" },
      { op: "set", key: "x", value: 1, newValue: 2 },
      { op: "set", key: "x", value: 1, expirationTtl: -1 },
      { op: "set", key: "x", value: 1, expirationTtl: "60" },
      { op: "testAndSet", key: "x", oldValue: null },
      { op: "test-and-set", key: "x", newValue: 1 },
      { op: "testAndSet", key: "x", oldValue: null, newValue: 1, value: 1 },
      null,
      "get",
    ];
    for (const bad of invalid) {
      for (const batch of [
        [...valid, bad],
        [bad, ...valid],
      ]) {
        await expectCode(() => kvStore.processBatchOperations(batch as never), "INVALID_ARGUMENT");
      }
    }
    await expectCode(() => kvStore.processBatchOperations("get" as never), "INVALID_ARGUMENT");
    expect(await collect(kvStore.itemsAsyncIterator())).toEqual([
      { key: "present", value: "kept", expires: null },
    ]);
    // The valid operations alone run.
    expect(await kvStore.processBatchOperations(valid)).toEqual([
      { key: "a", value: 1, expires: null },
      { key: "present", deleted: true },
      { key: "lock", value: "mine", expires: null, conditionMet: true },
    ]);
  });
});

conformance("glia: itemsAsyncIterator", (kv) => {
  const store = (namespace = "app") => gliaKvStoreFactory(kv()).initializeKvStore(namespace);
  const KEYS = ["user_x", "b", "use", "userz", "user1", "A", "user", "usf", "0", "usera"];

  it("yields every item with its value and expires, in key order", async () => {
    const kvStore = store();
    for (const key of KEYS) await kvStore.set({ key, value: { of: key } });
    await kvStore.set({ key: "ttl", value: "t", expirationTtl: 3600 });
    const items = await collect(kvStore.itemsAsyncIterator());
    expect(items.map((item) => item.key)).toEqual([...KEYS, "ttl"].sort());
    expect(items.find((item) => item.key === "user_x")).toEqual({
      key: "user_x",
      value: { of: "user_x" },
      expires: null,
    });
    expect(items.find((item) => item.key === "ttl")?.expires).toBe(
      (await kvStore.get("ttl"))?.expires,
    );
    expect(await keysOf(kvStore.itemsAsyncIterator({}))).toEqual(items.map((i) => i.key));
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "" }))).toEqual(
      items.map((i) => i.key),
    );
  });

  it("filters by string prefix: 'user' matches user, user1, user_x, usera and userz, not use or usf", async () => {
    const kvStore = store();
    for (const key of KEYS) await kvStore.set({ key, value: key.length });
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "user" }))).toEqual([
      "user",
      "user1",
      "user_x",
      "usera",
      "userz",
    ]);
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "use" }))).toEqual([
      "use",
      "user",
      "user1",
      "user_x",
      "usera",
      "userz",
    ]);
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "user_" }))).toEqual(["user_x"]);
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "userz" }))).toEqual(["userz"]);
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "users" }))).toEqual([]);
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "zzz" }))).toEqual([]);
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "U" }))).toEqual([]);
  });

  it("reads 2,500 items page by page as they are consumed, and stops when the consumer breaks", async () => {
    const kvStore = store();
    const name = (i: number) => `k${String(i).padStart(4, "0")}`;
    for (let from = 0; from < 2500; from += 1000) {
      const atomic = kv().atomic();
      for (let i = from; i < Math.min(from + 1000, 2500); i++) {
        atomic.set(["glia", "app", name(i)], { value: i, expires: null });
      }
      expect((await atomic.commit()).ok).toBe(true);
    }

    const all = await collect(kvStore.itemsAsyncIterator());
    expect(all).toHaveLength(2500);
    expect(all.map((item) => item.key)).toEqual(Array.from({ length: 2500 }, (_, i) => name(i)));
    expect(all[1234]).toEqual({ key: "k1234", value: 1234, expires: null });
    expect(await keysOf(kvStore.itemsAsyncIterator({ prefix: "k1" }))).toHaveLength(1000);

    // Lazy: what is written after the first item was read, beyond the first page, is seen.
    const iterator = kvStore.itemsAsyncIterator({ prefix: "k" });
    expect((await iterator.next()).value).toMatchObject({ key: "k0000" });
    await kvStore.set({ key: "k2499", value: "changed" });
    await kvStore.set({ key: "k9999", value: "added" });
    await kvStore.delete("k2000");
    const rest: { key: string; value: unknown }[] = [];
    for await (const item of { [Symbol.asyncIterator]: () => iterator }) rest.push(item);
    expect(rest).toHaveLength(2499);
    expect(rest.some((item) => item.key === "k2000")).toBe(false);
    expect(rest.at(-2)).toEqual({ key: "k2499", value: "changed", expires: null });
    expect(rest.at(-1)).toEqual({ key: "k9999", value: "added", expires: null });

    // A consumer that breaks ends the iteration.
    const seen: string[] = [];
    const early = kvStore.itemsAsyncIterator();
    for await (const item of { [Symbol.asyncIterator]: () => early }) {
      seen.push(item.key);
      if (seen.length === 150) break;
    }
    expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => name(i)));
    expect(await early.next()).toEqual({ done: true, value: undefined });
  });

  it("rejects a prefix that is not a string with INVALID_ARGUMENT", async () => {
    const kvStore = store();
    await kvStore.set({ key: "a", value: 1 });
    await expectCode(
      () => kvStore.itemsAsyncIterator({ prefix: 5 as never }).next(),
      "INVALID_ARGUMENT",
    );
  });
});

conformance("glia: TTL", (kv) => {
  it("an item with expirationTtl 1 expires a second after it is set, then is gone from get and the iterator", async () => {
    const kvStore = gliaKvStoreFactory(kv()).initializeKvStore("app");
    await kvStore.set({ key: "stays", value: "here" });
    const before = Date.now();
    const written = (await kvStore.set({
      key: "brief",
      value: { n: 1 },
      expirationTtl: 1,
    })) as GliaItem;
    const read = await kvStore.get("brief");
    const after = Date.now();
    expect(written).toEqual({ key: "brief", value: { n: 1 }, expires: expect.any(Number) });
    expectExpiresIn(written.expires, 1000, before, after);
    expect(read).toEqual(written);
    await until(async () => (await kvStore.get("brief")) === null);
    expect(await collect(kvStore.itemsAsyncIterator())).toEqual([
      { key: "stays", value: "here", expires: null },
    ]);
    expect(await kvStore.testAndSet({ key: "brief", oldValue: null, newValue: 2 })).toMatchObject({
      conditionMet: true,
      value: 2,
    });
  });
});

conformance("glia: namespaces", (kv) => {
  it("keeps two namespaces apart, ones sharing a beginning too", async () => {
    const factory = gliaKvStoreFactory(kv());
    const [alpha, beta, alphaTwo] = ["alpha", "beta", "alpha-2"].map((ns) =>
      factory.initializeKvStore(ns),
    ) as [GliaKvStore, GliaKvStore, GliaKvStore];
    await alpha.set({ key: "shared", value: "from alpha" });
    await beta.set({ key: "shared", value: "from beta" });
    await alpha.set({ key: "only-alpha", value: 1 });
    expect((await alpha.get("shared"))?.value).toBe("from alpha");
    expect((await beta.get("shared"))?.value).toBe("from beta");
    expect(await beta.get("only-alpha")).toBeNull();
    expect(await alphaTwo.get("shared")).toBeNull();
    expect(await keysOf(alpha.itemsAsyncIterator())).toEqual(["only-alpha", "shared"]);
    expect(await keysOf(beta.itemsAsyncIterator())).toEqual(["shared"]);
    expect(await keysOf(alphaTwo.itemsAsyncIterator())).toEqual([]);

    await alpha.delete("shared");
    expect(await beta.testAndSet({ key: "shared", oldValue: null, newValue: "x" })).toMatchObject({
      conditionMet: false,
    });
    expect((await beta.get("shared"))?.value).toBe("from beta");
    await beta.processBatchOperations([{ op: "delete", key: "only-alpha" }]);
    expect((await alpha.get("only-alpha"))?.value).toBe(1);
    // Another factory over the same Kv sees the same namespace.
    expect((await gliaKvStoreFactory(kv()).initializeKvStore("beta").get("shared"))?.value).toBe(
      "from beta",
    );
  });

  it("accepts names of 1 to 128 letters, digits, '_' or '-'", async () => {
    const factory = gliaKvStoreFactory(kv());
    for (const ns of ["a", "A-z_0-9", "-", "_", "x".repeat(128)]) {
      const kvStore = factory.initializeKvStore(ns);
      expect(kvStore.namespace).toBe(ns);
      await kvStore.set({ key: "k", value: ns });
      expect((await kv().get(["glia", ns, "k"])).value).toEqual({ value: ns, expires: null });
    }
  });

  it("initializeKvStore throws INVALID_ARGUMENT for an invalid namespace", async () => {
    const factory = gliaKvStoreFactory(kv());
    for (const ns of [
      "",
      "a b",
      "a/b",
      "a.b",
      "ns:x",
      "żółw",
      "tab\t",
      "x".repeat(129),
      undefined,
      null,
      42,
      ["app"],
    ]) {
      await expectCode(() => factory.initializeKvStore(ns as never), "INVALID_ARGUMENT");
    }
    expect(await collect(kv().list({ prefix: [] }))).toEqual([]);
  });

  it("stores each item at ['glia', namespace, key] as { value, expires }, visible through the Kv", async () => {
    const kvStore = gliaKvStoreFactory(kv()).initializeKvStore("app");
    await kvStore.set({ key: "plain", value: [1, { two: 2 }] });
    const timed = (await kvStore.set({
      key: "timed",
      value: "t",
      expirationTtl: 600,
    })) as GliaItem;
    await gliaKvStoreFactory(kv()).initializeKvStore("other").set({ key: "plain", value: 0 });
    expect((await kv().get(["glia", "app", "plain"])).value).toEqual({
      value: [1, { two: 2 }],
      expires: null,
    });
    expect((await kv().get(["glia", "app", "timed"])).value).toEqual({
      value: "t",
      expires: timed.expires,
    });
    expect((await collect(kv().list({ prefix: ["glia"] }))).map((e) => e.key)).toEqual([
      ["glia", "app", "plain"],
      ["glia", "app", "timed"],
      ["glia", "other", "plain"],
    ]);
    // And what the Kv writes there, the store reads.
    await kv().set(["glia", "app", "from-kv"], { value: { via: "kv" }, expires: null });
    expect(await kvStore.get("from-kv")).toEqual({
      key: "from-kv",
      value: { via: "kv" },
      expires: null,
    });
  });
});

conformance("glia: a closed Kv", (kv) => {
  it("every call of a store over a closed Kv rejects with CLOSED", async () => {
    const opened: Kv = kv();
    const kvStore = gliaKvStoreFactory(opened).initializeKvStore("app");
    await kvStore.set({ key: "k", value: 1 });
    await opened.close();
    const later = gliaKvStoreFactory(opened).initializeKvStore("later");
    for (const store of [kvStore, later]) {
      const calls: (() => unknown)[] = [
        () => store.get("k"),
        () => store.set({ key: "k", value: 2 }),
        () => store.set({ key: "k", value: null }),
        () => store.delete("k"),
        () => store.testAndSet({ key: "k", oldValue: 1, newValue: 2 }),
        () => store.processBatchOperations([{ op: "get", key: "k" }]),
        () => store.itemsAsyncIterator().next(),
        () => store.itemsAsyncIterator({ prefix: "k" }).next(),
      ];
      for (const call of calls) {
        const error = await errorOf(call);
        expect(error).toBeInstanceOf(KvError);
        expect(error).toMatchObject({ code: "CLOSED", status: 409 });
      }
    }
  });
});
