/**
 * The Buntime seed's HTTP/JSON API, over real HTTP against `cairn serve`'s server, on a SQLite file
 * and on PostgreSQL.
 */
import { request as httpRequest } from "node:http";
import { describe, expect, it } from "vitest";
import { type KvKey, KvU64, openKv } from "../src/index.js";
import { formatKeyPath, parseKeyPath } from "../src/protocol/key-path.js";
import { fromTagged, toTagged } from "../src/protocol/tagged-json.js";
import { describeEach, jsonApiForTests, RawBody, storages, until } from "./targets.js";

const TOKEN = "json-api-token-123";

const values: [string, unknown][] = [
  ["object", { name: "Alice", tags: ["a"], nested: { ok: true } }],
  ["bigint", 12345678901234567890n],
  ["KvU64", new KvU64(7n)],
  ["bytes", new Uint8Array([0, 1, 255])],
  ["Int16Array", new Int16Array([1, -2])],
  ["ArrayBuffer", new Uint8Array([5, 6]).buffer],
  ["Date", new Date("2026-11-22T00:00:00.000Z")],
  ["Map", new Map<unknown, unknown>([["a", 1n]])],
  ["Set", new Set(["x", 2])],
  ["RegExp", /a+b/gi],
  ["undefined", undefined],
  ["NaN", Number.NaN],
  ["-0", -0],
  ["-Infinity", Number.NEGATIVE_INFINITY],
  ["object with __type", { __type: "mine", n: 1 }],
  ["null", null],
];

describe("tagged JSON", () => {
  it.each(values)("round-trips %s", (_name, value) => {
    const wire = JSON.parse(JSON.stringify(toTagged(value)));
    expect(fromTagged(wire)).toStrictEqual(value);
  });

  it("accepts the Buntime client's bigint form", () => {
    expect(fromTagged({ count: { __type: "bigint", value: "10" } })).toEqual({ count: 10n });
  });
});

describe("key paths", () => {
  it("reads integers as numbers and typed prefixes, as the CLI and URLs write keys", () => {
    expect(parseKeyPath("users/123/-5/abc")).toEqual(["users", 123, -5, "abc"]);
    expect(
      parseKeyPath("string:123/number:1.5/bigint:99999999999999999999/bool:true/bytes:AQI"),
    ).toEqual(["123", 1.5, 99999999999999999999n, true, new Uint8Array([1, 2])]);
    expect(parseKeyPath("a%2Fb/c%20d//")).toEqual(["a/b", "c d"]);
    expect(() => parseKeyPath("")).toThrow("Key path cannot be empty");
    expect(() => parseKeyPath("bigint:1.5")).toThrow(
      expect.objectContaining({ code: "INVALID_KEY" }),
    );
  });

  it("formats every key so that it parses back", () => {
    const keys: KvKey[] = [
      ["users", 1],
      ["123", "bool:x", "a/b"],
      [1.5, -0, Number.NaN, 10n, false, new Uint8Array([9])],
    ];
    for (const key of keys) expect(parseKeyPath(formatKeyPath(key))).toStrictEqual(key);
  });
});

