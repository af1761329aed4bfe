/**
 * The server's writer thread (src/server/writer.ts) on its own: commits made on it are durable in
 * the file and visible to this thread's reads, its answers and errors come back as they are, it
 * lets pending commits finish when it closes, and a thread that stops is reported and replaced.
 * The conformance suite's remote-sqlite target runs every engine feature through it as well.
 * Then the channels commits travel over: a thread's, and a `--workers` process's IPC.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { getEventListeners, once } from "node:events";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CheckedCommit, ClaimRequest } from "../src/engine/database.js";
import { DatabaseWrapper } from "../src/engine/database-wrapper.js";
import { KvError, openKv } from "../src/index.js";
import { Kv, openDatabase } from "../src/sdk/kv.js";
import { commitApplier, commitSender } from "../src/server/commit-channel.js";
import { ipcChannel } from "../src/server/workers.js";
import { startWriter, type Writer } from "../src/server/writer.js";

let dir: string;
beforeEach(() => {
  dir = join(tmpdir(), `cairn-writer-${randomUUID()}`);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** A Kv over the file at `path` whose writes (commits, claims) go to `writer`, as a server's do. */
function kvThrough(writer: Writer, path: string): Kv {
  const database = openDatabase(path);
  return new Kv(
    new (class extends DatabaseWrapper {
      override commit(commit: CheckedCommit) {
        return writer.writes.commit(path, commit);
      }
      override claim(request: ClaimRequest, signal?: AbortSignal) {
        return writer.writes.claim(path, request, signal);
      }
    })(database),
  );
}

describe("the writer thread", () => {
  it("commits durably in the file, visible to reads here and to another connection", async () => {
    const path = join(dir, "a.db");
    const writer = startWriter({});
    const kv = kvThrough(writer, path);
    const first = await kv.set(["k", 1], { n: 1 });
    const second = await kv.set(["k", 2], 2n);
    expect(second.versionstamp > first.versionstamp).toBe(true);
    expect((await kv.get(["k", 1])).value).toEqual({ n: 1 });
    expect((await kv.get(["k", 2])).versionstamp).toBe(second.versionstamp);
    await kv.close();
    await writer.close();
    const other = await openKv(path);
    expect(
      (
        await other.getMany([
          ["k", 1],
          ["k", 2],
        ])
      ).map((e) => e.value),
    ).toEqual([{ n: 1 }, 2n]);
    await other.close();
  });

  it("answers a failed check with ok: false and a failed mutation with its error code", async () => {
    const path = join(dir, "a.db");
    const writer = startWriter({});
    const kv = kvThrough(writer, path);
    await kv.set(["s"], "text");
    const { versionstamp } = await kv.get(["s"]);
    const check = await kv
      .atomic()
      .check({ key: ["s"], versionstamp: null })
      .set(["s"], 1)
      .commit();
    expect(check).toEqual({ ok: false });
    const sum = kv
      .atomic()
      .mutate({ type: "sum", key: ["s"], value: 1n })
      .commit();
    await expect(sum).rejects.toBeInstanceOf(KvError);
    await expect(sum).rejects.toMatchObject({ code: "TYPE_MISMATCH" });
    expect(await kv.get(["s"])).toMatchObject({ value: "text", versionstamp });
    await kv.close();
    await writer.close();
  });

  it("claims queue messages there: an enqueue wakes a waiting claim, and an abort ends one", async () => {
    const path = join(dir, "q.db");
    const writer = startWriter({});
    const kv = kvThrough(writer, path);
    const received: unknown[] = [];
    const listener = kv.listenQueue((message) => {
      received.push(message.value);
    });
    await kv.enqueue({ job: 1 });
    await kv.enqueue({ job: 2 });
    await expect.poll(() => received.length).toBe(2);
    expect(received).toEqual([{ job: 1 }, { job: 2 }]);
    await listener.stop();
    // Both were acknowledged through the writer: nothing is left in the file's queue.
    const other = openDatabase(path);
    expect(await other.queueStats()).toMatchObject({ total: 0 });
    await other.close();

    const aborted = new AbortController();
    const waiting = writer.writes.claim(
      path,
      { limit: 1, leaseMs: 1000, waitMs: 600_000 },
      aborted.signal,
    );
    aborted.abort();
    expect(await waiting).toEqual([]);
    const claim = { limit: 1, leaseMs: 1000, waitMs: 600_000 };
    expect(await writer.writes.claim(path, claim, AbortSignal.abort())).toEqual([]);
    // A consumer's one signal goes with every claim it makes: an answered claim leaves it alone.
    const consumer = new AbortController();
    for (let i = 0; i < 12; i++) {
      await writer.writes.claim(path, { ...claim, waitMs: 0 }, consumer.signal);
    }
    expect(getEventListeners(consumer.signal, "abort")).toHaveLength(0);
    await kv.close();
    await writer.close();
  });

  it("keeps the databases at different paths apart", async () => {
    const writer = startWriter({});
    const a = kvThrough(writer, join(dir, "a.db"));
    const b = kvThrough(writer, join(dir, "b.db"));
    await Promise.all([a.set(["k"], "a"), b.set(["k"], "b")]);
    expect([(await a.get(["k"])).value, (await b.get(["k"])).value]).toEqual(["a", "b"]);
    await Promise.all([a.close(), b.close()]);
    await writer.close();
  });

  it("lets every pending commit finish when it closes, then refuses new ones", async () => {
    const path = join(dir, "a.db");
    const writer = startWriter({});
    const kv = kvThrough(writer, path);
    await kv.set(["warm"], 0); // the thread is running
    const pending = Array.from({ length: 203 }, (_, i) => kv.set(["k", i], i));
    await writer.close();
    const results = await Promise.all(pending);
    expect(results.every((r) => r.ok)).toBe(true);
    await expect(kv.set(["late"], 1)).rejects.toMatchObject({ code: "CLOSED" });
    await kv.close();
    const other = await openKv(path);
    expect(await other.count(["k"])).toBe(203);
    await other.close();
  });

  it("fails the commits in flight when its thread stops, and starts another for the next", async () => {
    process.env.CAIRN_TEST_WRITER_FAILS_ONCE = join(dir, "failed-once");
    const path = join(dir, "a.db");
    const writer = startWriter({}, new URL("fixtures/failing-writer.js", import.meta.url));
    const kv = kvThrough(writer, path);
    const lost = kv.set(["k"], "lost");
    await expect(lost).rejects.toMatchObject({ code: "INTERNAL" });
    await expect(lost).rejects.toThrow(/writer thread stopped \(writer failed on purpose\)/);
    expect((await kv.get(["k"])).value).toBe(null);
    await kv.set(["k"], "kept");
    expect((await kv.get(["k"])).value).toBe("kept");
    await kv.close();
    await writer.close();
  });
});

