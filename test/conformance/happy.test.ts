/**
 * Happy Server's kv functions (`happyKv(kv)`, seed 000) on every target: the seed's two examples
 * as written, then each function's contract (reference/seed-systems.md §2): integer versions,
 * tombstones, all-or-nothing mutates, users kept apart, and the per-user update events.
 */
import { afterEach, expect, it, vi } from "vitest";
import { type HappyUpdate, happyKv, type Kv, KvError } from "../../src/index.js";
import { conformance, errorOf, until } from "../targets.js";

const b64 = (text: string) => Buffer.from(text).toString("base64");

async function expectInvalid(call: () => unknown): Promise<void> {
  const error = await errorOf(call);
  expect(error).toBeInstanceOf(KvError);
  expect(error).toMatchObject({ code: "INVALID_ARGUMENT" });
}

/** Every stored entry under `["happy"]`: the users' records, seqs and last update events. */
async function happyData(kv: Kv): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const entry of kv.list({ prefix: ["happy"] })) out.push([entry.key, entry.value]);
  return out;
}

afterEach(() => {
  vi.restoreAllMocks();
});

conformance("happy: the seed's examples", (kv) => {
  it("updateUserPreferences stores both keys at version 0, getUserTheme prints 'dark', a second update at version -1 prints both mismatches", async () => {
    const { kvMutate, kvGet } = happyKv(kv());
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});

    // biome-ignore format: the seed's example, verbatim
    async function updateUserPreferences(userId: string, preferences: { theme: string, notifications: boolean }) {
        try {
            const result = await kvMutate(
                { uid: userId },
                [
                    { key: 'user_theme', value: Buffer.from(preferences.theme).toString('base64'), version: -1 }, // Assuming new key or initial write
                    { key: 'user_notifications', value: Buffer.from(String(preferences.notifications)).toString('base64'), version: -1 }
                ]
            );

            if (result.success) {
                console.log('User preferences updated successfully:', result.results);
            } else {
                console.error('Failed to update user preferences:', result.errors);
            }
        } catch (error) {
            console.error('An unexpected error occurred:', error);
        }
    }

    // biome-ignore format: the seed's example, verbatim
    async function getUserTheme(userId: string) {
        try {
            const result = await kvGet({ uid: userId }, 'user_theme');
            if (result.success && result.value) {
                console.log('User theme:', Buffer.from(result.value, 'base64').toString('utf8'));
            } else {
                console.log('User theme not found or an error occurred.');
            }
        }
        catch (error) {
            console.error('An unexpected error occurred:', error);
        }
    }

    await getUserTheme("user123");
    expect(log.mock.calls).toEqual([["User theme not found or an error occurred."]]);

    await updateUserPreferences("user123", { theme: "dark", notifications: true });
    expect(log.mock.calls.slice(1)).toEqual([
      [
        "User preferences updated successfully:",
        [
          { key: "user_theme", version: 0 },
          { key: "user_notifications", version: 0 },
        ],
      ],
    ]);

    await getUserTheme("user123");
    expect(log.mock.calls.slice(2)).toEqual([["User theme:", "dark"]]);
    expect(error).not.toHaveBeenCalled();

    // The example writes at version -1: once the keys exist, it reports both, and changes nothing.
    await updateUserPreferences("user123", { theme: "light", notifications: false });
    expect(error.mock.calls).toEqual([
      [
        "Failed to update user preferences:",
        [
          { key: "user_theme", error: "version-mismatch", version: 0, value: b64("dark") },
          { key: "user_notifications", error: "version-mismatch", version: 0, value: b64("true") },
        ],
      ],
    ]);
    await getUserTheme("user123");
    expect(log.mock.calls.slice(3)).toEqual([["User theme:", "dark"]]);
    expect(log).toHaveBeenCalledTimes(4);
  });
});

