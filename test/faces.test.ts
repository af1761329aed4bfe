/**
 * What the server gives every face: routes get the request's principal and database (the default
 * one or a named one from `/db/<name>`), a face may authenticate its own way and answer errors in
 * its own format, a route may match on a header, and the request's database holds the principal
 * to what it may do. Then named databases through the faces that exist: the JSON API, Cairn's SDK
 * and KV Connect's metadata, on a SQLite file and on PostgreSQL.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeWriteKey } from "../src/codec/key-codec.js";
import { encodeValue } from "../src/codec/value-codec.js";
import { checkCommit } from "../src/engine/commit-limits.js";
import type { Face, Principal } from "../src/faces/face.js";
import { Reply } from "../src/faces/http-io.js";
import { openKv } from "../src/index.js";
import { Permissions } from "../src/kv/grants.js";
import { Databases } from "../src/server/databases.js";
import { facesFor } from "../src/server/faces.js";
import { describeEach, serverForTests, storages, until } from "./targets.js";

const TOKEN = "faces-test-token";

/** A principal that may read every key, and write them too when its name says "writer". */
const principalOf = (name: string): Principal => ({
  name,
  permissionsIn: (database) =>
    Permissions.of([{ prefix: [], access: name === "writer" ? "readwrite" : "read" }], database),
  deriveToken: () => {
    throw new Error("unreachable: the probe face derives no tokens");
  },
});

/** A face of the test's own: `X-User` names the principal; errors are `!<code>` as plain text. */
const probe: Face = {
  name: "probe",
  bases: ["/probe"],
  authenticate(req) {
    const user = req.headers["x-user"];
    if (typeof user !== "string") throw new Error("unreachable: the test always sends X-User");
    return principalOf(user);
  },
  errorReply: (error) => new Reply(error.status, "text/plain", `!${error.code}`),
  routes: [
    {
      method: "GET",
      path: "/whoami",
      access: "read",
      operation: "whoami",
      async handle({ principal, databaseName, databaseId, database }) {
        const [entry] = await database.get([encodeWriteKey(["probe"])]);
        return { principal: principal.name, databaseName, databaseId, stored: entry !== null };
      },
    },
    {
      // Declared as a read, so that only the request's database can refuse the write in it.
      method: "POST",
      path: "/sneaky-write",
      access: "read",
      operation: "sneaky_write",
      async handle({ database }) {
        const mutation = { type: "set", key: encodeWriteKey(["probe"]), value: encodeValue(1) };
        return database.commit(checkCommit({ checks: [], mutations: [mutation as never] }));
      },
    },
    ...["GetItem", "PutItem"].map((operation) => ({
      method: "POST" as const,
      path: "/",
      header: { name: "x-probe-target", value: operation },
      access: "read" as const,
      operation,
      handle: async () => ({ operation }),
    })),
  ],
};

describe("faces", () => {
  const server = serverForTests(TOKEN, undefined, { faces: [...facesFor(), probe] });
  const call = async (path: string, user: string, init: RequestInit = {}) => {
    const response = await fetch(`${server().url}${path}`, {
      ...init,
      headers: { "x-user": user, ...(init.headers as Record<string, string>) },
    });
    return { status: response.status, text: await response.text() };
  };

  it("every route gets the request's principal and database", async () => {
    const main = await call("/probe/whoami", "ana");
    expect(main.status).toBe(200);
    const body = JSON.parse(main.text);
    expect(body).toEqual({
      principal: "ana",
      databaseName: null,
      databaseId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      stored: false,
    });

    // A named database: created by a route that writes, and then found by one that reads.
    expect(await call("/db/pets/probe/whoami", "ana")).toEqual({ status: 404, text: "!NOT_FOUND" });
    expect((await call("/db/pets/probe/sneaky-write", "writer", { method: "POST" })).status).toBe(
      404, // the route declares a read: it does not create the database
    );
    const written = await fetch(`${server().url}/db/pets/api/keys/probe`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: "1",
    });
    expect(written.status).toBe(200);
    const named = JSON.parse((await call("/db/pets/probe/whoami", "ana")).text);
    expect(named).toEqual({
      principal: "ana",
      databaseName: "pets",
      databaseId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      stored: true,
    });
    expect(named.databaseId).not.toBe(body.databaseId);
    expect(await call("/db/Pets/probe/whoami", "ana")).toEqual({
      status: 400,
      text: "!INVALID_ARGUMENT",
    });
  });

  it("holds the principal to what it may do in the request's database, whatever the route declares", async () => {
    expect(await call("/probe/sneaky-write", "ana", { method: "POST" })).toEqual({
      status: 403,
      text: "!FORBIDDEN",
    });
    expect(JSON.parse((await call("/probe/whoami", "ana")).text).stored).toBe(false);
    expect((await call("/probe/sneaky-write", "writer", { method: "POST" })).status).toBe(200);
    expect(JSON.parse((await call("/probe/whoami", "ana")).text).stored).toBe(true);
  });

  it("routes on a header as well as method and path, next to KV Connect's POST /", async () => {
    for (const operation of ["GetItem", "PutItem"]) {
      const response = await call("/probe/", "ana", {
        method: "POST",
        headers: { "x-probe-target": operation },
      });
      expect({ operation, ...response }).toEqual({
        operation,
        status: 200,
        text: JSON.stringify({ operation }),
      });
    }
    const unknown = await call("/probe/", "ana", {
      method: "POST",
      headers: { "x-probe-target": "DeleteTable" },
    });
    expect(unknown.status).toBe(404);
    // KV Connect's metadata exchange, at POST / without the header, is untouched.
    const metadata = await fetch(`${server().url}/`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ supportedVersions: [3] }),
    });
    expect(metadata.status).toBe(200);
  });
});

