/**
 * The JSON API's query routes (where filters, count, paginate, filtered deletes), over real HTTP, on
 * a SQLite file and on PostgreSQL.
 */
import { beforeEach, expect, it } from "vitest";
import { describeEach, jsonApiForTests, storages } from "./targets.js";

const TOKEN = "json-api-query-token";

const q = (where: unknown) => encodeURIComponent(JSON.stringify(where));
const names = (entries: { value: { name: string } }[]) => entries.map((e) => e.value.name);

const users = [
  { name: "Alice", age: 30, status: "active", tags: ["admin", "user"] },
  { name: "Bob", age: 25, status: "inactive", tags: ["user"] },
  { name: "Charlie", age: 35, status: "active", tags: [] },
  { name: "Diana", age: 28, status: "pending", tags: ["moderator"] },
  { name: "Eve", age: 40, status: "active", email: null, tags: ["admin"] },
];

describeEach(storages, "JSON API queries", (storage) => {
  const { call } = jsonApiForTests(TOKEN, storage);

  beforeEach(async () => {
    await call("DELETE", "/keys/users");
    await call("POST", "/atomic", {
      mutations: users.map((value, i) => ({ type: "set", key: ["users", i + 1], value })),
    });
  });

  it("lists with where in POST /keys/list and as a JSON query parameter", async () => {
    const post = await call("POST", "/keys/list", {
      prefix: ["users"],
      where: { status: "active", age: { $gte: 35 } },
      reverse: true,
    });
    expect(names(post.json)).toEqual(["Eve", "Charlie"]);
    const get = await call(
      "GET",
      `/keys?prefix=users&where=${q({ tags: { $contains: "admin" } })}`,
    );
    expect(names(get.json)).toEqual(["Alice", "Eve"]);
  });

  it("counts with GET and POST /keys/count", async () => {
    expect((await call("GET", "/keys/count?prefix=users")).json).toEqual({ count: 5 });
    expect((await call("GET", "/keys/count")).json.count).toBeGreaterThanOrEqual(5);
    expect(
      (await call("GET", `/keys/count?prefix=users&where=${q({ status: "active" })}`)).json,
    ).toEqual({ count: 3 });
    expect(
      (await call("POST", "/keys/count", { prefix: ["users"], where: { email: { $null: false } } }))
        .json,
    ).toEqual({ count: 0 });
  });

  it("paginates with GET and POST /keys/paginate", async () => {
    const first = await call("GET", "/keys/paginate?prefix=users&limit=2");
    expect(first.json).toMatchObject({ hasMore: true, cursor: expect.any(String) });
    expect(names(first.json.entries)).toEqual(["Alice", "Bob"]);
    expect(first.json.entries[0]).toEqual({
      key: ["users", 1],
      value: users[0],
      versionstamp: expect.stringMatching(/^[0-9a-f]{20}$/),
    });
    const second = await call(
      "GET",
      `/keys/paginate?prefix=users&limit=2&cursor=${encodeURIComponent(first.json.cursor)}`,
    );
    expect(names(second.json.entries)).toEqual(["Charlie", "Diana"]);
    const filtered = await call("POST", "/keys/paginate", {
      prefix: ["users"],
      limit: 2,
      reverse: true,
      where: { status: "active" },
    });
    expect(names(filtered.json.entries)).toEqual(["Eve", "Charlie"]);
    const last = await call("POST", "/keys/paginate", {
      prefix: ["users"],
      limit: 2,
      reverse: true,
      where: { status: "active" },
      cursor: filtered.json.cursor,
    });
    expect(last.json).toEqual({ entries: [expect.anything()], cursor: null, hasMore: false });
    expect(names(last.json.entries)).toEqual(["Alice"]);
  });

  it("deletes with where: DELETE with a body and POST /keys/delete-batch", async () => {
    expect((await call("DELETE", "/keys/users", { where: { status: "inactive" } })).json).toEqual({
      success: true,
      deletedCount: 1,
    });
    expect(
      (await call("DELETE", "/keys/users/1", { exact: true, where: { age: { $gt: 99 } } })).json,
    ).toEqual({ success: true, deletedCount: 0 });
    const batch = await call("POST", "/keys/delete-batch", {
      keys: [
        ["users", 1],
        ["users", 3],
        ["users", 5],
      ],
      where: { tags: { $contains: "admin" } },
    });
    expect(batch.json).toEqual({ success: true, deletedCount: 2 });
    expect((await call("GET", "/keys/count?prefix=users")).json).toEqual({ count: 2 });
  });

  it("resolves server time in filters and values, in both of the seed's wire forms", async () => {
    await call("PUT", "/keys/sessions/old", { expiresAt: { $now: true, offset: -60_000 } });
    await call("PUT", "/keys/sessions/new", { expiresAt: { $now: true, $offset: 3_600_000 } });
    await call("POST", "/atomic", {
      mutations: [{ type: "set", key: ["sessions", "mid"], value: { expiresAt: { $now: true } } }],
    });
    const stored = (await call("GET", "/keys/sessions/new")).json.value.expiresAt;
    expect(stored).toBeGreaterThan(Date.now() + 3_000_000);
    const deleted = await call("DELETE", "/keys/sessions", {
      where: { expiresAt: { $lt: { $now: true, offset: -1000 } } },
    });
    expect(deleted.json.deletedCount).toBe(1);
    const left = await call("POST", "/keys/list", {
      prefix: ["sessions"],
      where: { expiresAt: { $gt: { $now: true, $offset: 60_000 } } },
    });
    expect(left.json.map((e: { key: unknown[] }) => e.key)).toEqual([["sessions", "new"]]);
  });

  it("rejects bad filters with a 4xx naming the problem, changing nothing", async () => {
    const injection = { "name') OR 1=1; --": "x" };
    const cases: [string, string, unknown, string][] = [
      [
        "POST",
        "/keys/list",
        { prefix: ["users"], where: { age: { $regex: "." } } },
        "INVALID_FILTER",
      ],
      ["POST", "/keys/list", { prefix: ["users"], where: injection }, "INVALID_FILTER"],
      ["POST", "/keys/list", { prefix: ["users"], where: "1=1" }, "INVALID_FILTER"],
      ["POST", "/keys/count", { prefix: ["users"], where: { "a..b": 1 } }, "INVALID_FILTER"],
      [
        "GET",
        `/keys/count?prefix=users&where=${q({ age: { $gt: [1] } })}`,
        undefined,
        "INVALID_FILTER",
      ],
      ["GET", "/keys/count?prefix=users&where=%7Bnot%20json", undefined, "INVALID_JSON"],
      ["POST", "/keys/paginate", { prefix: ["users"], where: { $or: {} } }, "INVALID_FILTER"],
      ["POST", "/keys/paginate", { prefix: ["users"], cursor: 5 }, "INVALID_CURSOR"],
      ["GET", "/keys/paginate?prefix=users&cursor=!!", undefined, "INVALID_CURSOR"],
      ["DELETE", "/keys/users", { where: injection }, "INVALID_FILTER"],
      ["DELETE", "/keys/users", { where: { status: { $in: "active" } } }, "INVALID_FILTER"],
      [
        "POST",
        "/keys/delete-batch",
        { keys: [["users", 1]], where: { $not: [] } },
        "INVALID_FILTER",
      ],
      [
        "DELETE",
        "/keys/users",
        { where: { at: { $lt: { $now: true, offset: "1h" } } } },
        "INVALID_FILTER",
      ],
    ];
    for (const [method, path, body, code] of cases) {
      const response = await call(method, path, body);
      expect({ path, body, status: response.status, code: response.json.code }).toEqual({
        path,
        body,
        status: 400,
        code,
      });
      expect(response.json.error).toEqual(expect.any(String));
    }
    const injected = await call("POST", "/keys/list", { prefix: ["users"], where: injection });
    expect(injected.json.error).toContain("malformed field path");
    expect((await call("GET", "/keys/count?prefix=users")).json).toEqual({ count: 5 });
  });
});