conformance("happy: kvGet, kvBulkGet, kvList", (kv) => {
  const ctx = { uid: "alice" };

  it("kvGet answers a found key with success: true, its value and version", async () => {
    const { kvGet, kvMutate } = happyKv(kv());
    await kvMutate(ctx, [{ key: "a", value: b64("one"), version: -1 }]);
    expect(await kvGet(ctx, "a")).toEqual({
      success: true,
      key: "a",
      value: b64("one"),
      version: 0,
    });
    await kvMutate(ctx, [{ key: "a", value: b64("two"), version: 0 }]);
    expect(await kvGet(ctx, "a")).toEqual({
      success: true,
      key: "a",
      value: b64("two"),
      version: 1,
    });
  });

  it("kvGet answers a missing key with success: false, value null and version -1", async () => {
    const { kvGet } = happyKv(kv());
    expect(await kvGet(ctx, "nope")).toEqual({
      success: false,
      key: "nope",
      value: null,
      version: -1,
    });
  });

  it("kvGet answers a deleted key with success: false, value null and its tombstone's version", async () => {
    const { kvGet, kvMutate } = happyKv(kv());
    await kvMutate(ctx, [{ key: "a", value: b64("one"), version: -1 }]);
    await kvMutate(ctx, [{ key: "a", value: b64("two"), version: 0 }]);
    expect(await kvMutate(ctx, [{ key: "a", value: null, version: 1 }])).toEqual({
      success: true,
      results: [{ key: "a", version: 2 }],
    });
    expect(await kvGet(ctx, "a")).toEqual({ success: false, key: "a", value: null, version: 2 });
  });

  it("kvGet answers an empty value as found (stored, not a delete)", async () => {
    const { kvGet, kvMutate } = happyKv(kv());
    await kvMutate(ctx, [{ key: "empty", value: "", version: -1 }]);
    expect(await kvGet(ctx, "empty")).toEqual({
      success: true,
      key: "empty",
      value: "",
      version: 0,
    });
  });

  it("kvBulkGet answers the existing keys in the order asked, leaving out missing and deleted ones", async () => {
    const { kvBulkGet, kvMutate } = happyKv(kv());
    await kvMutate(ctx, [
      { key: "a", value: b64("A"), version: -1 },
      { key: "b", value: b64("B"), version: -1 },
      { key: "c", value: b64("C"), version: -1 },
    ]);
    await kvMutate(ctx, [{ key: "b", value: null, version: 0 }]);
    expect(await kvBulkGet(ctx, ["c", "missing", "b", "a"])).toEqual({
      values: [
        { key: "c", value: b64("C"), version: 0 },
        { key: "a", value: b64("A"), version: 0 },
      ],
    });
    expect(await kvBulkGet(ctx, ["b", "missing"])).toEqual({ values: [] });
    const hundred = Array.from({ length: 100 }, (_, i) => (i === 99 ? "a" : `none-${i}`));
    expect(await kvBulkGet(ctx, hundred)).toEqual({
      values: [{ key: "a", value: b64("A"), version: 0 }],
    });
  });

  it("kvList answers keys starting with the prefix (case-sensitive) in key order, without tombstones", async () => {
    const { kvList, kvMutate } = happyKv(kv());
    const keys = ["app:2", "b", "app:1", "apq", "ap", "app:3", "App:0", "app:"];
    await kvMutate(
      ctx,
      keys.map((key) => ({ key, value: b64(key), version: -1 })),
    );
    await kvMutate(ctx, [{ key: "app:2", value: null, version: 0 }]);
    const item = (key: string) => ({ key, value: b64(key), version: 0 });
    expect(await kvList(ctx, { prefix: "app:" })).toEqual({
      items: [item("app:"), item("app:1"), item("app:3")],
    });
    expect(await kvList(ctx, { prefix: "ap" })).toEqual({
      items: ["ap", "app:", "app:1", "app:3", "apq"].map(item),
    });
    expect(await kvList(ctx, { prefix: "App" })).toEqual({ items: [item("App:0")] });
    expect(await kvList(ctx, { prefix: "zzz" })).toEqual({ items: [] });
    expect(await kvList(ctx)).toEqual({
      items: ["App:0", "ap", "app:", "app:1", "app:3", "apq", "b"].map(item),
    });
    expect(await kvList(ctx, { prefix: "" })).toEqual(await kvList(ctx));
  });

  it("kvList takes at most limit items, tombstones not counted, 100 by default", async () => {
    const { kvList, kvMutate } = happyKv(kv());
    const key = (i: number) => `k${String(i).padStart(3, "0")}`;
    const create = (from: number, to: number) =>
      kvMutate(
        ctx,
        Array.from({ length: to - from }, (_, i) => ({
          key: key(from + i),
          value: b64("v"),
          version: -1,
        })),
      );
    await create(0, 50);
    await create(50, 100);
    await create(100, 150);
    await kvMutate(ctx, [
      { key: key(0), value: null, version: 0 },
      { key: key(1), value: null, version: 0 },
    ]);
    const keysOf = async (options?: { prefix?: string; limit?: number }) =>
      (await kvList(ctx, options)).items.map((i) => i.key);
    expect(await keysOf({ limit: 2 })).toEqual([key(2), key(3)]);
    expect(await keysOf({ limit: 1 })).toEqual([key(2)]);
    expect(await keysOf()).toEqual(Array.from({ length: 100 }, (_, i) => key(i + 2)));
    expect(await keysOf({ limit: 1000 })).toEqual(
      Array.from({ length: 148 }, (_, i) => key(i + 2)),
    );
    expect(await keysOf({ prefix: "k14", limit: 3 })).toEqual([key(140), key(141), key(142)]);
  });

  it("kvList refuses a limit outside 1–1000 or not an integer, and a prefix that is not a string", async () => {
    const { kvList, kvMutate } = happyKv(kv());
    await kvMutate(ctx, [{ key: "a", value: b64("A"), version: -1 }]);
    for (const limit of [0, -1, 1001, 1.5, Number.NaN, "10"]) {
      await expectInvalid(() => kvList(ctx, { limit: limit as number }));
    }
    await expectInvalid(() => kvList(ctx, { prefix: 5 as never }));
    expect(await kvList(ctx, { limit: 1000 })).toEqual({
      items: [{ key: "a", value: b64("A"), version: 0 }],
    });
  });
});

