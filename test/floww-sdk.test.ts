/**
 * Floww's KV client (`KVStore`, `KVError`) against a real Cairn server on SQLite and PostgreSQL:
 * the seed's `ctx.kv` code as it is written (seeds/floww-kv-store.md), its example's counter and
 * cache, every method's result and errors, and a table shared between workflows by permissions.
 * Each workflow is a Cairn token made through `POST /admin/tokens` (its name is the workflow id);
 * the admin token manages every table and checks what refused calls left behind.
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it, vi } from "vitest";
import { KVError, type KVItem, type KVPermission, KVStore, type Kv, openKv } from "../src/index.js";
import { startServer } from "../src/server/server.js";
import { describeEach, errorOf, serverForTests, storages } from "./targets.js";

const ADMIN = randomUUID();

/** An ISO 8601 timestamp as the server writes them. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The `KVError` a call fails with; fails when it succeeds or fails otherwise. */
async function kvErrorOf(call: () => Promise<unknown>): Promise<KVError> {
  const error = await errorOf(call);
  expect(error).toBeInstanceOf(KVError);
  return error as KVError;
}

/** Expects `call` to fail with `statusCode`, the server's `detail` as message, and its body. */
async function expectKVError(
  call: () => Promise<unknown>,
  statusCode: number,
  detail: string,
  code: string,
): Promise<void> {
  const error = await kvErrorOf(call);
  expect({ statusCode: error.statusCode, message: error.message, details: error.details }).toEqual({
    statusCode,
    message: detail,
    details: { detail, code },
  });
}

/** The timestamps of an item or permission, replaced by `"<timestamp>"` once they are checked. */
function stamped<T extends object>(record: T): T {
  const out = { ...record } as Record<string, unknown>;
  for (const field of ["created_at", "updated_at"]) {
    if (field in out) {
      expect(out[field]).toMatch(TIMESTAMP);
      out[field] = "<timestamp>";
    }
  }
  return out as T;
}

const T = "<timestamp>";

type User = {
  id: string;
  name: string;
  email: string;
};

type Ctx = { kv: KVStore };

/**
 * The seed example's page view counter (`/counter`, `{ increment }` defaulting to 1): the count
 * starts at 0 when the get finds nothing (404), then the new count is set.
 */
async function countPageView(ctx: Ctx, increment = 1): Promise<number> {
  let count = 0;
  try {
    count = await ctx.kv.get<number>("counters", "page-views");
  } catch (error) {
    if (!(error instanceof KVError && error.statusCode === 404)) throw error;
  }
  const newCount = count + increment;
  await ctx.kv.set("counters", "page-views", newCount);
  return newCount;
}

/** How long the example's cache keeps an entry. */
const CACHE_TTL_MS = 60_000;

type CacheEntry<T> = { data: T; cachedAt: number };

/**
 * The seed example's time-based cache (`/cache`, `{ key, invalidate? }`): an entry is
 * `{ data, cachedAt }`, fresh for `CACHE_TTL_MS` after `cachedAt`; a miss or a stale entry
 * computes the data again and stores it. `now` is the clock the workflow reads.
 */
async function cached<T>(
  ctx: Ctx,
  { key, invalidate = false }: { key: string; invalidate?: boolean },
  compute: () => Promise<T>,
  now: number = Date.now(),
): Promise<{ data?: T; cached: boolean; invalidated?: boolean }> {
  if (invalidate) {
    try {
      await ctx.kv.delete("cache", key);
    } catch (error) {
      if (!(error instanceof KVError && error.statusCode === 404)) throw error;
    }
    return { cached: false, invalidated: true };
  }
  try {
    const entry = await ctx.kv.get<CacheEntry<T>>("cache", key);
    if (now - entry.cachedAt < CACHE_TTL_MS) return { data: entry.data, cached: true };
  } catch (error) {
    if (!(error instanceof KVError && error.statusCode === 404)) throw error;
  }
  const data = await compute();
  await ctx.kv.set<CacheEntry<T>>("cache", key, { data, cachedAt: now });
  return { data, cached: false };
}

