/**
 * Happy Server's kv routes (reference/seed-systems.md §2) over real HTTP against the server, on a
 * SQLite file and on PostgreSQL, as two users' tokens (principals `ana` and `bob`, each with
 * readwrite on its own `["happy", name]`) see them: every route with its limits and statuses,
 * the version and tombstone rules, isolation between the users, concurrent mutates of one key,
 * update events over SSE and Socket.IO, and bad input as a 400 that changes nothing.
 */
import fc from "fast-check";
import { io, type Socket } from "socket.io-client";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  describeEach,
  jsonOf,
  RawBody,
  serverForTests,
  sseStream,
  storages,
  until,
} from "./targets.js";

const TOKEN = "happy-admin-token-123";

const b64 = (text: string) => Buffer.from(text).toString("base64");

// biome-ignore lint/suspicious/noExplicitAny: assertions navigate arbitrary response JSON
type Json = any;

interface Answer {
  readonly status: number;
  readonly json: Json;
  readonly text: string;
}

interface Update {
  readonly id: string;
  readonly seq: number;
  readonly body: {
    readonly t: string;
    readonly changes: { key: string; value: string | null; version: number }[];
  };
  readonly createdAt: number;
}

/** A mutation as the routes take it. */
const m = (key: string, value: string | null, version: number) => ({ key, value, version });