conformance("happy: kvMutate", (kv) => {
  const ctx = { uid: "alice" };

  it("gives a new key version 0 and each update version + 1, answering the new versions in order", async () => {
    const { kvGet, kvMutate } = happyKv(kv());
    expect(
      await kvMutate(ctx, [
        { key: "x", value: b64("x0"), version: -1 },
        { key: "y", value: b64("y0"), version: -1 },
      ]),
    ).toEqual({
      success: true,
      results: [
        { key: "x", version: 0 },
        { key: "y", version: 0 },
      ],
    });
    for (let version = 0; version < 3; version++) {
      expect(await kvMutate(ctx, [{ key: "x", value: b64(`x${version + 1}`), version }])).toEqual({
        success: true,
        results: [{ key: "x", version: version + 1 }],
      });
    }
    expect(
      await kvMutate(ctx, [
        { key: "y", value: b64("y1"), version: 0 },
        { key: "x", value: b64("x4"), version: 3 },
        { key: "z", value: b64("z0"), version: -1 },
      ]),
    ).toEqual({
      success: true,
      results: [
        { key: "y", version: 1 },
        { key: "x", version: 4 },
        { key: "z", version: 0 },
      ],
    });
    expect(await kvGet(ctx, "x")).toMatchObject({ value: b64("x4"), version: 4 });
    expect(await kvGet(ctx, "y")).toMatchObject({ value: b64("y1"), version: 1 });
  });

  it("applies nothing when any version mismatches, and reports every mismatch with the current version and value", async () => {
    const { kvMutate } = happyKv(kv());
    await kvMutate(ctx, [
      { key: "a", value: b64("A"), version: -1 },
      { key: "b", value: b64("B"), version: -1 },
      { key: "gone", value: null, version: -1 },
    ]);
    const before = await happyData(kv());
    expect(
      await kvMutate(ctx, [
        { key: "a", value: b64("A2"), version: 0 }, // right
        { key: "b", value: b64("B2"), version: 5 }, // stale
        { key: "new", value: b64("N"), version: 0 }, // never existed: -1
        { key: "gone", value: b64("G"), version: -1 }, // a tombstone at 0
        { key: "fresh", value: b64("F"), version: -1 }, // right
      ]),
    ).toEqual({
      success: false,
      errors: [
        { key: "b", error: "version-mismatch", version: 0, value: b64("B") },
        { key: "new", error: "version-mismatch", version: -1, value: null },
        { key: "gone", error: "version-mismatch", version: 0, value: null },
      ],
    });
    expect(await happyData(kv())).toEqual(before);
  });

  it("keeps a deleted key's version: re-creating it needs the tombstone's version, not -1", async () => {
    const { kvGet, kvMutate } = happyKv(kv());
    await kvMutate(ctx, [{ key: "k", value: b64("1"), version: -1 }]);
    expect(await kvMutate(ctx, [{ key: "k", value: null, version: 0 }])).toEqual({
      success: true,
      results: [{ key: "k", version: 1 }],
    });
    expect(await kvMutate(ctx, [{ key: "k", value: b64("2"), version: -1 }])).toEqual({
      success: false,
      errors: [{ key: "k", error: "version-mismatch", version: 1, value: null }],
    });
    expect(await kvGet(ctx, "k")).toEqual({ success: false, key: "k", value: null, version: 1 });
    expect(await kvMutate(ctx, [{ key: "k", value: b64("2"), version: 1 }])).toEqual({
      success: true,
      results: [{ key: "k", version: 2 }],
    });
    expect(await kvGet(ctx, "k")).toEqual({
      success: true,
      key: "k",
      value: b64("2"),
      version: 2,
    });
    // Deleting a tombstone moves its version on too.
    await kvMutate(ctx, [{ key: "k", value: null, version: 2 }]);
    expect(await kvMutate(ctx, [{ key: "k", value: null, version: 3 }])).toEqual({
      success: true,
      results: [{ key: "k", version: 4 }],
    });
  });

  it("creates a tombstone at version 0 for a new key written null", async () => {
    const { kvGet, kvList, kvMutate } = happyKv(kv());
    expect(await kvMutate(ctx, [{ key: "t", value: null, version: -1 }])).toEqual({
      success: true,
      results: [{ key: "t", version: 0 }],
    });
    expect(await kvGet(ctx, "t")).toEqual({ success: false, key: "t", value: null, version: 0 });
    expect(await kvList(ctx)).toEqual({ items: [] });
  });

  it("accepts a mutate of 100 mutations, the original's limit", async () => {
    const { kvList, kvMutate } = happyKv(kv());
    const hundred = Array.from({ length: 100 }, (_, i) => ({
      key: `n${String(i).padStart(2, "0")}`,
      value: b64("v"),
      version: -1,
    }));
    expect(await kvMutate(ctx, hundred)).toEqual({
      success: true,
      results: hundred.map(({ key }) => ({ key, version: 0 })),
    });
    expect((await kvList(ctx)).items).toHaveLength(100);
  });

  it("stores the data under ['happy', uid, 'kv', key], with the user's seq beside it", async () => {
    const { kvMutate } = happyKv(kv());
    await kvMutate(ctx, [{ key: "a", value: b64("A"), version: -1 }]);
    await kvMutate(ctx, [{ key: "a", value: null, version: 0 }]);
    expect((await kv().get(["happy", "alice", "kv", "a"])).value).toEqual({
      value: null,
      version: 1,
    });
    expect((await kv().get(["happy", "alice", "seq"])).value).toBe(2);
  });
});