describeEach(storages, "Floww's KVStore", (storage) => {
  const server = serverForTests(ADMIN, storage);
  const serverUrl = () => server().url;
  /** The admin as a workflow: a manager of every table of the provider. */
  const admin = () => new KVStore("main", { url: serverUrl(), token: ADMIN });

  // The tests use the seed's fixed table names: each starts with no Floww data at all.
  let cairn: Kv;
  beforeAll(async () => {
    cairn = await openKv(serverUrl(), { accessToken: ADMIN });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await cairn.delete(["floww"]);
  });
  afterAll(async () => {
    await cairn.close();
  });

  /** A Cairn token without grants for the principal `name`: the workflow `name`. */
  async function tokenFor(name: string): Promise<string> {
    const response = await fetch(`${serverUrl()}/admin/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { token: string }).token;
  }

  let workflows = 0;
  /** A new workflow (`name-<n>`) with a token of its own, and the seed's `ctx` for it. */
  async function workflow(name: string): Promise<{ id: string; ctx: Ctx }> {
    const id = `${name}-${++workflows}`;
    const [url, token] = [serverUrl(), await tokenFor(id)];
    const ctx = { kv: new KVStore("main", { url, token }) };
    return { id, ctx };
  }

  /** Every item of `table` as the admin sees it: key → value. */
  async function contents(table: string): Promise<Record<string, unknown>> {
    const items = await admin().listItems(table);
    return Object.fromEntries(items.map((item) => [item.key, item.value]));
  }

  /** Every permission on `table` as the admin sees it: workflow → [can_read, can_write]. */
  async function permissions(table: string): Promise<Record<string, [boolean, boolean]>> {
    const rows = await admin().listPermissions(table);
    return Object.fromEntries(rows.map((p) => [p.workflow_id, [p.can_read, p.can_write]]));
  }

  describe("the seed's code as written", () => {
    it("set<User> stores a user and get<User> returns it, typed as User", async () => {
      const { ctx } = await workflow("users-app");
      const user: User = { id: "user-123", name: "John Doe", email: "john@example.com" };

      // Set with type
      await ctx.kv.set<User>("users", "user-123", user);

      {
        // Get with type
        const user = await ctx.kv.get<User>("users", "user-123");
        // user is typed as User
        expectTypeOf(user).toEqualTypeOf<User>();
        expect(user).toEqual({ id: "user-123", name: "John Doe", email: "john@example.com" });
      }
      expect(await contents("users")).toEqual({ "user-123": user });
    });

    /** The seed's Error Handling block, verbatim, in a workflow with this `ctx`. */
    async function errorHandling(ctx: Ctx): Promise<void> {
      try {
        // biome-ignore lint/correctness/noUnusedVariables: the seed's code, verbatim
        const value = await ctx.kv.get("table", "key");
      } catch (error) {
        if (error instanceof KVError) {
          if (error.statusCode === 404) {
            console.log("Key not found");
          } else if (error.statusCode === 403) {
            console.log("Permission denied");
          }
        }
      }
    }

    it("the Error Handling block logs 'Key not found' for a missing key: KVError 404", async () => {
      const { ctx } = await workflow("owner");
      await ctx.kv.set("table", "other-key", 1);
      const log = vi.spyOn(console, "log").mockImplementation(() => {});
      await errorHandling(ctx);
      expect(log.mock.calls).toEqual([["Key not found"]]);
      const error = await kvErrorOf(() => ctx.kv.get("table", "key"));
      expect([error.statusCode, error.message]).toEqual([
        404,
        "Key 'key' not found in table 'table'",
      ]);
    });

    it("the Error Handling block logs 'Key not found' for a table that does not exist yet", async () => {
      const { ctx } = await workflow("newcomer");
      const log = vi.spyOn(console, "log").mockImplementation(() => {});
      await errorHandling(ctx);
      expect(log.mock.calls).toEqual([["Key not found"]]);
      const error = await kvErrorOf(() => ctx.kv.get("table", "key"));
      expect([error.statusCode, error.message]).toEqual([404, "Table 'table' not found"]);
    });

    it("the Error Handling block logs 'Permission denied' for another workflow's table: KVError 403", async () => {
      const owner = await workflow("owner");
      await owner.ctx.kv.set("table", "key", "the owner's");
      const { ctx } = await workflow("stranger");
      const log = vi.spyOn(console, "log").mockImplementation(() => {});
      await errorHandling(ctx);
      expect(log.mock.calls).toEqual([["Permission denied"]]);
      const error = await kvErrorOf(() => ctx.kv.get("table", "key"));
      expect([error.statusCode, error.message]).toEqual([
        403,
        "No read permission for table 'table'",
      ]);
    });

    it("the Error Handling block logs nothing when the key is there", async () => {
      const { ctx } = await workflow("owner");
      await ctx.kv.set("table", "key", "here");
      const log = vi.spyOn(console, "log").mockImplementation(() => {});
      await errorHandling(ctx);
      expect(log.mock.calls).toEqual([]);
    });

    it("every one of the Available Operations works through ctx.kv", async () => {
      const app = await workflow("users-app");
      const { ctx } = app;
      const reporting = await workflow("reporting");
      const userData: User = { id: "user-123", name: "John Doe", email: "john@example.com" };
      const ann: User = { id: "user-456", name: "Ann", email: "ann@example.com" };

      // ctx.kv.set(table, key, value) - Store a value
      await ctx.kv.set("users", "user-123", userData);
      await ctx.kv.set("users", "user-456", ann);
      // ctx.kv.get(table, key) - Retrieve a value
      expect(await ctx.kv.get("users", "user-123")).toEqual(userData);
      await ctx.kv.set("users", "user-123", { ...userData, name: "Jane Doe" });
      expect(await ctx.kv.get("users", "user-123")).toEqual({ ...userData, name: "Jane Doe" });
      // ctx.kv.listTables() - List all tables
      expect(await ctx.kv.listTables()).toEqual(["users"]);
      // ctx.kv.listKeys(table) - List keys in a table
      expect(await ctx.kv.listKeys("users")).toEqual(["user-123", "user-456"]);
      // ctx.kv.listItems(table) - List keys with their values
      expect((await ctx.kv.listItems("users")).map(({ key, value }) => ({ key, value }))).toEqual([
        { key: "user-123", value: { ...userData, name: "Jane Doe" } },
        { key: "user-456", value: ann },
      ]);
      // ctx.kv.grantPermission(table, workflowId, options) - Grant access to another workflow
      await ctx.kv.grantPermission("users", reporting.id, { read: true });
      expect(await reporting.ctx.kv.listKeys("users")).toEqual(["user-123", "user-456"]);
      // ctx.kv.listPermissions(table) - List permissions for a table
      expect((await ctx.kv.listPermissions("users")).map(stamped)).toEqual([
        { workflow_id: reporting.id, can_read: true, can_write: false, created_at: T },
        { workflow_id: app.id, can_read: true, can_write: true, created_at: T },
      ]);
      // ctx.kv.revokePermission(table, workflowId) - Revoke access
      await ctx.kv.revokePermission("users", reporting.id);
      await expectKVError(
        () => reporting.ctx.kv.listKeys("users"),
        403,
        "No read permission for table 'users'",
        "FORBIDDEN",
      );
      // ctx.kv.delete(table, key) - Delete a value
      await ctx.kv.delete("users", "user-123");
      await expectKVError(
        () => ctx.kv.get("users", "user-123"),
        404,
        "Key 'user-123' not found in table 'users'",
        "NOT_FOUND",
      );
      expect(await contents("users")).toEqual({ "user-456": ann });
      expect(await permissions("users")).toEqual({ [app.id]: [true, true] });
    });
  });

  describe("the seed example's counter", () => {
    it("counts from 0 when nothing is stored: five runs leave 5", async () => {
      const { ctx } = await workflow("counter");
      const counts: number[] = [];
      for (let run = 0; run < 5; run++) counts.push(await countPageView(ctx));
      expect(counts).toEqual([1, 2, 3, 4, 5]);
      expect(await ctx.kv.get<number>("counters", "page-views")).toBe(5);
      expect(await contents("counters")).toEqual({ "page-views": 5 });
    });

    it("adds a custom increment to the stored count", async () => {
      const { ctx } = await workflow("counter");
      expect(await countPageView(ctx)).toBe(1);
      expect(await countPageView(ctx, 5)).toBe(6);
      expect(await contents("counters")).toEqual({ "page-views": 6 });
    });

    it("fails with the 403 for a workflow that may not read the counter, which stays as it was", async () => {
      const owner = await workflow("counter");
      await countPageView(owner.ctx);
      await countPageView(owner.ctx);
      const { ctx } = await workflow("stranger");
      await expectKVError(
        () => countPageView(ctx),
        403,
        "No read permission for table 'counters'",
        "FORBIDDEN",
      );
      expect(await contents("counters")).toEqual({ "page-views": 2 });
    });

    it("is shared by workflows granted read and write: their runs add up", async () => {
      const owner = await workflow("counter");
      const other = await workflow("other");
      await countPageView(owner.ctx);
      await owner.ctx.kv.grantPermission("counters", other.id, { read: true, write: true });
      expect(await countPageView(other.ctx)).toBe(2);
      expect(await countPageView(owner.ctx, 10)).toBe(12);
      expect(await contents("counters")).toEqual({ "page-views": 12 });
    });
  });

  describe("the seed example's time-based cache", () => {
    it("computes and stores { data, cachedAt } on a miss, returns a fresh entry without computing, and recomputes a stale one", async () => {
      const { ctx } = await workflow("cache");
      let computed = 0;
      const compute = async () => ({ answer: 42, run: ++computed });
      const start = Date.parse("2025-01-01T00:00:00Z");

      expect(await cached(ctx, { key: "api-response" }, compute, start)).toEqual({
        data: { answer: 42, run: 1 },
        cached: false,
      });
      expect(await contents("cache")).toEqual({
        "api-response": { data: { answer: 42, run: 1 }, cachedAt: start },
      });

      const fresh = start + CACHE_TTL_MS - 1;
      expect(await cached(ctx, { key: "api-response" }, compute, fresh)).toEqual({
        data: { answer: 42, run: 1 },
        cached: true,
      });
      expect(computed).toBe(1);

      const stale = start + CACHE_TTL_MS;
      expect(await cached(ctx, { key: "api-response" }, compute, stale)).toEqual({
        data: { answer: 42, run: 2 },
        cached: false,
      });
      expect(computed).toBe(2);
      expect(await contents("cache")).toEqual({
        "api-response": { data: { answer: 42, run: 2 }, cachedAt: stale },
      });
    });

    it("invalidate deletes the entry, so the next call computes again; invalidating a missing entry is fine", async () => {
      const { ctx } = await workflow("cache");
      let computed = 0;
      const compute = async () => `response ${++computed}`;
      const now = Date.now();
      await cached(ctx, { key: "api-response" }, compute, now);
      await cached(ctx, { key: "other" }, compute, now);

      expect(await cached(ctx, { key: "api-response", invalidate: true }, compute, now)).toEqual({
        cached: false,
        invalidated: true,
      });
      expect(await contents("cache")).toEqual({
        other: { data: "response 2", cachedAt: now },
      });
      expect(await cached(ctx, { key: "api-response", invalidate: true }, compute, now)).toEqual({
        cached: false,
        invalidated: true,
      });
      expect(await cached(ctx, { key: "api-response" }, compute, now)).toEqual({
        data: "response 3",
        cached: false,
      });
      expect(computed).toBe(3);
    });
  });

  describe("results and errors of every method", () => {
    it("listTables lists, sorted, only the tables the workflow has a permission on; the admin sees all", async () => {
      const a = await workflow("a");
      const b = await workflow("b");
      expect(await a.ctx.kv.listTables()).toEqual([]);
      for (const table of ["zeta", "alpha", "Beta", "_x", "1-t", "a-b"])
        await a.ctx.kv.set(table, "k", table);
      await b.ctx.kv.set("b-own", "k", 1);
      expect(await a.ctx.kv.listTables()).toEqual(["1-t", "Beta", "_x", "a-b", "alpha", "zeta"]);
      expect(await b.ctx.kv.listTables()).toEqual(["b-own"]);
      expect(await admin().listTables()).toEqual([
        "1-t",
        "Beta",
        "_x",
        "a-b",
        "alpha",
        "b-own",
        "zeta",
      ]);
    });

    it("listKeys lists a table's keys sorted, and [] once they are all deleted", async () => {
      const { ctx } = await workflow("w");
      for (const key of ["b", "a", "B", "_x", "1", "-z", "a-1"]) await ctx.kv.set("t", key, key);
      expect(await ctx.kv.listKeys("t")).toEqual(["-z", "1", "B", "_x", "a", "a-1", "b"]);
      for (const key of await ctx.kv.listKeys("t")) await ctx.kv.delete("t", key);
      expect(await ctx.kv.listKeys("t")).toEqual([]);
      expect(await ctx.kv.listItems("t")).toEqual([]);
      expect(await ctx.kv.listTables()).toEqual(["t"]);
    });

    it("listItems returns typed items sorted by key, created_at kept by an update and updated_at not before it", async () => {
      const { ctx } = await workflow("w");
      const bob: User = { id: "u2", name: "Bob", email: "bob@example.com" };
      const ann: User = { id: "u1", name: "Ann", email: "ann@example.com" };
      await ctx.kv.set<User>("users", "u2", bob);
      await ctx.kv.set<User>("users", "u1", ann);
      const items = await ctx.kv.listItems<User>("users");
      expectTypeOf(items).toEqualTypeOf<KVItem<User>[]>();
      expect(items.map(stamped)).toEqual([
        { key: "u1", value: ann, created_at: T, updated_at: T },
        { key: "u2", value: bob, created_at: T, updated_at: T },
      ]);
      for (const item of items) expect(item.updated_at).toBe(item.created_at);

      await ctx.kv.set<User>("users", "u2", { ...bob, name: "Robert" });
      const [, updated] = await ctx.kv.listItems<User>("users");
      expect(updated!.value.name).toBe("Robert");
      expect(updated!.created_at).toBe(items[1]!.created_at);
      expect(updated!.updated_at >= items[1]!.updated_at).toBe(true);
    });

    it("get returns any JSON value as it was set, null included", async () => {
      const { ctx } = await workflow("w");
      const values: Record<string, unknown> = {
        null: null,
        zero: 0,
        float: -1.5,
        text: "héllo ✓",
        empty: "",
        yes: true,
        no: false,
        list: [1, "two", null, { three: [3] }],
        nested: { a: { b: { c: [] } }, d: {} },
      };
      for (const [key, value] of Object.entries(values)) await ctx.kv.set("values", key, value);
      for (const [key, value] of Object.entries(values))
        expect(await ctx.kv.get("values", key)).toEqual(value);
      expect(await contents("values")).toEqual(values);
    });

    it("set resolves to undefined, and the creator of a table gets read and write on it", async () => {
      const { id, ctx } = await workflow("creator");
      expect(await ctx.kv.set("t", "k", 1)).toBeUndefined();
      expect((await ctx.kv.listPermissions("t")).map(stamped)).toEqual([
        { workflow_id: id, can_read: true, can_write: true, created_at: T },
      ]);
    });

    it("grantPermission defaults to read and no write, { read: true, write: true } gives both, and a new grant replaces the old", async () => {
      const owner = await workflow("owner");
      const reader = await workflow("reader");
      await owner.ctx.kv.set("t", "k", 1);

      const granted = await owner.ctx.kv.grantPermission("t", reader.id);
      expectTypeOf(granted).toEqualTypeOf<KVPermission>();
      expect(stamped(granted)).toEqual({
        workflow_id: reader.id,
        can_read: true,
        can_write: false,
        created_at: T,
      });
      expect(await permissions("t")).toEqual({
        [owner.id]: [true, true],
        [reader.id]: [true, false],
      });

      const both = await owner.ctx.kv.grantPermission("t", reader.id, { read: true, write: true });
      expect(both).toEqual({ ...granted, can_write: true });
      expect(await permissions("t")).toEqual({
        [owner.id]: [true, true],
        [reader.id]: [true, true],
      });

      expect(await owner.ctx.kv.grantPermission("t", reader.id, { write: true })).toEqual(both);
      const writeOnly = await owner.ctx.kv.grantPermission("t", reader.id, {
        read: false,
        write: true,
      });
      expect(writeOnly).toEqual({ ...granted, can_read: false, can_write: true });
      await reader.ctx.kv.set("t", "from-reader", 2);
      await expectKVError(
        () => reader.ctx.kv.get("t", "k"),
        403,
        "No read permission for table 't'",
        "FORBIDDEN",
      );
      expect(await contents("t")).toEqual({ k: 1, "from-reader": 2 });
    });

    it("grantPermission may name a workflow that has not called yet; it applies once it does", async () => {
      const owner = await workflow("owner");
      await owner.ctx.kv.set("t", "k", "v");
      const id = `later-${++workflows}`;
      await owner.ctx.kv.grantPermission("t", id);
      const token = await tokenFor(id);
      const later = new KVStore("main", { url: serverUrl(), token });
      expect(await later.get("t", "k")).toBe("v");
    });

    it("revokePermission resolves to undefined and removes the row; revoking it again is 404", async () => {
      const owner = await workflow("owner");
      const reader = await workflow("reader");
      await owner.ctx.kv.set("t", "k", 1);
      await owner.ctx.kv.grantPermission("t", reader.id);
      expect(await owner.ctx.kv.revokePermission("t", reader.id)).toBeUndefined();
      expect(await permissions("t")).toEqual({ [owner.id]: [true, true] });
      await expectKVError(
        () => owner.ctx.kv.revokePermission("t", reader.id),
        404,
        `Permission for workflow '${reader.id}' on table 't' not found`,
        "NOT_FOUND",
      );
    });

    it("every method but set answers a missing table with KVError 404 'Table ... not found', creating nothing", async () => {
      const { ctx } = await workflow("w");
      const calls: [string, () => Promise<unknown>][] = [
        ["get", () => ctx.kv.get("nope", "k")],
        ["delete", () => ctx.kv.delete("nope", "k")],
        ["listKeys", () => ctx.kv.listKeys("nope")],
        ["listItems", () => ctx.kv.listItems("nope")],
        ["listPermissions", () => ctx.kv.listPermissions("nope")],
        ["grantPermission", () => ctx.kv.grantPermission("nope", "someone")],
        ["revokePermission", () => ctx.kv.revokePermission("nope", "someone")],
      ];
      for (const [name, call] of calls) {
        const error = await kvErrorOf(call);
        expect([name, error.statusCode, error.message, error.details], name).toEqual([
          name,
          404,
          "Table 'nope' not found",
          { detail: "Table 'nope' not found", code: "NOT_FOUND" },
        ]);
      }
      expect(await admin().listTables()).toEqual([]);
    });

    it("delete of a missing key is KVError 404", async () => {
      const { ctx } = await workflow("w");
      await ctx.kv.set("t", "k", 1);
      await expectKVError(
        () => ctx.kv.delete("t", "gone"),
        404,
        "Key 'gone' not found in table 't'",
        "NOT_FOUND",
      );
      expect(await contents("t")).toEqual({ k: 1 });
    });

    it("a workflow without permission gets KVError 403 from every method, and nothing changes", async () => {
      const owner = await workflow("owner");
      const { ctx } = await workflow("stranger");
      await owner.ctx.kv.set("t", "k", "owner's");
      const read = "No read permission for table 't'";
      const write = "No write permission for table 't'";
      const calls: [string, () => Promise<unknown>, string][] = [
        ["get", () => ctx.kv.get("t", "k"), read],
        ["listKeys", () => ctx.kv.listKeys("t"), read],
        ["listItems", () => ctx.kv.listItems("t"), read],
        ["listPermissions", () => ctx.kv.listPermissions("t"), read],
        ["set", () => ctx.kv.set("t", "k", "stranger's"), write],
        ["set a new key", () => ctx.kv.set("t", "new", "stranger's"), write],
        ["delete", () => ctx.kv.delete("t", "k"), write],
        ["grantPermission", () => ctx.kv.grantPermission("t", "stranger-x"), write],
        ["revokePermission", () => ctx.kv.revokePermission("t", owner.id), write],
      ];
      for (const [name, call, detail] of calls) {
        const error = await kvErrorOf(call);
        expect([name, error.statusCode, error.message, error.details], name).toEqual([
          name,
          403,
          detail,
          { detail, code: "FORBIDDEN" },
        ]);
      }
      expect(await contents("t")).toEqual({ k: "owner's" });
      expect(await permissions("t")).toEqual({ [owner.id]: [true, true] });
      expect(await ctx.kv.listTables()).toEqual([]);
    });

    it("a table or key name outside [a-zA-Z0-9_-], or over 255 characters, is KVError 400 and creates nothing", async () => {
      const { ctx } = await workflow("w");
      const alphanumeric = "must contain only alphanumeric characters, underscores, and hyphens";
      await expectKVError(
        () => ctx.kv.set("bad table", "k", 1),
        400,
        `Table name ${alphanumeric}`,
        "INVALID_ARGUMENT",
      );
      await expectKVError(
        () => ctx.kv.set("t", "bad.key", 1),
        400,
        `Key name ${alphanumeric}`,
        "INVALID_ARGUMENT",
      );
      await expectKVError(
        () => ctx.kv.set("t", "ключ", 1),
        400,
        `Key name ${alphanumeric}`,
        "INVALID_ARGUMENT",
      );
      await expectKVError(
        () => ctx.kv.set("x".repeat(256), "k", 1),
        400,
        "Table name too long (max 255 characters)",
        "INVALID_ARGUMENT",
      );
      await expectKVError(
        () => ctx.kv.set("t", "k".repeat(256), 1),
        400,
        "Key name too long (max 255 characters)",
        "INVALID_ARGUMENT",
      );
      expect(await admin().listTables()).toEqual([]);

      await ctx.kv.set("x".repeat(255), "k".repeat(255), "longest");
      expect(await ctx.kv.get("x".repeat(255), "k".repeat(255))).toBe("longest");
    });

    it("a value over Cairn's 64 KiB limit is KVError 413, one over 1,000,000 characters of JSON 422, and the old value stays", async () => {
      const { ctx } = await workflow("w");
      await ctx.kv.set("t", "big", "x".repeat(60_000));
      await expectKVError(
        () => ctx.kv.set("t", "big", "y".repeat(70_000)),
        413,
        "Value too large (max 65536 bytes)",
        "VALUE_TOO_LARGE",
      );
      await expectKVError(
        () => ctx.kv.set("t", "big", "z".repeat(1_000_000)),
        422,
        "The value is longer than 1000000 characters of JSON",
        "UNPROCESSABLE",
      );
      expect(await contents("t")).toEqual({ big: "x".repeat(60_000) });
    });

    it("an empty, '.' or '..' table or key name is KVError 400 from every method, not another route's answer", async () => {
      // The names would make paths such as /t/ or /t/.. that reach other routes (fetch resolves
      // dot segments): get and the lists resolve to undefined, set and delete fail with 405.
      const { ctx } = await workflow("w");
      await ctx.kv.set("t", "k", "v");
      const alphanumeric = "must contain only alphanumeric characters, underscores, and hyphens";
      const refusals: [string, () => Promise<unknown>, string][] = [];
      for (const [name, reason] of [
        ["", "cannot be empty"],
        [".", alphanumeric],
        ["..", alphanumeric],
      ] as const) {
        refusals.push(
          [`get key '${name}'`, () => ctx.kv.get("t", name), `Key name ${reason}`],
          [`set key '${name}'`, () => ctx.kv.set("t", name, "x"), `Key name ${reason}`],
          [`delete key '${name}'`, () => ctx.kv.delete("t", name), `Key name ${reason}`],
          [`listKeys '${name}'`, () => ctx.kv.listKeys(name), `Table name ${reason}`],
          [`listItems '${name}'`, () => ctx.kv.listItems(name), `Table name ${reason}`],
        );
      }
      const outcomes = [];
      for (const [name, call] of refusals) {
        try {
          outcomes.push([name, "resolved", await call()]);
        } catch (error) {
          outcomes.push([
            name,
            error instanceof KVError ? error.statusCode : error,
            (error as Error).message,
          ]);
        }
      }
      expect(outcomes).toEqual(refusals.map(([name, , message]) => [name, 400, message]));
      expect(await contents("t")).toEqual({ k: "v" });
    });

    it("a url that is not a Cairn server's root is KVError 404 'KV store request failed: Not Found' with the answer as details", async () => {
      const misconfigured = new KVStore("main", { url: `${serverUrl()}/nope/`, token: ADMIN });
      const error = await kvErrorOf(() => misconfigured.listTables());
      expect([error.statusCode, error.message, error.details]).toEqual([
        404,
        "KV store request failed: Not Found",
        { error: "No route for GET /nope/api/kv/main", code: "NOT_FOUND" },
      ]);
    });

    it("a token the server does not know is KVError 401", async () => {
      const stranger = new KVStore("main", { url: serverUrl(), token: "not-a-token" });
      await expectKVError(
        () => stranger.listTables(),
        401,
        "Invalid access token.",
        "UNAUTHORIZED",
      );
    });

    it("a server that is down makes every call reject, not hang", async () => {
      const down = await startServer({
        host: "127.0.0.1",
        port: 0,
        data: ":memory:",
        auth: true,
        token: ADMIN,
      });
      const kv = new KVStore("main", { url: down.url, token: ADMIN });
      await kv.set("t", "k", 1);
      expect(await kv.get("t", "k")).toBe(1);
      await down.close();
      for (const call of [
        () => kv.get("t", "k"),
        () => kv.set("t", "k", 2),
        () => kv.listTables(),
        () => kv.grantPermission("t", "w"),
      ]) {
        const error = await errorOf(call);
        expect(error).toBeInstanceOf(TypeError);
        expect((error as Error).message).toBe("fetch failed");
      }
    });
  });

  describe("Inter-workflow Communication", () => {
    it("workflow A shares table `shared` with B: read, then write, then revoked; B lists it only while it holds a permission", async () => {
      const a = await workflow("producer");
      const b = await workflow("consumer");

      await a.ctx.kv.set("shared", "status", { step: 1 });
      expect(await b.ctx.kv.listTables()).toEqual([]);
      await expectKVError(
        () => b.ctx.kv.get("shared", "status"),
        403,
        "No read permission for table 'shared'",
        "FORBIDDEN",
      );

      // A grants B read.
      await a.ctx.kv.grantPermission("shared", b.id);
      expect(await b.ctx.kv.listTables()).toEqual(["shared"]);
      expect(await b.ctx.kv.get("shared", "status")).toEqual({ step: 1 });
      expect(await b.ctx.kv.listKeys("shared")).toEqual(["status"]);
      await expectKVError(
        () => b.ctx.kv.set("shared", "status", { step: "B" }),
        403,
        "No write permission for table 'shared'",
        "FORBIDDEN",
      );
      await expectKVError(
        () => b.ctx.kv.delete("shared", "status"),
        403,
        "No write permission for table 'shared'",
        "FORBIDDEN",
      );
      await expectKVError(
        () => b.ctx.kv.revokePermission("shared", a.id),
        403,
        "No write permission for table 'shared'",
        "FORBIDDEN",
      );
      expect(await contents("shared")).toEqual({ status: { step: 1 } });

      // A grants B write.
      await a.ctx.kv.grantPermission("shared", b.id, { read: true, write: true });
      await b.ctx.kv.set("shared", "status", { step: 2, by: b.id });
      await b.ctx.kv.set("shared", "reply", "done");
      expect(await a.ctx.kv.get("shared", "status")).toEqual({ step: 2, by: b.id });
      expect(await a.ctx.kv.listKeys("shared")).toEqual(["reply", "status"]);

      // A revokes.
      await a.ctx.kv.revokePermission("shared", b.id);
      await expectKVError(
        () => b.ctx.kv.get("shared", "status"),
        403,
        "No read permission for table 'shared'",
        "FORBIDDEN",
      );
      await expectKVError(
        () => b.ctx.kv.set("shared", "status", { step: 3 }),
        403,
        "No write permission for table 'shared'",
        "FORBIDDEN",
      );
      expect(await b.ctx.kv.listTables()).toEqual([]);
      expect(await a.ctx.kv.listTables()).toEqual(["shared"]);
      expect(await contents("shared")).toEqual({ reply: "done", status: { step: 2, by: b.id } });
      expect(await permissions("shared")).toEqual({ [a.id]: [true, true] });
    });
  });
});