describeEach(storages, "named databases on every face", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const headers = { authorization: `Bearer ${TOKEN}` };

  it("the JSON API, the SDK and KV Connect reach /db/<name>, each database apart", async () => {
    const url = server().url;
    const put = await fetch(`${url}/db/orders/api/keys/order/1`, {
      method: "PUT",
      headers,
      body: JSON.stringify({ total: 12 }),
    });
    expect(put.status).toBe(200);
    const got = await fetch(`${url}/db/orders/keyval/api/keys/order/1`, { headers });
    expect(((await got.json()) as { value: unknown }).value).toEqual({ total: 12 });
    expect((await fetch(`${url}/api/keys/order/1`, { headers })).status).toBe(404);

    const orders = await openKv(`${url}/db/orders`, { accessToken: TOKEN });
    const main = await openKv(url, { accessToken: TOKEN });
    try {
      expect((await orders.get(["order", 1])).value).toEqual({ total: 12 });
      await orders.set(["order", 2], { total: 7 });
      expect((await main.get(["order", 2])).value).toBeNull();
      expect(await orders.count(["order"])).toBe(2);
      const received = new Promise((resolve) => {
        const listener = orders.listenQueue((message) => {
          resolve(message.value);
          void listener.stop();
        });
      });
      await orders.enqueue({ ship: 2 });
      expect(await received).toEqual({ ship: 2 });
      expect((await main.queueStats()).total).toBe(0);
    } finally {
      await orders.close();
      await main.close();
    }

    const metadata = await fetch(`${url}/db/orders`, {
      method: "POST",
      headers,
      body: JSON.stringify({ supportedVersions: [3] }),
    });
    expect(((await metadata.json()) as { endpoints: unknown }).endpoints).toEqual([
      { url: "/db/orders/v2", consistency: "strong" },
    ]);
  });

  it("a read of a named database that does not exist answers 404 and creates nothing", async () => {
    for (const path of ["/db/nowhere/api/keys/a", "/db/nowhere/api/keys/count"]) {
      const response = await fetch(`${server().url}${path}`, { headers });
      expect({ path, status: response.status, body: await response.json() }).toEqual({
        path,
        status: 404,
        body: {
          code: "NOT_FOUND",
          error: "No database named nowhere: a named database is created by its first write",
        },
      });
    }
    const nowhere = await openKv(`${server().url}/db/nowhere`, { accessToken: TOKEN });
    try {
      await expect(nowhere.get(["a"])).rejects.toMatchObject({ code: "NOT_FOUND" });
      await nowhere.set(["a"], 1); // a write creates it
      expect((await nowhere.get(["a"])).value).toBe(1);
    } finally {
      await nowhere.close();
    }
  });
});

describe("Databases", () => {
  const dir = join(tmpdir(), `cairn-databases-${randomUUID()}`);
  let databases: Databases;
  beforeAll(() => {
    databases = new Databases(join(dir, "cairn.db"), {}, undefined, 20);
  });
  afterAll(async () => {
    await databases.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("closes a named database no request uses, and opens it again on demand with its data", async () => {
    const key = encodeWriteKey(["k"]);
    const first = databases.create("idle");
    await first.database.commit(
      checkCommit({ checks: [], mutations: [{ type: "set", key, value: encodeValue("kept") }] }),
    );
    const held = databases.create("held");
    expect(databases.openNamed).toBe(2);
    databases.release(first);
    await until(() => databases.openNamed === 1); // "held" stays: a request still uses it

    const again = (await databases.acquire("idle"))!;
    expect(again.id).toBe(first.id);
    const [entry] = await again.database.get([key]);
    expect(entry?.data).toBe(JSON.stringify("kept"));
    databases.release(again);
    databases.release(held);
    await until(() => databases.openNamed === 0);
    expect(await databases.acquire("never-made")).toBeUndefined();
    for (const idleMs of [0, -1, Number.NaN, 2 ** 31]) {
      expect(() => new Databases(":memory:", {}, undefined, idleMs)).toThrow(
        /namedDatabaseIdleMs must be from 1/,
      );
    }
  });
});
