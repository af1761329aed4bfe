import { expect, it } from "vitest";
import { KvError, type KvQueueListener, type KvQueueMessage } from "../../src/index.js";
import { conformance, sleep, until } from "../targets.js";

conformance("queue", (kv) => {
  it("delivers an enqueued value once, and an acknowledged message is gone", async () => {
    const got: KvQueueMessage[] = [];
    const listener = kv().listenQueue((m) => void got.push(m));
    const sent = await kv().enqueue({ type: "email", to: "user@example.com" });
    expect(sent.ok).toBe(true);
    expect(sent.versionstamp).toMatch(/^[0-9a-f]{20}$/);
    await until(() => got.length === 1);
    expect(got[0]).toEqual({
      id: sent.id,
      value: { type: "email", to: "user@example.com" },
      attempts: 1,
    });
    await listener.stop(); // waits for the acknowledgement
    expect(await kv().queueStats()).toEqual({ pending: 0, processing: 0, dlq: 0, total: 0 });
  });

  it("keeps every value type", async () => {
    const got: unknown[] = [];
    const listener = kv().listenQueue((m) => void got.push(m.value));
    const value = { n: 1n, d: new Date(5), bytes: new Uint8Array([1, 2]), map: new Map([[1, 2]]) };
    await kv().enqueue(value);
    await until(() => got.length === 1);
    expect(got[0]).toEqual(value);
    await listener.stop();
  });

  it("holds a delayed message back until its delay has passed", async () => {
    const got: number[] = [];
    const listener = kv().listenQueue(() => void got.push(Date.now()));
    const before = Date.now();
    await kv().enqueue("later", { delay: 300 });
    expect((await kv().queueStats()).pending).toBe(1);
    await until(() => got.length === 1);
    expect(got[0]! - before).toBeGreaterThanOrEqual(290);
    await listener.stop();
  });

  it("delivers in enqueue order to one consumer", async () => {
    for (let i = 0; i < 5; i++) await kv().enqueue(i);
    const got: unknown[] = [];
    const listener = kv().listenQueue((m) => void got.push(m.value));
    await until(() => got.length === 5);
    expect(got).toEqual([0, 1, 2, 3, 4]);
    await listener.stop();
  });

  it("retries a failing handler by its backoff, then dead-letters it into keysIfUndelivered", async () => {
    const attempts: number[] = [];
    const listener = kv().listenQueue((m) => {
      attempts.push(m.attempts);
      throw new Error("boom");
    });
    const sent = await kv().enqueue(
      { job: 7 },
      {
        backoffSchedule: [20, "40ms"],
        keysIfUndelivered: [
          ["failed", 7],
          ["audit", "7"],
        ],
      },
    );
    await until(async () => (await kv().queueStats()).dlq === 1);
    expect(attempts).toEqual([1, 2, 3]);
    expect((await kv().get(["failed", 7])).value).toEqual({ job: 7 });
    expect((await kv().get(["audit", "7"])).value).toEqual({ job: 7 });
    expect(await kv().queueStats()).toEqual({ pending: 0, processing: 0, dlq: 1, total: 1 });
    const dead = await kv().dlq.get(sent.id);
    expect(dead).toMatchObject({
      id: sent.id,
      originalId: sent.id,
      value: { job: 7 },
      errorMessage: "boom",
      attempts: 3,
    });
    expect(dead!.failedAt).toBeGreaterThanOrEqual(dead!.originalCreatedAt);
    await listener.stop();
  });

  it("succeeds on a retry", async () => {
    const attempts: number[] = [];
    const listener = kv().listenQueue((m) => {
      attempts.push(m.attempts);
      if (m.attempts < 2) throw new Error("not yet");
    });
    await kv().enqueue("x", { backoffSchedule: [10] });
    await until(() => attempts.length === 2);
    await sleep(50);
    expect(attempts).toEqual([1, 2]);
    expect(await kv().queueStats()).toEqual({ pending: 0, processing: 0, dlq: 0, total: 0 });
    await listener.stop();
  });

  it("commits an atomic enqueue with the rest, and drops it when a check fails", async () => {
    await kv().set(["job"], "v1");
    const failed = await kv()
      .atomic()
      .check({ key: ["job"], versionstamp: null })
      .enqueue("dropped")
      .commit();
    expect(failed.ok).toBe(false);
    expect((await kv().queueStats()).total).toBe(0);
    const ok = await kv().atomic().set(["job"], "v2").enqueue("kept").commit();
    expect(ok.ok).toBe(true);
    expect((await kv().queueStats()).pending).toBe(1);
  });

  it("lists, gets, requeues, deletes and purges dead letters", async () => {
    const listener = kv().listenQueue(() => {
      throw new Error("always");
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await kv().enqueue(i, { backoffSchedule: [] })).id);
    await until(async () => (await kv().queueStats()).dlq === 3);
    await listener.stop();
    const all = await kv().dlq.list();
    expect(all.map((d) => d.value).sort()).toEqual([0, 1, 2]);
    expect((await kv().dlq.list({ limit: 2 })).length).toBe(2);
    expect((await kv().dlq.list({ limit: 2, offset: 2 })).length).toBe(1);
    expect(await kv().dlq.get("no-such-id")).toBeNull();

    const requeued = await kv().dlq.requeue(ids[0]!);
    expect(requeued.ok).toBe(true);
    expect(requeued.id).toBe(requeued.newId);
    expect(await kv().dlq.get(ids[0]!)).toBeNull();
    const redelivered: KvQueueMessage[] = [];
    const second = kv().listenQueue((m) => void redelivered.push(m));
    await until(() => redelivered.length === 1);
    expect(redelivered[0]).toEqual({ id: requeued.id, value: 0, attempts: 1 });
    await second.stop();

    expect(await kv().dlq.delete(ids[1]!)).toEqual({ ok: true });
    expect(await kv().dlq.delete("no-such-id")).toEqual({ ok: true });
    expect(await kv().dlq.purge()).toEqual({ deletedCount: 1 });
    expect(await kv().queueStats()).toEqual({ pending: 0, processing: 0, dlq: 0, total: 0 });
    await expect(kv().dlq.requeue("no-such-id")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("never hands one message to two consumers at once", async () => {
    const handled = new Map<string, number>();
    let active = 0;
    let overlapping = false;
    const inHand = new Set<string>();
    const handler = async (m: KvQueueMessage) => {
      if (inHand.has(m.id)) overlapping = true;
      inHand.add(m.id);
      active++;
      await sleep(1);
      handled.set(m.id, (handled.get(m.id) ?? 0) + 1);
      inHand.delete(m.id);
      active--;
    };
    const a = kv().listenQueue(handler, { concurrency: 4 });
    const b = kv().listenQueue(handler, { concurrency: 4, mode: "polling", pollInterval: 5 });
    for (let i = 0; i < 40; i++) await kv().enqueue(i);
    await until(() => handled.size === 40, 15_000);
    await Promise.all([a.stop(), b.stop()]);
    expect(overlapping).toBe(false);
    expect([...handled.values()].every((n) => n === 1)).toBe(true);
    expect(active).toBe(0);
  });

  it.each([
    ["awaited", true],
    ["not awaited", false],
  ])(
    "hands nothing more to a stopped listener (stop %s): the next one gets it, uncounted",
    async (_, awaited) => {
      // Three listeners in turn, each stopped while it waits for the next message (its first
      // message settled by the claim that waits): each message goes to the listener then running.
      const got: [number, unknown, number][] = [];
      for (let n = 0; n < 3; n++) {
        const listener = kv().listenQueue((m) => void got.push([n, m.value, m.attempts]));
        await kv().enqueue(`first ${n}`);
        await until(() => got.length === 2 * n + 1);
        const stopped = listener.stop();
        if (awaited) await stopped;
        const next = kv().listenQueue((m) => void got.push([n + 100, m.value, m.attempts]));
        await kv().enqueue(`second ${n}`);
        await until(() => got.length === 2 * n + 2);
        await Promise.all([stopped, next.stop()]);
      }
      expect(got).toEqual(
        [0, 1, 2].flatMap((n) => [
          [n, `first ${n}`, 1],
          [n + 100, `second ${n}`, 1],
        ]),
      );
      expect(await kv().queueStats()).toEqual({ pending: 0, processing: 0, dlq: 0, total: 0 });
    },
  );

  it("releases a message claimed while stopping, without counting the attempt", async () => {
    // Stopped as soon as the message is handed out: the rest of a concurrent claim goes back.
    const got: unknown[] = [];
    for (let i = 0; i < 5; i++) await kv().enqueue(i);
    let listener: KvQueueListener | undefined;
    listener = kv().listenQueue(
      (m) => {
        got.push(m.value);
        void listener!.stop();
      },
      { concurrency: 5 },
    );
    await listener.closed;
    const rest: [unknown, number][] = [];
    const next = kv().listenQueue((m) => void rest.push([m.value, m.attempts]));
    await until(() => got.length + rest.length === 5);
    await next.stop();
    expect(rest.every(([, attempts]) => attempts === 1)).toBe(true);
    expect([...got, ...rest.map(([v]) => v)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(await kv().queueStats()).toEqual({ pending: 0, processing: 0, dlq: 0, total: 0 });
  });

  it("ends a listener when the database closes", async () => {
    const listener = kv().listenQueue(() => {});
    await kv().close();
    await listener.closed;
    expect(() => kv().listenQueue(() => {})).toThrow(KvError);
  });

  it("rejects bad enqueue options and ids, leaving the queue untouched", async () => {
    const bad = async (p: Promise<unknown>, pattern: RegExp) => {
      await expect(p).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(pattern),
      });
    };
    await bad(kv().enqueue(1, { delay: "soon" }), /delay/);
    await bad(kv().enqueue(1, { delay: 31 * 24 * 3_600_000 }), /delay/);
    await bad(kv().enqueue(1, { backoffSchedule: ["1x"] }), /backoffSchedule/);
    await bad(kv().enqueue(1, { backoffSchedule: Array(11).fill(1) }), /at most 10/);
    await bad(kv().enqueue(1, { backoffSchedule: [3_600_001] }), /interval/);
    await bad(kv().enqueue(1, { keysIfUndelivered: Array(11).fill(["k"]) }), /at most 10/);
    await expect(kv().enqueue(new Uint8Array(70_000))).rejects.toMatchObject({
      code: "VALUE_TOO_LARGE",
    });
    await expect(kv().enqueue(() => 1)).rejects.toMatchObject({ code: "INVALID_VALUE" });
    await bad(kv().dlq.get(""), /id/);
    expect(() => kv().listenQueue(() => {}, { concurrency: 0 })).toThrow(/concurrency/);
    expect(() => kv().listenQueue(() => {}, { mode: "push" as never })).toThrow(/mode/);
    expect(await kv().queueStats()).toEqual({ pending: 0, processing: 0, dlq: 0, total: 0 });
  });
});
