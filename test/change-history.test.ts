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
import { sleep, until } from "./targets.js";

/** Resumes from `cursor` until the watch reports lost history; returns what it saw. */
async function resumeLost(kv: Kv, cursor: string) {
  for (;;) {
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
    await sleep(100);
    h.stop();
    if (lost.length > 0) return { lost, calls };
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
      await kv.set(["tmp"], 0, { expireIn: 1 });
      const { lost, calls } = await resumeLost(kv, first.versionstamp);
      expect(lost).toHaveLength(1);
      expect(lost[0]! >= second.versionstamp).toBe(true);
      expect(calls.length).toBeGreaterThan(0);
      expect(calls[0]!.initial).toBe(true);
      expect(calls[0]!.entries.map((e) => [e.key, e.value])).toEqual([
        [["k", 1], "one"],
        [["k", 2], "two"],
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
      await sleep(100);
      expect(seen).toEqual(["before", "while down", "also while down", "after"]);
      h.stop();
    } finally {
      await kv.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
