import { expect, it } from "vitest";
import type { KvEntryMaybe, KvWatchInfo } from "../../src/index.js";
import { conformance, until } from "../targets.js";

type Call = { entries: KvEntryMaybe[]; info: KvWatchInfo };
const shape = (calls: Call[]) =>
  calls.map((c) => c.entries.map((e) => [e.key, e.value, e.versionstamp !== null]));

function recorder() {
  const calls: Call[] = [];
  return {
    calls,
    callback: (entries: KvEntryMaybe[], info: KvWatchInfo) => void calls.push({ entries, info }),
  };
}

conformance("watch", (kv) => {
  it("emits the current entries of exact keys first, missing ones as null", async () => {
    await kv().set(["users", 1], "alice");
    const { calls, callback } = recorder();
    const h = kv().watch(
      [
        ["users", 1],
        ["users", 2],
      ],
      callback,
      { exact: true },
    );
    await h.ready;
    expect(shape(calls)).toEqual([
      [
        [["users", 1], "alice", true],
        [["users", 2], null, false],
      ],
    ]);
    expect(calls[0]!.info.initial).toBe(true);
    h.stop();
  });

  it("reports sets and deletes under a prefix, part-wise, commit by commit", async () => {
    const { calls, callback } = recorder();
    const h = kv().watch(["users", "a"], callback, { emitInitial: false });
    await h.ready;
    await kv().set(["users", "a"], 0);
    await kv().set(["users", "a", 1], 1);
    // Seen before it changes again (a key changed twice before the feed reads it is reported once).
    await until(() => calls.length === 2);
    await kv().set(["users", "ab"], "not a child");
    await kv().set(["orders", 1], "elsewhere");
    await kv().delete(["users", "a", 1], { exact: true });
    // A later commit the watch sees: whatever else it would report arrives before it.
    await kv().set(["users", "a", "marker"], "end");
    await until(() => calls.length >= 4);
    expect(shape(calls)).toEqual([
      [[["users", "a"], 0, true]],
      [[["users", "a", 1], 1, true]],
      [[["users", "a", 1], null, false]],
      [[["users", "a", "marker"], "end", true]],
    ]);
    expect(calls.every((c) => c.info.initial === false && c.info.versionstamp !== null)).toBe(true);
    h.stop();
  });

  it("with exact, ignores the keys under the watched key", async () => {
    const { calls, callback } = recorder();
    const h = kv().watch(["cfg"], callback, { exact: true, emitInitial: false });
    await h.ready;
    await kv().set(["cfg", "child"], 1);
    await kv().set(["cfg"], 2);
    await until(() => calls.length === 1);
    await kv().set(["cfg", "child"], 3);
    await kv().set(["cfg"], 4); // the marker: a child's change would be reported before it
    await until(() => calls.length >= 2);
    expect(shape(calls)).toEqual([[[["cfg"], 2, true]], [[["cfg"], 4, true]]]);
    h.stop();
  });

  it("delivers one commit's changes together, with its versionstamp", async () => {
    const { calls, callback } = recorder();
    const h = kv().watch([["a"], ["b"]], callback, { emitInitial: false });
    await h.ready;
    const result = await kv().atomic().set(["a"], 1).set(["b", 1], 2).set(["c"], 3).commit();
    await until(() => calls.length === 1);
    expect(shape(calls)).toEqual([
      [
        [["a"], 1, true],
        [["b", 1], 2, true],
      ],
    ]);
    expect(calls[0]!.info.versionstamp).toBe(result.ok && result.versionstamp);
    expect(calls[0]!.entries.every((e) => e.versionstamp === calls[0]!.info.versionstamp)).toBe(
      true,
    );
    h.stop();
  });

  it("reports an expired key as deleted", async () => {
    const { calls, callback } = recorder();
    const h = kv().watch(["session"], callback, { emitInitial: false });
    await h.ready;
    await kv().set(["session", 1], "short", { expireIn: 200 });
    await until(() => calls.some((c) => c.entries[0]!.value === null));
    // Seen set, then deleted (or, on a slow machine, only deleted): never anything else.
    expect(shape(calls).at(-1)).toEqual([[["session", 1], null, false]]);
    expect(shape(calls).slice(0, -1)).toEqual(
      calls.length === 2 ? [[[["session", 1], "short", true]]] : [],
    );
    h.stop();
  });

  it("stops delivering after stop(), and `using` stops it", async () => {
    const { calls, callback } = recorder();
    // A second watch of the same key is the witness: the feed hands each commit to every watch
    // at once, so once the witness has seen a commit made after it, the stopped one had its chance.
    const witness = recorder();
    const w = kv().watch(["x"], witness.callback, { emitInitial: false });
    await w.ready;
    {
      using h = kv().watch(["x"], callback, { emitInitial: false });
      await h.ready;
      await kv().set(["x"], 1);
      await until(() => calls.length === 1);
    }
    await kv().set(["x"], 2);
    await until(() => witness.calls.length >= 2);
    await kv().set(["x", "marker"], 3);
    await until(() => witness.calls.length >= 3);
    expect(shape(calls)).toEqual([[[["x"], 1, true]]]);
    w.stop();
  });

  it("coalesces per key while the callback is busy (drop-oldest)", async () => {
    const seen: unknown[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const h = kv().watch(
      ["k"],
      async (entries) => {
        seen.push(entries.map((e) => [e.key[1], e.value]));
        if (seen.length === 1) await gate;
      },
      { emitInitial: false, bufferSize: 2, overflowStrategy: "drop-oldest" },
    );
    await h.ready;
    await kv().set(["k", 1], "first");
    await until(() => seen.length === 1);
    await kv().set(["k", 2], "a");
    await kv().set(["k", 3], "b");
    await kv().set(["k", 3], "Third");
    const last = await kv().set(["k", 4], "c");
    // The buffer has filled while the callback waits: the watch has read up to the last commit.
    await until(() => h.cursor !== null && h.cursor >= last.versionstamp);
    release();
    await until(() => seen.length === 2);
    expect(seen).toEqual([
      [[1, "first"]],
      [
        [3, "Third"],
        [4, "c"],
      ],
    ]);
    h.stop();
  });

  it("drops new keys when the buffer is full (drop-newest)", async () => {
    const seen: unknown[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const h = kv().watch(
      ["k"],
      async (entries) => {
        seen.push(entries.map((e) => [e.key[1], e.value]));
        if (seen.length === 1) await gate;
      },
      { emitInitial: false, bufferSize: 2, overflowStrategy: "drop-newest" },
    );
    await h.ready;
    await kv().set(["k", 1], "first");
    await until(() => seen.length === 1);
    await kv().set(["k", 2], "a");
    await kv().set(["k", 3], "b");
    await kv().set(["k", 4], "dropped");
    const last = await kv().set(["k", 2], "a2");
    await until(() => h.cursor !== null && h.cursor >= last.versionstamp);
    release();
    await until(() => seen.length === 2);
    expect(seen).toEqual([
      [[1, "first"]],
      [
        [3, "b"],
        [2, "a2"],
      ],
    ]);
    h.stop();
  });

  it("reports a key changed twice between reads once, with its latest state", async () => {
    const first = recorder();
    const h1 = kv().watch(["p"], first.callback, { emitInitial: false });
    await h1.ready;
    await kv().set(["p", 0], "seen");
    await until(() => first.calls.length === 1);
    h1.stop();
    await kv().set(["p", 1], "one");
    await kv().set(["p", 1], "two");
    const { calls, callback } = recorder();
    const h2 = kv().watch(["p"], callback, { cursor: h1.cursor! });
    await until(() => calls.length >= 1);
    await kv().set(["p", 2], "marker"); // a second report of ["p", 1] would come before it
    await until(() => calls.length >= 2);
    expect(shape(calls)).toEqual([[[["p", 1], "two", true]], [[["p", 2], "marker", true]]]);
    h2.stop();
  });

  it("resumes from a cursor with every change since, in order, none twice", async () => {
    const first = recorder();
    const h1 = kv().watch(["log"], first.callback, { emitInitial: false });
    await h1.ready;
    await kv().set(["log", 1], 1);
    await kv().set(["log", 2], 2);
    await until(() => first.calls.length === 2);
    const cursor = h1.cursor!;
    expect(cursor).toBe(first.calls[1]!.info.versionstamp);
    h1.stop();
    await kv().set(["log", 3], 3);
    await kv().set(["other"], 0);
    await kv().atomic().set(["log", 4], 4).delete(["log", 1]).commit();
    const second = recorder();
    const h2 = kv().watch(["log"], second.callback, { cursor });
    await until(() => second.calls.length >= 2);
    await kv().set(["log", 5], "marker"); // anything delivered twice would come before it
    await until(() => second.calls.length >= 3);
    expect(shape(second.calls)).toEqual([
      [[["log", 3], 3, true]],
      [
        [["log", 1], null, false],
        [["log", 4], 4, true],
      ],
      [[["log", 5], "marker", true]],
    ]);
    h2.stop();
  });

  it("follows changes in polling mode", async () => {
    const { calls, callback } = recorder();
    const h = kv().watch(["p"], callback, { mode: "polling", pollInterval: 20 });
    await h.ready;
    await kv().set(["p", 1], "one");
    await until(() => calls.length === 1);
    await kv().delete(["p", 1]);
    await until(() => calls.length === 2);
    expect(shape(calls)).toEqual([[[["p", 1], "one", true]], [[["p", 1], null, false]]]);
    h.stop();
  });

  it("streams Deno's form: every key first, then on each change", async () => {
    await kv().set(["a"], 1);
    const stream = kv().watch([["a"], ["b"]]);
    const reader = stream.getReader();
    const first = await reader.read();
    expect(first.value!.map((e) => [e.key, e.value])).toEqual([
      [["a"], 1],
      [["b"], null],
    ]);
    await kv().set(["b"], 2);
    const second = await reader.read();
    expect(second.value!.map((e) => [e.key, e.value])).toEqual([
      [["a"], 1],
      [["b"], 2],
    ]);
    await kv().delete(["a"], { exact: true });
    const third = await reader.read();
    expect(third.value!.map((e) => e.value)).toEqual([null, 2]);
    await reader.cancel();
  });

  it("rejects bad options", async () => {
    const cb = () => {};
    expect(() => kv().watch(["a"], cb, { bufferSize: 0 })).toThrow(/bufferSize/);
    expect(() => kv().watch(["a"], cb, { cursor: "nope" })).toThrow(/cursor/);
    expect(() => kv().watch(["a"], cb, { pollInterval: "soon" })).toThrow(/pollInterval/);
    expect(() => kv().watch(["a"], cb, { overflowStrategy: "random" as never })).toThrow(
      /overflowStrategy/,
    );
    expect(() => kv().watch(["a"] as never, { raw: true })).toThrow(/array of keys/);
  });
});
