/**
 * Floww's KV routes (`/api/kv/<provider>/…`, reference/seed-systems.md §4) over real HTTP, on a
 * SQLite file and on PostgreSQL: every route's status and body; the permission matrix (the
 * table's creator, workflows granted read, read+write, revoked or never granted, a manager with a
 * Cairn grant on the provider, the admin) on every route; the backend's own upstream cases
 * (`floww-backend: app/routes/kv_store_test.py`) with Cairn tokens and with Floww's workflow JWTs;
 * JWT verification; arbitrary bodies and names never answered with a 5xx; one owner among
 * workflows creating one table at once. What is stored is read back through the admin's remote
 * `Kv` (`["floww", namespace, provider, "tables" | "items" | "permissions", …]`), and every refused
 * request is shown to have changed nothing, versionstamps included.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Kv, limits, openKv } from "../src/index.js";
import { fuzz, hostileValue, jsonText, nearValid, timeoutFor } from "./fuzz/fuzz.js";
import { collect, describeEach, jsonOf, serverForTests, storages, until } from "./targets.js";

const TOKEN = "floww-http-admin-token";
const SECRET = "floww-http-test-secret-with-32-bytes!";
const PROVIDER = "p1";
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface Answer {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: assertions navigate arbitrary response JSON
  readonly json: any;
  readonly text: string;
}

interface CallOptions {
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as is. */
  readonly raw?: string;
}

/** A caller of the Floww routes: the workflow it is, and its bearer token. */
interface Caller {
  readonly name: string;
  readonly token: string;
}

/** A fresh name: `prefix` and eight hex digits. */
const fresh = (prefix: string) => `${prefix}_${randomUUID().slice(0, 8)}`;

/** A Floww error answer: `status` with exactly `{ detail, code }`. */
const failure = (status: number, code: string, detail: unknown = expect.any(String)) => ({
  status,
  json: { detail, code },
});
const shape = ({ status, json }: Answer) => ({ status, json });

const noTable = (table: string) => failure(404, "NOT_FOUND", `Table '${table}' not found`);
const noKey = (table: string, key: string) =>
  failure(404, "NOT_FOUND", `Key '${key}' not found in table '${table}'`);
const noPermission = (table: string, workflow: string) =>
  failure(404, "NOT_FOUND", `Permission for workflow '${workflow}' on table '${table}' not found`);
const forbidden = (need: "read" | "write", table: string) =>
  failure(403, "FORBIDDEN", `No ${need} permission for table '${table}'`);
const invalidName = (what: string, reason: string) =>
  failure(400, "INVALID_ARGUMENT", `${what} name ${reason}`);
const BAD_CHARS = "must contain only alphanumeric characters, underscores, and hyphens";
const TOO_LONG = "too long (max 255 characters)";

/** An item as the routes answer it. */
const item = (key: string, value: unknown) => ({
  key,
  value,
  created_at: expect.stringMatching(ISO),
  updated_at: expect.stringMatching(ISO),
});
/** A permission row as the routes answer it. */
const permission = (workflow_id: string, can_read: boolean, can_write: boolean) => ({
  workflow_id,
  can_read,
  can_write,
  created_at: expect.stringMatching(ISO),
});
const deleted = (table: string, key: string) => ({
  status: 200,
  json: { message: "Key deleted successfully", key, table },
});
const revoked = (table: string, workflow_id: string) => ({
  status: 200,
  json: { message: "Permission revoked successfully", table, workflow_id },
});

interface Claims {
  readonly workflow_id?: unknown;
  readonly namespace_id?: unknown;
}

/** A Floww workflow token as floww-backend signs it; `options` spoil one part of it. */
function signJwt(
  claims: Claims,
  options: {
    secret?: string;
    audience?: string;
    issuer?: string;
    expires?: number | string;
    alg?: string;
  } = {},
): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT" })
    .setAudience(options.audience ?? "floww-workflow")
    .setIssuer(options.issuer ?? "floww-backend")
    .setIssuedAt()
    .setExpirationTime(options.expires ?? "10m")
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** A JWT workflow `workflow` in namespace `namespace`. */
async function jwtCaller(workflow: string, namespace: string): Promise<Caller> {
  return {
    name: workflow,
    token: await signJwt({ workflow_id: workflow, namespace_id: namespace }),
  };
}