describe("the commit channel", () => {
  it("ends the claims of a sender that is gone, so that they lease nothing to nobody", async () => {
    const path = join(dir, "c.db");
    const database = openDatabase(path);
    const { port1, port2 } = new MessageChannel();
    const endOf = (port: MessagePort) => ({
      send: (message: unknown) => port.postMessage(message),
      on: (_event: "message", listener: (message: unknown) => void) => port.on("message", listener),
    });
    let arrived: () => void = () => {};
    const waiting = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const watched = new (class extends DatabaseWrapper {
      override claim(request: ClaimRequest, signal?: AbortSignal) {
        arrived();
        return super.claim(request, signal);
      }
    })(database);
    const sender = commitSender(endOf(port1));
    const applier = commitApplier(endOf(port2), () => watched);
    const claim = sender.writes.claim(path, { limit: 1, leaseMs: 60_000, waitMs: 600_000 });
    await waiting; // the claim waits there for a message
    applier.abandon();
    expect(await claim).toEqual([]);
    port1.close();
    await database.close();
  });
});

describe("the IPC channel of --workers", () => {
  it("drops a message to a process that has just died, rather than failing this one", async () => {
    // A primary answering the commits of a worker killed under load: the worker died while the
    // primary was busy committing, so this end has not seen it go. Such a send fails (EPIPE); it
    // must not become an `error` event, which would end the primary and every connection it serves.
    const child = spawn(
      process.execPath,
      ["-e", 'process.send("ready"); process.on("message", () => process.exit(0))'],
      { stdio: ["ignore", "ignore", "ignore", "ipc"] },
    );
    const errors: Error[] = [];
    child.on("error", (error) => errors.push(error));
    await once(child, "message");
    const channel = ipcChannel(child);
    channel.send("exit");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500); // busy: it exits meanwhile
    channel.send({ cairn: "committed", answers: [] });
    await once(child, "exit");
    expect(errors).toEqual([]);
    expect(child.connected).toBe(false);
  });
});