describeEach(storages, "Happy Server kv over HTTP", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const url = () => server().url;

  /** Sends `body` as JSON (a `RawBody` as is) with `token` (none when `null`). */
  async function call(
    token: string | null,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const response = await fetch(`${url()}${path}`, {
      method,
      headers: {
        ...(token !== null && { authorization: `Bearer ${token}` }),
        ...(body !== undefined && { "content-type": "application/json" }),
        ...headers,
      },
      body:
        body === undefined ? undefined : body instanceof RawBody ? body.text : JSON.stringify(body),
    });
    const text = await response.text();
    const json = jsonOf(text) as Json;
    return { status: response.status, json, text };
  }

  /** A principal's token, made through the admin API; by default readwrite on `["happy", name]`. */
  async function principal(
    name: string,
    grants: unknown[] = [{ prefix: ["happy", name], access: "readwrite" }],
  ): Promise<string> {
    const created = await call(TOKEN, "POST", "/admin/tokens", { name, grants });
    expect(created.status, created.text).toBe(201);
    return created.json.token as string;
  }

  let users = 0;
  /** A new user, with no keys and no update events yet. */
  const freshUser = (base: string) => principal(`${base}-${++users}`);

  let ana: string;
  let bob: string;
  beforeAll(async () => {
    ana = await principal("ana");
    bob = await principal("bob");
  });

  const getItem = (token: string, key: string) =>
    call(token, "GET", `/v1/kv/${encodeURIComponent(key)}`);
  const list = (token: string, query = "") => call(token, "GET", `/v1/kv${query}`);
  const bulk = (token: string, keys: unknown) => call(token, "POST", "/v1/kv/bulk", { keys });
  const mutate = (token: string, mutations: unknown) =>
    call(token, "POST", "/v1/kv", { mutations });

  /** Mutates and expects 200: the new versions. */
  async function mutated(
    token: string,
    mutations: ReturnType<typeof m>[],
  ): Promise<{ key: string; version: number }[]> {
    const answer = await mutate(token, mutations);
    expect(answer.status, answer.text).toBe(200);
    return answer.json.results;
  }

  /** Every live item of the user whose key starts with `prefix` (list, limit 1000). */
  async function itemsOf(token: string, prefix: string) {
    const answer = await list(token, `?prefix=${encodeURIComponent(prefix)}&limit=1000`);
    expect(answer.status, answer.text).toBe(200);
    return answer.json.items as { key: string; value: string; version: number }[];
  }

  const notFound = { status: 404, json: { error: "Key not found", code: "NOT_FOUND" } };

  // Streams and sockets a test opened, closed after it.
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  describe("GET /v1/kv/:key", () => {
    it("answers the item { key, value, version } with 200", async () => {
      await mutated(ana, [m("get/one", b64("hello"), -1)]);
      const answer = await getItem(ana, "get/one");
      expect(answer.status).toBe(200);
      expect(answer.json).toEqual({ key: "get/one", value: b64("hello"), version: 0 });
    });

    it('answers 404 { error: "Key not found", code } for a key that never existed', async () => {
      expect(await getItem(ana, "get/never")).toMatchObject(notFound);
    });

    it("answers 404 for a deleted key", async () => {
      await mutated(ana, [m("get/deleted", b64("x"), -1)]);
      await mutated(ana, [m("get/deleted", null, 0)]);
      expect(await getItem(ana, "get/deleted")).toMatchObject(notFound);
    });

    it("takes a percent-encoded key: spaces, slashes, question marks and non-ASCII", async () => {
      const key = "get/a b/c?d#é";
      await mutated(ana, [m(key, b64("odd"), -1)]);
      const answer = await getItem(ana, key);
      expect(answer.status).toBe(200);
      expect(answer.json).toEqual({ key, value: b64("odd"), version: 0 });
    });

    it('stores the empty string "" as an empty value, not as a delete', async () => {
      await mutated(ana, [m("get/empty", "", -1)]);
      expect((await getItem(ana, "get/empty")).json).toEqual({
        key: "get/empty",
        value: "",
        version: 0,
      });
    });
  });

  describe("POST /v1/kv/bulk", () => {
    it("answers the items asked for in the order asked, leaving out missing and deleted keys", async () => {
      await mutated(ana, [
        m("bulk/a", b64("A"), -1),
        m("bulk/b", b64("B"), -1),
        m("bulk/c", b64("C"), -1),
        m("bulk/gone", b64("G"), -1),
      ]);
      await mutated(ana, [m("bulk/gone", null, 0), m("bulk/b", b64("B2"), 0)]);
      const answer = await bulk(ana, ["bulk/c", "bulk/missing", "bulk/a", "bulk/gone", "bulk/b"]);
      expect(answer.status).toBe(200);
      expect(answer.json).toEqual({
        values: [
          { key: "bulk/c", value: b64("C"), version: 0 },
          { key: "bulk/a", value: b64("A"), version: 0 },
          { key: "bulk/b", value: b64("B2"), version: 1 },
        ],
      });
    });

    it("answers { values: [] } when none of the keys exist", async () => {
      expect(await bulk(ana, ["bulk/none"])).toMatchObject({ status: 200, json: { values: [] } });
    });

    it("takes 1 and 100 keys", async () => {
      await mutated(ana, [m("bulk/limit-0", b64("0"), -1), m("bulk/limit-99", b64("99"), -1)]);
      const one = await bulk(ana, ["bulk/limit-0"]);
      expect(one.status).toBe(200);
      expect(one.json.values).toEqual([{ key: "bulk/limit-0", value: b64("0"), version: 0 }]);
      const hundred = await bulk(
        ana,
        Array.from({ length: 100 }, (_, i) => `bulk/limit-${i}`),
      );
      expect(hundred.status, hundred.text).toBe(200);
      expect(hundred.json.values.map((v: { key: string }) => v.key)).toEqual([
        "bulk/limit-0",
        "bulk/limit-99",
      ]);
    });

    it("refuses 0 and 101 keys with 400, and changes nothing", async () => {
      await mutated(ana, [m("bulk/kept", b64("kept"), -1)]);
      const before = await itemsOf(ana, "");
      for (const keys of [[], Array.from({ length: 101 }, (_, i) => `bulk/kept${i || ""}`)]) {
        const answer = await bulk(ana, keys);
        expect(answer.status, answer.text).toBe(400);
        expect(answer.json).toEqual({ error: expect.any(String), code: "INVALID_ARGUMENT" });
      }
      expect(await itemsOf(ana, "")).toEqual(before);
    });
  });

  describe("GET /v1/kv (list)", () => {
    it("lists the items whose key starts with the prefix (a string prefix, case-sensitive), in key order", async () => {
      const keys = ["lp/b", "lp/a", "lp/ab", "lp/a/x", "lp/A", "lp/abc", "lq"];
      await mutated(
        ana,
        keys.map((k) => m(k, b64(k), -1)),
      );
      const answer = await list(ana, "?prefix=lp%2Fa");
      expect(answer.status).toBe(200);
      expect(answer.json).toEqual({
        items: ["lp/a", "lp/a/x", "lp/ab", "lp/abc"].map((k) => ({
          key: k,
          value: b64(k),
          version: 0,
        })),
      });
      expect((await itemsOf(ana, "lp/ab")).map((i) => i.key)).toEqual(["lp/ab", "lp/abc"]);
      expect((await itemsOf(ana, "lp/")).map((i) => i.key)).toEqual(
        ["lp/A", "lp/a", "lp/a/x", "lp/ab", "lp/abc", "lp/b"].sort(),
      );
      expect(await itemsOf(ana, "lp/z")).toEqual([]);
    });

    it("lists every item of the user without a prefix", async () => {
      const user = await freshUser("lister");
      await mutated(user, [m("z", b64("z"), -1), m("a", b64("a"), -1), m("m", b64("m"), -1)]);
      const answer = await list(user);
      expect(answer.status).toBe(200);
      expect(answer.json.items.map((i: { key: string }) => i.key)).toEqual(["a", "m", "z"]);
    });

    it("answers 100 items by default, and up to limit (1..1000)", async () => {
      const user = await freshUser("many");
      const keys = Array.from({ length: 105 }, (_, i) => `k${String(i).padStart(3, "0")}`);
      // Written in two mutates of fewer than 100, so that this test does not hang on the
      // 100-mutation limit tested on its own.
      await mutated(
        user,
        keys.slice(0, 60).map((k) => m(k, b64(k), -1)),
      );
      await mutated(
        user,
        keys.slice(60).map((k) => m(k, b64(k), -1)),
      );
      const keysOf = (answer: Answer) => answer.json.items.map((i: { key: string }) => i.key);
      const byDefault = await list(user);
      expect(byDefault.status).toBe(200);
      expect(keysOf(byDefault)).toEqual(keys.slice(0, 100));
      expect(keysOf(await list(user, "?limit=1"))).toEqual(keys.slice(0, 1));
      expect(keysOf(await list(user, "?limit=103"))).toEqual(keys.slice(0, 103));
      expect(keysOf(await list(user, "?limit=1000"))).toEqual(keys);
      expect(keysOf(await list(user, "?prefix=k10&limit=2"))).toEqual(["k100", "k101"]);
    });

    it("refuses limit 0, 1001, -1, 1.5, abc and an empty limit with 400", async () => {
      for (const limit of ["0", "1001", "-1", "1.5", "abc", ""]) {
        const answer = await list(ana, `?limit=${limit}`);
        expect(answer.status, `limit=${limit}: ${answer.text}`).toBe(400);
        expect(answer.json).toEqual({ error: expect.any(String), code: "INVALID_ARGUMENT" });
      }
    });

    it("leaves out deleted keys, which do not count towards the limit", async () => {
      await mutated(ana, [
        m("lt/a", b64("a"), -1),
        m("lt/b", b64("b"), -1),
        m("lt/c", b64("c"), -1),
        m("lt/d", b64("d"), -1),
      ]);
      await mutated(ana, [m("lt/a", null, 0), m("lt/c", null, 0)]);
      expect((await list(ana, "?prefix=lt%2F")).json.items).toEqual([
        { key: "lt/b", value: b64("b"), version: 0 },
        { key: "lt/d", value: b64("d"), version: 0 },
      ]);
      expect(
        (await list(ana, "?prefix=lt%2F&limit=1")).json.items.map((i: { key: string }) => i.key),
      ).toEqual(["lt/b"]);
    });
  });

  describe("POST /v1/kv (mutate)", () => {
    it("applies every mutation and answers 200 { success: true, results } in the order given", async () => {
      await mutated(ana, [m("mu/old", b64("1"), -1)]);
      const answer = await mutate(ana, [
        m("mu/new", b64("n"), -1),
        m("mu/old", b64("2"), 0),
        m("mu/new-tombstone", null, -1),
      ]);
      expect(answer.status).toBe(200);
      expect(answer.json).toEqual({
        success: true,
        results: [
          { key: "mu/new", version: 0 },
          { key: "mu/old", version: 1 },
          { key: "mu/new-tombstone", version: 0 },
        ],
      });
      expect((await bulk(ana, ["mu/new", "mu/old", "mu/new-tombstone"])).json.values).toEqual([
        { key: "mu/new", value: b64("n"), version: 0 },
        { key: "mu/old", value: b64("2"), version: 1 },
      ]);
    });

    it("answers 409 listing every mismatch with the key's current version and value, and applies nothing", async () => {
      await mutated(ana, [
        m("mc/at0", b64("zero"), -1),
        m("mc/at1", b64("one"), -1),
        m("mc/gone", b64("g"), -1),
      ]);
      await mutated(ana, [m("mc/at1", b64("one+"), 0), m("mc/gone", null, 0)]);
      const before = await itemsOf(ana, "mc/");
      const answer = await mutate(ana, [
        m("mc/at0", b64("x"), 0), // right
        m("mc/at1", b64("x"), 0), // stale: it is at 1
        m("mc/new", b64("x"), -1), // right
        m("mc/missing", b64("x"), 3), // never existed: -1
        m("mc/gone", b64("x"), -1), // deleted at 1: a tombstone
      ]);
      expect(answer.status).toBe(409);
      expect(answer.json).toEqual({
        success: false,
        errors: [
          { key: "mc/at1", error: "version-mismatch", version: 1, value: b64("one+") },
          { key: "mc/missing", error: "version-mismatch", version: -1, value: null },
          { key: "mc/gone", error: "version-mismatch", version: 1, value: null },
        ],
      });
      expect(await itemsOf(ana, "mc/")).toEqual(before);
      expect(await getItem(ana, "mc/new")).toMatchObject(notFound);
      expect((await getItem(ana, "mc/at0")).json).toEqual({
        key: "mc/at0",
        value: b64("zero"),
        version: 0,
      });
    });

    it("takes 1 mutation", async () => {
      expect(await mutated(ana, [m("mn/one", b64("1"), -1)])).toEqual([
        { key: "mn/one", version: 0 },
      ]);
    });

    it("takes 100 mutations in one mutate", async () => {
      const keys = Array.from({ length: 100 }, (_, i) => `mn/h${String(i).padStart(3, "0")}`);
      const answer = await mutate(
        ana,
        keys.map((k) => m(k, b64(k), -1)),
      );
      expect(answer.status, answer.text).toBe(200);
      expect(answer.json).toEqual({
        success: true,
        results: keys.map((key) => ({ key, version: 0 })),
      });
      expect((await itemsOf(ana, "mn/h")).map((i) => i.key)).toEqual(keys);
    });

    it("takes two values of 40 KB each in one mutate, each one within the value limit", async () => {
      const value = Buffer.alloc(40_000, 7).toString("base64");
      const one = await mutate(ana, [m("mn/big-alone", value, -1)]);
      expect(one.status, one.text).toBe(200);
      const two = await mutate(ana, [m("mn/big-a", value, -1), m("mn/big-b", value, -1)]);
      expect(two.status, two.text).toBe(200);
      expect((await bulk(ana, ["mn/big-a", "mn/big-b"])).json.values).toEqual([
        { key: "mn/big-a", value, version: 0 },
        { key: "mn/big-b", value, version: 0 },
      ]);
    });

    it("refuses 0 and 101 mutations with 400, and applies none of them", async () => {
      const keys = Array.from({ length: 101 }, (_, i) => `mn/x${i}`);
      for (const mutations of [[], keys.map((k) => m(k, b64(k), -1))]) {
        const answer = await mutate(ana, mutations);
        expect(answer.status, answer.text).toBe(400);
        expect(answer.json).toEqual({ error: expect.any(String), code: "INVALID_ARGUMENT" });
      }
      expect(await itemsOf(ana, "mn/x")).toEqual([]);
    });
  });

  describe("versions and tombstones", () => {
    it("a new key needs version -1 and gets 0; each update needs the current version and gets it + 1", async () => {
      expect(await mutate(ana, [m("v/k", b64("a"), 0)])).toMatchObject({
        status: 409,
        json: { errors: [{ key: "v/k", version: -1, value: null }] },
      });
      expect(await mutated(ana, [m("v/k", b64("a"), -1)])).toEqual([{ key: "v/k", version: 0 }]);
      expect(await mutate(ana, [m("v/k", b64("b"), -1)])).toMatchObject({
        status: 409,
        json: { errors: [{ key: "v/k", version: 0, value: b64("a") }] },
      });
      expect(await mutated(ana, [m("v/k", b64("b"), 0)])).toEqual([{ key: "v/k", version: 1 }]);
      expect(await mutated(ana, [m("v/k", b64("c"), 1)])).toEqual([{ key: "v/k", version: 2 }]);
      for (const stale of [0, 1, 3]) {
        expect(await mutate(ana, [m("v/k", b64("d"), stale)])).toMatchObject({
          status: 409,
          json: { errors: [{ key: "v/k", version: 2, value: b64("c") }] },
        });
      }
      expect((await getItem(ana, "v/k")).json).toEqual({ key: "v/k", value: b64("c"), version: 2 });
    });

    it("value null deletes and keeps a tombstone with its version: re-creating needs that version", async () => {
      await mutated(ana, [m("v/t", b64("a"), -1)]);
      await mutated(ana, [m("v/t", b64("b"), 0)]);
      expect(await mutated(ana, [m("v/t", null, 1)])).toEqual([{ key: "v/t", version: 2 }]);
      expect(await getItem(ana, "v/t")).toMatchObject(notFound);
      expect(await itemsOf(ana, "v/t")).toEqual([]);
      expect((await bulk(ana, ["v/t"])).json).toEqual({ values: [] });

      const stale = await mutate(ana, [m("v/t", b64("again"), -1)]);
      expect(stale.status).toBe(409);
      expect(stale.json).toEqual({
        success: false,
        errors: [{ key: "v/t", error: "version-mismatch", version: 2, value: null }],
      });
      expect(await getItem(ana, "v/t")).toMatchObject(notFound);

      expect(await mutated(ana, [m("v/t", b64("again"), 2)])).toEqual([{ key: "v/t", version: 3 }]);
      expect((await getItem(ana, "v/t")).json).toEqual({
        key: "v/t",
        value: b64("again"),
        version: 3,
      });
    });

    it("deleting a tombstone again needs its version and moves it on", async () => {
      await mutated(ana, [m("v/tt", b64("a"), -1)]);
      await mutated(ana, [m("v/tt", null, 0)]);
      expect(await mutated(ana, [m("v/tt", null, 1)])).toEqual([{ key: "v/tt", version: 2 }]);
      expect(await mutate(ana, [m("v/tt", null, -1)])).toMatchObject({
        status: 409,
        json: { errors: [{ key: "v/tt", version: 2, value: null }] },
      });
    });
  });

  describe("isolation between users", () => {
    it("ana's keys are invisible to bob through GET, list and bulk", async () => {
      await mutated(ana, [m("iso/secret", b64("ana's"), -1)]);
      expect(await getItem(bob, "iso/secret")).toMatchObject(notFound);
      expect(await itemsOf(bob, "iso/")).toEqual([]);
      expect((await bulk(bob, ["iso/secret"])).json).toEqual({ values: [] });
      expect((await getItem(ana, "iso/secret")).json.value).toBe(b64("ana's"));
    });

    it("bob's mutate of the same key name is independent of ana's", async () => {
      await mutated(ana, [m("iso/same", b64("ana"), -1)]);
      await mutated(ana, [m("iso/same", b64("ana2"), 0)]);
      // For bob the key is new: -1 works, ana's version does not.
      expect(await mutate(bob, [m("iso/same", b64("bob"), 1)])).toMatchObject({
        status: 409,
        json: { errors: [{ key: "iso/same", version: -1, value: null }] },
      });
      expect(await mutated(bob, [m("iso/same", b64("bob"), -1)])).toEqual([
        { key: "iso/same", version: 0 },
      ]);
      await mutated(bob, [m("iso/same", null, 0)]);
      expect((await getItem(ana, "iso/same")).json).toEqual({
        key: "iso/same",
        value: b64("ana2"),
        version: 1,
      });
      expect(await getItem(bob, "iso/same")).toMatchObject(notFound);
    });

    it("a principal without a grant on its own [happy, name] gets 403 on every route", async () => {
      // carl may read and write ana's data, but not his own.
      const carl = await principal("carl", [{ prefix: ["happy", "ana"], access: "readwrite" }]);
      const answers = [
        await getItem(carl, "iso/secret"),
        await list(carl),
        await bulk(carl, ["iso/secret"]),
        await mutate(carl, [m("iso/carl", b64("c"), -1)]),
        await call(carl, "GET", "/v1/kv/updates"),
      ];
      for (const answer of answers) {
        expect(answer.status, answer.text).toBe(403);
        expect(answer.json).toEqual({ error: expect.any(String), code: "FORBIDDEN" });
      }
      expect(await itemsOf(ana, "iso/carl")).toEqual([]);
    });

    it("a read-only grant reads the user's keys and cannot mutate them (403, nothing applied)", async () => {
      const dana = await principal("dana", [{ prefix: ["happy", "dana"], access: "read" }]);
      expect(await getItem(dana, "x")).toMatchObject(notFound);
      expect(await list(dana)).toMatchObject({ status: 200, json: { items: [] } });
      const answer = await mutate(dana, [m("x", b64("x"), -1)]);
      expect(answer.status).toBe(403);
      expect(answer.json).toEqual({ error: expect.any(String), code: "FORBIDDEN" });
      expect(await getItem(dana, "x")).toMatchObject(notFound);
    });

    it("answers 401 without a token, and with a wrong one, on every route", async () => {
      await mutated(ana, [m("iso/auth", b64("a"), -1)]);
      for (const token of [null, "not-a-token"]) {
        const answers = [
          await getItem(token as string, "iso/auth"),
          await list(token as string),
          await bulk(token as string, ["iso/auth"]),
          await mutate(token as string, [m("iso/auth", b64("b"), 0)]),
          await call(token, "GET", "/v1/kv/updates"),
        ];
        for (const answer of answers) {
          expect(answer.status, answer.text).toBe(401);
          expect(answer.json).toEqual({ error: expect.any(String), code: "UNAUTHORIZED" });
        }
      }
      expect((await getItem(ana, "iso/auth")).json.version).toBe(0);
    });
  });

  describe("concurrent mutates of one key", () => {
    it("20 concurrent creates with version -1: exactly one 200, the others 409 with the winner's value", async () => {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => mutate(ana, [m("cc/new", b64(`w${i}`), -1)])),
      );
      const won = answers.filter((a) => a.status === 200);
      const lost = answers.filter((a) => a.status === 409);
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(19);
      const winner = (await getItem(ana, "cc/new")).json;
      expect(winner).toEqual({ key: "cc/new", value: expect.any(String), version: 0 });
      expect(won[0]!.json).toEqual({ success: true, results: [{ key: "cc/new", version: 0 }] });
      for (const a of lost) {
        expect(a.json).toEqual({
          success: false,
          errors: [{ key: "cc/new", error: "version-mismatch", version: 0, value: winner.value }],
        });
      }
    });

    it("20 concurrent updates at the known version: exactly one 200, the others 409", async () => {
      await mutated(ana, [m("cc/up", b64("start"), -1)]);
      await mutated(ana, [m("cc/up", b64("next"), 0)]);
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => mutate(ana, [m("cc/up", b64(`u${i}`), 1)])),
      );
      const won = answers.filter((a) => a.status === 200);
      expect(won).toHaveLength(1);
      expect(answers.filter((a) => a.status === 409)).toHaveLength(19);
      expect(won[0]!.json).toEqual({ success: true, results: [{ key: "cc/up", version: 2 }] });
      const winner = (await getItem(ana, "cc/up")).json;
      expect(winner).toEqual({ key: "cc/up", value: expect.any(String), version: 2 });
      for (const a of answers.filter((a) => a.status === 409)) {
        expect(a.json.errors).toEqual([
          { key: "cc/up", error: "version-mismatch", version: 2, value: winner.value },
        ]);
      }
    });
  });

  describe("update events", () => {
    /** An SSE stream of `GET /v1/kv/updates`: `updates` fills as they arrive. */
    async function sse(token: string, headers: Record<string, string> = {}) {
      const { events, status, type, close } = await sseStream(`${url()}/v1/kv/updates`, {
        authorization: `Bearer ${token}`,
        ...headers,
      });
      closers.push(close);
      const updates = () =>
        events
          .filter((e) => e.event === "update")
          .map((e) => ({ eventId: e.id, ...(JSON.parse(e.data) as Update) }));
      return {
        status,
        type,
        events,
        updates,
        /** Resolves once the stream follows live (its first `ping`). */
        live: () => until(() => events.some((e) => e.event === "ping")),
      };
    }

    /** A Socket.IO connection at /v1/updates; `updates` fills as they arrive. */
    function socketOf(token: string, clientType = "user-scoped") {
      const socket: Socket = io(url(), {
        path: "/v1/updates",
        auth: { token, clientType },
        transports: ["websocket"],
        reconnection: false,
      });
      closers.push(() => socket.close());
      const updates: Update[] = [];
      socket.on("update", (update: Update) => updates.push(update));
      const connected = new Promise<void>((resolve, reject) => {
        socket.once("connect", () => resolve());
        socket.once("connect_error", reject);
      });
      return { socket, updates, connected };
    }

    /** The shape every update event has; `seq` and `changes` as given. */
    const updateOf = (seq: number, changes: Update["body"]["changes"]) => ({
      id: expect.stringMatching(/^[A-Za-z0-9_-]{12}$/),
      seq,
      body: { t: "kv-batch-update", changes },
      createdAt: expect.any(Number),
    });

    /**
     * Four mutates, a refused one between them, each awaited in `updates` before the next (events
     * of quick successive mutates are lost: see the test of a burst); the changes of each event.
     */
    async function fourMutates(token: string, updates: () => readonly unknown[]) {
      const delivered = (n: number) => until(() => updates().length >= n);
      await mutated(token, [m("e/a", b64("a"), -1)]);
      await delivered(1);
      await mutated(token, [m("e/b", b64("b"), -1), m("e/a", b64("a2"), 0)]);
      await delivered(2);
      const refused = await mutate(token, [m("e/a", b64("stale"), 0)]);
      expect(refused.status).toBe(409);
      await mutated(token, [m("e/b", null, 0)]);
      await delivered(3);
      await mutated(token, [m("e/b", b64("b again"), 1)]);
      await delivered(4);
      return [
        [{ key: "e/a", value: b64("a"), version: 0 }],
        [
          { key: "e/b", value: b64("b"), version: 0 },
          { key: "e/a", value: b64("a2"), version: 1 },
        ],
        [{ key: "e/b", value: null, version: 1 }],
        [{ key: "e/b", value: b64("b again"), version: 2 }],
      ];
    }

    /**
     * A last mutate by `token`, awaited in `updates`: every event before it has been delivered,
     * so the list up to it is final.
     */
    async function settled(token: string, updates: () => readonly Update[], key = "e/last") {
      await mutated(token, [m(key, b64("last"), -1)]);
      await until(() => updates().some((u) => u.body.changes[0]?.key === key));
      return updates().slice(0, -1);
    }

    it("SSE: one update event per successful mutate, in order, seq 1..N, none for a 409", async () => {
      const user = await freshUser("sse");
      const stream = await sse(user);
      expect(stream.status).toBe(200);
      expect(stream.type).toMatch(/^text\/event-stream/);
      await stream.live();
      const changes = await fourMutates(user, stream.updates);
      const before = await settled(user, stream.updates);
      expect(before).toEqual(
        changes.map((c, i) => ({ eventId: expect.any(String), ...updateOf(i + 1, c) })),
      );
      expect(stream.updates()).toHaveLength(5);
      expect(stream.updates()[4]!.seq).toBe(5);
      const ids = stream.updates().map((u) => u.eventId!);
      expect([...ids].sort()).toEqual(ids);
      expect(new Set(stream.updates().map((u) => u.id)).size).toBe(5);
    });

    it("SSE resumes after Last-Event-ID: the id of event 2 after 4 mutates gives events 3 and 4 only", async () => {
      const user = await freshUser("resume");
      const first = await sse(user);
      await first.live();
      const changes = await fourMutates(user, first.updates);
      const all = first.updates();
      const resumed = await sse(user, { "last-event-id": all[1]!.eventId! });
      expect(resumed.status).toBe(200);
      await resumed.live();
      expect(resumed.updates()).toEqual([all[2], all[3]]);
      expect(resumed.updates()).toEqual([
        { eventId: all[2]!.eventId, ...updateOf(3, changes[2]!) },
        { eventId: all[3]!.eventId, ...updateOf(4, changes[3]!) },
      ]);
      // ...and then follows live.
      expect((await settled(user, resumed.updates)).map((u) => u.seq)).toEqual([3, 4]);
    });

    it("SSE refuses a Last-Event-ID that is not an event's id with 400", async () => {
      const answer = await call(ana, "GET", "/v1/kv/updates", undefined, {
        "last-event-id": "not-a-versionstamp",
      });
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({ error: expect.any(String), code: "INVALID_ARGUMENT" });
    });

    it("SSE: bob's stream gets none of ana's events", async () => {
      const [a, b] = [await freshUser("sse-ana"), await freshUser("sse-bob")];
      const [anas, bobs] = [await sse(a), await sse(b)];
      await Promise.all([anas.live(), bobs.live()]);
      await fourMutates(a, anas.updates);
      // bob's own mutate comes after ana's in the feed: had hers leaked, they would come first.
      expect(await settled(b, bobs.updates)).toEqual([]);
      expect(bobs.updates()).toEqual([
        {
          eventId: expect.any(String),
          ...updateOf(1, [{ key: "e/last", value: b64("last"), version: 0 }]),
        },
      ]);
    });

    it("Socket.IO: one update event per successful mutate, in order, seq 1..N, none for a 409", async () => {
      const user = await freshUser("socket");
      const client = socketOf(user);
      await client.connected;
      const changes = await fourMutates(user, () => client.updates);
      expect(await settled(user, () => client.updates)).toEqual(
        changes.map((c, i) => updateOf(i + 1, c)),
      );
      expect(client.updates.map((u) => u.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(Object.keys(client.updates[0]!).sort()).toEqual(["body", "createdAt", "id", "seq"]);
    });

    it("Socket.IO: bob's socket gets none of ana's events, and ana's socket none of bob's", async () => {
      const [a, b] = [await freshUser("io-ana"), await freshUser("io-bob")];
      const anas = socketOf(a);
      const bobs = socketOf(b);
      await Promise.all([anas.connected, bobs.connected]);
      await fourMutates(a, () => anas.updates);
      expect(await settled(b, () => bobs.updates)).toEqual([]);
      expect(bobs.updates).toEqual([
        updateOf(1, [{ key: "e/last", value: b64("last"), version: 0 }]),
      ]);
      expect((await settled(a, () => anas.updates)).map((u) => u.seq)).toEqual([1, 2, 3, 4]);
    });

    it("a burst of 30 concurrent mutates by one user gives 30 events, seq 1..30 gap-free, over SSE and Socket.IO", async () => {
      const user = await freshUser("burst");
      const stream = await sse(user);
      const client = socketOf(user);
      await Promise.all([stream.live(), client.connected]);
      const keys = Array.from({ length: 30 }, (_, i) => `burst/${i}`);
      const answers = await Promise.all(keys.map((k) => mutate(user, [m(k, b64(k), -1)])));
      expect(answers.map((a) => a.status)).toEqual(keys.map(() => 200));
      // The last event is never overwritten by a later one: once it is in, all are.
      await until(
        () =>
          stream.updates().some((u) => u.seq === 30) && client.updates.some((u) => u.seq === 30),
      );
      const seqs = keys.map((_, i) => i + 1);
      expect(stream.updates().map((u) => u.seq)).toEqual(seqs);
      expect(client.updates.map((u) => u.seq)).toEqual(seqs);
      expect(client.updates.flatMap((u) => u.body.changes.map((c) => c.key)).sort()).toEqual(
        [...keys].sort(),
      );
    });

    it("Socket.IO: a bad token, or none, gets connect_error", async () => {
      for (const token of ["not-a-token", ""]) {
        const client = socketOf(token);
        await expect(client.connected).rejects.toThrow();
        expect(client.socket.connected).toBe(false);
      }
    });

    it("Socket.IO: a principal without a grant on its own [happy, name] gets an error and is disconnected", async () => {
      const erin = await principal("erin", [{ prefix: ["other"], access: "readwrite" }]);
      const client = socketOf(erin);
      const errors: unknown[] = [];
      client.socket.on("error", (error: unknown) => errors.push(error));
      const reasons: string[] = [];
      client.socket.on("disconnect", (reason) => reasons.push(reason));
      await client.connected;
      await until(() => reasons.length > 0);
      expect(reasons).toEqual(["io server disconnect"]);
      expect(errors).toEqual([{ message: expect.any(String) }]);
      expect(client.updates).toEqual([]);
    });

    it("Socket.IO: a client that is not user-scoped connects and receives no kv updates", async () => {
      const user = await freshUser("machine");
      const machine = socketOf(user, "machine-scoped");
      const scoped = socketOf(user);
      await Promise.all([machine.connected, scoped.connected]);
      expect(machine.socket.connected).toBe(true);
      await fourMutates(user, () => scoped.updates);
      expect(await settled(user, () => scoped.updates)).toHaveLength(4);
      expect(machine.updates).toEqual([]);
      expect(machine.socket.connected).toBe(true);
    });
  });

  describe("bad input: 400 with nothing changed", () => {
    /** A key of ana's at version 0, and a key that does not exist: both unchanged after `send`. */
    async function unchangedAfter(send: () => Promise<Answer>, code = "INVALID_ARGUMENT") {
      const before = await itemsOf(ana, "bad/");
      const answer = await send();
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json).toEqual({ error: expect.any(String), code });
      expect(await itemsOf(ana, "bad/")).toEqual(before);
      expect(await getItem(ana, "bad/new")).toMatchObject(notFound);
    }

    beforeAll(async () => {
      await mutated(ana, [m("bad/kept", b64("kept"), -1)]);
    });

    /** A valid create and update beside the bad mutation: all or nothing. */
    const beside = (bad: unknown) => [
      m("bad/new", b64("new"), -1),
      m("bad/kept", b64("changed"), 0),
      bad,
    ];

    const badMutations: [string, unknown][] = [
      ["bad base64 (not the alphabet)", m("bad/x", "not base64!", -1)],
      ["bad base64 (unpadded)", m("bad/x", "aGk", -1)],
      ["bad base64 (a stray character)", m("bad/x", "aGk=x", -1)],
      ["a number value", m("bad/x", 5 as never, -1)],
      ["an object value", m("bad/x", { a: 1 } as never, -1)],
      ["a missing value", { key: "bad/x", version: -1 }],
      ["a missing version", { key: "bad/x", value: b64("x") }],
      ["version -2", m("bad/x", b64("x"), -2)],
      ["version 1.5", m("bad/x", b64("x"), 1.5)],
      ['version "0"', m("bad/x", b64("x"), "0" as never)],
      ["version null", m("bad/x", b64("x"), null as never)],
      ["a number key", m(5 as never, b64("x"), -1)],
      ["a null key", m(null as never, b64("x"), -1)],
      ["an array key", m(["bad/x"] as never, b64("x"), -1)],
      ["a missing key", { value: b64("x"), version: -1 }],
      ["a duplicate key", m("bad/new", b64("again"), -1)],
      ["an unknown field", { ...m("bad/x", b64("x"), -1), extra: 1 }],
      ["a mutation that is not an object", "bad/x"],
      ["a null mutation", null],
    ];
    for (const [what, bad] of badMutations) {
      it(`mutate: ${what} is a 400, and the other mutations are not applied`, () =>
        unchangedAfter(() => mutate(ana, beside(bad))));
    }

    const badBodies: [string, unknown, string?][] = [
      ["malformed JSON", new RawBody('{"mutations": ['), "INVALID_JSON"],
      ["an empty body", new RawBody(""), "INVALID_JSON"],
      ["a body that is an array", [beside(m("bad/x", b64("x"), -1))]],
      ["a body that is a string", "mutations"],
      ["a body that is null", null],
      ["a body that is a number", 5],
      ["no mutations field", {}],
      ["mutations that are not an array", { mutations: m("bad/new", b64("x"), -1) }],
      ["an unknown top-level field", { mutations: beside(m("bad/x", b64("x"), -1)), extra: 1 }],
    ];
    for (const [what, body, code] of badBodies) {
      it(`mutate: ${what} is a 400`, () =>
        unchangedAfter(() => call(ana, "POST", "/v1/kv", body), code));
      it(`bulk: ${what} is a 400`, () =>
        unchangedAfter(() => call(ana, "POST", "/v1/kv/bulk", body), code));
    }

    const badKeys: [string, unknown][] = [
      ["keys that are not an array", "bad/kept"],
      ["a number key", ["bad/kept", 5]],
      ["a null key", [null]],
      ["no keys field", undefined],
    ];
    for (const [what, keys] of badKeys) {
      it(`bulk: ${what} is a 400`, () =>
        unchangedAfter(() => call(ana, "POST", "/v1/kv/bulk", keys === undefined ? {} : { keys })));
    }
    it("bulk: an unknown field is a 400", () =>
      unchangedAfter(() => call(ana, "POST", "/v1/kv/bulk", { keys: ["bad/kept"], extra: 1 })));

    it("never answers 5xx to arbitrary JSON at POST /v1/kv and /v1/kv/bulk; 4xx bodies are { error, code }", async () => {
      const user = await freshUser("fuzz");
      await mutated(user, [m("k", b64("v"), -1)]);
      const key = fc.oneof(
        fc.constantFrom("k", "n", ""),
        fc.string({ maxLength: 8 }),
        fc.jsonValue(),
      );
      const mutation = fc.record(
        {
          key,
          value: fc.oneof(
            fc.constantFrom(null, "", b64("x"), "aGk", "!!"),
            fc.base64String({ maxLength: 12 }),
            fc.jsonValue(),
          ),
          version: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double(), fc.jsonValue()),
          extra: fc.jsonValue(),
        },
        { requiredKeys: [] },
      );
      const body = fc.oneof(
        fc.jsonValue(),
        fc.record(
          {
            mutations: fc.oneof(fc.array(mutation, { maxLength: 4 }), fc.jsonValue()),
            keys: fc.oneof(fc.array(key, { maxLength: 4 }), fc.jsonValue()),
          },
          { requiredKeys: [] },
        ),
      );
      await fc.assert(
        fc.asyncProperty(body, fc.constantFrom("/v1/kv", "/v1/kv/bulk"), async (sent, path) => {
          const before = await itemsOf(user, "");
          const answer = await call(user, "POST", path, sent);
          expect(answer.status, answer.text).toBeLessThan(500);
          if (answer.status === 200) return;
          if (answer.status === 409 && path === "/v1/kv") {
            expect(answer.json.success).toBe(false);
          } else {
            expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
            expect(answer.json).toEqual({ error: expect.any(String), code: expect.any(String) });
          }
          expect(await itemsOf(user, "")).toEqual(before);
        }),
        { numRuns: 60 },
      );
    });
  });
});
