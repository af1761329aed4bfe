/**
 * Queues across crashes: a consumer killed with kill -9 mid-message loses its lease and the message
 * is delivered again. A server killed mid-load: crash-under-load.test.ts.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type KvQueueMessage, openKv } from "../src/index.js";
import { startServer } from "../src/server/server.js";
import { killed, startNode, until } from "./targets.js";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function tempDir(): string {
  const dir = join(tmpdir(), `cairn-queue-crash-${randomUUID()}`);
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const start = (args: string[], ready: RegExp) => {
  const started = startNode(args, ready);
  cleanup.push(() => started.then(({ child }) => killed(child)).catch(() => {}));
  return started;
};

const consumer = join(__dirname, "fixtures/queue-consumer.js");

describe("queue crashes", () => {
  it("delivers a message again after its consumer was killed mid-message (embedded, two processes)", async () => {
    const path = join(tempDir(), "queue.db");
    const kv = await openKv(path);
    cleanup.push(() => kv.close());
    const { id } = await kv.enqueue({ job: 1 });
    const { child, line } = await start([consumer, path], /^started /);
    expect(line).toBe(`started ${id} 1`);
    await killed(child);

    const got: KvQueueMessage[] = [];
    const listener = kv.listenQueue((m) => void got.push(m));
    await until(() => got.length === 1);
    expect(got[0]).toEqual({ id, value: { job: 1 }, attempts: 2 });
    await listener.stop();
    expect((await kv.queueStats()).total).toBe(0);
  });

  it("delivers a message again after a remote consumer was killed mid-message", async () => {
    const token = randomUUID();
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      data: ":memory:",
      auth: true,
      token,
    });
    cleanup.push(() => server.close());
    const kv = await openKv(server.url, { accessToken: token });
    cleanup.push(() => kv.close());
    const { id } = await kv.enqueue("remote job");
    const { child } = await start([consumer, server.url, token], /^started /);
    expect((await kv.queueStats()).processing).toBe(1);
    await killed(child);
    const got: KvQueueMessage[] = [];
    const listener = kv.listenQueue((m) => void got.push(m));
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ id, attempts: 2 });
    await listener.stop();
  });
});