conformance("happy: users", (kv) => {
  it("keeps each uid's keys, versions and lists apart", async () => {
    const { kvBulkGet, kvGet, kvList, kvMutate } = happyKv(kv());
    const alice = { uid: "alice" };
    const bob = { uid: "bob" };
    await kvMutate(alice, [
      { key: "shared", value: b64("alice's"), version: -1 },
      { key: "only-alice", value: b64("a"), version: -1 },
    ]);
    await kvMutate(alice, [{ key: "shared", value: b64("alice's 2"), version: 0 }]);
    // bob's "shared" is a new key of his own, at -1, whatever alice's version.
    expect(await kvMutate(bob, [{ key: "shared", value: b64("bob's"), version: -1 }])).toEqual({
      success: true,
      results: [{ key: "shared", version: 0 }],
    });
    expect(await kvGet(alice, "shared")).toMatchObject({ value: b64("alice's 2"), version: 1 });
    expect(await kvGet(bob, "shared")).toMatchObject({ value: b64("bob's"), version: 0 });
    expect(await kvGet(bob, "only-alice")).toEqual({
      success: false,
      key: "only-alice",
      value: null,
      version: -1,
    });
    expect(await kvBulkGet(bob, ["only-alice", "shared"])).toEqual({
      values: [{ key: "shared", value: b64("bob's"), version: 0 }],
    });
    expect((await kvList(bob)).items.map((i) => i.key)).toEqual(["shared"]);
    expect((await kvList(alice)).items.map((i) => i.key)).toEqual(["only-alice", "shared"]);
    // A mutate of bob's at alice's version is a mismatch against bob's record.
    expect(await kvMutate(bob, [{ key: "only-alice", value: null, version: 0 }])).toEqual({
      success: false,
      errors: [{ key: "only-alice", error: "version-mismatch", version: -1, value: null }],
    });
    expect(await kvGet(alice, "only-alice")).toMatchObject({ success: true, version: 0 });
    // A uid that looks like a path or a prefix is still one user.
    expect((await kvList({ uid: "ali" })).items).toEqual([]);
    expect((await kvList({ uid: "alice/kv" })).items).toEqual([]);
  });
});

