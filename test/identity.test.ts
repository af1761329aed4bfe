/**
 * Identity against a real server: the admin API (`/admin/tokens`), the life of a principal's
 * token (admin, expiry, revocation, a wrong secret, grants per database, which principal may
 * create a named database), and grants as the JSON API and the remote SDK hold them: reads and
 * writes inside a grant work, everything else is 403 FORBIDDEN and changes nothing, and the
 * system keyspace where principals live is nobody's to read. On a SQLite file and on PostgreSQL.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeKey } from "../src/codec/key-codec.js";
import { KvError, openKv } from "../src/index.js";
import type { CairnServer } from "../src/server/server.js";
import { fuzz, isErrorCode, nearValid, timeoutFor } from "./fuzz/fuzz.js";
import { collect, describeEach, jsonOf, serverForTests, storages, until } from "./targets.js";

const TOKEN = "identity-admin-token-123";

/** The fields of `POST /admin/tokens`'s answer, sorted. */
const CREATED_FIELDS = ["admin", "createdAt", "expiresAt", "grants", "name", "token"];
/** The fields of a principal in `GET /admin/tokens`, sorted. */
const LISTED_FIELDS = ["admin", "createdAt", "expiresAt", "grants", "name"];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface Answer {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: assertions navigate arbitrary response JSON
  readonly json: any;
  readonly text: string;
}

