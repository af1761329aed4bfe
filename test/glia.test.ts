/**
 * The Glia Functions KV Store face over real HTTP, on a SQLite file and on PostgreSQL: the
 * template's own upstream cases as requests to `/glia/test_namespace/…`, every route and answer
 * of the REST API, TTLs, list limits and order, namespaces (and named databases) kept apart,
 * grants on `["glia", <namespace>]`, one winner among concurrent test-and-sets, and bad input
 * refused with a 400 that changes nothing. What is stored is read back through the admin's
 * remote `Kv` (`gliaKvStoreFactory`, and raw entries with their versionstamps).
 */
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import fc from "fast-check";
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { gliaKvStoreFactory, type Kv, limits, openKv } from "../src/index.js";
import { startServer } from "../src/server/server.js";
import { fuzz, hostileValue, jsonText, nearValid, timeoutFor } from "./fuzz/fuzz.js";
import {
  collect,
  describeEach,
  jsonOf,
  POSTGRES_URL,
  type Storage,
  serverForTests,
  storages,
  until,
} from "./targets.js";

const TOKEN = "glia-rest-admin-token";
const ALLOW = "GET, POST, DELETE, OPTIONS";
const NOT_MET = {
  success: false,
  conditionMet: false,
  message: "Condition not met, value was not updated",
};

interface Answer {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: assertions navigate arbitrary response JSON
  readonly json: any;
  readonly text: string;
  readonly headers: Headers;
}

interface CallOptions {
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as is. */
  readonly raw?: string;
  /** `null`: no Authorization header; default the admin's. */
  readonly token?: string | null;
}

/** A Glia error answer: `status` with exactly `{ success: false, error, code }`. */
const failure = (status: number, code: string, error: unknown = expect.any(String)) => ({
  status,
  json: { success: false, error, code },
});
const shape = ({ status, json }: Answer) => ({ status, json });

/** A fresh namespace name. */
const freshNs = () => `ns_${randomUUID().slice(0, 8)}`;