conformance("happy: invalid input", (kv) => {
  const ctx = { uid: "alice" };

  it("refuses bad mutations with INVALID_ARGUMENT, applying none of a batch's valid ones", async () => {
    const { kvMutate } = happyKv(kv());
    await kvMutate(ctx, [{ key: "a", value: b64("A"), version: -1 }]);
    const before = await happyData(kv());
    const good = { key: "a", value: b64("A2"), version: 0 };
    const bad: unknown[] = [
      { key: "b", value: "not base64!", version: -1 },
      { key: "b", value: "abc", version: -1 }, // base64 needs padding to 4
      { key: "b", value: 42, version: -1 },
      { key: "b", value: { x: 1 }, version: -1 },
      { key: "b", version: -1 }, // value missing
      { key: "b", value: b64("B"), version: -2 },
      { key: "b", value: b64("B"), version: 1.5 },
      { key: "b", value: b64("B"), version: "0" },
      { key: "b", value: b64("B") }, // version missing
      { key: 7, value: b64("B"), version: -1 },
      { value: b64("B"), version: -1 }, // key missing
      { key: "b", value: b64("B"), version: -1, extra: true },
      { ...good }, // "a" twice
      null,
      "a",
      [good],
    ];
    for (const mutation of bad) {
      await expectInvalid(() => kvMutate(ctx, [good, mutation as never]));
    }
    await expectInvalid(() => kvMutate(ctx, []));
    await expectInvalid(() =>
      kvMutate(
        ctx,
        Array.from({ length: 101 }, (_, i) => ({ key: `n${i}`, value: b64("v"), version: -1 })),
      ),
    );
    await expectInvalid(() => kvMutate(ctx, good as never));
    await expectInvalid(() => kvMutate(ctx, undefined as never));
    await expectInvalid(() => kvMutate({ uid: "" }, [good]));
    await expectInvalid(() => kvMutate({} as never, [good]));
    await expectInvalid(() => kvMutate(undefined as never, [good]));
    expect(await happyData(kv())).toEqual(before);
  });

  it("refuses bad keys, key lists and users in kvGet and kvBulkGet with INVALID_ARGUMENT", async () => {
    const { kvBulkGet, kvGet, kvList } = happyKv(kv());
    await expectInvalid(() => kvGet(ctx, 5 as never));
    await expectInvalid(() => kvGet({ uid: "" }, "a"));
    await expectInvalid(() => kvGet({ uid: 1 } as never, "a"));
    await expectInvalid(() => kvBulkGet(ctx, []));
    await expectInvalid(() =>
      kvBulkGet(
        ctx,
        Array.from({ length: 101 }, (_, i) => `k${i}`),
      ),
    );
    await expectInvalid(() => kvBulkGet(ctx, ["a", 1 as never]));
    await expectInvalid(() => kvBulkGet(ctx, "a" as never));
    await expectInvalid(() => kvList({ uid: "" }));
    expect(await happyData(kv())).toEqual([]);
  });
});

conformance("happy: concurrency", (kv) => {
  const ctx = { uid: "alice" };

  it("of 10 concurrent mutates creating one key at version -1, exactly one succeeds", async () => {
    const { kvGet, kvMutate } = happyKv(kv());
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        kvMutate(ctx, [{ key: "race", value: b64(`writer ${i}`), version: -1 }]),
      ),
    );
    const winners = results.flatMap((r, i) => (r.success ? [i] : []));
    expect(winners).toHaveLength(1);
    const winner = b64(`writer ${winners[0]}`);
    expect(results[winners[0]!]).toEqual({ success: true, results: [{ key: "race", version: 0 }] });
    for (const result of results.filter((r) => !r.success)) {
      expect(result).toEqual({
        success: false,
        errors: [{ key: "race", error: "version-mismatch", version: 0, value: winner }],
      });
    }
    expect(await kvGet(ctx, "race")).toEqual({
      success: true,
      key: "race",
      value: winner,
      version: 0,
    });
    expect((await kv().get(["happy", "alice", "seq"])).value).toBe(1);
  });

  it("10 concurrent mutates of different keys of one user all succeed, each counted once in seq", async () => {
    const { kvList, kvMutate } = happyKv(kv());
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        kvMutate(ctx, [{ key: `k${i}`, value: b64(`v${i}`), version: -1 }]),
      ),
    );
    expect(results.every((r) => r.success)).toBe(true);
    expect((await kvList(ctx)).items).toHaveLength(10);
    expect((await kv().get(["happy", "alice", "seq"])).value).toBe(10);
  });

  it("150 concurrent mutates of different keys of one user all succeed: none gives up UNAVAILABLE", async () => {
    const { kvList, kvMutate } = happyKv(kv());
    const settled = await Promise.allSettled(
      Array.from({ length: 150 }, (_, i) =>
        kvMutate(ctx, [{ key: `k${String(i).padStart(3, "0")}`, value: b64("v"), version: -1 }]),
      ),
    );
    const refused = settled.flatMap((s) => (s.status === "rejected" ? [String(s.reason)] : []));
    expect(refused).toEqual([]);
    expect((await kvList(ctx, { limit: 1000 })).items).toHaveLength(150);
    expect((await kv().get(["happy", "alice", "seq"])).value).toBe(150);
  });
});

