/**
 * The Buntime seed's queue, dead-letter and watch routes, over real HTTP against the server, on a
 * SQLite file and on PostgreSQL.
 */
import { once } from "node:events";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { openKv } from "../src/index.js";
import { describeEach, jsonApiForTests, sseStream, storages, until } from "./targets.js";

const TOKEN = "realtime-token-123";

describeEach(storages, "JSON API realtime", (storage) => {
  const { server, base, call } = jsonApiForTests(TOKEN, storage);

  /** An SSE stream: `events` fills as they arrive; `close()` disconnects. */
  async function stream(path: string, headers: Record<string, string> = {}) {
    const s = await sseStream(`${base()}${path}`, { authorization: `Bearer ${TOKEN}`, ...headers });
    return { ...s, of: (name: string) => s.events.filter((e) => e.event === name) };
  }

  /**
   * Writes `path` until `s` reports a change: a watch from now gives no other sign that it
   * follows the feed. Resolves with the last write's versionstamp: later changes have greater ids.
   */
  async function live(s: Awaited<ReturnType<typeof stream>>, path: string): Promise<string> {
    let versionstamp = "";
    await until(async () => {
      versionstamp = (await call("PUT", path, "ready")).json.versionstamp;
      return s.of("change").length > 0;
    });
    return versionstamp;
  }

  async function drainQueue() {
    for (;;) {
      const { json } = await call("GET", "/queue/poll");
      if (json.message === null) break;
      await call("POST", "/queue/ack", { id: json.message.id });
    }
    await call("DELETE", "/queue/dlq");
  }

  describe("queue routes", () => {
    it("enqueue, poll, ack and stats", async () => {
      await drainQueue();
      const sent = await call("POST", "/queue/enqueue", {
        value: { n: { __type: "bigint", value: "5" } },
      });
      expect(sent.status).toBe(200);
      expect(sent.json).toMatchObject({ ok: true, id: expect.any(String) });
      expect((await call("GET", "/queue/stats")).json).toEqual({
        pending: 1,
        processing: 0,
        dlq: 0,
        total: 1,
      });
      const polled = await call("GET", "/queue/poll");
      expect(polled.json.message).toEqual({
        id: sent.json.id,
        value: { n: { __type: "bigint", value: "5" } },
        attempts: 1,
      });
      expect((await call("GET", "/queue/stats")).json).toMatchObject({ pending: 0, processing: 1 });
      expect((await call("GET", "/queue/poll")).json).toEqual({ message: null });
      expect((await call("POST", "/queue/ack", { id: sent.json.id })).json).toEqual({ ok: true });
      expect((await call("GET", "/queue/stats")).json).toEqual({
        pending: 0,
        processing: 0,
        dlq: 0,
        total: 0,
      });
    });

    it("nack retries after the backoff, then dead-letters; the DLQ routes manage it", async () => {
      await drainQueue();
      const sent = await call("POST", "/queue/enqueue", {
        value: "job",
        options: { backoffSchedule: [30], keysIfUndelivered: [["dead", "job"]] },
      });
      const id = sent.json.id;
      expect((await call("GET", "/queue/poll")).json.message.attempts).toBe(1);
      await call("POST", "/queue/nack", { id, error: "first failure" });
      let again: { message: { attempts: number } | null } = { message: null };
      await until(async () => {
        again = (await call("GET", "/queue/poll")).json;
        return again.message !== null;
      });
      expect(again.message!.attempts).toBe(2);
      await call("POST", "/queue/nack", { id, error: "second failure" });
      expect((await call("GET", "/keys/dead/job")).json.value).toBe("job");

      const list = await call("GET", "/queue/dlq?limit=10");
      expect(list.json).toEqual([
        expect.objectContaining({
          id,
          originalId: id,
          value: "job",
          errorMessage: "second failure",
          attempts: 2,
        }),
      ]);
      expect((await call("GET", `/queue/dlq/${id}`)).json.errorMessage).toBe("second failure");
      const requeued = await call("POST", `/queue/dlq/${id}/requeue`);
      expect(requeued.json).toEqual({ ok: true, id: expect.any(String), newId: requeued.json.id });
      expect((await call("GET", `/queue/dlq/${id}`)).status).toBe(404);
      expect((await call("GET", "/queue/poll")).json.message).toMatchObject({
        id: requeued.json.id,
        attempts: 1,
      });
      await call("POST", "/queue/ack", { id: requeued.json.id });
      expect((await call("GET", "/queue/stats")).json.total).toBe(0);
      expect((await call("DELETE", "/queue/dlq")).json).toEqual({ deletedCount: 0 });
    });

    it("refuses an offset or a lease past what a number holds exactly, with 400 and what to fix", async () => {
      for (const path of ["/queue/dlq?offset=9223372036854776000", "/queue/poll?lease=1e300"]) {
        const answer = await call("GET", path);
        expect({ path, status: answer.status, code: answer.json.code }).toEqual({
          path,
          status: 400,
          code: "INVALID_ARGUMENT",
        });
      }
      const wire = await call("POST", "/db/dead-letters", { limit: 10, offset: 2 ** 63 });
      expect(wire.status).toBe(400);
      expect(wire.json.error).toBe(
        `offset must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
      );
    });

    it("listen streams messages, at most `concurrency` unacknowledged at a time", async () => {
      await drainQueue();
      for (const v of [1, 2, 3, 4]) await call("POST", "/queue/enqueue", { value: v });
      const s = await stream("/queue/listen?concurrency=2");
      expect(s.type).toBe("text/event-stream");
      await until(() => s.of("message").length === 2);
      // Another consumer gets the third message: the stream, holding two, did not take it.
      const polled = (await call("GET", "/queue/poll")).json.message;
      expect(polled).toMatchObject({ value: 3 });
      await call("POST", "/queue/ack", { id: polled.id });
      expect(s.of("message").length).toBe(2);
      const first = JSON.parse(s.of("message")[0]!.data);
      expect(first).toMatchObject({ value: 1, attempts: 1 });
      expect(s.of("message")[0]!.id).toBe(first.id);
      await call("POST", "/queue/ack", { id: first.id });
      await until(() => s.of("message").length === 3);
      expect(JSON.parse(s.of("message")[2]!.data).value).toBe(4);
      for (const e of s.of("message").slice(1))
        await call("POST", "/queue/ack", { id: JSON.parse(e.data).id });
      s.close();
      await until(async () => (await call("GET", "/queue/stats")).json.total === 0);
    });

    it("rejects bad input with 400 and leaves the queue unchanged", async () => {
      await drainQueue();
      const cases: [string, string, unknown, RegExp][] = [
        ["POST", "/queue/enqueue", { options: {} }, /value/],
        ["POST", "/queue/enqueue", { value: 1, options: { delay: "soon" } }, /delay/],
        [
          "POST",
          "/queue/enqueue",
          { value: 1, options: { backoffSchedule: "1s" } },
          /backoffSchedule/,
        ],
        [
          "POST",
          "/queue/enqueue",
          { value: 1, options: { backoffSchedule: Array(11).fill(1) } },
          /at most 10/,
        ],
        [
          "POST",
          "/queue/enqueue",
          { value: 1, options: { keysIfUndelivered: "k" } },
          /keysIfUndelivered/,
        ],
        ["POST", "/queue/ack", {}, /id must be a non-empty string/],
        ["POST", "/queue/nack", { id: "" }, /id must be a non-empty string/],
        ["GET", "/queue/dlq?limit=0", undefined, /limit/],
      ];
      for (const [method, path, body, message] of cases) {
        const { status, json } = await call(method, path, body);
        expect(status, path).toBe(400);
        expect(json.error).toMatch(message);
        expect(json.code).toBe("INVALID_ARGUMENT");
      }
      expect((await call("GET", "/queue/dlq/nope")).status).toBe(404);
      expect((await call("POST", "/queue/dlq/nope/requeue")).json).toEqual({
        error: "Message not found in DLQ",
        code: "NOT_FOUND",
      });
      expect((await call("GET", "/queue/stats")).json.total).toBe(0);
    });
  });

  describe("watch routes", () => {
    it("streams exact keys: every key first, then changes with versionstamps as ids", async () => {
      await call("PUT", "/keys/w/1", "one");
      await call("DELETE", "/keys/w/2");
      const s = await stream("/watch?keys=w/1,w/2");
      await until(() => s.of("change").length === 1);
      expect(JSON.parse(s.of("change")[0]!.data)).toEqual([
        { key: ["w", 1], value: "one", versionstamp: expect.any(String) },
        { key: ["w", 2], value: null, versionstamp: null },
      ]);
      const put = await call("PUT", "/keys/w/2", { __type: "bigint", value: "2" });
      await until(() => s.of("change").length === 2);
      const change = s.of("change")[1]!;
      expect(change.id).toBe(put.json.versionstamp);
      expect(JSON.parse(change.data)).toEqual([
        {
          key: ["w", 2],
          value: { __type: "bigint", value: "2" },
          versionstamp: put.json.versionstamp,
        },
      ]);
      s.close();

      // Resuming from the last id delivers what happened while disconnected, without the initial state.
      await call("PUT", "/keys/w/1", "uno");
      const resumed = await stream("/watch?keys=w/1,w/2", { "last-event-id": change.id! });
      await until(() => resumed.of("change").length === 1);
      await call("PUT", "/keys/w/2", "marker"); // anything else the stream sends comes before it
      await until(() => resumed.of("change").length >= 2);
      expect(resumed.of("change").map((e) => JSON.parse(e.data))).toEqual([
        [{ key: ["w", 1], value: "uno", versionstamp: expect.any(String) }],
        [{ key: ["w", 2], value: "marker", versionstamp: expect.any(String) }],
      ]);
      resumed.close();
    });

    it("streams a prefix, with `prefixes=` and `prefix=`, including deletions", async () => {
      for (const param of ["prefixes", "prefix"]) {
        const s = await stream(`/watch/prefix?${param}=feed-${param}&initial=false`);
        const ready = await live(s, `/keys/feed-${param}/ready`);
        const changes = () => s.of("change").filter((e) => e.id! > ready);
        await call("PUT", `/keys/feed-${param}/a`, 1);
        await until(() => changes().length === 1); // seen before it changes again
        await call("DELETE", `/keys/feed-${param}/a`);
        await until(() => changes().length === 2);
        expect(changes().map((e) => JSON.parse(e.data))).toEqual([
          [{ key: [`feed-${param}`, "a"], value: 1, versionstamp: expect.any(String) }],
          [{ key: [`feed-${param}`, "a"], value: null, versionstamp: null }],
        ]);
        s.close();
      }
    });

    it("disconnects a watcher that stops reading once its backlog is too large; others get everything", async () => {
      const stalled = connect(Number(new URL(server().url).port), "127.0.0.1");
      await once(stalled, "connect");
      stalled.write(
        `GET /keyval/api/watch/prefix?prefix=backlog&initial=false HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\n\r\n`,
      );
      stalled.pause(); // reads nothing more: the kernel's buffers fill, then the server's
      const reader = await stream("/watch/prefix?prefix=backlog&initial=false");
      const ready = await live(reader, "/keys/backlog/ready");
      const kv = await openKv(server().url, { accessToken: TOKEN });
      const value = "x".repeat(60_000);
      const commits = 40; // ~24 MB of events: the limit and the kernel's buffers, well passed
      for (let c = 0; c < commits; c++) {
        const op = kv.atomic();
        for (let i = 0; i < 10; i++) op.set(["backlog", c * 10 + i], value);
        await op.commit();
      }
      await until(
        () => reader.of("change").filter((e) => e.id! > ready).length === commits,
        20_000,
      );
      reader.close();
      await kv.close();
      // Reading again, the stalled client gets what the server had sent, then the end.
      let received = 0;
      stalled.on("data", (chunk: Buffer) => (received += chunk.length));
      const ended = once(stalled, "close");
      stalled.resume();
      await ended;
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(commits * 10 * value.length);
    });

    it("polls exact keys and prefixes by the versionstamps the client saw", async () => {
      await call("PUT", "/keys/poll/a", 1);
      const first = await call("GET", "/watch/poll?keys=poll/a,poll/b");
      expect(first.json.entries.map((e: { key: unknown }) => e.key)).toEqual([["poll", "a"]]);
      const stamps = first.json.versionstamps.join(",");
      expect(
        (await call("GET", `/watch/poll?keys=poll/a,poll/b&versionstamps=${stamps}`)).json.entries,
      ).toEqual([]);
      await call("PUT", "/keys/poll/b", 2);
      const next = await call("GET", `/watch/poll?keys=poll/a,poll/b&versionstamps=${stamps}`);
      expect(next.json.entries.map((e: { value: unknown }) => e.value)).toEqual([2]);

      const p1 = await call("GET", "/watch/prefix/poll?prefixes=poll");
      expect(p1.json.entries).toHaveLength(2);
      await call("DELETE", "/keys/poll/a");
      const p2 = await call(
        "GET",
        `/watch/prefix/poll?prefix=poll&versionstamps=${encodeURIComponent(p1.json.versionstamps)}`,
      );
      expect(p2.json.entries).toEqual([{ key: ["poll", "a"], value: null, versionstamp: null }]);
    });

    it("rejects missing keys and bad cursors", async () => {
      expect((await call("GET", "/watch")).json.code).toBe("INVALID_ARGUMENT");
      expect((await call("GET", "/watch/prefix")).status).toBe(400);
      const bad = await fetch(`${base()}/watch?keys=a`, {
        headers: { authorization: `Bearer ${TOKEN}`, "last-event-id": "not-a-versionstamp" },
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/cursor/);
    });
  });
});