describeEach(storages, "Floww KV routes over HTTP", (storage) => {
  const server = serverForTests(TOKEN, storage, { flowwJwtSecret: SECRET });
  const admin: Caller = { name: "admin", token: TOKEN };
  let kv: Kv;
  beforeAll(async () => {
    kv = await openKv(server().url, { accessToken: TOKEN });
  });
  afterAll(async () => {
    await kv.close();
  });

  /** Sends `method path` under `/api/kv` as `caller` (`null`: no Authorization header). */
  const call = async (
    caller: Caller | string | null,
    method: string,
    path: string,
    options: CallOptions = {},
    root = `${server().url}/api/kv`,
  ): Promise<Answer> => {
    const headers: Record<string, string> = {};
    const token = typeof caller === "string" ? caller : caller?.token;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    let body = options.raw;
    if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${root}${path}`, { method, headers, body });
    const text = await response.text();
    const json = jsonOf(text);
    return { status: response.status, json, text };
  };

  /** A new Cairn principal named `name` (a workflow in namespace `default`), with `grants`. */
  const cairnCaller = async (name: string, grants: unknown[] = []): Promise<Caller> => {
    const response = await fetch(`${server().url}/admin/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name, grants }),
    });
    expect(response.status).toBe(201);
    const { token } = (await response.json()) as { token: string };
    return { name, token };
  };

  /** A manager of `provider`: a Cairn principal whose grant lets it write the provider's keys. */
  const managerOf = (provider: string) =>
    cairnCaller(fresh("manager"), [
      { prefix: ["floww", "default", provider], access: "readwrite" },
    ]);

  /** Every stored Floww entry: key, value and versionstamp (any write changes the latter). */
  const snapshot = async () =>
    (await collect(kv.list({ prefix: ["floww"] }))).map((e) => ({
      key: e.key,
      value: e.value,
      versionstamp: e.versionstamp,
    }));

  /** What is stored for `parts` under `["floww", namespace, provider]`; `null` when nothing. */
  const stored = async (parts: string[], namespace = "default", provider = PROVIDER) =>
    (await kv.get(["floww", namespace, provider, ...parts])).value;

  /** The tables of `provider` in `namespace`, as stored. */
  const storedTables = async (namespace = "default", provider = PROVIDER) =>
    (await collect(kv.list({ prefix: ["floww", namespace, provider, "tables"] }))).map(
      (e) => e.key.at(-1) as string,
    );

  /** PUTs `value` at `table/key` as `caller`; expects 200. */
  const put = async (caller: Caller, table: string, key: string, value: unknown, p = PROVIDER) => {
    const answer = await call(caller, "PUT", `/${p}/${table}/${key}`, { body: { value } });
    expect(shape(answer)).toEqual({ status: 200, json: item(key, value) });
    return answer.json as { created_at: string; updated_at: string };
  };

  /** Grants `rights` on `table` to `workflow` as `caller`; expects 200. */
  const grant = async (
    caller: Caller,
    table: string,
    workflow: string,
    rights: { can_read?: boolean; can_write?: boolean } = {},
  ) => {
    const answer = await call(caller, "POST", `/${PROVIDER}/permissions/${table}`, {
      body: { workflow_id: workflow, ...rights },
    });
    expect(shape(answer)).toEqual({
      status: 200,
      json: permission(workflow, rights.can_read ?? true, rights.can_write ?? false),
    });
  };

  /** Sends the request as `caller`, expects `expected`, and that the stored data did not change. */
  const refused = async (
    caller: Caller | string | null,
    method: string,
    path: string,
    options: CallOptions,
    expected: { status: number; json: unknown },
  ) => {
    const before = await snapshot();
    const answer = await call(caller, method, path, options);
    expect(shape(answer), answer.text.slice(0, 300)).toEqual(expected);
    expect(await snapshot()).toEqual(before);
  };

  describe("every route, its statuses and bodies", () => {
    let owner: Caller;
    beforeAll(async () => {
      owner = await cairnCaller(fresh("owner"));
    });

    it("GET /<provider> lists only the tables the caller has a permission row on, by name", async () => {
      const me = await cairnCaller(fresh("lister"));
      const other = await cairnCaller(fresh("other"));
      const [t2, t10, a, theirs, granted] = ["t2", "t10", "a", "theirs", "granted"].map(fresh);
      expect(shape(await call(me, "GET", `/${PROVIDER}`))).toEqual({
        status: 200,
        json: { tables: [] },
      });
      for (const table of [t2!, t10!, a!]) await put(me, table, "k", 1);
      await put(other, theirs!, "k", 1);
      await put(other, granted!, "k", 1);
      // A row with no rights still lists the table, as the backend's join on the row does.
      await grant(other, granted!, me.name, { can_read: false, can_write: false });
      expect(shape(await call(me, "GET", `/${PROVIDER}`))).toEqual({
        status: 200,
        json: { tables: [a, granted, t10, t2] },
      });
    });

    it("GET /<provider> for a manager and for the admin lists every table of the provider", async () => {
      await put(owner, fresh("managed"), "k", 1);
      const all = await storedTables();
      expect(all.length).toBeGreaterThan(0);
      for (const caller of [await managerOf(PROVIDER), admin]) {
        expect(shape(await call(caller, "GET", `/${PROVIDER}`))).toEqual({
          status: 200,
          json: { tables: all },
        });
      }
    });

    it("GET /<provider>/<table> lists the keys in order; an emptied table lists { keys: [] }", async () => {
      const table = fresh("keys");
      for (const key of ["b", "a2", "a10", "c"]) await put(owner, table, key, key);
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}`))).toEqual({
        status: 200,
        json: { keys: ["a10", "a2", "b", "c"] },
      });
      for (const key of ["a10", "a2", "b", "c"]) {
        expect(shape(await call(owner, "DELETE", `/${PROVIDER}/${table}/${key}`))).toEqual(
          deleted(table, key),
        );
      }
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}`))).toEqual({
        status: 200,
        json: { keys: [] },
      });
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}?include_values=true`))).toEqual({
        status: 200,
        json: { items: [] },
      });
      expect(await storedTables()).toContain(table);
    });

    it("?include_values=true lists the items in key order with ISO times; an update moves updated_at, not created_at", async () => {
      const table = fresh("items");
      const first = await put(owner, table, "b", { nested: { n: 1 } });
      await put(owner, table, "a", [1, "two", null, true]);
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}?include_values=true`))).toEqual({
        status: 200,
        json: { items: [item("a", [1, "two", null, true]), item("b", { nested: { n: 1 } })] },
      });
      expect(first.created_at).toBe(first.updated_at);
      await until(() => Date.now() > Date.parse(first.updated_at));
      const second = await put(owner, table, "b", "replaced");
      expect(second.created_at).toBe(first.created_at);
      expect(Date.parse(second.updated_at)).toBeGreaterThan(Date.parse(first.updated_at));
      const listed = await call(owner, "GET", `/${PROVIDER}/${table}?include_values=true`);
      expect(listed.json.items[1]).toEqual({
        key: "b",
        value: "replaced",
        created_at: first.created_at,
        updated_at: second.updated_at,
      });
      expect(await stored(["items", table, "b"])).toEqual({
        value: "replaced",
        created_at: first.created_at,
        updated_at: second.updated_at,
      });
    });

    it("include_values takes FastAPI's booleans; anything else is 422", async () => {
      const table = fresh("bools");
      await put(owner, table, "k", 1);
      for (const yes of ["true", "True", "1", "yes", "on"]) {
        expect(
          shape(await call(owner, "GET", `/${PROVIDER}/${table}?include_values=${yes}`)),
        ).toEqual({ status: 200, json: { items: [item("k", 1)] } });
      }
      for (const no of ["false", "0", "no", "off"]) {
        expect(
          shape(await call(owner, "GET", `/${PROVIDER}/${table}?include_values=${no}`)),
        ).toEqual({ status: 200, json: { keys: ["k"] } });
      }
      for (const bad of ["maybe", "", "2"]) {
        await refused(
          owner,
          "GET",
          `/${PROVIDER}/${table}?include_values=${bad}`,
          {},
          failure(422, "UNPROCESSABLE", "include_values must be a boolean, e.g. true or false"),
        );
      }
    });

    it("GET /<provider>/<table>/<key> answers the item; a missing key or table is 404", async () => {
      const table = fresh("get");
      await put(owner, table, "k", { a: [1, 2] });
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}/k`))).toEqual({
        status: 200,
        json: item("k", { a: [1, 2] }),
      });
      await refused(owner, "GET", `/${PROVIDER}/${table}/nope`, {}, noKey(table, "nope"));
      const absent = fresh("absent");
      await refused(owner, "GET", `/${PROVIDER}/${absent}/k`, {}, noTable(absent));
      await refused(owner, "GET", `/${PROVIDER}/${absent}`, {}, noTable(absent));
      await refused(
        owner,
        "GET",
        `/${PROVIDER}/${absent}?include_values=true`,
        {},
        noTable(absent),
      );
    });

    it("PUT creates the table with read and write for its creator (listPermissions shows it), then upserts", async () => {
      const creator = await cairnCaller(fresh("creator"));
      const table = fresh("created");
      expect(await stored(["tables", table])).toBeNull();
      await put(creator, table, "k", "v1");
      expect(await stored(["tables", table])).toEqual({ created_at: expect.stringMatching(ISO) });
      expect(shape(await call(creator, "GET", `/${PROVIDER}/permissions/${table}`))).toEqual({
        status: 200,
        json: [permission(creator.name, true, true)],
      });
      await put(creator, table, "k", "v2");
      await put(creator, table, "k2", null);
      expect(
        shape(await call(creator, "GET", `/${PROVIDER}/${table}?include_values=true`)),
      ).toEqual({ status: 200, json: { items: [item("k", "v2"), item("k2", null)] } });
      expect(shape(await call(creator, "GET", `/${PROVIDER}`))).toEqual({
        status: 200,
        json: { tables: [table] },
      });
    });

    it("DELETE /<provider>/<table>/<key> answers the backend's message; a missing key or table is 404", async () => {
      const table = fresh("del");
      await put(owner, table, "k", 1);
      await put(owner, table, "keep", 2);
      expect(shape(await call(owner, "DELETE", `/${PROVIDER}/${table}/k`))).toEqual(
        deleted(table, "k"),
      );
      expect(await stored(["items", table, "k"])).toBeNull();
      await refused(owner, "DELETE", `/${PROVIDER}/${table}/k`, {}, noKey(table, "k"));
      const absent = fresh("absent");
      await refused(owner, "DELETE", `/${PROVIDER}/${absent}/k`, {}, noTable(absent));
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}`))).toEqual({
        status: 200,
        json: { keys: ["keep"] },
      });
    });

    it("grant defaults to read only, replaces the rights of an existing row, and keeps its created_at", async () => {
      const table = fresh("grants");
      const [zed, amy] = [fresh("zed"), fresh("amy")];
      await put(owner, table, "k", 1);
      expect(
        shape(
          await call(owner, "POST", `/${PROVIDER}/permissions/${table}`, {
            body: { workflow_id: zed },
          }),
        ),
      ).toEqual({ status: 200, json: permission(zed, true, false) });
      await grant(owner, table, amy, { can_read: true, can_write: true });
      const before = (await stored(["permissions", table, zed])) as { created_at: string };
      await grant(owner, table, zed, { can_read: false, can_write: true });
      expect(await stored(["permissions", table, zed])).toEqual({
        workflow_id: zed,
        can_read: false,
        can_write: true,
        created_at: before.created_at,
      });
      const listed = await call(owner, "GET", `/${PROVIDER}/permissions/${table}`);
      expect(shape(listed)).toEqual({
        status: 200,
        json: [
          permission(amy, true, true),
          permission(owner.name, true, true),
          permission(zed, false, true),
        ].sort((x, y) => (x.workflow_id < y.workflow_id ? -1 : 1)),
      });
      const absent = fresh("absent");
      await refused(
        owner,
        "POST",
        `/${PROVIDER}/permissions/${absent}`,
        { body: { workflow_id: zed } },
        noTable(absent),
      );
      await refused(owner, "GET", `/${PROVIDER}/permissions/${absent}`, {}, noTable(absent));
    });

    it("revoke answers the backend's message and removes the row; no row is 404", async () => {
      const table = fresh("revoke");
      const reader = fresh("reader");
      await put(owner, table, "k", 1);
      await grant(owner, table, reader);
      expect(
        shape(await call(owner, "DELETE", `/${PROVIDER}/permissions/${table}/${reader}`)),
      ).toEqual(revoked(table, reader));
      expect(await stored(["permissions", table, reader])).toBeNull();
      await refused(
        owner,
        "DELETE",
        `/${PROVIDER}/permissions/${table}/${reader}`,
        {},
        noPermission(table, reader),
      );
      const absent = fresh("absent");
      await refused(
        owner,
        "DELETE",
        `/${PROVIDER}/permissions/${absent}/${reader}`,
        {},
        noTable(absent),
      );
    });

    it("a table and key name may be 255 characters of [a-zA-Z0-9_-]", async () => {
      const table = `T-_9${"t".repeat(251)}`;
      const key = `K-_9${"k".repeat(251)}`;
      await put(owner, table, key, "long");
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}/${key}`))).toEqual({
        status: 200,
        json: item(key, "long"),
      });
    });

    it("table, key and provider names outside ^[a-zA-Z0-9_-]{1,255}$, and workflow names outside a principal's characters, are 400 with the backend's texts, changing nothing", async () => {
      const table = fresh("names");
      await put(owner, table, "k", 1);
      const long = "x".repeat(256);
      const body = { body: { value: 1 } };
      const cases: [string, string, CallOptions, { status: number; json: unknown }][] = [
        ["PUT", `/${PROVIDER}/bad@table/k`, body, invalidName("Table", BAD_CHARS)],
        ["PUT", `/${PROVIDER}/${table}/bad%20key`, body, invalidName("Key", BAD_CHARS)],
        ["PUT", `/${PROVIDER}/${table}/caf%C3%A9`, body, invalidName("Key", BAD_CHARS)],
        ["PUT", `/${PROVIDER}/${table}/a.b`, body, invalidName("Key", BAD_CHARS)],
        ["PUT", `/${PROVIDER}/${long}/k`, body, invalidName("Table", TOO_LONG)],
        ["PUT", `/${PROVIDER}/${table}/${long}`, body, invalidName("Key", TOO_LONG)],
        ["PUT", `/${PROVIDER}//k`, body, invalidName("Table", "cannot be empty")],
        ["GET", `/${PROVIDER}//k`, {}, invalidName("Table", "cannot be empty")],
        ["PUT", `/${PROVIDER}/${table}//`, body, invalidName("Key", "cannot be empty")],
        ["DELETE", `/${PROVIDER}/${table}//`, {}, invalidName("Key", "cannot be empty")],
        ["GET", `/${PROVIDER}/bad!table`, {}, invalidName("Table", BAD_CHARS)],
        ["GET", `/${PROVIDER}/${long}`, {}, invalidName("Table", TOO_LONG)],
        ["GET", `/${PROVIDER}/${table}/bad*key`, {}, invalidName("Key", BAD_CHARS)],
        ["DELETE", `/${PROVIDER}/${table}/bad$key`, {}, invalidName("Key", BAD_CHARS)],
        ["GET", `/${PROVIDER}/permissions/bad.t`, {}, invalidName("Table", BAD_CHARS)],
        [
          "POST",
          `/${PROVIDER}/permissions/${table}`,
          { body: { workflow_id: "bad wf" } },
          invalidName("Workflow", "must contain only alphanumeric characters and _ . @ + = -"),
        ],
        [
          "POST",
          `/${PROVIDER}/permissions/${table}`,
          { body: { workflow_id: "" } },
          invalidName("Workflow", "cannot be empty"),
        ],
        [
          "DELETE",
          `/${PROVIDER}/permissions/${table}/${long}`,
          {},
          invalidName("Workflow", TOO_LONG),
        ],
        ["GET", "/bad@provider", {}, invalidName("Provider", BAD_CHARS)],
        ["PUT", `/${long}/${table}/k`, body, invalidName("Provider", TOO_LONG)],
      ];
      for (const [method, path, options, expected] of cases) {
        await refused(owner, method, path, options, expected);
      }
    });

    it("bodies FastAPI cannot validate are 422, changing nothing", async () => {
      const table = fresh("bodies");
      await put(owner, table, "k", 1);
      const notObject = failure(422, "UNPROCESSABLE", "The request body must be a JSON object");
      const cases: [string, string, CallOptions, { status: number; json: unknown }][] = [
        [
          "PUT",
          `/${PROVIDER}/${table}/k`,
          { body: {} },
          failure(422, "UNPROCESSABLE", "The body needs a value"),
        ],
        [
          "PUT",
          `/${PROVIDER}/${fresh("new")}/k`,
          { body: {} },
          failure(422, "UNPROCESSABLE", "The body needs a value"),
        ],
        ["PUT", `/${PROVIDER}/${table}/k`, { raw: "[1]" }, notObject],
        ["PUT", `/${PROVIDER}/${table}/k`, { raw: '"value"' }, notObject],
        ["PUT", `/${PROVIDER}/${table}/k`, { raw: "5" }, notObject],
        ["PUT", `/${PROVIDER}/${table}/k`, { raw: "null" }, notObject],
        ["POST", `/${PROVIDER}/permissions/${table}`, { raw: "[]" }, notObject],
        [
          "POST",
          `/${PROVIDER}/permissions/${table}`,
          { body: { can_read: true } },
          failure(422, "UNPROCESSABLE", "workflow_id is required: the workflow to grant to"),
        ],
        [
          "POST",
          `/${PROVIDER}/permissions/${table}`,
          { body: { workflow_id: 42 } },
          failure(422, "UNPROCESSABLE", "workflow_id is required: the workflow to grant to"),
        ],
        [
          "POST",
          `/${PROVIDER}/permissions/${table}`,
          { body: { workflow_id: "w", can_read: "yes" } },
          failure(422, "UNPROCESSABLE", "can_read and can_write must be true or false"),
        ],
        [
          "POST",
          `/${PROVIDER}/permissions/${table}`,
          { body: { workflow_id: "w", can_write: 1 } },
          failure(422, "UNPROCESSABLE", "can_read and can_write must be true or false"),
        ],
      ];
      for (const [method, path, options, expected] of cases) {
        await refused(owner, method, path, options, expected);
      }
    });

    it("a value over 1,000,000 characters of JSON is 422; one over Cairn's value limit is 413; neither changes anything", async () => {
      const table = fresh("big");
      await put(owner, table, "k", "small");
      await refused(
        owner,
        "PUT",
        `/${PROVIDER}/${table}/k`,
        { body: { value: "x".repeat(1_000_001) } },
        failure(422, "UNPROCESSABLE", "The value is longer than 1000000 characters of JSON"),
      );
      await refused(
        owner,
        "PUT",
        `/${PROVIDER}/${table}/k`,
        { body: { value: "x".repeat(limits.maxValueBytes + 1) } },
        failure(413, "VALUE_TOO_LARGE"),
      );
      await refused(
        owner,
        "PUT",
        `/${PROVIDER}/${fresh("bignew")}/k`,
        { body: { value: "x".repeat(limits.maxValueBytes + 1) } },
        failure(413, "VALUE_TOO_LARGE"),
      );
    });

    /** `{ "value": [[…[1]…]] }`: a value nesting `depth` arrays. */
    const nestedBody = (depth: number) => `{"value":${"[".repeat(depth)}1${"]".repeat(depth)}}`;

    // An item keeps its value in a record ({ value, created_at, updated_at }), one level more.
    it("a value nesting one level less than limits.maxValueDepth is stored and read back", async () => {
      const table = fresh("deep");
      const depth = limits.maxValueDepth - 1;
      const answer = await call(owner, "PUT", `/${PROVIDER}/${table}/k`, {
        raw: nestedBody(depth),
      });
      expect(answer.status, answer.text.slice(0, 300)).toBe(200);
      const value = JSON.parse(nestedBody(depth)).value;
      expect(shape(await call(owner, "GET", `/${PROVIDER}/${table}/k`))).toEqual({
        status: 200,
        json: item("k", value),
      });
    });

    // The body (`{ "value": … }`) is one level deeper than its value: the body's limit answers.
    it("a value nesting limits.maxValueDepth levels or more, even 20,000, is 400 VALUE_TOO_DEEP, changing nothing", async () => {
      const table = fresh("deeper");
      await put(owner, table, "k", "shallow");
      for (const depth of [limits.maxValueDepth, 1000, 5000, 20_000]) {
        for (const target of [table, fresh("deepnew")]) {
          await refused(
            owner,
            "PUT",
            `/${PROVIDER}/${target}/k`,
            { raw: nestedBody(depth) },
            failure(
              400,
              "VALUE_TOO_DEEP",
              `The value nests arrays and objects more than ${limits.maxValueDepth} levels deep`,
            ),
          );
        }
      }
    });

    it("a request without a token is 401 and changes nothing", async () => {
      const table = fresh("anon");
      await refused(
        null,
        "PUT",
        `/${PROVIDER}/${table}/k`,
        { body: { value: 1 } },
        failure(401, "UNAUTHORIZED"),
      );
      await refused(null, "GET", `/${PROVIDER}`, {}, failure(401, "UNAUTHORIZED"));
    });
  });

  describe("the permission matrix: every caller on every route", () => {
    type Role = "owner" | "reader" | "writer" | "revoked" | "stranger" | "manager" | "admin";
    const ROLES: Role[] = ["owner", "reader", "writer", "revoked", "stranger", "manager", "admin"];
    const READS = new Set<Role>(["owner", "reader", "writer", "manager", "admin"]);
    const WRITES = new Set<Role>(["owner", "writer", "manager", "admin"]);

    /** A table `t` with key `k`, made by `owner`, shared as the roles say; their callers. */
    interface Scene {
      readonly t: string;
      readonly callers: Record<Role, Caller>;
      /** A workflow that has never called, to grant to. */
      readonly newcomer: string;
    }

    const V = { n: 1, tags: ["a", "b"] };

    /**
     * The scene. The reader, writer and revoked workflow are granted (and the last revoked)
     * before they have ever called, or even have a token.
     */
    const scene = async (): Promise<Scene> => {
      const t = fresh("m");
      const owner = await cairnCaller(fresh("owner"));
      const [reader, writer, gone] = [fresh("reader"), fresh("writer"), fresh("revoked")];
      await put(owner, t, "k", V);
      await grant(owner, t, reader);
      await grant(owner, t, writer, { can_read: true, can_write: true });
      await grant(owner, t, gone, { can_read: true, can_write: true });
      expect(shape(await call(owner, "DELETE", `/${PROVIDER}/permissions/${t}/${gone}`))).toEqual(
        revoked(t, gone),
      );
      return {
        t,
        newcomer: fresh("newcomer"),
        callers: {
          owner,
          reader: await cairnCaller(reader),
          writer: await cairnCaller(writer),
          revoked: await cairnCaller(gone),
          stranger: await cairnCaller(fresh("stranger")),
          manager: await managerOf(PROVIDER),
          admin,
        },
      };
    };

    interface RouteCase {
      readonly name: string;
      readonly method: string;
      readonly path: (s: Scene) => string;
      readonly body?: (role: Role) => unknown;
      /** What the route needs: read or write permission on `t`. */
      readonly need: "read" | "write";
      /** The answer to a caller that may. */
      readonly ok: (s: Scene, role: Role) => { status: number; json: unknown };
      /** Checks what an allowed request stored. */
      readonly effect?: (s: Scene, role: Role) => Promise<void>;
    }

    const p = `/${PROVIDER}`;
    const ROUTES: RouteCase[] = [
      {
        name: "GET /<p>/<t> (keys)",
        method: "GET",
        path: (s) => `${p}/${s.t}`,
        need: "read",
        ok: () => ({ status: 200, json: { keys: ["k"] } }),
      },
      {
        name: "GET /<p>/<t>?include_values=true",
        method: "GET",
        path: (s) => `${p}/${s.t}?include_values=true`,
        need: "read",
        ok: () => ({ status: 200, json: { items: [item("k", V)] } }),
      },
      {
        name: "GET /<p>/<t>/<k>",
        method: "GET",
        path: (s) => `${p}/${s.t}/k`,
        need: "read",
        ok: () => ({ status: 200, json: item("k", V) }),
      },
      {
        name: "GET /<p>/<t>/<missing key>",
        method: "GET",
        path: (s) => `${p}/${s.t}/missing`,
        need: "read",
        ok: (s) => noKey(s.t, "missing"),
      },
      {
        name: "PUT /<p>/<t>/<new key>",
        method: "PUT",
        path: (s) => `${p}/${s.t}/k2`,
        body: (role) => ({ value: { by: role } }),
        need: "write",
        ok: (_, role) => ({ status: 200, json: item("k2", { by: role }) }),
        async effect(s, role) {
          expect(await stored(["items", s.t, "k2"])).toMatchObject({ value: { by: role } });
        },
      },
      {
        name: "PUT /<p>/<t>/<k> (update)",
        method: "PUT",
        path: (s) => `${p}/${s.t}/k`,
        body: (role) => ({ value: { by: role } }),
        need: "write",
        ok: (_, role) => ({ status: 200, json: item("k", { by: role }) }),
        async effect(s, role) {
          expect(await stored(["items", s.t, "k"])).toMatchObject({ value: { by: role } });
        },
      },
      {
        name: "DELETE /<p>/<t>/<k>",
        method: "DELETE",
        path: (s) => `${p}/${s.t}/k`,
        need: "write",
        ok: (s) => deleted(s.t, "k"),
        async effect(s) {
          expect(await stored(["items", s.t, "k"])).toBeNull();
        },
      },
      {
        name: "DELETE /<p>/<t>/<missing key>",
        method: "DELETE",
        path: (s) => `${p}/${s.t}/missing`,
        need: "write",
        ok: (s) => noKey(s.t, "missing"),
      },
      {
        name: "GET /<p>/permissions/<t>",
        method: "GET",
        path: (s) => `${p}/permissions/${s.t}`,
        need: "read",
        ok: (s) => ({
          status: 200,
          // In workflow order: owner_…, reader_…, writer_….
          json: [
            permission(s.callers.owner.name, true, true),
            permission(s.callers.reader.name, true, false),
            permission(s.callers.writer.name, true, true),
          ],
        }),
      },
      {
        name: "POST /<p>/permissions/<t> (grant)",
        method: "POST",
        path: (s) => `${p}/permissions/${s.t}`,
        body: () => undefined,
        need: "write",
        ok: (s) => ({ status: 200, json: permission(s.newcomer, true, true) }),
        async effect(s) {
          expect(await stored(["permissions", s.t, s.newcomer])).toEqual(
            permission(s.newcomer, true, true),
          );
        },
      },
      {
        name: "DELETE /<p>/permissions/<t>/<reader> (revoke)",
        method: "DELETE",
        path: (s) => `${p}/permissions/${s.t}/${s.callers.reader.name}`,
        need: "write",
        ok: (s) => revoked(s.t, s.callers.reader.name),
        async effect(s) {
          expect(await stored(["permissions", s.t, s.callers.reader.name])).toBeNull();
        },
      },
      {
        name: "DELETE /<p>/permissions/<t>/<workflow without a row>",
        method: "DELETE",
        path: (s) => `${p}/permissions/${s.t}/${s.newcomer}`,
        need: "write",
        ok: (s) => noPermission(s.t, s.newcomer),
      },
    ];

    const bodyOf = (route: RouteCase, s: Scene, role: Role): CallOptions => {
      if (route.method === "POST") {
        return { body: { workflow_id: s.newcomer, can_read: true, can_write: true } };
      }
      return route.body ? { body: route.body(role) } : {};
    };

    for (const route of ROUTES) {
      for (const role of ROLES) {
        const allowed = (route.need === "read" ? READS : WRITES).has(role);
        const changes = allowed && route.effect !== undefined;
        it(`${route.name} as ${role}: ${allowed ? (changes ? "done" : "answered") : `403, changing nothing`}`, async () => {
          const s = await scene();
          const caller = s.callers[role];
          const options = bodyOf(route, s, role);
          if (!allowed) {
            await refused(caller, route.method, route.path(s), options, forbidden(route.need, s.t));
            return;
          }
          const before = await snapshot();
          const answer = await call(caller, route.method, route.path(s), options);
          expect(shape(answer), answer.text.slice(0, 300)).toEqual(route.ok(s, role));
          if (route.effect) await route.effect(s, role);
          else expect(await snapshot()).toEqual(before);
        });
      }
    }

    for (const role of ROLES) {
      it(`GET /<p> as ${role}: lists ${READS.has(role) && role !== "manager" && role !== "admin" ? "the shared table" : role === "manager" || role === "admin" ? "every table" : "nothing of it"}`, async () => {
        const s = await scene();
        const expected =
          role === "manager" || role === "admin"
            ? await storedTables()
            : role === "revoked" || role === "stranger"
              ? []
              : [s.t];
        expect(shape(await call(s.callers[role], "GET", p))).toEqual({
          status: 200,
          json: { tables: expected },
        });
      });

      it(`every route on a missing table as ${role}: 404, changing nothing; PUT creates it with ${role} as its owner`, async () => {
        const s = await scene();
        const caller = s.callers[role];
        const absent = fresh("absent");
        for (const route of ROUTES) {
          if (route.method === "PUT") continue;
          const path = route.path({ ...s, t: absent });
          await refused(caller, route.method, path, bodyOf(route, s, role), noTable(absent));
        }
        await put(caller, absent, "k", "mine");
        expect(shape(await call(admin, "GET", `${p}/permissions/${absent}`))).toEqual({
          status: 200,
          json: [permission(caller.name, true, true)],
        });
      });
    }

    it("a write-only grant lets a workflow write and delete but not read", async () => {
      const s = await scene();
      const writeOnly = await cairnCaller(fresh("writeonly"));
      await grant(s.callers.owner, s.t, writeOnly.name, { can_read: false, can_write: true });
      await put(writeOnly, s.t, "w", 1);
      await refused(writeOnly, "GET", `${p}/${s.t}/w`, {}, forbidden("read", s.t));
      await refused(writeOnly, "GET", `${p}/${s.t}`, {}, forbidden("read", s.t));
      await refused(writeOnly, "GET", `${p}/permissions/${s.t}`, {}, forbidden("read", s.t));
      expect(shape(await call(writeOnly, "DELETE", `${p}/${s.t}/w`))).toEqual(deleted(s.t, "w"));
    });

    it("a grant to a workflow that has never called applies at its first call", async () => {
      const s = await scene();
      const name = fresh("later");
      await grant(s.callers.owner, s.t, name, { can_read: true, can_write: true });
      const later = await cairnCaller(name);
      await put(later, s.t, "from-later", 1);
      expect(shape(await call(later, "GET", `${p}/${s.t}/k`))).toEqual({
        status: 200,
        json: item("k", V),
      });
    });

    it("a manager of one provider is a plain workflow in another", async () => {
      const other = fresh("prov");
      const owner = await cairnCaller(fresh("owner"));
      const t = fresh("t");
      await put(owner, t, "k", 1, other);
      const manager = await managerOf(PROVIDER);
      await refused(manager, "GET", `/${other}/${t}/k`, {}, forbidden("read", t));
      await refused(
        manager,
        "PUT",
        `/${other}/${t}/k`,
        { body: { value: 2 } },
        forbidden("write", t),
      );
      expect(shape(await call(manager, "GET", `/${other}`))).toEqual({
        status: 200,
        json: { tables: [] },
      });
      expect(shape(await call(await managerOf(other), "GET", `/${other}/${t}/k`))).toEqual({
        status: 200,
        json: item("k", 1),
      });
    });

    it("a revoked owner loses its own table; a manager can still give it back", async () => {
      const s = await scene();
      const { owner, manager } = s.callers;
      expect(shape(await call(owner, "DELETE", `${p}/permissions/${s.t}/${owner.name}`))).toEqual(
        revoked(s.t, owner.name),
      );
      await refused(owner, "GET", `${p}/${s.t}/k`, {}, forbidden("read", s.t));
      await refused(owner, "PUT", `${p}/${s.t}/k`, { body: { value: 2 } }, forbidden("write", s.t));
      await grant(manager, s.t, owner.name, { can_read: true, can_write: true });
      await put(owner, s.t, "k", 2);
    });

    it("a workflow whose Cairn name has . or @ can be granted and revoked like any other", async () => {
      const s = await scene();
      const dotted = await cairnCaller(`svc.${randomUUID().slice(0, 8)}@team`);
      const own = fresh("dotted");
      await put(dotted, own, "k", 1);
      expect(shape(await call(admin, "GET", `${p}/permissions/${own}`))).toEqual({
        status: 200,
        json: [permission(dotted.name, true, true)],
      });
      // Its own row, which the routes listed, can be revoked and granted again.
      expect(
        shape(
          await call(admin, "DELETE", `${p}/permissions/${own}/${encodeURIComponent(dotted.name)}`),
        ),
      ).toEqual(revoked(own, dotted.name));
      expect(
        shape(
          await call(s.callers.owner, "POST", `${p}/permissions/${s.t}`, {
            body: { workflow_id: dotted.name },
          }),
        ),
      ).toEqual({ status: 200, json: permission(dotted.name, true, false) });
    });
  });

  describe("the backend's upstream cases (kv_store_test.py), with Cairn tokens and with Floww JWTs", () => {
    /** Two workflows of one namespace, and a workflow of another namespace. */
    interface Kind {
      readonly name: string;
      workflows(): Promise<{ a: Caller; b: Caller; elsewhere: Caller; namespace: string }>;
    }
    const kinds: Kind[] = [
      {
        name: "Cairn tokens",
        async workflows() {
          return {
            a: await cairnCaller(fresh("wf_a")),
            b: await cairnCaller(fresh("wf_b")),
            elsewhere: await jwtCaller(randomUUID(), randomUUID()),
            namespace: "default",
          };
        },
      },
      {
        name: "Floww JWTs",
        async workflows() {
          const namespace = randomUUID();
          return {
            a: await jwtCaller(randomUUID(), namespace),
            b: await jwtCaller(randomUUID(), namespace),
            elsewhere: await jwtCaller(randomUUID(), randomUUID()),
            namespace,
          };
        },
      },
    ];

    for (const kind of kinds) {
      describe(kind.name, () => {
        // Each case has its own provider, as each upstream case has its own database.
        let w: Awaited<ReturnType<Kind["workflows"]>>;
        let base: string;
        const setup = async () => {
          w = await kind.workflows();
          base = `/${fresh("default")}`;
        };
        const putAs = (caller: Caller, path: string, value: unknown) =>
          call(caller, "PUT", `${base}${path}`, { body: { value } });

        it("test_set_and_get_value", async () => {
          await setup();
          const set = await putAs(w.a, "/my_table/test_key", "test_value");
          expect(shape(set)).toEqual({ status: 200, json: item("test_key", "test_value") });
          expect(shape(await call(w.a, "GET", `${base}/my_table/test_key`))).toEqual({
            status: 200,
            json: item("test_key", "test_value"),
          });
          expect(
            await stored(["items", "my_table", "test_key"], w.namespace, base.slice(1)),
          ).toMatchObject({ value: "test_value" });
        });

        it("test_update_existing_value", async () => {
          await setup();
          expect((await putAs(w.a, "/my_table/counter", 1)).status).toBe(200);
          expect(shape(await putAs(w.a, "/my_table/counter", 2))).toEqual({
            status: 200,
            json: item("counter", 2),
          });
          expect((await call(w.a, "GET", `${base}/my_table/counter`)).json.value).toBe(2);
        });

        it("test_delete_value", async () => {
          await setup();
          await putAs(w.a, "/my_table/temp_key", "temporary");
          expect(shape(await call(w.a, "DELETE", `${base}/my_table/temp_key`))).toEqual(
            deleted("my_table", "temp_key"),
          );
          expect(shape(await call(w.a, "GET", `${base}/my_table/temp_key`))).toEqual(
            noKey("my_table", "temp_key"),
          );
        });

        it("test_list_tables", async () => {
          await setup();
          await putAs(w.a, "/table_one/key1", "data1");
          await putAs(w.a, "/table_two/key2", "data2");
          expect(shape(await call(w.a, "GET", base))).toEqual({
            status: 200,
            json: { tables: ["table_one", "table_two"] },
          });
        });

        it("test_creator_auto_gets_permissions", async () => {
          await setup();
          await putAs(w.a, "/auto_table/key1", "data");
          expect((await call(w.a, "GET", `${base}/auto_table/key1`)).status).toBe(200);
          expect((await putAs(w.a, "/auto_table/key2", "more_data")).status).toBe(200);
        });

        it("test_grant_permission_to_another_workflow: after a read grant, B gets 200 on GET and 403 on PUT", async () => {
          await setup();
          await putAs(w.a, "/shared_table/data", "shared");
          await refused(
            w.b,
            "GET",
            `${base}/shared_table/data`,
            {},
            forbidden("read", "shared_table"),
          );
          const granted = await call(w.a, "POST", `${base}/permissions/shared_table`, {
            body: { workflow_id: w.b.name, can_read: true, can_write: false },
          });
          expect(shape(granted)).toEqual({ status: 200, json: permission(w.b.name, true, false) });
          expect(shape(await call(w.b, "GET", `${base}/shared_table/data`))).toEqual({
            status: 200,
            json: item("data", "shared"),
          });
          await refused(
            w.b,
            "PUT",
            `${base}/shared_table/other`,
            { body: { value: "attempt" } },
            forbidden("write", "shared_table"),
          );
        });

        it("test_access_denied_without_permission", async () => {
          await setup();
          await putAs(w.a, "/private_table/secret", "private_data");
          await refused(
            w.b,
            "GET",
            `${base}/private_table/secret`,
            {},
            forbidden("read", "private_table"),
          );
          await refused(
            w.b,
            "PUT",
            `${base}/private_table/other`,
            { body: { value: "attempt" } },
            forbidden("write", "private_table"),
          );
        });

        it("test_write_permission_required_to_grant", async () => {
          await setup();
          await putAs(w.a, "/perm_table/data", "data");
          await call(w.a, "POST", `${base}/permissions/perm_table`, {
            body: { workflow_id: w.b.name, can_read: true, can_write: false },
          });
          await refused(
            w.b,
            "POST",
            `${base}/permissions/perm_table`,
            { body: { workflow_id: w.a.name, can_read: true, can_write: true } },
            forbidden("write", "perm_table"),
          );
        });

        it("test_invalid_table_name: 400 containing 'alphanumeric'", async () => {
          await setup();
          const answer = await call(w.a, "PUT", `${base}/invalid@table/key`, {
            body: { value: "data" },
          });
          expect(answer.status).toBe(400);
          expect(answer.json.detail.toLowerCase()).toContain("alphanumeric");
        });

        it("test_invalid_key: 400 containing 'alphanumeric'", async () => {
          await setup();
          const answer = await call(w.a, "PUT", `${base}/my_table/invalid key with spaces`, {
            body: { value: "data" },
          });
          expect(answer.status).toBe(400);
          expect(answer.json.detail.toLowerCase()).toContain("alphanumeric");
        });

        it("test_oversized_value: refused, nothing stored", async () => {
          await setup();
          await refused(
            w.a,
            "PUT",
            `${base}/my_table/large_key`,
            { body: { value: "x".repeat(1_000_001) } },
            failure(422, "UNPROCESSABLE"),
          );
        });

        it("test_get_nonexistent_key_returns_404", async () => {
          await setup();
          expect(shape(await call(w.a, "GET", `${base}/my_table/nonexistent`))).toEqual(
            noTable("my_table"),
          );
          await putAs(w.a, "/my_table/existing", "data");
          expect(shape(await call(w.a, "GET", `${base}/my_table/nonexistent`))).toEqual(
            noKey("my_table", "nonexistent"),
          );
        });

        it("test_delete_nonexistent_key_returns_404", async () => {
          await setup();
          await putAs(w.a, "/my_table/existing", "data");
          await refused(
            w.a,
            "DELETE",
            `${base}/my_table/nonexistent`,
            {},
            noKey("my_table", "nonexistent"),
          );
        });

        it("test_user_cannot_list_other_users_tables", async () => {
          await setup();
          await putAs(w.a, "/client_a_table/data", "a_data");
          expect((await call(w.a, "GET", base)).json.tables).toContain("client_a_table");
          expect(shape(await call(w.elsewhere, "GET", base))).toEqual({
            status: 200,
            json: { tables: [] },
          });
        });

        it("test_workflow_cannot_access_table_from_other_namespace: 404", async () => {
          await setup();
          await putAs(w.a, "/namespace_a_table/data", "a_data");
          await refused(
            w.elsewhere,
            "GET",
            `${base}/namespace_a_table/data`,
            {},
            noTable("namespace_a_table"),
          );
        });

        it("test_list_keys_without_values", async () => {
          await setup();
          await putAs(w.a, "/my_table/key1", "value1");
          await putAs(w.a, "/my_table/key2", "value2");
          const answer = await call(w.a, "GET", `${base}/my_table`);
          expect(shape(answer)).toEqual({ status: 200, json: { keys: ["key1", "key2"] } });
          expect(answer.text).not.toContain("value1");
        });

        it("test_list_keys_with_values", async () => {
          await setup();
          await putAs(w.a, "/my_table/key1", "value1");
          await putAs(w.a, "/my_table/key2", { nested: "object" });
          expect(shape(await call(w.a, "GET", `${base}/my_table?include_values=true`))).toEqual({
            status: 200,
            json: { items: [item("key1", "value1"), item("key2", { nested: "object" })] },
          });
        });

        it("test_list_empty_table: { keys: [] }", async () => {
          await setup();
          await putAs(w.a, "/empty_table/temp", "data");
          await call(w.a, "DELETE", `${base}/empty_table/temp`);
          expect(shape(await call(w.a, "GET", `${base}/empty_table`))).toEqual({
            status: 200,
            json: { keys: [] },
          });
        });
      });
    }
  });

  describe("Floww workflow JWTs", () => {
    it("a valid JWT works, and its namespace_id scopes the data", async () => {
      const workflow = randomUUID();
      const [ns1, ns2] = [randomUUID(), randomUUID()];
      const one = await jwtCaller(workflow, ns1);
      const two = await jwtCaller(workflow, ns2);
      const table = fresh("scoped");
      await put(one, table, "k", "in ns1");
      expect(await stored(["items", table, "k"], ns1)).toMatchObject({ value: "in ns1" });
      expect(await stored(["permissions", table, workflow], ns1)).toEqual(
        permission(workflow, true, true),
      );
      // The same workflow id in another namespace sees none of it, and makes its own table.
      expect(shape(await call(two, "GET", `/${PROVIDER}`))).toEqual({
        status: 200,
        json: { tables: [] },
      });
      await refused(two, "GET", `/${PROVIDER}/${table}/k`, {}, noTable(table));
      await put(two, table, "k", "in ns2");
      expect(shape(await call(one, "GET", `/${PROVIDER}/${table}/k`))).toEqual({
        status: 200,
        json: item("k", "in ns1"),
      });
      expect(await stored(["items", table, "k"], ns2)).toMatchObject({ value: "in ns2" });
      // A Cairn token of that name is in the namespace `default`: neither table is there.
      const cairn = await cairnCaller(workflow);
      expect(shape(await call(cairn, "GET", `/${PROVIDER}`))).toEqual({
        status: 200,
        json: { tables: [] },
      });
      await refused(cairn, "GET", `/${PROVIDER}/${table}/k`, {}, noTable(table));
      expect(await stored(["tables", table])).toBeNull();
      // Nor can an admin token reach a JWT namespace through these routes.
      await refused(admin, "GET", `/${PROVIDER}/${table}/k`, {}, noTable(table));
    });

    it("an expired JWT is 401 Token has expired, changing nothing", async () => {
      const token = await signJwt(
        { workflow_id: randomUUID(), namespace_id: randomUUID() },
        { expires: Math.floor(Date.now() / 1000) - 60 },
      );
      await refused(
        token,
        "PUT",
        `/${PROVIDER}/${fresh("t")}/k`,
        { body: { value: 1 } },
        failure(401, "UNAUTHORIZED", "Token has expired"),
      );
    });

    it("a JWT with a wrong secret, audience, issuer or algorithm, alg none, missing claims or garbage is 401 Invalid token", async () => {
      const claims = { workflow_id: randomUUID(), namespace_id: randomUUID() };
      const unsecured = new UnsecuredJWT(claims)
        .setAudience("floww-workflow")
        .setIssuer("floww-backend")
        .setExpirationTime("10m")
        .encode();
      const valid = await signJwt(claims);
      const [header, payload] = valid.split(".");
      const tokens = [
        await signJwt(claims, { secret: "another-secret-of-thirty-two-bytes!!" }),
        await signJwt(claims, { audience: "someone-else" }),
        await signJwt(claims, { issuer: "not-floww" }),
        await signJwt(claims, { alg: "HS512" }),
        unsecured,
        `${header}.${payload}.`,
        `${header}.${payload}.AAAA`,
        `${header}.garbage.garbage`,
        "eyJnot.a.jwt",
        await signJwt({ workflow_id: claims.workflow_id }),
        await signJwt({ namespace_id: claims.namespace_id }),
        await signJwt({ workflow_id: 42, namespace_id: claims.namespace_id }),
        await signJwt({ workflow_id: "", namespace_id: claims.namespace_id }),
      ];
      for (const token of tokens) {
        await refused(
          token,
          "PUT",
          `/${PROVIDER}/${fresh("t")}/k`,
          { body: { value: 1 } },
          failure(401, "UNAUTHORIZED", "Invalid token"),
        );
      }
      // What is not a JWT is taken for a Cairn token, and is not one.
      await refused(
        "garbage",
        "GET",
        `/${PROVIDER}`,
        {},
        failure(401, "UNAUTHORIZED", "Invalid access token."),
      );
    });

    describe("on a server started without flowwJwtSecret", () => {
      const bare = serverForTests(TOKEN, storage);
      it("a valid Floww JWT is 401", async () => {
        const token = await signJwt({ workflow_id: randomUUID(), namespace_id: randomUUID() });
        for (const [method, path, body] of [
          ["GET", `/${PROVIDER}`, undefined],
          ["PUT", `/${PROVIDER}/t/k`, { value: 1 }],
        ] as const) {
          const answer = await call(
            token,
            method,
            path,
            body === undefined ? {} : { body },
            `${bare().url}/api/kv`,
          );
          expect(shape(answer)).toEqual(failure(401, "UNAUTHORIZED", "Invalid access token."));
        }
        const check = await openKv(bare().url, { accessToken: TOKEN });
        try {
          expect(await collect(check.list({ prefix: ["floww"] }))).toEqual([]);
        } finally {
          await check.close();
        }
      });
    });
  });

  describe("arbitrary bodies and names (fast-check)", () => {
    const RUNS = 60;
    it(
      "PUT /<p>/<t>/<k> with any body and names: never a 5xx; a 4xx is exactly { detail, code } and changes nothing",
      async () => {
        const owner = await cairnCaller(fresh("fuzzer"));
        const table = fresh("fuzz");
        await put(owner, table, "k", 0);
        const name = fc
          .oneof(
            { weight: 4, arbitrary: fc.constantFrom(table, "k", "fresh_t", "a-b_9") },
            {
              weight: 2,
              arbitrary: fc.constantFrom(
                "x".repeat(255),
                "x".repeat(256),
                "bad@",
                "a b",
                "%",
                "%2F",
                "a/b",
                "é",
                "__proto__",
                "permissions",
                "?x=1",
                "#",
              ),
            },
            { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
            { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
          )
          // `.` and `..` are dot segments: a URL resolves them away before any request is sent.
          .filter((n) => n !== "" && n !== "." && n !== "..");
        /** Each UTF-8 byte as %XX, so that the server decodes exactly `n`. */
        const encoded = (n: string) =>
          [...Buffer.from(n, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
        const valid = fc.record({ value: fc.jsonValue({ maxDepth: 3 }) });
        const bodies = fc.oneof(
          { weight: 4, arbitrary: nearValid(valid) },
          { weight: 2, arbitrary: hostileValue },
          { weight: 1, arbitrary: fc.jsonValue() },
          { weight: 1, arbitrary: hostileValue.map((value) => ({ value })) },
        );
        await fc.assert(
          fc.asyncProperty(fc.tuple(name, name, name), bodies, async ([provider, t, k], body) => {
            const before = await snapshot();
            const path = `/${encoded(provider)}/${encoded(t)}/${encoded(k)}`;
            const answer = await call(owner, "PUT", path, { raw: jsonText(body) });
            expect(answer.status, answer.text.slice(0, 300)).toBeLessThan(500);
            if (answer.status >= 400) {
              expect(answer.json, answer.text.slice(0, 300)).toEqual({
                detail: expect.any(String),
                code: expect.stringMatching(/^[A-Z_]+$/),
              });
              expect(await snapshot()).toEqual(before);
            } else {
              expect(answer.status).toBe(200);
              // The value stored is the body's, as JSON writes it back (-0 as 0, null included).
              const sent = JSON.parse(jsonText(body)).value;
              expect(answer.json).toEqual(item(k, JSON.parse(JSON.stringify(sent))));
            }
          }),
          fuzz(RUNS),
        );
      },
      timeoutFor(RUNS, 100),
    );
  });

  describe("workflows creating one table at once", () => {
    it("10 concurrent first PUTs: exactly one becomes the owner; the others are 403 and wrote nothing", async () => {
      for (let round = 0; round < 3; round++) {
        const workflows = await Promise.all(
          Array.from({ length: 10 }, (_, i) => cairnCaller(fresh(`racer${i}`))),
        );
        const table = fresh("race");
        const answers = await Promise.all(
          workflows.map((w) =>
            call(w, "PUT", `/${PROVIDER}/${table}/${w.name}`, { body: { value: w.name } }),
          ),
        );
        const winners = workflows.filter((_, i) => answers[i]!.status === 200);
        expect(winners).toHaveLength(1);
        const owner = winners[0]!;
        for (const [i, answer] of answers.entries()) {
          if (workflows[i] === owner) {
            expect(shape(answer)).toEqual({ status: 200, json: item(owner.name, owner.name) });
          } else expect(shape(answer)).toEqual(forbidden("write", table));
        }
        expect(shape(await call(admin, "GET", `/${PROVIDER}/permissions/${table}`))).toEqual({
          status: 200,
          json: [permission(owner.name, true, true)],
        });
        expect(
          shape(await call(admin, "GET", `/${PROVIDER}/${table}?include_values=true`)),
        ).toEqual({ status: 200, json: { items: [item(owner.name, owner.name)] } });
        for (const w of workflows) {
          expect((await call(w, "GET", `/${PROVIDER}`)).json.tables.includes(table)).toBe(
            w === owner,
          );
        }
      }
    });
  });
});