conformance("happy: onUpdate", (kv) => {
  /**
   * Subscribes to `uid`'s update events and resolves once the subscription is live: until then,
   * it rewrites the user's update key with a probe (no seq moves) until one is delivered.
   * `onUpdate` itself tells no moment from which events are delivered.
   */
  async function subscribe(uid: string) {
    const happy = happyKv(kv());
    const delivered: unknown[] = [];
    const subscription = happy.onUpdate({ uid }, (update) => delivered.push(update));
    await subscription.ready;
    return {
      updates: () => delivered as HappyUpdate[],
      stop: () => subscription.stop(),
    };
  }

  it("delivers one event per mutate with seq 1, 2, 3, only the user's own, until stop()", async () => {
    const { kvMutate } = happyKv(kv());
    const alice = await subscribe("alice");
    const aliceAgain = await subscribe("alice");
    const bob = await subscribe("bob");
    try {
      await kvMutate({ uid: "alice" }, [
        { key: "a", value: b64("A"), version: -1 },
        { key: "b", value: null, version: -1 },
      ]);
      await kvMutate({ uid: "bob" }, [{ key: "a", value: b64("bob"), version: -1 }]);
      await kvMutate({ uid: "alice" }, [{ key: "a", value: b64("A2"), version: 0 }]);
      await kvMutate({ uid: "bob" }, [{ key: "a", value: null, version: 0 }]);
      // A refused mutate makes no event.
      await kvMutate({ uid: "alice" }, [{ key: "a", value: b64("x"), version: 0 }]);
      await kvMutate({ uid: "alice" }, [{ key: "a", value: null, version: 1 }]);

      await until(() => alice.updates().length >= 3 && bob.updates().length >= 2);
      const updates = alice.updates();
      expect(updates.map((u) => u.seq)).toEqual([1, 2, 3]);
      expect(updates.map((u) => u.body)).toEqual([
        {
          t: "kv-batch-update",
          changes: [
            { key: "a", value: b64("A"), version: 0 },
            { key: "b", value: null, version: 0 },
          ],
        },
        { t: "kv-batch-update", changes: [{ key: "a", value: b64("A2"), version: 1 }] },
        { t: "kv-batch-update", changes: [{ key: "a", value: null, version: 2 }] },
      ]);
      for (const update of updates) {
        expect(update.id).toMatch(/^[A-Za-z0-9_-]{12}$/);
        expect(update.createdAt).toBeTypeOf("number");
      }
      expect(new Set(updates.map((u) => u.id)).size).toBe(3);
      // Bob's events went to bob alone, with a seq of his own.
      expect(bob.updates().map((u) => [u.seq, u.body.changes])).toEqual([
        [1, [{ key: "a", value: b64("bob"), version: 0 }]],
        [2, [{ key: "a", value: null, version: 1 }]],
      ]);
      await until(() => aliceAgain.updates().length >= 3);
      expect(aliceAgain.updates()).toEqual(updates);

      alice.stop();
      await kvMutate({ uid: "alice" }, [{ key: "a", value: b64("A3"), version: 2 }]);
      // The subscription still open sees the mutate; the stopped one got nothing more.
      await until(() => aliceAgain.updates().length >= 4);
      expect(aliceAgain.updates()[3]!.seq).toBe(4);
      expect(alice.updates()).toEqual(updates);
      expect(bob.updates()).toHaveLength(2);
    } finally {
      alice.stop();
      aliceAgain.stop();
      bob.stop();
    }
  });
});
