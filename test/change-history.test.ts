/**
 * Resuming a watch from a cursor older than the retained change history: the watch says so
 * explicitly, with the oldest cursor it can resume from, and re-sends the current entries.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Kv, type KvEntryMaybe, openKv } from "../src/index.js";
import { startServer } from "../src/server/server.js";
import { until } from "./targets.js";

/**
 * Sets a key that expires at once and waits for the sweep that removes it: the same commit prunes
 * the change history older than the retention.
 */
async function sweep(kv: Kv): Promise<void> {
  const deletions: string[] = [];
  const h = kv.watch(
    ["tmp"],
    (entries, info) => {
      if (entries.some((e) => e.value === null)) deletions.push(info.versionstamp!);
    },
    { emitInitial: false },
  );
  await h.ready;
  const set = await kv.set(["tmp"], 0, { expireIn: 1 });
  try {
    // The set itself may be reported as a deletion (it has expired by then); the sweep comes later.
    await until(() => deletions.some((v) => v > set.versionstamp));
  } catch {
    throw new Error("The sweep did not remove an expired key within 5 s");
  } finally {
    h.stop();
  }
}

/** Resumes from `cursor`, then writes a marker; returns what the watch saw up to the marker. */
async function resume(kv: Kv, cursor: string) {
  const lost: string[] = [];
  const calls: { entries: KvEntryMaybe[]; initial: boolean }[] = [];
  const h = kv.watch(
    ["k"],
    (entries, info) => void calls.push({ entries, initial: info.initial }),
    {
      cursor,
      onHistoryLost: (oldest) => lost.push(oldest),
    },
  );
  try {
    await h.ready;
    // After lost history, `ready` can resolve before the current entries are re-sent (the feed's
    // heartbeat makes the watch live first): wait for them, so that the marker is the later change.
    if (lost.length > 0) await until(() => calls.some((c) => c.initial));
    await kv.set(["k", "marker"], "end"); // whatever the watch reports comes before it
    await until(() => calls.some((c) => c.entries.some((e) => e.value === "end")));
    return { lost, calls };
  } finally {
    h.stop();
  }
}

const cases: [string, () => Promise<{ kv: Kv; close(): Promise<void> }>][] = [
  [
    "embedded",
    async () => {
      const kv = await openKv(":memory:", { changeRetention: 0 });
      return { kv, close: () => kv.close() };
    },
  ],
  [
    "remote",
    async () => {
      const token = randomUUID();
      const server = await startServer({
        host: "127.0.0.1",
        port: 0,
        data: ":memory:",
        auth: true,
        token,
        changeRetention: 0,
      });
      const kv = await openKv(server.url, { accessToken: token });
      return {
        kv,
        close: async () => {
          await kv.close();
          await server.close();
        },
      };
    },
  ],
];

describe.each(cases)("change history [%s]", (_name, open) => {
  it("signals a cursor older than the retained history, then re-sends the current state", async () => {
    const { kv, close } = await open();
    try {
      const first = await kv.set(["k", 1], "one");
      const second = await kv.set(["k", 2], "two");
      // An expiring key makes the sweeper run, which prunes history older than the retention (0).
      await sweep(kv);
      const { lost, calls } = await resume(kv, first.versionstamp);
      expect(lost).toHaveLength(1);
      expect(lost[0]! >= second.versionstamp).toBe(true);
      expect(calls[0]!.initial).toBe(true);
      expect(calls.map((c) => c.entries.map((e) => [e.key, e.value]))).toEqual([
        [
          [["k", 1], "one"],
          [["k", 2], "two"],
        ],
        [[["k", "marker"], "end"]],
      ]);
    } finally {
      await close();
    }
  });
});

describe("remote watch across a server restart", () => {
  it("reconnects by itself and delivers what changed while the server was down, once", async () => {
    const dir = join(tmpdir(), `cairn-reconnect-${randomUUID()}`);
    const data = join(dir, "db.sqlite");
    const token = randomUUID();
    const options = { host: "127.0.0.1", data, auth: true, token } as const;
    let server = await startServer({ ...options, port: 0 });
    const { port } = server;
    const kv = await openKv(server.url, { accessToken: token });
    try {
      const seen: unknown[] = [];
      const h = kv.watch(["r"], (entries) => void seen.push(...entries.map((e) => e.value)), {
        emitInitial: false,
      });
      await h.ready;
      await kv.set(["r", 1], "before");
      await until(() => seen.length === 1);
      await server.close();
      const direct = await openKv(data); // written while no server runs
      await direct.set(["r", 2], "while down");
      await direct.set(["r", 3], "also while down");
      await direct.close();
      server = await startServer({ ...options, port });
      await kv.set(["r", 4], "after");
      await until(() => seen.length === 4, 10_000);
      await kv.set(["r", 5], "marker"); // a change delivered twice would come before it
      await until(() => seen.includes("marker"));
      expect(seen).toEqual(["before", "while down", "also while down", "after", "marker"]);
      h.stop();
    } finally {
      await kv.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
