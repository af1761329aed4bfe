/**
 * The JSON API's full-text search routes (reference/seed-systems.md §1.4), over real HTTP, on a
 * SQLite file and on PostgreSQL.
 */
import { beforeEach, expect, it } from "vitest";
import { openKv } from "../src/index.js";
import { describeEach, jsonApiForTests, storages } from "./targets.js";

const TOKEN = "json-api-search-token";

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
const titles = (entries: { value: { title: string } }[]) =>
  entries.map((e) => e.value.title).sort();

const posts = [
  { title: "Learning TypeScript", body: "types for JavaScript", status: "published" },
  { title: "React hooks", body: "state in React", status: "draft" },
  { title: "Node streams", body: "JavaScript on the server", status: "published" },
];

describeEach(storages, "JSON API full-text search", (storage) => {
  const { server, call } = jsonApiForTests(TOKEN, storage);

  beforeEach(async () => {
    for (const index of (await call("GET", "/indexes")).json) {
      await call("DELETE", `/indexes?prefix=${index.prefix.join("/")}`);
    }
    await call("DELETE", "/keys/posts");
    await call("POST", "/atomic", {
      mutations: posts.map((value, i) => ({ type: "set", key: ["posts", i + 1], value })),
    });
  });

  it("creates indexes from the server's nested body and the client's flat one", async () => {
    const nested = await call("POST", "/indexes", {
      prefix: ["posts"],
      options: { fields: ["title", "body"], tokenize: "porter" },
    });
    expect(nested).toEqual({ status: 200, json: { ok: true } });
    const flat = await call("POST", "/indexes", { prefix: ["notes"], fields: ["text"] });
    expect(flat).toEqual({ status: 200, json: { ok: true } });
    expect((await call("GET", "/indexes")).json).toEqual([
      { prefix: ["notes"], fields: ["text"], tokenize: "unicode61" },
      { prefix: ["posts"], fields: ["title", "body"], tokenize: "porter" },
    ]);
    // Existing entries were indexed when the index was created.
    const found = await call("GET", "/search?prefix=posts&query=javascript");
    expect(found.status).toBe(200);
    expect(titles(found.json)).toEqual(["Learning TypeScript", "Node streams"]);
    expect(found.json[0]).toMatchObject({
      key: ["posts", expect.any(Number)],
      versionstamp: expect.stringMatching(/^[0-9a-f]{20}$/),
    });
  });

  it("searches with limit and where, in the query string and in both POST body forms", async () => {
    await call("POST", "/indexes", { prefix: ["posts"], fields: ["title", "body"] });
    const get = await call(
      "GET",
      `/search?prefix=posts&query=javascript&limit=1&where=${q({ status: "published" })}`,
    );
    expect(get.json).toHaveLength(1);
    const where = { status: "published" };
    const top = await call("POST", "/search", { prefix: ["posts"], query: "react OR node", where });
    expect(titles(top.json)).toEqual(["Node streams"]);
    const nested = await call("POST", "/search", {
      prefix: ["posts"],
      query: "javascript",
      options: { limit: 1, where },
    });
    expect(nested.json).toHaveLength(1);
    // A limit above 1000 is capped, as for lists.
    expect((await call("GET", "/search?prefix=posts&query=react&limit=5000")).json).toHaveLength(1);
    // The other base path serves the same routes.
    const api = await call(
      "GET",
      "/search?prefix=posts&query=hooks",
      undefined,
      `${server().url}/api`,
    );
    expect(titles(api.json)).toEqual(["React hooks"]);
  });

  it("keeps the index exact through the JSON API's writes, seen by the remote SDK", async () => {
    await call("POST", "/indexes", { prefix: ["posts"], fields: ["title"] });
    await call("PUT", "/keys/posts/9", { title: "Deno deploys", status: "draft" });
    await call("POST", "/atomic", {
      mutations: [{ type: "set", key: ["posts", 1], value: { title: "Deno everywhere" } }],
    });
    const kv = await openKv(server().url, { accessToken: TOKEN });
    try {
      expect(titles(await kv.search(["posts"], "deno"))).toEqual([
        "Deno deploys",
        "Deno everywhere",
      ]);
      await call("DELETE", "/keys/posts", { where: { status: "draft" } });
      expect(titles(await kv.search(["posts"], "deno"))).toEqual(["Deno everywhere"]);
      await kv.set(["posts", 10], { title: "Deno from the SDK" });
      const search = await call("GET", "/search?prefix=posts&query=deno");
      expect(titles(search.json)).toEqual(["Deno everywhere", "Deno from the SDK"]);
    } finally {
      await kv.close();
    }
  });

  it("removes indexes", async () => {
    await call("POST", "/indexes", { prefix: ["posts"], fields: ["title"] });
    expect(await call("DELETE", "/indexes?prefix=posts")).toEqual({
      status: 200,
      json: { ok: true, removed: true },
    });
    expect((await call("DELETE", "/indexes?prefix=posts")).json).toEqual({
      ok: true,
      removed: false,
    });
    expect((await call("GET", "/indexes")).json).toEqual([]);
  });

  it("answers bad input with a 4xx naming the problem", async () => {
    const bad = async (
      method: string,
      path: string,
      body: unknown,
      status: number,
      code: string,
      message: RegExp,
    ) => {
      const response = await call(method, path, body);
      expect(response.status).toBe(status);
      expect(response.json).toMatchObject({ code, error: expect.stringMatching(message) });
    };
    await bad("POST", "/indexes", { prefix: ["posts"] }, 400, "INVALID_ARGUMENT", /fields/);
    await bad(
      "POST",
      "/indexes",
      { prefix: ["posts"], options: { fields: [] } },
      400,
      "INVALID_ARGUMENT",
      /non-empty/,
    );
    await bad(
      "POST",
      "/indexes",
      { fields: ["title"] },
      400,
      "INVALID_ARGUMENT",
      /prefix is required/,
    );
    await bad(
      "POST",
      "/indexes",
      { prefix: ["posts"], fields: ["t"], tokenize: "x" },
      400,
      "INVALID_ARGUMENT",
      /tokenize/,
    );
    await bad("DELETE", "/indexes", undefined, 400, "INVALID_ARGUMENT", /prefix is required/);
    await bad(
      "GET",
      "/search?prefix=posts&query=x",
      undefined,
      404,
      "NOT_FOUND",
      /No search index/,
    );
    await call("POST", "/indexes", { prefix: ["posts"], fields: ["title"] });
    await bad("GET", "/search?query=x", undefined, 400, "INVALID_ARGUMENT", /prefix is required/);
    await bad(
      "GET",
      "/search?prefix=posts",
      undefined,
      400,
      "INVALID_ARGUMENT",
      /query is required/,
    );
    await bad(
      "GET",
      `/search?prefix=posts&query=${encodeURIComponent('"open')}`,
      undefined,
      400,
      "INVALID_ARGUMENT",
      /closing quote/,
    );
    await bad(
      "GET",
      "/search?prefix=posts&query=x&limit=0",
      undefined,
      400,
      "INVALID_ARGUMENT",
      /limit/,
    );
    await bad(
      "GET",
      "/search?prefix=posts&query=x&where=%7B",
      undefined,
      400,
      "INVALID_JSON",
      /where/,
    );
    await bad(
      "POST",
      "/search",
      { prefix: ["posts"], query: 5 },
      400,
      "INVALID_ARGUMENT",
      /query must be a string/,
    );
    await bad(
      "POST",
      "/search",
      { prefix: ["posts"], query: "x", where: { a: { $nope: 1 } } },
      400,
      "INVALID_FILTER",
      /\$nope/,
    );
  });
});
