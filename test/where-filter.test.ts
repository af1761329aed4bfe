/** The where-filter parser, its wire form, and the server's own validation of filters it receives. */
import { describe, expect, it } from "vitest";
import { compileFilter } from "../src/backends/sqlite/sqlite-filter.js";
import { KvNow } from "../src/index.js";
import { filterToWhere, parsePath, parseWhere } from "../src/protocol/where-filter.js";
import { serverForTests } from "./targets.js";

const filters = [
  { status: "active", age: { $gte: 18, $lt: 65 } },
  { $or: [{ "a.b[2].c": { $in: [1, "x", true, null] } }, { $not: { d: { $nin: [] } } }] },
  { name: { $containsi: "x", $notContains: "y", $startsWithi: "z", $endsWith: "w" } },
  { t: { $between: ["a", "b"] }, n: { $between: [1, new KvNow(-5)] } },
  { at: { $lt: new KvNow().sub("1h") }, e: { $empty: true }, f: { $notEmpty: true } },
  { g: { $null: false }, h: { $ne: null }, profile: { verified: true } },
];

describe("where filters", () => {
  it.each(filters)("parse back from their wire form as the same tree: %j", (where) => {
    const tree = parseWhere(where);
    expect(parseWhere(JSON.parse(JSON.stringify(filterToWhere(tree))))).toEqual(tree);
  });

  it("reads both wire forms of server time", () => {
    const expected = { kind: "compare", path: ["at"], op: "lt", value: { now: true, offset: -5 } };
    expect(parseWhere({ at: { $lt: { $now: true, offset: -5 } } })).toEqual(expected);
    expect(parseWhere({ at: { $lt: { $now: true, $offset: -5 } } })).toEqual(expected);
    expect(parseWhere({ at: { $lt: new KvNow(-5) } })).toEqual(expected);
    expect(parseWhere({ at: { $lt: JSON.parse(JSON.stringify(new KvNow(-5))) } })).toEqual(
      expected,
    );
  });

  it("parses paths into keys and indexes", () => {
    expect(parsePath("items[0].price", "p")).toEqual(["items", 0, "price"]);
    expect(parsePath("a.0[12][3].b c", "p")).toEqual(["a", "0", 12, 3, "b c"]);
    expect(parsePath("[1]", "p")).toEqual([1]);
    for (const bad of ["a[01]", "a[]", "a]", "a[0]b", ".a", "a.", "a..b", "a'b", "a\u0000"]) {
      expect(() => parsePath(bad, "p")).toThrow(
        expect.objectContaining({ code: "INVALID_FILTER" }),
      );
    }
  });
});

describe("the SQLite filter compiler", () => {
  it("binds every operand and path as a parameter, splicing no user text into the SQL", () => {
    const evil = "x' OR 1=1; DROP TABLE kv; --";
    const where = {
      $or: [
        { "field one": evil, "a.b[3]": { $in: [evil, 1.5, true, null] } },
        { name: { $containsi: evil, $startsWith: evil, $endsWith: evil, $notContains: evil } },
        { n: { $between: [1, 2] }, t: { $gt: evil }, when: { $lt: new KvNow(5) } },
        { e: { $empty: true }, z: { $null: false } },
      ],
    };
    const compiled = compileFilter(parseWhere(where), 1000)!;
    for (const text of [evil, "field one", "DROP", "1.5", "1005"]) {
      expect(compiled.sql).not.toContain(text);
    }
    expect(compiled.params).toContain(evil);
    expect(compiled.params).toContain('$."field one"');
    expect(compiled.params).toContain('$."a"."b"[3]');
    expect(compiled.params).toContain(1005); // kv.now() + 5 at now = 1000
    expect(compiled.sql.split("?").length - 1).toBe(compiled.params.length);
  });

  it("compiles an empty filter to nothing", () => {
    expect(compileFilter(parseWhere({}), 0)).toBeUndefined();
    expect(compileFilter(parseWhere({ $and: [{}, { $and: [] }] }), 0)).toBeUndefined();
  });
});

describe("the database protocol", () => {
  const TOKEN = "where-filter-token";
  const server = serverForTests(TOKEN);
  const post = (path: string, body: unknown) =>
    fetch(`${server().url}/api/db/${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then(async (r) => ({
      status: r.status,
      json: (await r.json()) as { code?: string; error?: string; count?: number },
    }));

  it("validates the filters it receives, changing nothing", async () => {
    const set = { type: "set", key: "AmEA", value: { encoding: 4, data: '{"a":1}' } }; // ["a"]
    expect((await post("commit", { mutations: [set] })).status).toBe(200);
    const bad = { "a') OR 1=1 --": 1 };
    const all = { start: "", end: "/w==" };
    const requests: [string, unknown][] = [
      ["scan", { ranges: [{ ...all, limit: 10, where: bad }] }],
      ["scan", { ranges: [{ ...all, limit: 10, where: { a: { $regex: "." } } }] }],
      ["count", { ...all, where: { a: { $gt: [] } } }],
      ["commit", { mutations: [{ type: "deleteRange", ...all, filter: 0 }], filters: [bad] }],
      ["commit", { mutations: [{ type: "delete", key: "AmEA", filter: 0 }], filters: ["a = 1"] }],
    ];
    for (const [path, body] of requests) {
      const response = await post(path, body);
      expect({ path, status: response.status, code: response.json.code }).toEqual({
        path,
        status: 400,
        code: "INVALID_FILTER",
      });
      expect(response.json.error).toMatch(/^Invalid where filter at /);
    }
    const unknownFilter = {
      mutations: [{ type: "delete", key: "AmEA", filter: 1 }],
      filters: [{}],
    };
    expect((await post("commit", unknownFilter)).json.code).toBe("INVALID_ARGUMENT");
    expect((await post("count", all)).json).toEqual({ count: 1 });
  });

  it("stores JSON text as JSON.stringify writes it, so filters find values sent in any JSON form", async () => {
    const data = '{ "s" : "h\\u0069t", "n": 1.50e1 }';
    const set = { type: "set", key: "AnUA", value: { encoding: 4, data } }; // ["u"]
    expect((await post("commit", { mutations: [set] })).status).toBe(200);
    const { json } = await post("get", { keys: ["AnUA"] });
    expect((json as unknown as { entries: { data: string }[] }).entries[0]!.data).toBe(
      '{"s":"hit","n":15}',
    );
    const range = { start: "AnUA", end: "AnUB" };
    expect((await post("count", { ...range, where: { s: "hit", n: 15 } })).json).toEqual({
      count: 1,
    });
  });

  it("resolves server-time placeholders in values with its own clock at commit", async () => {
    const data = '{"at":{"$now":true,"$offset":1000},"seed":{"$now":true,"offset":-1000}}';
    const before = Date.now();
    const set = { type: "set", key: "AnQA", value: { encoding: 4, data }, resolveNow: true }; // ["t"]
    expect((await post("commit", { mutations: [set] })).status).toBe(200);
    const { json } = await post("get", { keys: ["AnQA"] });
    const stored = JSON.parse(
      (json as unknown as { entries: { data: string }[] }).entries[0]!.data,
    );
    expect(stored.at - stored.seed).toBe(2000);
    expect(stored.at - 1000).toBeGreaterThanOrEqual(before);
    expect(stored.at - 1000).toBeLessThanOrEqual(Date.now());
  });
});