/** Keys `${prefix}000`, `${prefix}001`, …: key order is their numeric order. */
const numbered = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, "0")}`);

/** A request to each route of namespace `ns` (for a key `k`). */
const everyRoute = (ns: string): [string, string, CallOptions][] => [
  ["GET", `/glia/${ns}/health`, {}],
  ["GET", `/glia/${ns}/get?key=k`, {}],
  ["GET", `/glia/${ns}/k`, {}],
  ["GET", `/glia/${ns}/list`, {}],
  ["POST", `/glia/${ns}/set`, { body: { key: "k", value: 1 } }],
  ["POST", `/glia/${ns}/test-and-set`, { body: { key: "k", oldValue: null, newValue: 1 } }],
  ["POST", `/glia/${ns}/batch`, { body: { operations: [{ op: "set", key: "k", value: 1 }] } }],
  ["DELETE", `/glia/${ns}/k`, {}],
];

describeEach(storages, "glia REST face", (storage) => {
  const server = serverForTests(TOKEN, storage);
  let kv: Kv;
  beforeAll(async () => {
    kv = await openKv(server().url, { accessToken: TOKEN });
  });
  afterAll(async () => {
    await kv.close();
  });

  /** Sends a request to `path` on the server; the answer, its JSON parsed when it is JSON. */
  const call = async (method: string, path: string, options: CallOptions = {}): Promise<Answer> => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? TOKEN : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    const response = await fetch(`${server().url}${path}`, { method, headers, body });
    const text = await response.text();
    const json = jsonOf(text);
    return { status: response.status, json, text, headers: response.headers };
  };

  /** The store of `ns` in the default database, as function code sees it (over the remote Kv). */
  const storeOf = (ns: string) => gliaKvStoreFactory(kv).initializeKvStore(ns);

  /** Every stored entry of `ns`: key, value and versionstamp (a rewrite changes the latter). */
  const snapshot = async (ns: string) =>
    (await collect(kv.list({ prefix: ["glia", ns] }))).map((e) => ({
      key: e.key,
      value: e.value,
      versionstamp: e.versionstamp,
    }));

  /** Sets `items` in `ns` through the REST face's batch, ten at a time. */
  const setAll = async (ns: string, items: [string, unknown][]) => {
    for (let i = 0; i < items.length; i += 10) {
      const operations = items.slice(i, i + 10).map(([key, value]) => ({ op: "set", key, value }));
      const answer = await call("POST", `/glia/${ns}/batch`, { body: { operations } });
      expect(answer.status, answer.text).toBe(200);
    }
  };

  /** Creates a principal with `grants` as the admin; its token. */
  const principal = async (grants: unknown[]): Promise<string> => {
    const created = await call("POST", "/admin/tokens", {
      body: { name: `p-${randomUUID().slice(0, 8)}`, grants },
    });
    expect(created.status, created.text).toBe(201);
    return created.json.token as string;
  };

  /** Sends the request, expects `expected` (status and body), and that `ns` did not change. */
  const refusedUnchanged = async (
    ns: string,
    method: string,
    path: string,
    options: CallOptions,
    expected: { status: number; json: unknown },
  ) => {
    const before = await snapshot(ns);
    const answer = await call(method, path, options);
    expect(
      shape(answer),
      `${method} ${path} ${options.raw ?? JSON.stringify(options.body)}`,
    ).toEqual(expected);
    expect(await snapshot(ns)).toEqual(before);
  };

  describe("the template's own cases (test/function.test.js), over HTTP", () => {
    const NS = "test_namespace";
    const base = `/glia/${NS}`;
    const store = () => storeOf(NS);
    beforeEach(async () => {
      for (const entry of await collect(kv.list({ prefix: ["glia", NS] })))
        await kv.delete(entry.key);
    });

    it("healthcheck: healthy, with the store checked ok, leaving no key behind", async () => {
      const answer = await call("GET", `${base}/health`);
      expect(shape(answer)).toEqual({
        status: 200,
        json: { status: "healthy", kvStoreCheck: "ok" },
      });
      expect(await snapshot(NS)).toEqual([]);
    });

    it("healthcheck: a storage failure answers 503 unhealthy with the error, and healthy once storage is back", async () => {
      await withBrokenStorage(storage, async (url, breakStorage, mend) => {
        const health = () =>
          fetch(`${url}${base}/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
        expect((await health()).status).toBe(200);
        await breakStorage();
        const broken = await health();
        expect(broken.status).toBe(503);
        expect(await broken.json()).toEqual({ status: "unhealthy", error: expect.any(String) });
        await mend();
        const mended = await health();
        expect({ status: mended.status, json: await mended.json() }).toEqual({
          status: 200,
          json: { status: "healthy", kvStoreCheck: "ok" },
        });
      });
    });

    it("GET /get?key= of a missing key: 404 Key not found", async () => {
      expect(shape(await call("GET", `${base}/get?key=nonexistent`))).toEqual(
        failure(404, "NOT_FOUND", "Key not found"),
      );
    });

    it("GET /get?key= of an existing key: 200 with its value", async () => {
      await store().set({ key: "test-key", value: "test-value" });
      expect(shape(await call("GET", `${base}/get?key=test-key`))).toEqual({
        status: 200,
        json: { success: true, key: "test-key", value: "test-value", expires: null },
      });
    });

    it("GET /list lists every item", async () => {
      await store().set({ key: "key1", value: "value1" });
      await store().set({ key: "key2", value: "value2" });
      expect(shape(await call("GET", `${base}/list`))).toEqual({
        status: 200,
        json: {
          success: true,
          count: 2,
          items: [
            { key: "key1", value: "value1", expires: null },
            { key: "key2", value: "value2", expires: null },
          ],
        },
      });
    });

    it("GET /list?prefix=user lists the user keys and not config_setting", async () => {
      await store().set({ key: "user1_name", value: "Alice" });
      await store().set({ key: "user2_name", value: "Bob" });
      await store().set({ key: "config_setting", value: "value" });
      expect(shape(await call("GET", `${base}/list?prefix=user`))).toEqual({
        status: 200,
        json: {
          success: true,
          count: 2,
          items: [
            { key: "user1_name", value: "Alice", expires: null },
            { key: "user2_name", value: "Bob", expires: null },
          ],
        },
      });
    });

    it("POST /set sets the value, which the store then reads", async () => {
      const answer = await call("POST", `${base}/set`, {
        body: { key: "test-key", value: "test-value" },
      });
      expect(shape(answer)).toEqual({
        status: 200,
        json: { success: true, key: "test-key", value: "test-value", expires: null },
      });
      expect(await store().get("test-key")).toEqual({
        key: "test-key",
        value: "test-value",
        expires: null,
      });
    });

    it("POST /test-and-set with the current value: condition met, the new value stored", async () => {
      await store().set({ key: "test-key", value: "old-value" });
      const answer = await call("POST", `${base}/test-and-set`, {
        body: { key: "test-key", oldValue: "old-value", newValue: "new-value" },
      });
      expect(shape(answer)).toEqual({
        status: 200,
        json: {
          success: true,
          conditionMet: true,
          key: "test-key",
          value: "new-value",
          expires: null,
        },
      });
      expect((await store().get("test-key"))?.value).toBe("new-value");
    });

    it("POST /test-and-set with another value: 200, condition not met, the value unchanged", async () => {
      await store().set({ key: "test-key", value: "actual-value" });
      const before = await snapshot(NS);
      const answer = await call("POST", `${base}/test-and-set`, {
        body: { key: "test-key", oldValue: "wrong-value", newValue: "new-value" },
      });
      expect(shape(answer)).toEqual({ status: 200, json: NOT_MET });
      expect((await store().get("test-key"))?.value).toBe("actual-value");
      expect(await snapshot(NS)).toEqual(before);
    });

    it("POST /batch: set, get of an existing key, get of a missing one (null), test-and-set, in order", async () => {
      await store().set({ key: "existing-key", value: "existing-value" });
      const answer = await call("POST", `${base}/batch`, {
        body: {
          operations: [
            { op: "set", key: "key1", value: "value1" },
            { op: "get", key: "existing-key" },
            { op: "get", key: "nonexistent-key" },
            {
              op: "test-and-set",
              key: "existing-key",
              oldValue: "existing-value",
              newValue: "updated-value",
            },
          ],
        },
      });
      expect(shape(answer)).toEqual({
        status: 200,
        json: {
          success: true,
          results: [
            { key: "key1", value: "value1", expires: null },
            { key: "existing-key", value: "existing-value", expires: null },
            null,
            { key: "existing-key", value: "updated-value", expires: null, conditionMet: true },
          ],
        },
      });
      expect((await store().get("existing-key"))?.value).toBe("updated-value");
      expect((await store().get("key1"))?.value).toBe("value1");
    });

    it("DELETE /delete?key= deletes: the store then reads null", async () => {
      await store().set({ key: "delete-key", value: "delete-value" });
      expect(shape(await call("DELETE", `${base}/delete?key=delete-key`))).toEqual({
        status: 200,
        json: { success: true, key: "delete-key", deleted: true },
      });
      expect(await store().get("delete-key")).toBeNull();
    });

    it("PUT /invalid: 405 Method not allowed, with Allow", async () => {
      const answer = await call("PUT", `${base}/invalid`);
      expect(shape(answer)).toEqual({ status: 405, json: { error: "Method not allowed" } });
      expect(answer.headers.get("allow")).toBe(ALLOW);
    });

    it("POST /set without a key: 400 Missing key parameter, nothing stored", async () => {
      await refusedUnchanged(
        NS,
        "POST",
        `${base}/set`,
        { body: { value: "missing-key-value" } },
        failure(400, "INVALID_ARGUMENT", "Missing key parameter"),
      );
    });
  });

  describe("routes", () => {
    it("GET /?key= gets (404 when missing); GET / without key lists; GET /<key> gets by the path", async () => {
      const ns = freshNs();
      await setAll(ns, [
        ["a", 1],
        ["b", { deep: [true, null] }],
      ]);
      expect(shape(await call("GET", `/glia/${ns}/?key=b`))).toEqual({
        status: 200,
        json: { success: true, key: "b", value: { deep: [true, null] }, expires: null },
      });
      expect(shape(await call("GET", `/glia/${ns}?key=a`))).toEqual({
        status: 200,
        json: { success: true, key: "a", value: 1, expires: null },
      });
      expect(shape(await call("GET", `/glia/${ns}/?key=c`))).toEqual(
        failure(404, "NOT_FOUND", "Key not found"),
      );
      const listed = {
        status: 200,
        json: {
          success: true,
          count: 2,
          items: [
            { key: "a", value: 1, expires: null },
            { key: "b", value: { deep: [true, null] }, expires: null },
          ],
        },
      };
      expect(shape(await call("GET", `/glia/${ns}/`))).toEqual(listed);
      expect(shape(await call("GET", `/glia/${ns}`))).toEqual(listed);
      expect(shape(await call("GET", `/glia/${ns}/b`))).toEqual({
        status: 200,
        json: { success: true, key: "b", value: { deep: [true, null] }, expires: null },
      });
      expect(shape(await call("GET", `/glia/${ns}/nope`))).toEqual(
        failure(404, "NOT_FOUND", "Key not found"),
      );
      // A key with characters a path must encode.
      await setAll(ns, [["a b/c", "spaced"]]);
      expect(
        shape(await call("GET", `/glia/${ns}/get?key=${encodeURIComponent("a b/c")}`)),
      ).toEqual({
        status: 200,
        json: { success: true, key: "a b/c", value: "spaced", expires: null },
      });
    });

    it("GET /?key= and /get?key= with an empty or absent key: 400 Missing key parameter", async () => {
      const ns = freshNs();
      const missing = failure(400, "INVALID_ARGUMENT", "Missing key parameter");
      expect(shape(await call("GET", `/glia/${ns}/?key=`))).toEqual(missing);
      expect(shape(await call("GET", `/glia/${ns}/get?key=`))).toEqual(missing);
      expect(shape(await call("GET", `/glia/${ns}/get`))).toEqual(missing);
    });

    it("DELETE /?key=, /delete?key= and /<key> each delete that key and only it", async () => {
      const ns = freshNs();
      await setAll(ns, [
        ["d1", 1],
        ["d2", 2],
        ["d3", 3],
        ["keep", 4],
      ]);
      for (const [path, key] of [
        ["/?key=d1", "d1"],
        ["/delete?key=d2", "d2"],
        ["/d3", "d3"],
      ] as const) {
        expect(shape(await call("DELETE", `/glia/${ns}${path}`))).toEqual({
          status: 200,
          json: { success: true, key, deleted: true },
        });
        expect(shape(await call("GET", `/glia/${ns}/get?key=${key}`))).toEqual(
          failure(404, "NOT_FOUND", "Key not found"),
        );
      }
      expect((await snapshot(ns)).map((e) => e.key)).toEqual([["glia", ns, "keep"]]);
      // Deleting a key that is not there answers the same.
      expect(shape(await call("DELETE", `/glia/${ns}/delete?key=never`))).toEqual({
        status: 200,
        json: { success: true, key: "never", deleted: true },
      });
    });

    it("DELETE without a key: 400 Missing key parameter, nothing deleted", async () => {
      const ns = freshNs();
      await setAll(ns, [["keep", 1]]);
      const missing = failure(400, "INVALID_ARGUMENT", "Missing key parameter");
      await refusedUnchanged(ns, "DELETE", `/glia/${ns}/`, {}, missing);
      await refusedUnchanged(ns, "DELETE", `/glia/${ns}/delete`, {}, missing);
      await refusedUnchanged(ns, "DELETE", `/glia/${ns}/?key=`, {}, missing);
    });

    it("POST to any other path sets the body's key (not the path's)", async () => {
      const ns = freshNs();
      for (const path of ["/set", "/", "", "/whatever", "/put", "/other-key"]) {
        const key = `k${path.replace(/\W/g, "_")}`;
        expect(
          shape(await call("POST", `/glia/${ns}${path}`, { body: { key, value: path } })),
          path,
        ).toEqual({ status: 200, json: { success: true, key, value: path, expires: null } });
        expect((await storeOf(ns).get(key))?.value).toBe(path);
      }
      expect(await storeOf(ns).get("other-key")).toBeNull();
      expect(await storeOf(ns).get("whatever")).toBeNull();
    });

    it("POST /set with value null deletes the key: { success, key, value: null }", async () => {
      const ns = freshNs();
      await setAll(ns, [["gone", "x"]]);
      expect(
        shape(await call("POST", `/glia/${ns}/set`, { body: { key: "gone", value: null } })),
      ).toEqual({ status: 200, json: { success: true, key: "gone", value: null } });
      expect(await snapshot(ns)).toEqual([]);
    });

    it("a Glia invoker's envelope { payload } is unwrapped, as an object or as JSON text", async () => {
      const ns = freshNs();
      expect(
        shape(
          await call("POST", `/glia/${ns}/set`, {
            body: { payload: { key: "obj", value: { n: 1 } } },
          }),
        ),
      ).toEqual({
        status: 200,
        json: { success: true, key: "obj", value: { n: 1 }, expires: null },
      });
      expect(
        shape(
          await call("POST", `/glia/${ns}/set`, {
            body: { payload: JSON.stringify({ key: "txt", value: "t" }) },
          }),
        ),
      ).toEqual({ status: 200, json: { success: true, key: "txt", value: "t", expires: null } });
      expect(
        shape(
          await call("POST", `/glia/${ns}/test-and-set`, {
            body: { payload: JSON.stringify({ key: "txt", oldValue: "t", newValue: "u" }) },
          }),
        ),
      ).toEqual({
        status: 200,
        json: { success: true, conditionMet: true, key: "txt", value: "u", expires: null },
      });
      expect(
        shape(
          await call("POST", `/glia/${ns}/batch`, {
            body: { payload: { operations: [{ op: "get", key: "obj" }] } },
          }),
        ),
      ).toEqual({
        status: 200,
        json: { success: true, results: [{ key: "obj", value: { n: 1 }, expires: null }] },
      });
      expect(
        (await snapshot(ns)).map((e) => [e.key[2], (e.value as { value: unknown }).value]),
      ).toEqual([
        ["obj", { n: 1 }],
        ["txt", "u"],
      ]);
      // A payload that is not JSON text is malformed JSON, and changes nothing.
      await refusedUnchanged(
        ns,
        "POST",
        `/glia/${ns}/set`,
        { body: { payload: '{"key":"bad",' } },
        failure(400, "INVALID_JSON"),
      );
    });

    it("OPTIONS on a Glia path answers the CORS preflight: 204, any origin", async () => {
      const ns = freshNs();
      for (const path of [`/glia/${ns}/`, `/glia/${ns}/set`, `/glia/${ns}/some-key`]) {
        const answer = await fetch(`${server().url}${path}`, {
          method: "OPTIONS",
          headers: { origin: "https://example.com", "access-control-request-method": "POST" },
        });
        expect(answer.status, path).toBe(204);
        expect(answer.headers.get("access-control-allow-origin")).toBe("*");
        expect(answer.headers.get("access-control-allow-methods")).toContain("POST");
        expect(answer.headers.get("access-control-allow-methods")).toContain("DELETE");
        expect(answer.headers.get("access-control-allow-headers")).toContain("content-type");
      }
    });

    it("PUT anywhere under a namespace: 405 with Allow, nothing changed", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", 1]]);
      for (const path of ["/", "/k", "/set"]) {
        const before = await snapshot(ns);
        const answer = await call("PUT", `/glia/${ns}${path}`, { body: { key: "k", value: 2 } });
        expect(shape(answer), path).toEqual({ status: 405, json: { error: "Method not allowed" } });
        expect(answer.headers.get("allow")).toBe(ALLOW);
        expect(await snapshot(ns)).toEqual(before);
      }
    });
  });

  describe("TTL", () => {
    it("ttl (seconds) on /set gives expires = the time of the write + ttl * 1000, as GET reads it", async () => {
      const ns = freshNs();
      const start = Date.now();
      const answer = await call("POST", `/glia/${ns}/set`, {
        body: { key: "t", value: "v", ttl: 60 },
      });
      const end = Date.now();
      expect(answer.status).toBe(200);
      const { expires } = answer.json;
      expect(answer.json).toEqual({ success: true, key: "t", value: "v", expires });
      expect(expires).toBeGreaterThanOrEqual(start + 60_000);
      expect(expires).toBeLessThanOrEqual(end + 60_000);
      expect(shape(await call("GET", `/glia/${ns}/t`))).toEqual({
        status: 200,
        json: { success: true, key: "t", value: "v", expires },
      });
      // ttl 0 means no expiry.
      const zero = await call("POST", `/glia/${ns}/set`, { body: { key: "z", value: 1, ttl: 0 } });
      expect(shape(zero)).toEqual({
        status: 200,
        json: { success: true, key: "z", value: 1, expires: null },
      });
    });

    it("ttl on /test-and-set, and expirationTtl on a batch's set, give expires the same way", async () => {
      const ns = freshNs();
      await setAll(ns, [["t", "old"]]);
      let start = Date.now();
      const tas = await call("POST", `/glia/${ns}/test-and-set`, {
        body: { key: "t", oldValue: "old", newValue: "new", ttl: 30 },
      });
      let end = Date.now();
      expect(tas.json).toEqual({
        success: true,
        conditionMet: true,
        key: "t",
        value: "new",
        expires: expect.any(Number),
      });
      expect(tas.json.expires).toBeGreaterThanOrEqual(start + 30_000);
      expect(tas.json.expires).toBeLessThanOrEqual(end + 30_000);
      start = Date.now();
      const batch = await call("POST", `/glia/${ns}/batch`, {
        body: { operations: [{ op: "set", key: "b", value: 1, expirationTtl: 90 }] },
      });
      end = Date.now();
      expect(batch.json).toEqual({
        success: true,
        results: [{ key: "b", value: 1, expires: expect.any(Number) }],
      });
      expect(batch.json.results[0].expires).toBeGreaterThanOrEqual(start + 90_000);
      expect(batch.json.results[0].expires).toBeLessThanOrEqual(end + 90_000);
    });

    it("an item set with ttl 1 lapses: GET answers 404 and list omits it, the others stay", async () => {
      const ns = freshNs();
      await setAll(ns, [["stays", "s"]]);
      const set = await call("POST", `/glia/${ns}/set`, {
        body: { key: "brief", value: "b", ttl: 1 },
      });
      expect(set.status).toBe(200);
      await until(async () => (await call("GET", `/glia/${ns}/brief`)).status === 404, 5000);
      expect(shape(await call("GET", `/glia/${ns}/get?key=brief`))).toEqual(
        failure(404, "NOT_FOUND", "Key not found"),
      );
      expect(shape(await call("GET", `/glia/${ns}/list`))).toEqual({
        status: 200,
        json: { success: true, count: 1, items: [{ key: "stays", value: "s", expires: null }] },
      });
      expect(Date.now()).toBeGreaterThanOrEqual(set.json.expires);
      // The expired item does not satisfy a test-and-set either: it is absent.
      expect(
        shape(
          await call("POST", `/glia/${ns}/test-and-set`, {
            body: { key: "brief", oldValue: null, newValue: "again" },
          }),
        ).json.conditionMet,
      ).toBe(true);
    });
  });

  describe("list", () => {
    it("limit defaults to 100 (of 105 items, the first 100 in key order); limit=3 gives 3; 1000 all", async () => {
      const ns = freshNs();
      const keys = numbered("item", 105);
      await setAll(
        ns,
        keys.map((k, i) => [k, i]),
      );
      const all = await call("GET", `/glia/${ns}/list`);
      expect(all.status).toBe(200);
      expect(all.json.count).toBe(100);
      expect(all.json.items.map((i: { key: string }) => i.key)).toEqual(keys.slice(0, 100));
      expect(all.json.items[99]).toEqual({ key: "item099", value: 99, expires: null });
      expect((await call("GET", `/glia/${ns}/`)).json.count).toBe(100);
      expect(shape(await call("GET", `/glia/${ns}/list?limit=3`))).toEqual({
        status: 200,
        json: {
          success: true,
          count: 3,
          items: [0, 1, 2].map((i) => ({ key: keys[i], value: i, expires: null })),
        },
      });
      const most = await call("GET", `/glia/${ns}/list?limit=1000`);
      expect(most.json.count).toBe(105);
      expect(most.json.items.map((i: { key: string }) => i.key)).toEqual(keys);
      const prefixed = await call("GET", `/glia/${ns}/list?prefix=item10&limit=2`);
      expect(prefixed.json.items.map((i: { key: string }) => i.key)).toEqual([
        "item100",
        "item101",
      ]);
    });

    it("a limit of 0, -1, abc, 1.5 or 1001 is a 400", async () => {
      const ns = freshNs();
      await setAll(ns, [["a", 1]]);
      for (const limit of ["0", "-1", "abc", "1.5", "1001", ""]) {
        for (const path of [`/glia/${ns}/list?limit=${limit}`, `/glia/${ns}/?limit=${limit}`]) {
          expect(shape(await call("GET", path)), path).toEqual(failure(400, "INVALID_ARGUMENT"));
        }
      }
      expect(limits.maxListLimit).toBe(1000);
    });

    it("lists in key order (UTF-8 byte order), whatever order the keys were set in; prefix is a string prefix", async () => {
      const ns = freshNs();
      const keys = ["b", "aa", "a_1", "B", "a", "a-1", "é", "z", "ab"];
      await setAll(
        ns,
        keys.map((k) => [k, k]),
      );
      const sorted = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const listed = await call("GET", `/glia/${ns}/list`);
      expect(listed.json.items.map((i: { key: string }) => i.key)).toEqual(sorted);
      const a = await call("GET", `/glia/${ns}/list?prefix=a`);
      expect(a.json).toEqual({
        success: true,
        count: 5,
        items: ["a", "a-1", "a_1", "aa", "ab"].map((k) => ({ key: k, value: k, expires: null })),
      });
      expect(shape(await call("GET", `/glia/${ns}/list?prefix=nothing`))).toEqual({
        status: 200,
        json: { success: true, count: 0, items: [] },
      });
    });
  });

  describe("namespaces", () => {
    it("the same key in two namespaces holds two independent values", async () => {
      const [one, two] = [freshNs(), freshNs()];
      await call("POST", `/glia/${one}/set`, { body: { key: "shared", value: "one" } });
      await call("POST", `/glia/${two}/set`, { body: { key: "shared", value: "two" } });
      expect((await call("GET", `/glia/${one}/shared`)).json.value).toBe("one");
      expect((await call("GET", `/glia/${two}/shared`)).json.value).toBe("two");
      expect(
        (
          await call("POST", `/glia/${one}/test-and-set`, {
            body: { key: "shared", oldValue: "two", newValue: "x" },
          })
        ).json,
      ).toEqual(NOT_MET);
      await call("DELETE", `/glia/${one}/shared`);
      expect((await call("GET", `/glia/${one}/shared`)).status).toBe(404);
      expect(shape(await call("GET", `/glia/${two}/shared`))).toEqual({
        status: 200,
        json: { success: true, key: "shared", value: "two", expires: null },
      });
    });

    it("a list in one namespace never shows another's items, even one whose name it prefixes", async () => {
      const one = freshNs();
      const longer = `${one}x`;
      await setAll(one, [["a1", 1]]);
      await setAll(longer, [
        ["a2", 2],
        ["b", 3],
      ]);
      expect((await call("GET", `/glia/${one}/list`)).json).toEqual({
        success: true,
        count: 1,
        items: [{ key: "a1", value: 1, expires: null }],
      });
      expect((await call("GET", `/glia/${one}/list?prefix=a`)).json.count).toBe(1);
      expect((await call("GET", `/glia/${longer}/list`)).json.count).toBe(2);
    });

    it("an invalid namespace (bad$ns, bad.ns, café) is a 400 on every route, and nothing is written", async () => {
      for (const ns of ["bad$ns", "bad.ns", "caf%C3%A9"]) {
        for (const [method, path, options] of everyRoute(ns)) {
          expect(shape(await call(method, path, options)), `${method} ${path}`).toEqual(
            failure(400, "INVALID_ARGUMENT", expect.stringContaining("namespace")),
          );
        }
      }
      expect(
        (await collect(kv.list({ prefix: ["glia"] }))).filter((e) =>
          /^(bad|caf)/.test(String(e.key[1])),
        ),
      ).toEqual([]);
    });

    it("a namespace of 101 to 128 characters works on every route, and one of 129 is a 400", async () => {
      for (const length of [100, 101, 128]) {
        const ns = `${"N".repeat(length - 1)}${length % 10}`;
        expect(
          shape(await call("POST", `/glia/${ns}/set`, { body: { key: "k", value: length } })),
          `POST /glia/<${length} characters>/set`,
        ).toEqual({ status: 200, json: { success: true, key: "k", value: length, expires: null } });
        // With k set, every route answers 200 (the test-and-set's condition is not met).
        for (const [method, path, options] of everyRoute(ns)) {
          const answer = await call(method, path, options);
          expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(200);
        }
      }
      const tooLong = "a".repeat(129);
      for (const [method, path, options] of everyRoute(tooLong)) {
        expect(shape(await call(method, path, options)), `${method} ${path}`).toEqual(
          failure(400, "INVALID_ARGUMENT", expect.stringContaining("namespace")),
        );
      }
    });

    it("under a named database (/db/<name>/glia/<ns>/) the data is apart from the default database's", async () => {
      const ns = freshNs();
      const db = `shop_${randomUUID().slice(0, 6)}`;
      // Reading a named database that nothing created yet: 404 in the face's format.
      expect(shape(await call("GET", `/db/${db}/glia/${ns}/k`))).toEqual(failure(404, "NOT_FOUND"));
      expect(
        shape(
          await call("POST", `/db/${db}/glia/${ns}/set`, { body: { key: "k", value: "shop" } }),
        ),
      ).toEqual({ status: 200, json: { success: true, key: "k", value: "shop", expires: null } });
      expect(shape(await call("GET", `/glia/${ns}/k`))).toEqual(
        failure(404, "NOT_FOUND", "Key not found"),
      );
      expect(await snapshot(ns)).toEqual([]);
      await call("POST", `/glia/${ns}/set`, { body: { key: "k", value: "default" } });
      await call("POST", `/glia/${ns}/set`, { body: { key: "only-default", value: 1 } });
      expect((await call("GET", `/db/${db}/glia/${ns}/k`)).json.value).toBe("shop");
      expect((await call("GET", `/glia/${ns}/k`)).json.value).toBe("default");
      expect((await call("GET", `/db/${db}/glia/${ns}/list`)).json).toEqual({
        success: true,
        count: 1,
        items: [{ key: "k", value: "shop", expires: null }],
      });
      expect(shape(await call("GET", `/db/${db}/glia/${ns}/health`))).toEqual({
        status: 200,
        json: { status: "healthy", kvStoreCheck: "ok" },
      });
      expect(shape(await call("DELETE", `/db/${db}/glia/${ns}/k`)).status).toBe(200);
      expect((await call("GET", `/db/${db}/glia/${ns}/k`)).status).toBe(404);
      expect((await call("GET", `/glia/${ns}/k`)).json.value).toBe("default");
    });
  });

  describe("grants", () => {
    it("readwrite on [glia, ns1] works in ns1, and is 403 FORBIDDEN in ns2 (and ns1x), which stays unchanged", async () => {
      const ns1 = freshNs();
      const ns2 = freshNs();
      const ns1x = `${ns1}x`;
      const token = await principal([{ prefix: ["glia", ns1], access: "readwrite" }]);
      const as = { token };
      expect(
        shape(await call("POST", `/glia/${ns1}/set`, { ...as, body: { key: "k", value: 1 } })),
      ).toEqual({ status: 200, json: { success: true, key: "k", value: 1, expires: null } });
      expect((await call("GET", `/glia/${ns1}/k`, as)).json.value).toBe(1);
      expect((await call("GET", `/glia/${ns1}/list`, as)).json.count).toBe(1);
      expect(
        (
          await call("POST", `/glia/${ns1}/test-and-set`, {
            ...as,
            body: { key: "k", oldValue: 1, newValue: 2 },
          })
        ).json.conditionMet,
      ).toBe(true);
      expect(
        (
          await call("POST", `/glia/${ns1}/batch`, {
            ...as,
            body: {
              operations: [
                { op: "get", key: "k" },
                { op: "set", key: "j", value: 3 },
              ],
            },
          })
        ).json.results,
      ).toEqual([
        { key: "k", value: 2, expires: null },
        { key: "j", value: 3, expires: null },
      ]);
      expect(shape(await call("GET", `/glia/${ns1}/health`, as))).toEqual({
        status: 200,
        json: { status: "healthy", kvStoreCheck: "ok" },
      });
      expect((await call("DELETE", `/glia/${ns1}/j`, as)).status).toBe(200);
      expect((await snapshot(ns1)).map((e) => e.key[2])).toEqual(["k"]);

      for (const other of [ns2, ns1x]) {
        await setAll(other, [["k", "theirs"]]);
        const forbidden = failure(403, "FORBIDDEN");
        const requests: [string, string, CallOptions][] = [
          ["GET", `/glia/${other}/k`, as],
          ["GET", `/glia/${other}/get?key=k`, as],
          ["GET", `/glia/${other}/list`, as],
          ["GET", `/glia/${other}/`, as],
          ["GET", `/glia/${other}/health`, as],
          ["POST", `/glia/${other}/set`, { ...as, body: { key: "k", value: "mine" } }],
          ["POST", `/glia/${other}/set`, { ...as, body: { key: "new", value: "mine" } }],
          [
            "POST",
            `/glia/${other}/test-and-set`,
            { ...as, body: { key: "k", oldValue: "theirs", newValue: "mine" } },
          ],
          [
            "POST",
            `/glia/${other}/batch`,
            { ...as, body: { operations: [{ op: "set", key: "k", value: "mine" }] } },
          ],
          [
            "POST",
            `/glia/${other}/batch`,
            { ...as, body: { operations: [{ op: "get", key: "k" }] } },
          ],
          ["DELETE", `/glia/${other}/k`, as],
          ["DELETE", `/glia/${other}/delete?key=k`, as],
        ];
        for (const [method, path, options] of requests) {
          await refusedUnchanged(other, method, path, options, forbidden);
        }
      }
    });

    it("a read grant gets and lists; set, delete, test-and-set and a batch with a set are 403 and change nothing", async () => {
      const ns = freshNs();
      await setAll(ns, [
        ["k", "v"],
        ["m", "w"],
      ]);
      const token = await principal([{ prefix: ["glia", ns], access: "read" }]);
      const as = { token };
      expect(shape(await call("GET", `/glia/${ns}/k`, as))).toEqual({
        status: 200,
        json: { success: true, key: "k", value: "v", expires: null },
      });
      expect(shape(await call("GET", `/glia/${ns}/?key=m`, as)).json.value).toBe("w");
      expect((await call("GET", `/glia/${ns}/list`, as)).json.count).toBe(2);
      expect(shape(await call("GET", `/glia/${ns}/nope`, as))).toEqual(
        failure(404, "NOT_FOUND", "Key not found"),
      );
      expect(
        (
          await call("POST", `/glia/${ns}/batch`, {
            ...as,
            body: { operations: [{ op: "get", key: "k" }] },
          })
        ).json,
      ).toEqual({ success: true, results: [{ key: "k", value: "v", expires: null }] });

      const forbidden = failure(403, "FORBIDDEN");
      const requests: [string, string, CallOptions][] = [
        ["POST", `/glia/${ns}/set`, { ...as, body: { key: "k", value: "x" } }],
        ["POST", `/glia/${ns}/set`, { ...as, body: { key: "new", value: "x" } }],
        ["POST", `/glia/${ns}/set`, { ...as, body: { key: "k", value: null } }],
        ["DELETE", `/glia/${ns}/k`, as],
        ["DELETE", `/glia/${ns}/?key=k`, as],
        [
          "POST",
          `/glia/${ns}/test-and-set`,
          { ...as, body: { key: "k", oldValue: "v", newValue: "x" } },
        ],
        [
          "POST",
          `/glia/${ns}/batch`,
          {
            ...as,
            body: {
              operations: [
                { op: "get", key: "k" },
                { op: "set", key: "k", value: "x" },
              ],
            },
          },
        ],
        [
          "POST",
          `/glia/${ns}/batch`,
          { ...as, body: { operations: [{ op: "delete", key: "m" }] } },
        ],
      ];
      for (const [method, path, options] of requests) {
        await refusedUnchanged(ns, method, path, options, forbidden);
      }
    });

    it("no token, or a wrong one: 401 UNAUTHORIZED in the face's format, nothing changed", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      for (const token of [null, "not-a-token"]) {
        for (const [method, path, options] of [
          ["GET", `/glia/${ns}/k`, {}],
          ["GET", `/glia/${ns}/list`, {}],
          ["GET", `/glia/${ns}/health`, {}],
          ["POST", `/glia/${ns}/set`, { body: { key: "k", value: "x" } }],
          ["DELETE", `/glia/${ns}/k`, {}],
        ] as [string, string, CallOptions][]) {
          await refusedUnchanged(
            ns,
            method,
            path,
            { ...options, token },
            failure(401, "UNAUTHORIZED"),
          );
        }
      }
    });
  });

  describe("concurrency", () => {
    it("of 20 concurrent test-and-sets from the same oldValue, exactly one is met and its newValue is stored (5 rounds)", async () => {
      const ns = freshNs();
      let current = "v0";
      await setAll(ns, [["counter", current]]);
      for (let round = 1; round <= 5; round++) {
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            call("POST", `/glia/${ns}/test-and-set`, {
              body: { key: "counter", oldValue: current, newValue: `r${round}-${i}` },
            }),
          ),
        );
        expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
        const met = answers.filter((a) => a.json.conditionMet === true);
        expect(met, `round ${round}`).toHaveLength(1);
        expect(answers.filter((a) => a !== met[0]).map((a) => a.json)).toEqual(
          Array(19).fill(NOT_MET),
        );
        const winner = met[0]!.json;
        expect(winner).toEqual({
          success: true,
          conditionMet: true,
          key: "counter",
          value: expect.stringMatching(new RegExp(`^r${round}-(\\d|1\\d)$`)),
          expires: null,
        });
        expect((await storeOf(ns).get("counter"))?.value).toBe(winner.value);
        current = winner.value;
      }
    });

    it("of 20 concurrent creates (oldValue null), exactly one is met", async () => {
      const ns = freshNs();
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          call("POST", `/glia/${ns}/test-and-set`, {
            body: { key: "lock", oldValue: null, newValue: { owner: i } },
          }),
        ),
      );
      const met = answers.filter((a) => a.status === 200 && a.json.conditionMet === true);
      expect(met).toHaveLength(1);
      expect(answers.filter((a) => a.status === 200 && a.json.conditionMet === false)).toHaveLength(
        19,
      );
      expect((await storeOf(ns).get("lock"))?.value).toEqual(met[0]!.json.value);
    });
  });

  describe("bad input: 400, and nothing changed", () => {
    const invalid = failure(400, "INVALID_ARGUMENT");

    it("/set: malformed JSON, an empty body, an array or a string body", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      const path = `/glia/${ns}/set`;
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { raw: '{"key":"k","value":' },
        failure(400, "INVALID_JSON"),
      );
      await refusedUnchanged(ns, "POST", path, { raw: "" }, failure(400, "INVALID_JSON"));
      await refusedUnchanged(ns, "POST", path, { body: [{ key: "k", value: "x" }] }, invalid);
      await refusedUnchanged(ns, "POST", path, { body: "k=x" }, invalid);
      await refusedUnchanged(ns, "POST", path, { body: 42 }, invalid);
      await refusedUnchanged(ns, "POST", path, { body: null }, invalid);
      await refusedUnchanged(ns, "POST", path, { body: { payload: [1] } }, invalid);
    });

    it("/set: unknown fields (expirationTtl), a missing value", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      const path = `/glia/${ns}/set`;
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: "k", value: "x", expirationTtl: 60 } },
        failure(400, "INVALID_ARGUMENT", expect.stringContaining("expirationTtl")),
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: "k", value: "x", extra: 1 } },
        invalid,
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: "k" } },
        failure(400, "INVALID_ARGUMENT", "Missing value parameter"),
      );
    });

    it("/set: a key that is not a non-empty string of at most 512 bytes", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      const path = `/glia/${ns}/set`;
      for (const key of [5, true, { a: 1 }, ["k"], `${"é".repeat(256)}a`, "x".repeat(513)]) {
        await refusedUnchanged(ns, "POST", path, { body: { key, value: "x" } }, invalid);
      }
      for (const key of ["", null, 0, false]) {
        await refusedUnchanged(
          ns,
          "POST",
          path,
          { body: { key, value: "x" } },
          failure(400, "INVALID_ARGUMENT", "Missing key parameter"),
        );
      }
      // At the limit: 512 bytes (256 two-byte characters) is a key.
      const longest = "é".repeat(256);
      expect((await call("POST", path, { body: { key: longest, value: "x" } })).status).toBe(200);
      expect(
        (await call("GET", `/glia/${ns}/get?key=${encodeURIComponent(longest)}`)).json.value,
      ).toBe("x");
      // On the reading routes too.
      expect(shape(await call("GET", `/glia/${ns}/get?key=${"x".repeat(513)}`))).toEqual(invalid);
      expect(shape(await call("DELETE", `/glia/${ns}/delete?key=${"x".repeat(513)}`))).toEqual(
        invalid,
      );
    });

    it("GET and DELETE /<key> reach every key up to 512 bytes, and a longer one is a 400", async () => {
      const ns = freshNs();
      const keys = ["p".repeat(100), "q".repeat(101), "r".repeat(512), "é".repeat(256)];
      await setAll(
        ns,
        keys.map((k) => [k, k.length]),
      );
      for (const key of keys) {
        const path = `/glia/${ns}/${encodeURIComponent(key)}`;
        expect(shape(await call("GET", path)), `GET /<${key.length} chars>`).toEqual({
          status: 200,
          json: { success: true, key, value: key.length, expires: null },
        });
        expect(shape(await call("DELETE", path)), `DELETE /<${key.length} chars>`).toEqual({
          status: 200,
          json: { success: true, key, deleted: true },
        });
      }
      expect(await snapshot(ns)).toEqual([]);
      await setAll(ns, [["k", 1]]);
      await refusedUnchanged(ns, "GET", `/glia/${ns}/${"x".repeat(513)}`, {}, invalid);
      await refusedUnchanged(ns, "DELETE", `/glia/${ns}/${"x".repeat(513)}`, {}, invalid);
    });

    it("/set and /test-and-set: a ttl that is negative, a string, or not a number", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      for (const ttl of [-1, -0.5, "60", true, { s: 1 }, [60]]) {
        await refusedUnchanged(
          ns,
          "POST",
          `/glia/${ns}/set`,
          { body: { key: "k", value: "x", ttl } },
          failure(400, "INVALID_ARGUMENT", expect.stringContaining("ttl")),
        );
        await refusedUnchanged(
          ns,
          "POST",
          `/glia/${ns}/test-and-set`,
          { body: { key: "k", oldValue: "v", newValue: "x", ttl } },
          failure(400, "INVALID_ARGUMENT", expect.stringContaining("ttl")),
        );
      }
      await refusedUnchanged(
        ns,
        "POST",
        `/glia/${ns}/set`,
        { raw: '{"key":"k","value":"x","ttl":1e999}' },
        failure(400, "INVALID_ARGUMENT", expect.stringContaining("ttl")),
      );
    });

    it("/test-and-set: a missing key, oldValue or newValue; unknown fields; a bad key", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      const path = `/glia/${ns}/test-and-set`;
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { oldValue: "v", newValue: "x" } },
        failure(400, "INVALID_ARGUMENT", "Missing key parameter"),
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: "k", newValue: "x" } },
        failure(400, "INVALID_ARGUMENT", "Missing oldValue parameter"),
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: "k", oldValue: "v" } },
        failure(400, "INVALID_ARGUMENT", "Missing newValue parameter"),
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: "k", oldValue: "v", newValue: "x", expirationTtl: 5 } },
        invalid,
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: "k", oldValue: "v", value: "x" } },
        invalid,
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { key: 7, oldValue: "v", newValue: "x" } },
        invalid,
      );
      await refusedUnchanged(ns, "POST", path, { raw: "{oldValue" }, failure(400, "INVALID_JSON"));
      await refusedUnchanged(ns, "POST", path, { body: ["k", "v", "x"] }, invalid);
    });

    it("/batch: an unknown op, a missing key, value on a get, a non-object op: 400 and none of the others applied", async () => {
      const ns = freshNs();
      await setAll(ns, [
        ["existing", "e"],
        ["doomed", "d"],
      ]);
      const path = `/glia/${ns}/batch`;
      const applied = [
        { op: "set", key: "new", value: "n" },
        { op: "delete", key: "doomed" },
        { op: "test-and-set", key: "existing", oldValue: "e", newValue: "changed" },
      ];
      const bad: unknown[] = [
        { op: "frobnicate", key: "x" },
        { op: "", key: "x" },
        { key: "x" },
        { op: 1, key: "x" },
        { op: "get" },
        { op: "set", value: 1 },
        { op: "get", key: "" },
        { op: "get", key: 5 },
        { op: "get", key: "x".repeat(513) },
        { op: "get", key: "existing", value: 1 },
        { op: "delete", key: "existing", value: null },
        { op: "set", key: "x" },
        { op: "set", key: "x", value: 1, oldValue: 1 },
        { op: "set", key: "x", value: 1, ttl: 5 },
        { op: "set", key: "x", value: 1, expirationTtl: -5 },
        { op: "set", key: "x", value: 1, expirationTtl: "5" },
        { op: "testAndSet", key: "x", oldValue: 1 },
        { op: "testAndSet", key: "x", newValue: 1 },
        { op: "test-and-set", key: "x", oldValue: 1, newValue: 2, value: 3 },
        "get",
        null,
        42,
        ["get", "existing"],
      ];
      for (const op of bad) {
        for (const operations of [
          [...applied, op],
          [op, ...applied],
        ]) {
          await refusedUnchanged(ns, "POST", path, { body: { operations } }, invalid);
        }
      }
      expect((await storeOf(ns).get("existing"))?.value).toBe("e");
      expect((await storeOf(ns).get("doomed"))?.value).toBe("d");
      expect(await storeOf(ns).get("new")).toBeNull();
    });

    it("/batch: an op that is a deeply nested array (20,000 levels) is a 400 like any unknown op, not a 500", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      const deep = `${"[".repeat(20_000)}1${"]".repeat(20_000)}`;
      await refusedUnchanged(
        ns,
        "POST",
        `/glia/${ns}/batch`,
        { raw: `{"operations":[{"op":"set","key":"k","value":"x"},{"op":${deep},"key":"k"}]}` },
        invalid,
      );
      // A shallow one is refused as it should be.
      await refusedUnchanged(
        ns,
        "POST",
        `/glia/${ns}/batch`,
        { body: { operations: [{ op: [["set"]], key: "k" }] } },
        invalid,
      );
    });

    it("/batch: operations missing, not an array, more than 10, or an unknown field: 400 and nothing applied", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      const path = `/glia/${ns}/batch`;
      const missingArray = failure(400, "INVALID_ARGUMENT", "Missing or invalid operations array");
      await refusedUnchanged(ns, "POST", path, { body: {} }, missingArray);
      await refusedUnchanged(ns, "POST", path, { body: { operations: null } }, missingArray);
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { operations: { op: "get" } } },
        missingArray,
      );
      await refusedUnchanged(ns, "POST", path, { body: { operations: "set" } }, missingArray);
      const eleven = numbered("n", 11).map((key) => ({ op: "set", key, value: 1 }));
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { operations: eleven } },
        failure(
          400,
          "INVALID_ARGUMENT",
          "Too many operations. Maximum of 10 operations per request.",
        ),
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: { operations: [{ op: "set", key: "k", value: "x" }], atomic: true } },
        invalid,
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { body: [{ op: "set", key: "k", value: "x" }] },
        invalid,
      );
      await refusedUnchanged(
        ns,
        "POST",
        path,
        { raw: '{"operations":[' },
        failure(400, "INVALID_JSON"),
      );
      // Ten is allowed, in any case of op names.
      const ten = numbered("n", 10).map((key, i) => ({
        op: ["set", "SET", "Set"][i % 3],
        key,
        value: i,
      }));
      const answer = await call("POST", path, { body: { operations: ten } });
      expect(answer.status).toBe(200);
      expect(answer.json.results).toHaveLength(10);
      expect((await snapshot(ns)).length).toBe(11);
    });

    it("/batch: an operation whose value cannot be stored (too large, too deep) is refused before any operation runs", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      const huge = "x".repeat(limits.maxValueBytes + 1);
      const deep = `${"[".repeat(limits.maxValueDepth + 1)}1${"]".repeat(limits.maxValueDepth + 1)}`;
      for (const [op, status, code] of [
        [`{"op":"set","key":"huge","value":${JSON.stringify(huge)}}`, 413, "VALUE_TOO_LARGE"],
        [`{"op":"set","key":"deep","value":${deep}}`, 400, expect.any(String)],
        [
          `{"op":"test-and-set","key":"deep","oldValue":null,"newValue":${deep}}`,
          400,
          expect.any(String),
        ],
      ] as const) {
        const before = await snapshot(ns);
        const answer = await call("POST", `/glia/${ns}/batch`, {
          raw: `{"operations":[{"op":"set","key":"first","value":"applied?"},{"op":"delete","key":"k"},${op}]}`,
        });
        expect(shape(answer), op.slice(0, 40)).toEqual(failure(status, code));
        // Every op is checked before any runs (the preamble): a refused batch leaves the data as it was.
        expect(await snapshot(ns), op.slice(0, 40)).toEqual(before);
      }
    });

    it("/set with a value too large: 413 VALUE_TOO_LARGE in the face's format, nothing stored", async () => {
      const ns = freshNs();
      await setAll(ns, [["k", "v"]]);
      await refusedUnchanged(
        ns,
        "POST",
        `/glia/${ns}/set`,
        { body: { key: "k", value: "x".repeat(limits.maxValueBytes + 1) } },
        failure(413, "VALUE_TOO_LARGE"),
      );
    });
  });

  describe("arbitrary JSON to /set, /test-and-set and /batch (fast-check)", () => {
    const RUNS = 40;
    const key = fc.constantFrom("a", "b", "fz");
    const small = fc.jsonValue({ maxDepth: 2 });
    const ttl = fc.constantFrom(0, 1, 60, 3600);
    const operation = fc.oneof(
      fc.record({ op: fc.constantFrom("get", "GET", "delete"), key }),
      fc.record(
        { op: fc.constantFrom("set", "Set"), key, value: small, expirationTtl: ttl },
        { requiredKeys: ["op", "key", "value"] },
      ),
      fc.record(
        {
          op: fc.constantFrom("testAndSet", "test-and-set", "TESTANDSET"),
          key,
          oldValue: small,
          newValue: small,
          expirationTtl: ttl,
        },
        { requiredKeys: ["op", "key", "oldValue", "newValue"] },
      ),
    );
    const routes: { path: string; valid: fc.Arbitrary<unknown> }[] = [
      {
        path: "/set",
        valid: fc.record({ key, value: small, ttl }, { requiredKeys: ["key", "value"] }),
      },
      {
        path: "/test-and-set",
        valid: fc.record(
          { key, oldValue: small, newValue: small, ttl },
          { requiredKeys: ["key", "oldValue", "newValue"] },
        ),
      },
      {
        path: "/batch",
        valid: fc.record({ operations: fc.array(operation, { maxLength: 4 }) }),
      },
    ];
    const ns = `fuzz_${storage.name}`;

    for (const route of routes) {
      it(
        `POST ${route.path}: never a 5xx; a 4xx is exactly { success: false, error, code } and changes nothing`,
        async () => {
          const bodies = fc.oneof(
            { weight: 5, arbitrary: nearValid(route.valid) },
            { weight: 2, arbitrary: hostileValue },
            { weight: 1, arbitrary: fc.jsonValue() },
            { weight: 1, arbitrary: nearValid(route.valid).map((payload) => ({ payload })) },
          );
          await fc.assert(
            fc.asyncProperty(bodies, async (body) => {
              const before = await snapshot(ns);
              const answer = await call("POST", `/glia/${ns}${route.path}`, {
                raw: jsonText(body),
              });
              expect(answer.status, answer.text.slice(0, 300)).toBeLessThan(500);
              if (answer.status >= 400) {
                expect(answer.json, answer.text.slice(0, 300)).toEqual({
                  success: false,
                  error: expect.any(String),
                  code: expect.stringMatching(/^[A-Z_]+$/),
                });
                expect(await snapshot(ns)).toEqual(before);
              } else expect(answer.status).toBe(200);
            }),
            fuzz(RUNS),
          );
        },
        timeoutFor(RUNS, 200),
      );
    }
  });
});

/**
 * Runs `body` with a server of its own over a fresh `storage`, and the means to break that
 * storage (its `kv` table renamed away, as a failing disk or a dropped table would leave it) and
 * to mend it.
 */
async function withBrokenStorage(
  storage: Storage,
  body: (
    url: string,
    breakStorage: () => Promise<void>,
    mend: () => Promise<void>,
  ) => Promise<void>,
): Promise<void> {
  const opened = await storage.open();
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    data: opened.data,
    auth: true,
    token: TOKEN,
    sweep: false,
  });
  const rename = async (from: string, to: string) => {
    if (storage.postgres) {
      const schema = new URL(opened.data).searchParams.get("schema")!;
      const sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`ALTER TABLE "${schema}".${from} RENAME TO ${to}`);
      } finally {
        await sql.end();
      }
    } else {
      const db = new Database(opened.data);
      try {
        db.pragma("busy_timeout = 5000");
        db.exec(`ALTER TABLE ${from} RENAME TO ${to}`);
      } finally {
        db.close();
      }
    }
  };
  try {
    await body(
      server.url,
      () => rename("kv", "kv_gone"),
      () => rename("kv_gone", "kv"),
    );
  } finally {
    await server.close();
    await opened.drop();
  }
}