describeEach(storages, "JSON API", (storage) => {
  const { server, base, call } = jsonApiForTests(TOKEN, storage);

  it("puts, gets and 404s single keys, under /api and /keyval/api", async () => {
    const put = await call("PUT", "/keys/users/123", { name: "Alice" });
    expect(put).toEqual({
      status: 200,
      json: { ok: true, versionstamp: expect.stringMatching(/^[0-9a-f]{20}$/) },
    });
    const viaApi = await fetch(`${server().url}/api/keys/users/123`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(await viaApi.json()).toEqual({
      key: ["users", 123],
      value: { name: "Alice" },
      versionstamp: put.json.versionstamp,
    });
    expect(await call("GET", "/keys/users/404")).toEqual({
      status: 404,
      json: { error: "Key not found", code: "NOT_FOUND" },
    });
  });

  it("stores every tagged value type through PUT and returns it tagged", async () => {
    for (const [name, value] of values) {
      const tagged = toTagged(value);
      expect((await call("PUT", `/keys/typed/${encodeURIComponent(name)}`, tagged)).status).toBe(
        200,
      );
      const { json } = await call("GET", `/keys/typed/${encodeURIComponent(name)}`);
      expect(fromTagged(json.value)).toStrictEqual(value);
    }
  });

  it("keeps an encoded slash inside one key part", async () => {
    await call("PUT", "/keys/paths/a%2Fb/c", 1);
    const { json } = await call("POST", "/keys/list", { prefix: ["paths"] });
    expect(json.map((e: { key: unknown }) => e.key)).toEqual([["paths", "a/b", "c"]]);
    expect((await call("GET", "/keys/paths/a%2Fb/c")).json.value).toBe(1);
  });

  it("stores null as a value, not as absence", async () => {
    await call("PUT", "/keys/nullable", null);
    expect(await call("GET", "/keys/nullable")).toMatchObject({
      status: 200,
      json: { value: null },
    });
  });

  it("honours expiresIn in milliseconds or as a duration", async () => {
    const listed = async () =>
      (await call("GET", "/keys?prefix=ttl")).json.map((e: { value: number }) => e.value);
    await call("PUT", "/keys/ttl/a?expiresIn=60000", 1);
    await call("PUT", "/keys/ttl/b?expiresIn=1h", 2);
    await call("PUT", "/keys/ttl/c?expiresIn=0", 3);
    expect(await listed()).toEqual([1, 2]);
    await call("PUT", "/keys/ttl/d?expiresIn=50", 4);
    await call("PUT", "/keys/ttl/e?expiresIn=50ms", 5);
    await call("PUT", "/keys/ttl/f?expiresIn=0.05s", 6);
    // The short ones expire; the long ones outlive them.
    await until(async () => (await listed()).length === 2);
    expect(await listed()).toEqual([1, 2]);
    expect((await call("PUT", "/keys/ttl/g?expiresIn=soon", 7)).json.code).toBe("INVALID_ARGUMENT");
  });

  it("lists with prefix, start, end, limit and reverse, by GET and POST", async () => {
    for (let i = 1; i <= 5; i++) await call("PUT", `/keys/list/${i}`, i);
    const values = (r: { json: { value: number }[] }) => r.json.map((e) => e.value);
    expect(values(await call("GET", "/keys?prefix=list"))).toEqual([1, 2, 3, 4, 5]);
    expect(values(await call("GET", "/keys?prefix=list&start=list/2&end=list/4"))).toEqual([2, 3]);
    expect(values(await call("GET", "/keys?prefix=list&limit=2&reverse=true"))).toEqual([5, 4]);
    expect(
      values(await call("POST", "/keys/list", { prefix: ["list"], start: ["list", 4] })),
    ).toEqual([4, 5]);
    expect((await call("GET", "/keys?prefix=list&limit=0")).status).toBe(400);
    expect((await call("GET", "/keys?prefix=list&limit=abc")).json.code).toBe("INVALID_ARGUMENT");
    expect((await call("GET", "/keys?prefix=list&limit=5000")).json).toHaveLength(5); // capped at 1000
  });

  it("reads batches in request order and deletes batches", async () => {
    await call("PUT", "/keys/b/1", "one");
    await call("PUT", "/keys/b/2", "two");
    const { json } = await call("POST", "/keys/batch", {
      keys: [
        ["b", 2],
        ["b", 9],
        ["b", 1],
      ],
    });
    expect(json).toEqual([
      expect.objectContaining({ value: "two" }),
      { key: ["b", 9], value: null, versionstamp: null },
      expect.objectContaining({ value: "one" }),
    ]);
    expect((await call("POST", "/keys/batch", { keys: [] })).status).toBe(400);
    expect(
      await call("POST", "/keys/delete-batch", {
        keys: [
          ["b", 1],
          ["b", 2],
          ["b", 3],
        ],
      }),
    ).toEqual({
      status: 200,
      json: { success: true, deletedCount: 2 },
    });
  });

  it("deletes a prefix by default and one key with { exact: true }", async () => {
    await call("PUT", "/keys/d/1", 1);
    await call("PUT", "/keys/d/1/child", 2);
    expect((await call("DELETE", "/keys/d/1", { exact: true })).json).toEqual({
      success: true,
      deletedCount: 1,
    });
    await call("PUT", "/keys/d/1", 1);
    expect((await call("DELETE", "/keys/d/1")).json).toEqual({ success: true, deletedCount: 2 });
  });

  describe("reads a DELETE's options whatever the body's content type", () => {
    const send = (path: string, body: string, headers: Record<string, string>) =>
      new Promise<{ status: number; json: { deletedCount?: number; code?: string } }>(
        (resolve, reject) => {
          const request = httpRequest(`${base()}${path}`, {
            method: "DELETE",
            headers: {
              authorization: `Bearer ${TOKEN}`,
              ...("transfer-encoding" in headers
                ? {}
                : { "content-length": Buffer.byteLength(body) }),
              ...headers,
            },
          });
          request.on("error", reject);
          request.on("response", async (response) => {
            let text = "";
            for await (const chunk of response) text += chunk;
            resolve({ status: response.statusCode!, json: JSON.parse(text) });
          });
          request.end(body);
        },
      );
    const bodies: [string, Record<string, string>][] = [
      ["curl's default form type", { "content-type": "application/x-www-form-urlencoded" }],
      ["text/plain", { "content-type": "text/plain" }],
      ["no content type, chunked", { "transfer-encoding": "chunked" }],
      ["JSON, chunked", { "content-type": "application/json", "transfer-encoding": "chunked" }],
    ];
    const keys = async (prefix: string) =>
      (await call("GET", `/keys?prefix=${prefix}`)).json.map((e: { key: unknown[] }) => e.key);

    it.each(bodies)("exact, as %s", async (name, headers) => {
      const u = `exact-${name.replace(/\W/g, "")}`;
      for (const path of [u, `${u}/1`, `${u}/2`]) await call("PUT", `/keys/${path}`, 1);
      const response = await send(`/keys/${u}`, '{"exact":true}', headers);
      expect(response).toEqual({ status: 200, json: { success: true, deletedCount: 1 } });
      expect(await keys(u)).toEqual([
        [u, 1],
        [u, 2],
      ]);
      expect((await call("GET", `/keys/${u}`)).status).toBe(404);
    });

    it.each(bodies)("where, as %s", async (name, headers) => {
      const u = `where-${name.replace(/\W/g, "")}`;
      await call("PUT", `/keys/${u}/1`, { n: 1 });
      await call("PUT", `/keys/${u}/2`, { n: 2 });
      const response = await send(`/keys/${u}`, '{"where":{"n":{"$eq":2}}}', headers);
      expect(response.json).toEqual({ success: true, deletedCount: 1 });
      expect(await keys(u)).toEqual([[u, 1]]);
    });

    it("refuses a body it cannot read, or a field it does not know, deleting nothing", async () => {
      for (const path of ["guard", "guard/1"]) await call("PUT", `/keys/${path}`, 1);
      const refused: [string, string][] = [
        ["exact=true", "INVALID_JSON"],
        ['{"exatc":true}', "INVALID_ARGUMENT"],
        ["[true]", "INVALID_ARGUMENT"],
        ['{"exact":"yes"}', "INVALID_ARGUMENT"],
      ];
      for (const [body, code] of refused) {
        const response = await send("/keys/guard", body, { "content-type": "text/plain" });
        expect({ body, status: response.status, code: response.json.code }).toEqual({
          body,
          status: 400,
          code,
        });
      }
      expect(await keys("guard")).toEqual([["guard", 1]]);
      expect((await call("GET", "/keys/guard")).status).toBe(200);
    });
  });

  it("refuses values nested past 100 levels with VALUE_TOO_DEEP, and reads every stored value", async () => {
    const nested = (levels: number) => "[".repeat(levels) + "]".repeat(levels);
    for (const levels of [101, 3000, 200_000]) {
      for (const [method, path, body] of [
        ["PUT", "/keys/deep", nested(levels)],
        [
          "POST",
          "/atomic",
          `{"mutations":[{"type":"set","key":["deep"],"value":${nested(levels)}}]}`,
        ],
        ["POST", "/queue/enqueue", `{"value":${nested(levels)}}`],
      ] as const) {
        const response = await call(method, path, new RawBody(body));
        expect({ levels, path, status: response.status, code: response.json.code }).toEqual({
          levels,
          path,
          status: 400,
          code: "VALUE_TOO_DEEP",
        });
      }
    }
    expect((await call("GET", "/keys/deep")).status).toBe(404);
    // 100 levels are stored, and read back by GET, list and a watch.
    expect((await call("PUT", "/keys/deep", new RawBody(nested(100)))).status).toBe(200);
    const value = JSON.parse(nested(100));
    expect((await call("GET", "/keys/deep")).json.value).toEqual(value);
    expect((await call("GET", "/keys?prefix=deep&start=deep")).status).toBe(200);
    // A cyclic value (the SDK stores what structured cloning allows) reads as JSON too: whole, as
    // the v8 tag, which stores back as the same value.
    const kv = await openKv(server().url, { accessToken: TOKEN });
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    await kv.set(["cyclic"], cyclic);
    const read = await call("GET", "/keys/cyclic");
    expect(read.status).toBe(200);
    expect(read.json.value).toEqual({ __type: "v8", value: expect.any(String) });
    expect((await call("PUT", "/keys/cyclic2", read.json.value)).status).toBe(200);
    const copy = (await kv.get<{ self: unknown }>(["cyclic2"])).value!;
    expect(copy.self).toBe(copy);
    await kv.close();
  });

  it("enqueues within an atomic operation, and refuses fields it does not know", async () => {
    const sent = await call("POST", "/atomic", {
      checks: [{ key: ["enq"], versionstamp: null }],
      mutations: [{ type: "set", key: ["enq"], value: 1 }],
      enqueues: [{ value: { job: 1 }, options: { delay: "1h" } }],
    });
    expect(sent.json).toEqual({ ok: true, versionstamp: expect.any(String) });
    const stats = async () => (await call("GET", "/queue/stats")).json;
    expect((await stats()).pending).toBe(1);
    for (const body of [
      { mutations: [], enqueue: [{ value: 1 }] },
      { enqueues: [{ value: 1, delay: "1h" }] },
      { enqueues: [{ options: {} }] },
      { enqueues: [{ value: 1, options: { delays: 5 } }] },
      { checks: [{ key: ["enq"], versionstamp: null, extra: 1 }] },
      { mutations: [{ type: "set", key: ["enq"], value: 2, expiresin: 5 }] },
    ]) {
      const response = await call("POST", "/atomic", body);
      expect({ body, status: response.status, code: response.json.code }).toEqual({
        body,
        status: 400,
        code: "INVALID_ARGUMENT",
      });
    }
    expect((await stats()).pending).toBe(1);
    expect((await call("GET", "/keys/enq")).json.value).toBe(1);
  });

  it("commits atomic operations with checks, and reports failed checks as ok: false", async () => {
    const first = await call("POST", "/atomic", {
      checks: [{ key: ["acct"], versionstamp: null }],
      mutations: [
        { type: "set", key: ["acct"], value: { balance: 10 }, expiresIn: "1h" },
        { type: "sum", key: ["views"], value: { __type: "bigint", value: "1" } },
        { type: "max", key: ["best"], value: { __type: "bigint", value: "100" } },
        { type: "append", key: ["log"], value: ["a"] },
        { type: "prepend", key: ["log"], value: ["z"] },
      ],
    });
    expect(first.json).toEqual({ ok: true, versionstamp: expect.any(String) });
    const again = await call("POST", "/atomic", {
      checks: [{ key: ["acct"], versionstamp: null }],
      mutations: [{ type: "delete", key: ["acct"] }],
    });
    expect(again).toEqual({ status: 200, json: { ok: false } });
    expect((await call("GET", "/keys/views")).json.value).toEqual({ __type: "kvu64", value: "1" });
    expect((await call("GET", "/keys/log")).json.value).toEqual(["z", "a"]);
  });

  it("rejects bad input with a 4xx and a code, changing nothing", async () => {
    await call("PUT", "/keys/safe", "original");
    const cases: [string, string, unknown, number, string][] = [
      ["PUT", "/keys/safe", new RawBody("{oops"), 400, "INVALID_JSON"],
      ["PUT", "/keys/safe", { __type: "wat" }, 400, "INVALID_VALUE"],
      ["PUT", "/keys/safe", { __type: "bigint", value: "1.5" }, 400, "INVALID_VALUE"],
      ["PUT", "/keys/safe", { big: "x".repeat(70_000) }, 413, "VALUE_TOO_LARGE"],
      ["PUT", "/keys/bigint:nope", 1, 400, "INVALID_KEY"],
      ["PUT", "/keys/%FF", 1, 400, "INVALID_KEY"],
      ["GET", "/keys/a%ZZ", undefined, 400, "INVALID_KEY"],
      ["PUT", "/keys/%ED%A0%80x", 1, 400, "INVALID_KEY"],
      ["POST", "/keys/batch", { keys: [["utf", "\ud800x"]] }, 400, "INVALID_KEY"],
      ["GET", "/keys/paginate?cursor=garbage", undefined, 400, "INVALID_CURSOR"],
      ["POST", "/keys/paginate", { cursor: "-1" }, 400, "INVALID_CURSOR"],
      ["POST", "/keys/batch", { keys: [[{ nested: 1 }]] }, 400, "INVALID_KEY"],
      ["POST", "/keys/batch", { keys: "x" }, 400, "INVALID_ARGUMENT"],
      ["POST", "/keys/list", { prefix: ["a"], where: { a: { $nope: 1 } } }, 400, "INVALID_FILTER"],
      [
        "POST",
        "/atomic",
        { mutations: [{ type: "append", key: ["safe"], value: "x" }] },
        400,
        "INVALID_ARGUMENT",
      ],
      [
        "POST",
        "/atomic",
        { mutations: [{ type: "sum", key: ["safe"], value: { __type: "bigint", value: "1" } }] },
        400,
        "TYPE_MISMATCH",
      ],
      [
        "POST",
        "/atomic",
        { mutations: [{ type: "explode", key: ["safe"] }] },
        400,
        "INVALID_ARGUMENT",
      ],
      ["POST", "/atomic", { mutations: [{ type: "set", key: ["safe"] }] }, 400, "INVALID_ARGUMENT"],
      [
        "POST",
        "/atomic",
        { checks: [{ key: ["safe"], versionstamp: "zzz" }] },
        400,
        "INVALID_ARGUMENT",
      ],
      ["POST", "/atomic", { mutations: "all of them" }, 400, "INVALID_ARGUMENT"],
    ];
    for (const [method, path, body, status, code] of cases) {
      const response = await call(method, path, body);
      expect({ path, body, status: response.status, code: response.json.code }).toEqual({
        path,
        body,
        status,
        code,
      });
      expect(typeof response.json.error).toBe("string");
    }
    expect(
      await call("POST", "/atomic", { mutations: [{ type: "append", key: ["safe"], value: "x" }] }),
    ).toMatchObject({
      json: { error: "append value must be an array" },
    });
    expect((await call("GET", "/keys/safe")).json.value).toBe("original");
  });

  it("requires the token", async () => {
    const response = await fetch(`${base()}/keys/safe`);
    expect(response.status).toBe(401);
  });
});