/** A client of the server `server()` speaks to, as the admin unless told otherwise. */
function clientOf(server: () => CairnServer) {
  /**
   * Sends `body` as JSON (`raw`: as is) to `path` with `token` (`null`: no Authorization header);
   * resolves with the status, the text and the parsed JSON (`undefined` when it is not JSON).
   */
  const call = async (
    method: string,
    path: string,
    options: { token?: string | null; body?: unknown; raw?: string } = {},
  ): Promise<Answer> => {
    const token = options.token === undefined ? TOKEN : options.token;
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${server().url}${path}`, {
      method,
      headers,
      body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    });
    const text = await response.text();
    const json = jsonOf(text);
    return { status: response.status, json, text };
  };

  /** Creates a principal as the admin; its token. */
  const create = async (body: Record<string, unknown>): Promise<string> => {
    const created = await call("POST", "/admin/tokens", { body });
    expect(created.status, created.text).toBe(201);
    return created.json.token as string;
  };

  /** The principals' names, as the admin lists them. */
  const names = async (): Promise<string[]> => {
    const listed = await call("GET", "/admin/tokens");
    expect(listed.status).toBe(200);
    return listed.json.tokens.map((t: { name: string }) => t.name);
  };

  return { call, create, names };
}

/** A refusal: `status` with `{ error, code }`. */
const refused = (status: number, code: string) => ({
  status,
  json: { error: expect.any(String), code },
});
const shape = ({ status, json }: Answer) => ({ status, json });

describeEach(storages, "identity", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const { call, create, names } = clientOf(server);

  describe("admin API", () => {
    it("creates a principal: 201 with exactly name, token, grants, admin, createdAt and expiresAt", async () => {
      const grants = [
        { prefix: ["users", "ana"], access: "readwrite" },
        { prefix: ["orders"], access: "read", database: "shop" },
        { queue: true },
      ];
      const before = Date.now();
      const created = await call("POST", "/admin/tokens", { body: { name: "ana", grants } });
      const after = Date.now();
      expect(created.status).toBe(201);
      expect(Object.keys(created.json).sort()).toEqual(CREATED_FIELDS);
      expect(created.json).toEqual({
        name: "ana",
        token: expect.stringMatching(/^ck\.ana\.[A-Za-z0-9_-]{43}$/),
        grants,
        admin: false,
        createdAt: expect.stringMatching(ISO),
        expiresAt: null,
      });
      const createdAt = Date.parse(created.json.createdAt);
      expect(createdAt).toBeGreaterThanOrEqual(before);
      expect(createdAt).toBeLessThanOrEqual(after);

      const expiring = await call("POST", "/admin/tokens", {
        body: { name: "ana.expiring", admin: true, expiresIn: "1h" },
      });
      expect(expiring.status).toBe(201);
      expect(expiring.json).toEqual({
        name: "ana.expiring",
        token: expect.stringMatching(/^ck\.ana\.expiring\.[A-Za-z0-9_-]{43}$/),
        grants: [],
        admin: true,
        createdAt: expect.stringMatching(ISO),
        expiresAt: expect.stringMatching(ISO),
      });
      expect(Date.parse(expiring.json.expiresAt) - Date.parse(expiring.json.createdAt)).toBe(
        3_600_000,
      );
      // Two tokens never share a secret.
      expect(created.json.token.split(".").at(-1)).not.toBe(expiring.json.token.split(".").at(-1));
    });

    it("lists principals without their secrets", async () => {
      const grants = [{ prefix: ["lister", 1], access: "read" }];
      const created = await call("POST", "/admin/tokens", {
        body: { name: "lister", grants, expiresIn: "1d" },
      });
      expect(created.status).toBe(201);
      const secret = created.json.token.split(".").at(-1) as string;
      const listed = await call("GET", "/admin/tokens");
      expect(listed.status).toBe(200);
      expect(Object.keys(listed.json)).toEqual(["tokens"]);
      const entry = listed.json.tokens.find((t: { name: string }) => t.name === "lister");
      expect(Object.keys(entry).sort()).toEqual(LISTED_FIELDS);
      const { token: _token, ...info } = created.json;
      expect(entry).toEqual(info);
      for (const t of listed.json.tokens) {
        expect(Object.keys(t).sort()).toEqual(LISTED_FIELDS);
        expect(t).not.toHaveProperty("token");
        expect(t).not.toHaveProperty("hash");
      }
      expect(listed.text).not.toContain(secret);
      expect(listed.text).not.toContain(created.json.token);
      // Names in name order.
      const all = listed.json.tokens.map((t: { name: string }) => t.name);
      expect(all).toEqual([...all].sort());
    });

    it("refuses a taken name with 409 ALREADY_EXISTS, keeping the first token", async () => {
      const first = await create({ name: "taken", grants: [{ prefix: ["t"], access: "read" }] });
      const again = await call("POST", "/admin/tokens", { body: { name: "taken", admin: true } });
      expect(shape(again)).toEqual(refused(409, "ALREADY_EXISTS"));
      expect(again.text).not.toContain("ck.taken.");
      // The first token still works, and the principal kept its grants (not admin).
      expect((await call("GET", "/api/keys/t/1", { token: first })).status).toBe(404);
      expect(shape(await call("GET", "/admin/tokens", { token: first }))).toEqual(
        refused(403, "FORBIDDEN"),
      );
      expect((await names()).filter((n) => n === "taken")).toEqual(["taken"]);
    });

    it("revokes with 200 { revoked }, then answers 404 NOT_FOUND for the same name", async () => {
      await create({ name: "doomed" });
      const revoked = await call("DELETE", "/admin/tokens/doomed");
      expect({ status: revoked.status, json: revoked.json }).toEqual({
        status: 200,
        json: { revoked: "doomed" },
      });
      expect(await names()).not.toContain("doomed");
      expect(shape(await call("DELETE", "/admin/tokens/doomed"))).toEqual(
        refused(404, "NOT_FOUND"),
      );
      expect(shape(await call("DELETE", "/admin/tokens/never-was"))).toEqual(
        refused(404, "NOT_FOUND"),
      );
      // The name is free again: a new principal takes it, with a new token.
      expect((await call("POST", "/admin/tokens", { body: { name: "doomed" } })).status).toBe(201);
    });

    it("refuses every route to a non-admin principal with 403 FORBIDDEN, changing nothing", async () => {
      const everything = await create({
        name: "not-admin",
        grants: [{ prefix: [], access: "readwrite" }, { queue: true }],
      });
      const victim = await create({ name: "victim" });
      const before = await names();
      for (const [method, path, body] of [
        ["POST", "/admin/tokens", { name: "by-not-admin", admin: true }],
        ["GET", "/admin/tokens", undefined],
        ["DELETE", "/admin/tokens/victim", undefined],
        ["DELETE", "/admin/tokens/not-admin", undefined],
      ] as const) {
        const answer = await call(method, path, { token: everything, body });
        expect({ method, path, ...shape(answer) }).toEqual({
          method,
          path,
          ...refused(403, "FORBIDDEN"),
        });
        expect(answer.json.error).toBe("Only an admin token may do this");
      }
      expect(await names()).toEqual(before);
      expect((await call("GET", "/api/keys/anything", { token: victim })).status).toBe(403);
    });

    it("refuses every route without a token, or with one it does not know, with 401 UNAUTHORIZED", async () => {
      const before = await names();
      for (const token of [null, "not-a-token", `${TOKEN}x`, "ck.nobody.secret"]) {
        for (const [method, path, body] of [
          ["POST", "/admin/tokens", { name: "by-stranger", admin: true }],
          ["GET", "/admin/tokens", undefined],
          ["DELETE", "/admin/tokens/victim", undefined],
        ] as const) {
          const answer = await call(method, path, { token, body });
          expect({ token, method, ...shape(answer) }).toEqual({
            token,
            method,
            ...refused(401, "UNAUTHORIZED"),
          });
        }
      }
      expect(await names()).toEqual(before);
    });

    it("refuses each malformed body with 400 naming the problem, and creates nothing", async () => {
      const before = await call("GET", "/admin/tokens");
      const grant = (fields: Record<string, unknown>) => ({ name: "malformed", grants: [fields] });
      const cases: [string, unknown, string][] = [
        ["not an object", ["malformed"], "INVALID_ARGUMENT"],
        ["null", null, "INVALID_ARGUMENT"],
        ["an unknown field", { name: "malformed", role: "admin" }, "INVALID_ARGUMENT"],
        ["name missing", { grants: [] }, "INVALID_ARGUMENT"],
        ["name a number", { name: 5 }, "INVALID_ARGUMENT"],
        ["name null", { name: null }, "INVALID_ARGUMENT"],
        ["name empty", { name: "" }, "INVALID_ARGUMENT"],
        ["name with a slash", { name: "a/b" }, "INVALID_ARGUMENT"],
        ["name with a space", { name: "a b" }, "INVALID_ARGUMENT"],
        ["name starting with -", { name: "-a" }, "INVALID_ARGUMENT"],
        ["name starting with .", { name: ".a" }, "INVALID_ARGUMENT"],
        ["name of 129 characters", { name: "a".repeat(129) }, "INVALID_ARGUMENT"],
        ['name "admin"', { name: "admin" }, "INVALID_ARGUMENT"],
        ["grants an object", { name: "malformed", grants: {} }, "INVALID_ARGUMENT"],
        ["grants a string", { name: "malformed", grants: "all" }, "INVALID_ARGUMENT"],
        ["a grant not an object", { name: "malformed", grants: ["users"] }, "INVALID_ARGUMENT"],
        [
          "a grant with an unknown field",
          grant({ prefix: ["a"], access: "read", scope: "all" }),
          "INVALID_ARGUMENT",
        ],
        ["a grant without prefix", grant({ access: "read" }), "INVALID_ARGUMENT"],
        ["access missing", grant({ prefix: ["a"] }), "INVALID_ARGUMENT"],
        ["access unknown", grant({ prefix: ["a"], access: "all" }), "INVALID_ARGUMENT"],
        ["access READ", grant({ prefix: ["a"], access: "READ" }), "INVALID_ARGUMENT"],
        // A key in a grant is refused as keys are everywhere: INVALID_KEY.
        ["prefix a string", grant({ prefix: "users", access: "read" }), "INVALID_KEY"],
        ["prefix null", grant({ prefix: null, access: "read" }), "INVALID_KEY"],
        ["a key part null", grant({ prefix: ["a", null], access: "read" }), "INVALID_KEY"],
        ["a key part an object", grant({ prefix: [{ a: 1 }], access: "read" }), "INVALID_KEY"],
        [
          "a key part a lone surrogate",
          grant({ prefix: ["\ud800"], access: "read" }),
          "INVALID_KEY",
        ],
        ["queue false", grant({ queue: false }), "INVALID_ARGUMENT"],
        ["queue a string", grant({ queue: "yes" }), "INVALID_ARGUMENT"],
        ["queue with a prefix", grant({ queue: true, prefix: ["a"] }), "INVALID_ARGUMENT"],
        [
          "database a number",
          grant({ prefix: ["a"], access: "read", database: 5 }),
          "INVALID_ARGUMENT",
        ],
        ["database empty", grant({ queue: true, database: "" }), "INVALID_ARGUMENT"],
        ["admin a string", { name: "malformed", admin: "true" }, "INVALID_ARGUMENT"],
        ["admin a number", { name: "malformed", admin: 1 }, "INVALID_ARGUMENT"],
        ["expiresIn a word", { name: "malformed", expiresIn: "soon" }, "INVALID_ARGUMENT"],
        ["expiresIn negative", { name: "malformed", expiresIn: -1 }, "INVALID_ARGUMENT"],
        ["expiresIn 0", { name: "malformed", expiresIn: 0 }, "INVALID_ARGUMENT"],
        ['expiresIn "0s"', { name: "malformed", expiresIn: "0s" }, "INVALID_ARGUMENT"],
        ["expiresIn true", { name: "malformed", expiresIn: true }, "INVALID_ARGUMENT"],
      ];
      for (const [what, body, code] of cases) {
        const answer = await call("POST", "/admin/tokens", { body });
        expect({ what, ...shape(answer) }).toEqual({ what, ...refused(400, code) });
      }
      expect(shape(await call("POST", "/admin/tokens", { raw: "{name:" }))).toEqual(
        refused(400, "INVALID_JSON"),
      );
      expect((await call("GET", "/admin/tokens")).json).toEqual(before.json);
    });

    it(
      "answers any JSON body with 201, or a 4xx with { error, code } that creates nothing; never a 5xx",
      async () => {
        const key = fc.array(fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.boolean()), {
          maxLength: 3,
        });
        const grant = fc.oneof(
          fc.record(
            {
              prefix: key,
              access: fc.constantFrom("read", "write", "readwrite"),
              database: fc.constantFrom("shop", "x"),
            },
            { requiredKeys: ["prefix", "access"] },
          ),
          fc.record(
            { queue: fc.constant(true), database: fc.constant("shop") },
            {
              requiredKeys: ["queue"],
            },
          ),
        );
        const valid = fc.record(
          {
            name: fc.stringMatching(/^fz-[a-z0-9]{1,8}$/),
            grants: fc.array(grant, { maxLength: 3 }),
            admin: fc.boolean(),
            expiresIn: fc.constantFrom("1h", 60_000, "7d"),
          },
          { requiredKeys: ["name"] },
        );
        const bodies = fc.oneof(
          valid.map((v) => JSON.stringify(v)),
          // expiresIn is left valid here: a huge one is the known defect pinned below.
          nearValid(valid, ["expiresIn"]).map((v) => JSON.stringify(v) ?? "null"),
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
          fc.string({ maxLength: 40 }),
        );
        await fc.assert(
          fc.asyncProperty(bodies, async (raw) => {
            const before = await names();
            const answer = await call("POST", "/admin/tokens", { raw });
            if (answer.status === 201) {
              expect(Object.keys(answer.json).sort()).toEqual(CREATED_FIELDS);
              expect(await names()).toEqual([...before, answer.json.name].sort());
              return;
            }
            expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
            expect(answer.status, answer.text).toBeLessThan(500);
            expect(Object.keys(answer.json).sort()).toEqual(["code", "error"]);
            expect(typeof answer.json.error).toBe("string");
            expect(isErrorCode(answer.json.code), answer.text).toBe(true);
            expect(await names()).toEqual(before);
          }),
          fuzz(150),
        );
      },
      timeoutFor(150, 50),
    );
    it("refuses an expiresIn past what a date can hold with 400, and keeps the list readable", async () => {
      const before = await names();
      try {
        for (const expiresIn of [1e300, 8.64e15, "99999999999y"]) {
          const answer = await call("POST", "/admin/tokens", {
            body: { name: "far-future", expiresIn },
          });
          expect({ expiresIn, ...shape(answer) }).toEqual({
            expiresIn,
            ...refused(400, "INVALID_ARGUMENT"),
          });
        }
        expect(await names()).toEqual(before);
      } finally {
        await call("DELETE", "/admin/tokens/far-future");
      }
    });
  });

  describe("tokens", () => {
    it("lets an admin: true principal do everything, the admin API included", async () => {
      const root = await create({ name: "root", admin: true });
      const made = await call("POST", "/admin/tokens", {
        token: root,
        body: { name: "made-by-root" },
      });
      expect(made.status).toBe(201);
      expect((await call("GET", "/admin/tokens", { token: root })).json.tokens).toContainEqual(
        expect.objectContaining({ name: "made-by-root" }),
      );
      for (const path of ["/api/keys/root/1", "/db/root-db/api/keys/root/1"]) {
        expect((await call("PUT", path, { token: root, body: { by: "root" } })).status).toBe(200);
        expect((await call("GET", path, { token: root })).json.value).toEqual({ by: "root" });
        expect((await call("GET", path)).json.value).toEqual({ by: "root" });
      }
      const queued = await call("POST", "/api/queue/enqueue", { token: root, body: { value: 1 } });
      expect(queued.status).toBe(200);
      expect((await call("DELETE", "/admin/tokens/made-by-root", { token: root })).status).toBe(
        200,
      );
      expect(await names()).not.toContain("made-by-root");
    });

    it("accepts a token until it expires, then refuses it with 401 saying when it expired", async () => {
      const created = await call("POST", "/admin/tokens", {
        body: {
          name: "brief",
          grants: [{ prefix: ["brief"], access: "readwrite" }],
          expiresIn: "1s",
        },
      });
      expect(created.status).toBe(201);
      const { token, expiresAt } = created.json;
      expect(Date.parse(expiresAt) - Date.parse(created.json.createdAt)).toBe(1000);
      expect((await call("PUT", "/api/keys/brief/1", { token, body: 1 })).status).toBe(200);
      let answer: Answer | undefined;
      await until(async () => {
        answer = await call("GET", "/api/keys/brief/1", { token });
        return answer.status !== 200;
      });
      expect(shape(answer!)).toEqual(refused(401, "UNAUTHORIZED"));
      expect(answer!.json.error).toBe(`This token expired at ${expiresAt}.`);
      // Expired, it writes nothing either; the principal is still listed until revoked.
      const write = await call("PUT", "/api/keys/brief/2", { token, body: 2 });
      expect(shape(write)).toEqual(refused(401, "UNAUTHORIZED"));
      expect((await call("GET", "/api/keys/brief/2")).status).toBe(404);
      expect(await names()).toContain("brief");
    });

    it("refuses a revoked principal's token on its next request", async () => {
      const token = await create({
        name: "revoked",
        grants: [{ prefix: ["revoked"], access: "readwrite" }],
      });
      expect((await call("PUT", "/api/keys/revoked/1", { token, body: 1 })).status).toBe(200);
      expect((await call("DELETE", "/admin/tokens/revoked")).status).toBe(200);
      const read = await call("GET", "/api/keys/revoked/1", { token });
      expect(shape(read)).toEqual(refused(401, "UNAUTHORIZED"));
      expect(read.json.error).toBe("Invalid access token.");
      expect(shape(await call("PUT", "/api/keys/revoked/1", { token, body: 2 }))).toEqual(
        refused(401, "UNAUTHORIZED"),
      );
      expect((await call("GET", "/api/keys/revoked/1")).json.value).toBe(1);
      // A new principal of the same name has a new secret: the old token stays refused.
      const renewed = await create({
        name: "revoked",
        grants: [{ prefix: ["revoked"], access: "readwrite" }],
      });
      expect((await call("GET", "/api/keys/revoked/1", { token: renewed })).status).toBe(200);
      expect((await call("GET", "/api/keys/revoked/1", { token })).status).toBe(401);
    });

    it("refuses a principal's name with a wrong secret, and a secret under another name", async () => {
      const token = await create({ name: "secretive", grants: [{ prefix: [], access: "read" }] });
      const other = await create({ name: "other", grants: [{ prefix: [], access: "read" }] });
      const secret = token.slice("ck.secretive.".length);
      const wrong = [
        `ck.secretive.${"A".repeat(43)}`,
        `ck.secretive.${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`,
        `ck.secretive.${secret}x`,
        `ck.secretive.${secret.slice(0, -1)}`,
        "ck.secretive.",
        `ck.other.${secret}`,
        `ck.${secret}`,
        `ck.nobody.${secret}`,
        `ck.secretive.${other.slice("ck.other.".length)}`,
      ];
      for (const presented of wrong) {
        const answer = await call("GET", "/api/keys/x", { token: presented });
        expect({ presented, ...shape(answer) }).toEqual({
          presented,
          ...refused(401, "UNAUTHORIZED"),
        });
      }
      expect((await call("GET", "/api/keys/x", { token })).status).toBe(404);
    });

    it("holds a grant naming a database there only", async () => {
      const token = await create({
        name: "orders-clerk",
        grants: [{ prefix: [], access: "readwrite", database: "orders" }],
      });
      const inOrders = "/db/orders/api/keys/order/1";
      expect((await call("PUT", inOrders, { token, body: { total: 3 } })).status).toBe(200);
      expect((await call("GET", inOrders, { token })).json.value).toEqual({ total: 3 });
      const list = await call("POST", "/db/orders/api/keys/list", { token, body: { prefix: [] } });
      expect(list.status).toBe(200);
      expect(list.json.map((e: { key: unknown }) => e.key)).toEqual([["order", 1]]);

      // The default database, and another named one (which exists): refused, unchanged.
      await call("PUT", "/api/keys/order/1", { body: "default's" });
      await call("PUT", "/db/other/api/keys/order/1", { body: "other's" });
      for (const path of ["/api/keys/order/1", "/db/other/api/keys/order/1"]) {
        expect({ path, ...shape(await call("GET", path, { token })) }).toEqual({
          path,
          ...refused(403, "FORBIDDEN"),
        });
        expect({
          path,
          ...shape(await call("PUT", path, { token, body: "clerk's" })),
        }).toEqual({ path, ...refused(403, "FORBIDDEN") });
      }
      expect((await call("GET", "/api/keys/order/1")).json.value).toBe("default's");
      expect((await call("GET", "/db/other/api/keys/order/1")).json.value).toBe("other's");
      const other = await call("POST", "/db/other/api/keys/list", { token, body: { prefix: [] } });
      expect(shape(other)).toEqual(refused(403, "FORBIDDEN"));
    });

    it("creates a named database by a write only for a principal with a write grant in it", async () => {
      const reader = await create({
        name: "reader-everywhere",
        grants: [
          { prefix: [], access: "read" },
          { prefix: [], access: "readwrite", database: "elsewhere" },
        ],
      });
      for (const path of ["/db/ghost/api/keys/a", "/db/ghost/api/keys/a/b"]) {
        const answer = await call("PUT", path, { token: reader, body: 1 });
        expect(shape(answer)).toEqual(refused(403, "FORBIDDEN"));
        expect(answer.json.error).toBe(
          "This token may not write in the database ghost, so its first write cannot create it",
        );
      }
      const enqueued = await call("POST", "/db/ghost/api/queue/enqueue", {
        token: reader,
        body: { value: 1 },
      });
      expect(shape(enqueued)).toEqual(refused(403, "FORBIDDEN"));
      // Not created: the admin finds no such database.
      expect(shape(await call("GET", "/db/ghost/api/keys"))).toEqual(refused(404, "NOT_FOUND"));
      expect(shape(await call("GET", "/db/ghost/api/keys/a"))).toEqual(refused(404, "NOT_FOUND"));

      const writer = await create({
        name: "writer-made",
        grants: [{ prefix: ["a"], access: "write", database: "made" }],
      });
      expect(shape(await call("GET", "/db/made/api/keys"))).toEqual(refused(404, "NOT_FOUND"));
      expect((await call("PUT", "/db/made/api/keys/a", { token: writer, body: 7 })).status).toBe(
        200,
      );
      expect((await call("GET", "/db/made/api/keys/a")).json.value).toBe(7);
      // Created, it is there for a reader too.
      expect((await call("GET", "/db/made/api/keys/a", { token: reader })).json.value).toBe(7);
    });
  });

  describe("grants through the JSON API and the remote SDK", () => {
    const ANA = { prefix: ["users", "ana"], access: "readwrite" } as const;

    it("serves the JSON API inside a grant and refuses outside it with 403, changing nothing", async () => {
      const token = await create({ name: "json-ana", grants: [ANA] });
      await call("PUT", "/api/keys/users/bob", { body: { name: "Bob" } });
      await call("PUT", "/api/keys/users/anabel", { body: { name: "Anabel" } });

      expect((await call("PUT", "/api/keys/users/ana", { token, body: { n: 1 } })).status).toBe(
        200,
      );
      expect((await call("PUT", "/api/keys/users/ana/x", { token, body: 2 })).status).toBe(200);
      expect((await call("GET", "/api/keys/users/ana", { token })).json.value).toEqual({ n: 1 });
      const inside = await call("POST", "/api/keys/list", {
        token,
        body: { prefix: ["users", "ana"] },
      });
      expect(inside.json.map((e: { key: unknown }) => e.key)).toEqual([["users", "ana", "x"]]);
      expect((await call("GET", "/api/keys/count?prefix=users/ana", { token })).json).toEqual({
        count: 1,
      });

      const outside: [string, string, unknown][] = [
        ["GET", "/api/keys/users/bob", undefined],
        // Part-wise: ["users","ana"] does not cover ["users","anabel"].
        ["GET", "/api/keys/users/anabel", undefined],
        [
          "POST",
          "/api/keys/batch",
          {
            keys: [
              ["users", "ana"],
              ["users", "bob"],
            ],
          },
        ],
        ["POST", "/api/keys/list", { prefix: ["users"] }],
        ["POST", "/api/keys/list", { prefix: [] }],
        ["GET", "/api/keys?prefix=users", undefined],
        ["GET", "/api/keys/count?prefix=users", undefined],
        ["PUT", "/api/keys/users/bob", { name: "mallory" }],
        ["PUT", "/api/keys/users/anabel", { name: "mallory" }],
        ["DELETE", "/api/keys/users/bob", undefined],
        [
          "POST",
          "/api/keys/delete-batch",
          {
            keys: [
              ["users", "ana", "x"],
              ["users", "bob"],
            ],
          },
        ],
        [
          "POST",
          "/api/atomic",
          {
            mutations: [
              { type: "set", key: ["users", "ana", "y"], value: 1 },
              { type: "set", key: ["users", "bob"], value: "mallory" },
            ],
          },
        ],
        [
          "POST",
          "/api/atomic",
          {
            checks: [{ key: ["users", "bob"], versionstamp: null }],
            mutations: [{ type: "set", key: ["users", "ana", "y"], value: 1 }],
          },
        ],
        ["POST", "/api/queue/enqueue", { value: 1 }],
      ];
      for (const [method, path, body] of outside) {
        const answer = await call(method, path, { token, body });
        expect({ method, path, body, ...shape(answer) }).toEqual({
          method,
          path,
          body,
          ...refused(403, "FORBIDDEN"),
        });
      }
      const all = await call("POST", "/api/keys/list", { body: { prefix: ["users"] } });
      expect(all.json.map((e: { key: unknown; value: unknown }) => [e.key, e.value])).toEqual([
        [["users", "ana"], { n: 1 }],
        [["users", "ana", "x"], 2],
        [["users", "anabel"], { name: "Anabel" }],
        [["users", "bob"], { name: "Bob" }],
      ]);
    });

    it("serves Cairn's remote SDK inside a grant and refuses outside it with KvError FORBIDDEN", async () => {
      const token = await create({ name: "sdk-ana", grants: [ANA] });
      const admin = await openKv(server().url, { accessToken: TOKEN });
      const kv = await openKv(server().url, { accessToken: token });
      try {
        await admin.set(["users", "carol"], "Carol");
        const queued = await admin.queueStats();
        await kv.set(["users", "ana", "sdk"], { via: "sdk" });
        expect((await kv.get(["users", "ana", "sdk"])).value).toEqual({ via: "sdk" });
        const listed = await collect(kv.list({ prefix: ["users", "ana"] }));
        expect(listed.map((e) => e.key)).toContainEqual(["users", "ana", "sdk"]);
        const sdk = listed.find((e) => e.key.at(-1) === "sdk")!;
        const committed = await kv.atomic().check(sdk).set(["users", "ana", "sdk2"], 2).commit();
        expect(committed.ok).toBe(true);

        const forbidden: [string, () => Promise<unknown>][] = [
          ["get", () => kv.get(["users", "carol"])],
          [
            "getMany",
            () =>
              kv.getMany([
                ["users", "ana"],
                ["users", "carol"],
              ]),
          ],
          ["list", () => collect(kv.list({ prefix: ["users"] }))],
          ["list all", () => collect(kv.list({ prefix: [] }))],
          ["count", () => kv.count(["users"])],
          ["set", () => kv.set(["users", "carol"], "mallory")],
          ["delete", () => kv.delete(["users", "carol"])],
          [
            "atomic",
            () =>
              kv.atomic().set(["users", "ana", "z"], 1).set(["users", "carol"], "mallory").commit(),
          ],
          [
            "check",
            () =>
              kv
                .atomic()
                .check({ key: ["users", "carol"], versionstamp: null })
                .set(["users", "ana", "z"], 1)
                .commit(),
          ],
          ["enqueue", () => kv.enqueue("job")],
          ["queueStats", () => kv.queueStats()],
        ];
        for (const [what, run] of forbidden) {
          const error = await run().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect({ what, error }).toEqual({ what, error: expect.any(KvError) });
          expect({ what, code: (error as KvError).code }).toEqual({ what, code: "FORBIDDEN" });
        }
        expect((await admin.get(["users", "carol"])).value).toBe("Carol");
        expect((await admin.get(["users", "ana", "z"])).versionstamp).toBeNull();
        expect(await admin.queueStats()).toEqual(queued);
      } finally {
        await kv.close();
        await admin.close();
      }
    });

    it("refuses a read-only grant's writes, and serves a database grant's SDK at /db/<name>", async () => {
      const token = await create({
        name: "sdk-reader",
        grants: [
          { prefix: ["users", "ana"], access: "read" },
          { prefix: ["orders"], access: "readwrite", database: "sdk-orders" },
        ],
      });
      const kv = await openKv(server().url, { accessToken: token });
      const orders = await openKv(`${server().url}/db/sdk-orders`, { accessToken: token });
      try {
        await expect(kv.set(["users", "ana", "ro"], 1)).rejects.toMatchObject({
          code: "FORBIDDEN",
        });
        expect((await kv.get(["users", "ana", "ro"])).versionstamp).toBeNull();
        await orders.set(["orders", 1], "first");
        expect((await orders.get(["orders", 1])).value).toBe("first");
        await expect(kv.get(["orders", 1])).rejects.toMatchObject({ code: "FORBIDDEN" });
        await expect(orders.get(["users", "bob"])).rejects.toMatchObject({ code: "FORBIDDEN" });
      } finally {
        await kv.close();
        await orders.close();
      }
    });

    /** GET `path` with `token`: the status, content type and the body up to its end (or break). */
    const streamed = async (path: string, token: string) => {
      const controller = new AbortController();
      const response = await fetch(`${server().url}${path}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      let text = "";
      const reader = response.body!.getReader();
      // A stream the server keeps open ends here: only what it sent at once is read.
      const timer = setTimeout(() => controller.abort(), 1000);
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
      } catch {
        // aborted by the timer, or the server broke the connection off
      } finally {
        clearTimeout(timer);
      }
      return { status: response.status, contentType: response.headers.get("content-type"), text };
    };
    const WIDER_WATCHES = [
      "/api/watch/prefix?prefix=users",
      "/api/watch/prefix?prefix=users/ana,users/bob",
      "/api/watch?keys=users/bob",
    ];

    it("refuses a polled watch wider than the grant with 403, and never streams a refused watch's keys", async () => {
      const token = await create({ name: "watcher-ana", grants: [ANA] });
      await call("PUT", "/api/keys/users/bob", { body: { name: "Bob" } });
      for (const path of [
        "/api/watch/prefix/poll?prefix=users",
        "/api/watch/poll?keys=users/bob",
      ]) {
        const answer = await call("GET", path, { token });
        expect({ path, ...shape(answer) }).toEqual({ path, ...refused(403, "FORBIDDEN") });
      }
      for (const path of WIDER_WATCHES) {
        const answer = await streamed(path, token);
        expect({ path, text: answer.text }).toEqual({
          path,
          text: expect.not.stringContaining("event:"),
        });
        expect(answer.text).not.toContain("Bob");
      }
      // Inside the grant, the watch streams.
      await call("PUT", "/api/keys/users/ana", { body: { name: "Ana" } });
      const inside = await streamed("/api/watch?keys=users/ana", token);
      expect(inside.status).toBe(200);
      expect(inside.contentType).toBe("text/event-stream");
      expect(inside.text).toContain('"value":{"name":"Ana"}');
    });

    it("refuses a watch (SSE) wider than the grant with 403 FORBIDDEN before any stream", async () => {
      const token = await create({ name: "watcher-ana-2", grants: [ANA] });
      for (const path of WIDER_WATCHES) {
        const answer = await streamed(path, token);
        expect({ path, status: answer.status, json: JSON.parse(answer.text) }).toEqual({
          path,
          ...refused(403, "FORBIDDEN"),
        });
      }
    });

    it("reports a remote SDK watch outside the grant as KvError FORBIDDEN", async () => {
      const token = await create({ name: "watcher-ana-3", grants: [ANA] });
      const kv = await openKv(server().url, { accessToken: token });
      const errors: unknown[] = [];
      const handle = kv.watch([["users", "bob"]], () => {}, { onError: (e) => errors.push(e) });
      try {
        await until(() => errors.length > 0, 2000);
        expect(errors[0]).toBeInstanceOf(KvError);
        expect((errors[0] as KvError).code).toBe("FORBIDDEN");
      } finally {
        await handle.stop();
        await kv.close();
      }
    });
  });

  describe("the system keyspace", () => {
    // A server of its own: the whole keyspace is exactly what this test wrote.
    const fresh = serverForTests(TOKEN, storage);
    const { call, create } = clientOf(fresh);

    it("keeps principals where no token lists or reads them, the admin's included", async () => {
      await create({ name: "hidden-1", grants: [{ prefix: ["users", "ana"], access: "read" }] });
      await create({ name: "hidden-2", admin: true });
      const admin = await openKv(fresh().url, { accessToken: TOKEN });
      try {
        await admin.set(["a"], 1);
        await admin.set(["users", "ana"], 2);
        expect((await collect(admin.list({ prefix: [] }))).map((e) => e.key)).toEqual([
          ["a"],
          ["users", "ana"],
        ]);
        expect(await admin.count([])).toBe(2);
        const json = await call("POST", "/api/keys/list", { body: { prefix: [] } });
        expect(json.json.map((e: { key: unknown }) => e.key)).toEqual([["a"], ["users", "ana"]]);

        // The database protocol takes raw bounds: a range reaching past 0xFF is refused whole.
        const b64 = (bytes: number[]) => Buffer.from(bytes).toString("base64");
        for (const [start, end] of [
          [[0xff], [0xff, 0xff]],
          [[0x00], [0xff, 0x00]],
          [[...encodeKey(["users"])], [0xff, 0x01]],
        ]) {
          const scan = await call("POST", "/api/db/scan", {
            body: { ranges: [{ start: b64(start!), end: b64(end!), limit: 10 }] },
          });
          expect({ start, ...shape(scan) }).toEqual({ start, ...refused(403, "FORBIDDEN") });
          expect(scan.json.error).toBe(
            "Keys starting with the byte 0xFF are Cairn's own: no token reads or writes them",
          );
        }
        const whole = await call("POST", "/api/db/scan", {
          body: { ranges: [{ start: b64([0x00]), end: b64([0xff]), limit: 1000 }] },
        });
        expect(whole.status).toBe(200);
        expect(whole.json.ranges[0]).toHaveLength(2);
        expect(whole.text).not.toContain("hidden");
      } finally {
        await admin.close();
      }
    });
  });
});
