/**
 * Several `cairn serve` processes over one storage: one PostgreSQL database, or one SQLite file
 * (also as the two processes of one `cairn serve --workers 2`). The same data seen consistently from
 * every node, watches and queues across nodes, checked writes with exactly one winner, and a node
 * killed with kill -9 losing nothing acknowledged, and a token made or revoked on one node holding
 * on the others. The PostgreSQL suite is skipped (with the
 * printed reason) when the test PostgreSQL is unreachable.
 */
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Kv, type KvQueueMessage, openKv } from "../src/index.js";
import {
  collect,
  describeEach,
  killed,
  postgresSchema,
  sleep,
  startNode,
  until,
} from "./targets.js";

const cli = join(__dirname, "../bin/cairn.js");
const consumer = join(__dirname, "fixtures/queue-consumer.js");
const token = randomUUID();

async function node(
  data: string,
  flags: string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const { child, line } = await startNode(
    [
      cli,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data",
      data,
      "--token",
      token,
      ...flags,
    ],
    /listening on /,
  );
  return { child, url: /listening on (\S+)/.exec(line)![1]! };
}

function sqliteFile() {
  const dir = join(tmpdir(), `cairn-nodes-${randomUUID()}`);
  return { url: join(dir, "shared.db"), drop: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The storages several nodes can share: where the data is, how to remove it afterwards, and
 * whether the two nodes are two `cairn serve` processes or the two processes of one `--workers 2`
 * server (each client has connections of its own, which the primary deals out to itself and its
 * worker; on SQLite the worker's commits go through the primary).
 */
const storages = [
  {
    name: "PostgreSQL database",
    postgres: true,
    create: postgresSchema,
    workers: false,
  },
  { name: "SQLite file", create: sqliteFile, workers: false },
  { name: "SQLite file, as --workers 2", create: sqliteFile, workers: true },
  {
    name: "PostgreSQL database, as --workers 2",
    postgres: true,
    create: postgresSchema,
    workers: true,
  },
];

describeEach(storages, "two nodes over one", ({ create, workers }) => {
  const schema = create();
  let nodes: { child: ChildProcess; url: string }[];
  let a: Kv;
  let b: Kv;

  beforeAll(async () => {
    nodes = workers
      ? [await node(schema.url, ["--workers", "2"])]
      : [await node(schema.url), await node(schema.url)];
    a = await openKv(nodes[0]!.url, { accessToken: token });
    b = await openKv(nodes.at(-1)!.url, { accessToken: token });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const n of nodes ?? []) await killed(n.child);
    await schema.drop();
  });

  it("serves the same data from both nodes, with versionstamps increasing across them", async () => {
    const stamps: string[] = [];
    for (let i = 0; i < 20; i++) {
      const writer = i % 2 === 0 ? a : b;
      stamps.push((await writer.set(["shared", i], { i })).versionstamp);
    }
    expect([...stamps].sort()).toEqual(stamps);
    expect(new Set(stamps).size).toBe(20);
    const fromA = await collect(a.list({ prefix: ["shared"] }));
    const fromB = await collect(b.list({ prefix: ["shared"] }));
    expect(fromA).toEqual(fromB);
    expect(fromA.map((e) => e.versionstamp)).toEqual(stamps);
  });

  it("wakes a watch on one node for a commit on the other", async () => {
    const seen: unknown[] = [];
    const h = a.watch(["cross"], (entries) => void seen.push(...entries.map((e) => e.value)), {
      emitInitial: false,
    });
    await h.ready;
    await b.set(["cross", 1], "from b");
    // Seen before it changes again (a key changed twice before the feed reads it is reported once).
    await until(() => seen.length === 1);
    await b.delete(["cross", 1]);
    await until(() => seen.length === 2);
    expect(seen).toEqual(["from b", null]);
    h.stop();
  });

  it("gives every check exactly one winner when both nodes race", async () => {
    for (let round = 0; round < 20; round++) {
      const key = ["race", round];
      const [ra, rb] = await Promise.all(
        [a, b].map((kv, i) => kv.atomic().check({ key, versionstamp: null }).set(key, i).commit()),
      );
      expect([ra!.ok, rb!.ok].filter(Boolean)).toHaveLength(1);
      const winner = ra!.ok ? 0 : 1;
      expect((await a.get(key)).value).toBe(winner);
    }
  });

  it("shares queue work between the nodes' consumers, each message handled once", async () => {
    const handled = new Map<string, string[]>();
    const handler = (by: string) => async (m: KvQueueMessage) => {
      handled.set(m.id, [...(handled.get(m.id) ?? []), by]);
      await sleep(20); // slower than the enqueuing, so that one consumer alone falls behind
    };
    const consumers = [
      a.listenQueue(handler("a"), { concurrency: 2 }),
      b.listenQueue(handler("b"), { concurrency: 2 }),
    ];
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await (i % 2 ? a : b).enqueue(i)).id);
    await until(() => handled.size === 60, 20_000);
    await Promise.all(consumers.map((c) => c.stop()));
    expect([...handled.values()].every((by) => by.length === 1)).toBe(true);
    const byNode = [...handled.values()].flat();
    expect(byNode).toContain("a");
    expect(byNode).toContain("b");
    expect((await a.queueStats()).total).toBe(0);
  });

  it("honours a token made on one node on the other; revoked, it is refused (401) at once on that node and within 1 s on the other", async () => {
    const [urlA, urlB] = [nodes[0]!.url, nodes.at(-1)!.url];
    const asAdmin = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    await a.set(["granted", 1], "yes");
    const created = await fetch(`${urlA}/admin/tokens`, {
      method: "POST",
      headers: asAdmin,
      body: JSON.stringify({ name: "reader", grants: [{ prefix: ["granted"], access: "read" }] }),
    });
    expect(created.status).toBe(201);
    const { token: reader } = (await created.json()) as { token: string };
    const read = async (url: string, path: string) => {
      const response = await fetch(`${url}/api/keys/${path}`, {
        headers: { authorization: `Bearer ${reader}` },
      });
      return { status: response.status, json: await response.json() };
    };

    expect(await read(urlB, "granted/1")).toEqual({
      status: 200,
      json: { key: ["granted", 1], value: "yes", versionstamp: expect.any(String) },
    });
    expect(await read(urlB, "other/1")).toMatchObject({ status: 403, json: { code: "FORBIDDEN" } });

    const revoked = await fetch(`${urlA}/admin/tokens/reader`, {
      method: "DELETE",
      headers: asAdmin,
    });
    expect({ status: revoked.status, json: await revoked.json() }).toEqual({
      status: 200,
      json: { revoked: "reader" },
    });
    // As --workers 2, A and B are one URL: a request may reach either process, so only B's bound holds.
    if (!workers) {
      expect(await read(urlA, "granted/1")).toMatchObject({
        status: 401,
        json: { code: "UNAUTHORIZED" },
      });
    }
    await until(async () => (await read(urlB, "granted/1")).status === 401, 1000);
    expect(await read(urlB, "granted/1")).toMatchObject({
      status: 401,
      json: { code: "UNAUTHORIZED" },
    });
  });

  it("loses nothing acknowledged when a node is killed, and its leases pass to the other", async () => {
    const third = await node(schema.url);
    const c = await openKv(third.url, { accessToken: token });
    const acknowledged: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          await c.set(["killed", w, i], i);
          acknowledged.push(`${w}/${i}`);
        } catch {
          return;
        }
      }
    });
    // A consumer through the doomed node takes a message and hangs in its handler.
    const { id } = await a.enqueue("orphaned");
    const { child: hung } = await startNode([consumer, third.url, token], /^started /);
    await until(() => acknowledged.length >= 100, 20_000);
    await killed(third.child);
    await killed(hung);
    stop = true;
    await Promise.all(writers);
    await c.close();

    for (const key of acknowledged) {
      const [w, i] = key.split("/").map(Number);
      expect((await a.get(["killed", w!, i!])).value).toBe(i);
    }
    const got: KvQueueMessage[] = [];
    const listener = b.listenQueue((m) => void got.push(m));
    await until(() => got.length === 1, 10_000);
    expect(got[0]).toMatchObject({ id, value: "orphaned", attempts: 2 });
    await listener.stop();
  });
});
