/**
 * The permission matrix, on every target: a principal holding each kind of grant tries every
 * operation on keys inside, outside and straddling its prefix `["users","a"]`. What the grants
 * cover works and returns the right data; anything else is refused whole, with `FORBIDDEN` naming
 * what was refused, and applies nothing: the admin's view of the keys, indexes, queue and
 * dead-letter queue is unchanged afterwards.
 */
import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import { type Kv, type KvEntryMaybe, KvError, type KvKey } from "../../src/index.js";
import type { Grant } from "../../src/kv/grants.js";
import { collect, conformance, until } from "../targets.js";

const P: KvKey = ["users", "a"];
const N: KvKey = [...P, "n"];
const PROFILE: KvKey = [...P, "profile"];
const XS: KvKey = [...P, "xs"];
const NEW: KvKey = [...P, "new"];
/** Shares `P`'s first bytes but not its parts: no grant on `P` covers it. */
const AB: KvKey = ["users", "ab"];
const B: KvKey = ["users", "b"];
const USERS: KvKey = ["users"];
const ORDER: KvKey = ["orders", 2];

/** In key order. */
const SEED: [KvKey, unknown][] = [
  [["orders", 1], "O"],
  [P, "A"],
  [N, 1],
  [PROFILE, { name: "alice" }],
  [XS, ["x"]],
  [AB, { name: "alice ab" }],
  [B, "B"],
];
/** In prefix order. */
const INDEXES = [
  { prefix: USERS, fields: ["name"], tokenize: "unicode61" },
  { prefix: P, fields: ["name"], tokenize: "unicode61" },
];

type Need = "read" | "write" | "queue";

/** Something an operation needs: what, whether it lies under `P`, and how a refusal names it. */
interface Touch {
  readonly need: Need;
  readonly covered: boolean;
  readonly text: string;
}

const within = (key: KvKey) => key.length >= P.length && P.every((part, i) => key[i] === part);
const show = (key: KvKey) => JSON.stringify(key);
const key = (need: "read" | "write", k: KvKey): Touch => ({
  need,
  covered: within(k),
  text: `${need} the key ${show(k)}`,
});
/** The keys under `k` (a list's, count's or page's range). */
const under = (need: "read" | "write", k: KvKey): Touch => ({
  need,
  covered: within(k),
  text: `${need} the keys under ${show(k)}`,
});
/** `k` and the keys under it (a range delete's, watch's, index's or search's range). */
const atOrUnder = (need: "read" | "write", k: KvKey): Touch => ({
  need,
  covered: within(k),
  text: `${need} the keys at or under ${show(k)}`,
});
const range = (need: "read" | "write", covered: boolean, text: string): Touch => ({
  need,
  covered,
  text: `${need} the range ${text}`,
});
const queue: Touch = { need: "queue", covered: true, text: "use the queue" };

interface Kind {
  readonly name: string;
  readonly grants: Grant[];
  /** What it may do under `P` (and `queue`: with the queue). */
  readonly may: readonly Need[];
}

const kinds: Kind[] = [
  { name: "read on [users,a]", grants: [{ prefix: P, access: "read" }], may: ["read"] },
  { name: "write on [users,a]", grants: [{ prefix: P, access: "write" }], may: ["write"] },
  {
    name: "readwrite on [users,a]",
    grants: [{ prefix: P, access: "readwrite" }],
    may: ["read", "write"],
  },
  { name: "the queue", grants: [{ queue: true }], may: ["queue"] },
  {
    name: "readwrite on [users,a] and the queue",
    grants: [{ prefix: P, access: "readwrite" }, { queue: true }],
    may: ["read", "write", "queue"],
  },
  { name: "no grants", grants: [], may: [] },
  {
    name: "readwrite on [users,a] and the queue, in another database",
    grants: [
      { prefix: P, access: "readwrite", database: "other" },
      { queue: true, database: "other" },
    ],
    may: [],
  },
];

const permits = (kind: Kind, t: Touch) => t.covered && kind.may.includes(t.need);

/**
 * What the admin sees: every key, index, the queue's size and the dead letters. (Not how many
 * messages are leased: a stopped consumer's last claim may lease and release one meanwhile.)
 */
async function snapshot(admin: Kv) {
  const { total, dlq } = await admin.queueStats();
  return {
    entries: await collect(admin.list({ prefix: [] })),
    indexes: await admin.listIndexes(),
    stats: { total, dlq },
    dlq: await admin.dlq.list(),
  };
}
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

const pairs = (entries: readonly KvEntryMaybe[]) => entries.map((e) => [e.key, e.value]);

/** Whether the keys, indexes and dead letters are as `reset` leaves them (the queue may differ). */
const seeded = (s: Snapshot) =>
  JSON.stringify([pairs(s.entries), s.indexes, s.dlq.length]) ===
  JSON.stringify([SEED, INDEXES, 1]);

/** The seed data, both indexes, and one dead letter. */
async function reset(admin: Kv): Promise<void> {
  await admin.delete([USERS, ["orders"]]);
  const seed = admin.atomic();
  for (const [k, v] of SEED) seed.set(k, v);
  await seed.commit();
  if (JSON.stringify(await admin.listIndexes()) !== JSON.stringify(INDEXES)) {
    for (const index of await admin.listIndexes()) await admin.removeIndex(index.prefix);
    for (const { prefix, fields } of INDEXES) await admin.createIndex(prefix, { fields });
  }
  if ((await admin.dlq.list()).length !== 1) {
    await admin.dlq.purge();
    // Fails once; any other message waiting (one requeued before, too) is acknowledged.
    const dead = `dead ${randomUUID()}`;
    await admin.enqueue(dead, { backoffSchedule: [] });
    const listener = admin.listenQueue((m) => {
      if (m.value === dead) throw new Error("undeliverable");
    });
    await until(async () => (await admin.dlq.list()).length === 1);
    await listener.stop();
  }
}

/**
 * A watch of `keys`, once it follows the feed; rejects with its error if it failed, or if it did
 * neither within 5 s (a refusal must be reported, not be a stream that never starts).
 */
function watching(kv: Kv, keys: KvKey[]): Promise<{ batches: unknown[][]; stop(): void }> {
  const withinMs = 5000;
  return new Promise((resolve, reject) => {
    const batches: unknown[][] = [];
    let failure: unknown;
    const handle = kv.watch(keys, (entries) => void batches.push(pairs(entries)), {
      onError: (e) => {
        failure = e;
      },
    });
    const timer = setTimeout(() => {
      handle.stop();
      reject(new Error(`the watch neither followed the feed nor failed within ${withinMs} ms`));
    }, withinMs);
    void handle.ready.then(() => {
      clearTimeout(timer);
      if (failure === undefined) resolve({ batches, stop: () => handle.stop() });
      else reject(failure);
    });
  });
}

/** Watches `keys`, has the admin set `NEW`, and resolves with what the watch saw. */
async function watchChange(kv: Kv, { admin }: Context, keys: KvKey[]) {
  const watch = await watching(kv, keys);
  await admin.set(NEW, 1);
  await until(() => watch.batches.length === 2);
  watch.stop();
  return watch.batches;
}

interface Context {
  readonly admin: Kv;
  readonly kind: Kind;
  /** Whether the grants cover the operation. */
  readonly allowed: boolean;
  /** The admin's view just before the operation (after `prepare`). */
  readonly before: Snapshot;
  /** What `prepare` resolved with. */
  readonly prepared: string;
}

interface Op {
  readonly name: string;
  readonly touches: readonly Touch[];
  /** The admin's set-up for this operation, before the data is snapshotted. */
  prepare?(admin: Kv): Promise<string>;
  run(kv: Kv, context: Context): Promise<unknown>;
  /** Asserts the result and effect of the operation when it is allowed. */
  check(result: unknown, context: Context): unknown;
}

const valueAt = async (admin: Kv, k: KvKey) => (await admin.get(k)).value;

/** The admin's cursor after the first entry under `prefix`. */
async function cursorAfterFirst(admin: Kv, prefix: KvKey): Promise<string> {
  const iterator = admin.list({ prefix }, { limit: 1 });
  await collect(iterator);
  return iterator.cursor;
}

const ops: Op[] = [
  // Reads
  {
    name: "get a key under the prefix",
    touches: [key("read", N)],
    run: (kv) => kv.get(N),
    check: (r) => expect(r).toMatchObject({ key: N, value: 1 }),
  },
  {
    name: "get the prefix's own key",
    touches: [key("read", P)],
    run: (kv) => kv.get(P),
    check: (r) => expect(r).toMatchObject({ key: P, value: "A" }),
  },
  {
    name: "get a key outside it",
    touches: [key("read", B)],
    run: (kv) => kv.get(B),
    check: (r) => expect(r).toMatchObject({ key: B, value: "B" }),
  },
  {
    name: "get [users,ab], which shares the prefix's bytes but not its parts",
    touches: [key("read", AB)],
    run: (kv) => kv.get(AB),
    check: (r) => expect(r).toMatchObject({ key: AB, value: { name: "alice ab" } }),
  },
  {
    name: "get many keys under it",
    touches: [key("read", N), key("read", XS)],
    run: async (kv) => pairs(await kv.get([N, XS])),
    check: (r) =>
      expect(r).toEqual([
        [N, 1],
        [XS, ["x"]],
      ]),
  },
  {
    name: "get many keys, one outside",
    touches: [key("read", N), key("read", B)],
    run: async (kv) => pairs(await kv.getMany([N, B])),
    check: (r) =>
      expect(r).toEqual([
        [N, 1],
        [B, "B"],
      ]),
  },
  {
    name: "list its prefix",
    touches: [under("read", P)],
    run: async (kv) => pairs(await collect(kv.list({ prefix: P }))),
    check: (r) =>
      expect(r).toEqual([
        [N, 1],
        [PROFILE, { name: "alice" }],
        [XS, ["x"]],
      ]),
  },
  {
    name: "list a wider prefix ([users])",
    touches: [under("read", USERS)],
    run: async (kv) => pairs(await collect(kv.list({ prefix: USERS }))),
    check: (r) => expect(r).toHaveLength(5),
  },
  {
    name: "list the prefix [users,ab]",
    touches: [under("read", AB)],
    run: async (kv) => pairs(await collect(kv.list({ prefix: AB }))),
    check: (r) => expect(r).toEqual([]),
  },
  {
    name: "list by start and end under it",
    touches: [range("read", true, `${show(N)} to ${show(XS)}`)],
    run: async (kv) => pairs(await collect(kv.list({ start: N, end: XS }))),
    check: (r) =>
      expect(r).toEqual([
        [N, 1],
        [PROFILE, { name: "alice" }],
      ]),
  },
  {
    name: "list by start and end straddling it",
    touches: [range("read", false, `${show(P)} to ${show(B)}`)],
    run: async (kv) => pairs(await collect(kv.list(USERS, { start: P, end: B }))),
    check: (r) => expect(r).toHaveLength(5),
  },
  {
    name: "list its prefix from a cursor",
    prepare: (admin) => cursorAfterFirst(admin, P),
    touches: [range("read", true, `${show(N)} + 0x00 to ${show(P)} + 0xff`)],
    run: async (kv, { prepared }) =>
      pairs(await collect(kv.list({ prefix: P }, { cursor: prepared }))),
    check: (r) =>
      expect(r).toEqual([
        [PROFILE, { name: "alice" }],
        [XS, ["x"]],
      ]),
  },
  {
    name: "list a wider prefix from a cursor inside it",
    prepare: (admin) => cursorAfterFirst(admin, USERS),
    touches: [range("read", false, `${show(P)} + 0x00 to ${show(USERS)} + 0xff`)],
    run: async (kv, { prepared }) =>
      pairs(await collect(kv.list({ prefix: USERS }, { cursor: prepared }))),
    check: (r) => expect(r).toHaveLength(5),
  },
  {
    name: "count its prefix",
    touches: [under("read", P)],
    run: (kv) => kv.count(P),
    check: (r) => expect(r).toBe(3),
  },
  {
    name: "count a wider prefix",
    touches: [under("read", USERS)],
    run: (kv) => kv.count(USERS),
    check: (r) => expect(r).toBe(5),
  },
  {
    name: "paginate its prefix",
    touches: [under("read", P)],
    run: async (kv) => {
      const page = await kv.paginate(P, { limit: 2 });
      return { ...page, entries: pairs(page.entries) };
    },
    check: (r) =>
      expect(r).toMatchObject({
        entries: [
          [N, 1],
          [PROFILE, { name: "alice" }],
        ],
        hasMore: true,
      }),
  },
  {
    name: "paginate a wider prefix",
    touches: [under("read", USERS)],
    run: (kv) => kv.paginate(USERS, { limit: 2 }),
    check: (r) => expect(r).toMatchObject({ hasMore: true }),
  },
  {
    name: "search its prefix",
    touches: [atOrUnder("read", P)],
    run: async (kv) => pairs(await kv.search(P, "alice")),
    check: (r) => expect(r).toEqual([[PROFILE, { name: "alice" }]]),
  },
  {
    name: "search a wider prefix",
    touches: [atOrUnder("read", USERS)],
    run: async (kv) => pairs(await kv.search(USERS, "alice")),
    check: (r) => expect(r).toHaveLength(2),
  },
  {
    name: "list the indexes: only those under prefixes it may read",
    touches: [],
    run: (kv) => kv.listIndexes(),
    check: (r, { kind }) => expect(r).toEqual(kind.may.includes("read") ? [INDEXES[1]] : []),
  },
  {
    name: "watch its prefix",
    touches: [atOrUnder("read", P)],
    run: (kv, context) => watchChange(kv, context, [P]),
    check: (r) =>
      expect(r).toEqual([
        [
          [P, "A"],
          [N, 1],
          [PROFILE, { name: "alice" }],
          [XS, ["x"]],
        ],
        [[NEW, 1]],
      ]),
  },
  {
    name: "watch a wider prefix",
    touches: [atOrUnder("read", USERS)],
    run: (kv, context) => watchChange(kv, context, [USERS]),
    check: (r) => expect(r).toHaveLength(2),
  },
  {
    name: "watch two keys, one outside",
    touches: [atOrUnder("read", P), atOrUnder("read", B)],
    run: (kv, context) => watchChange(kv, context, [P, B]),
    check: (r) => expect(r).toHaveLength(2),
  },

  // Writes
  {
    name: "set a key under it",
    touches: [key("write", NEW)],
    run: (kv) => kv.set(NEW, 1),
    check: async (_, { admin }) => expect(await valueAt(admin, NEW)).toBe(1),
  },
  {
    name: "set the prefix's own key",
    touches: [key("write", P)],
    run: (kv) => kv.set(P, "A2"),
    check: async (_, { admin }) => expect(await valueAt(admin, P)).toBe("A2"),
  },
  {
    name: "set [users,ab]",
    touches: [key("write", AB)],
    run: (kv) => kv.set(AB, "x"),
    check: async (_, { admin }) => expect(await valueAt(admin, AB)).toBe("x"),
  },
  {
    name: "set a key outside it",
    touches: [key("write", ORDER)],
    run: (kv) => kv.set(ORDER, "x"),
    check: async (_, { admin }) => expect(await valueAt(admin, ORDER)).toBe("x"),
  },
  {
    name: "delete exactly a key under it",
    touches: [key("write", N)],
    run: (kv) => kv.delete(N, { exact: true }),
    check: async (r, { admin }) => {
      expect(r).toEqual({ success: true, deletedCount: 1 });
      expect(await valueAt(admin, N)).toBe(null);
    },
  },
  {
    name: "delete the prefix with every key under it (a range delete)",
    touches: [atOrUnder("write", P)],
    run: (kv) => kv.delete(P),
    check: async (r, { admin }) => {
      expect(r).toEqual({ success: true, deletedCount: 4 });
      expect(pairs(await collect(admin.list({ prefix: USERS })))).toEqual([
        [AB, { name: "alice ab" }],
        [B, "B"],
      ]);
    },
  },
  {
    name: "range-delete a wider prefix",
    touches: [atOrUnder("write", USERS)],
    run: (kv) => kv.delete(USERS),
    check: (r) => expect(r).toEqual({ success: true, deletedCount: 6 }),
  },
  {
    name: "range-delete [users,ab]",
    touches: [atOrUnder("write", AB)],
    run: (kv) => kv.delete(AB),
    check: (r) => expect(r).toEqual({ success: true, deletedCount: 1 }),
  },
  {
    name: "delete two keys in one commit, one outside",
    touches: [key("write", N), key("write", B)],
    run: (kv) => kv.delete([N, B], { exact: true }),
    check: (r) => expect(r).toEqual({ success: true, deletedCount: 2 }),
  },
  {
    name: "atomic: check and set a key under it",
    prepare: async (admin) => (await admin.get(N)).versionstamp!,
    touches: [key("read", N), key("write", N)],
    run: (kv, { prepared }) =>
      kv.atomic().check({ key: N, versionstamp: prepared }).set(N, 2).commit(),
    check: async (r, { admin }) => {
      expect(r).toMatchObject({ ok: true });
      expect(await valueAt(admin, N)).toBe(2);
    },
  },
  {
    name: "atomic: set one key under it and one outside",
    touches: [key("write", N), key("write", B)],
    run: (kv) => kv.atomic().set(N, 2).set(B, 2).commit(),
    check: (r) => expect(r).toMatchObject({ ok: true }),
  },
  {
    name: "atomic: check a key outside it, set one under it",
    prepare: async (admin) => (await admin.get(B)).versionstamp!,
    touches: [key("read", B), key("write", N)],
    run: (kv, { prepared }) =>
      kv.atomic().check({ key: B, versionstamp: prepared }).set(N, 2).commit(),
    check: (r) => expect(r).toMatchObject({ ok: true }),
  },
  {
    name: "atomic: sum, max, min and append under it",
    touches: [key("write", N), key("write", N), key("write", N), key("write", XS)],
    run: (kv) => kv.atomic().sum(N, 5).max(N, 9).min(N, 7).append(XS, ["y"]).commit(),
    check: async (r, { admin }) => {
      expect(r).toMatchObject({ ok: true });
      expect([await valueAt(admin, N), await valueAt(admin, XS)]).toEqual([7, ["x", "y"]]);
    },
  },
  {
    name: "atomic: sum under it, append outside",
    touches: [key("write", N), key("write", ORDER)],
    run: (kv) => kv.atomic().sum(N, 5).append(ORDER, ["y"]).commit(),
    check: (r) => expect(r).toMatchObject({ ok: true }),
  },
  {
    name: "transaction: read and update a key under it",
    touches: [key("read", N), key("write", N)],
    run: (kv) =>
      kv.transaction(async (tx) => {
        const { value } = await tx.get<number>(N);
        tx.set(N, value! + 1);
        return value;
      }),
    check: async (r, { admin }) => {
      expect(r).toMatchObject({ ok: true, value: 1 });
      expect(await valueAt(admin, N)).toBe(2);
    },
  },

  // Search indexes
  {
    name: "create an index on its prefix",
    touches: [atOrUnder("write", P)],
    run: (kv) => kv.createIndex(P, { fields: ["name", "title"] }),
    check: async (_, { admin }) =>
      expect((await admin.listIndexes())[1]).toEqual({ ...INDEXES[1], fields: ["name", "title"] }),
  },
  {
    name: "create an index on a wider prefix",
    touches: [atOrUnder("write", USERS)],
    run: (kv) => kv.createIndex(USERS, { fields: ["title"] }),
    check: (r) => expect(r).toEqual({ ok: true }),
  },
  {
    name: "remove the index on its prefix",
    touches: [atOrUnder("write", P)],
    run: (kv) => kv.removeIndex(P),
    check: async (r, { admin }) => {
      expect(r).toBe(true);
      expect(await admin.listIndexes()).toEqual([INDEXES[0]]);
    },
  },
  {
    name: "remove the index on a wider prefix",
    touches: [atOrUnder("write", USERS)],
    run: (kv) => kv.removeIndex(USERS),
    check: (r) => expect(r).toBe(true),
  },

  // The queue
  {
    name: "enqueue",
    touches: [queue],
    run: (kv) => kv.enqueue("m"),
    check: async (r, { admin, before }) => {
      expect(r).toMatchObject({ ok: true });
      expect((await admin.queueStats()).total).toBe(before.stats.total + 1);
    },
  },
  {
    name: "enqueue with keysIfUndelivered under it",
    touches: [queue, key("write", NEW)],
    run: (kv) => kv.enqueue("m", { keysIfUndelivered: [NEW] }),
    check: async (r, { admin, before }) => {
      expect(r).toMatchObject({ ok: true });
      expect((await admin.queueStats()).total).toBe(before.stats.total + 1);
    },
  },
  {
    name: "enqueue with keysIfUndelivered outside it",
    touches: [queue, key("write", ORDER)],
    run: (kv) => kv.enqueue("m", { keysIfUndelivered: [ORDER] }),
    check: (r) => expect(r).toMatchObject({ ok: true }),
  },
  {
    name: "atomic: set under it and enqueue",
    touches: [key("write", NEW), queue],
    run: (kv) => kv.atomic().set(NEW, 1).enqueue("m").commit(),
    check: async (r, { admin, before }) => {
      expect(r).toMatchObject({ ok: true });
      expect(await valueAt(admin, NEW)).toBe(1);
      expect((await admin.queueStats()).total).toBe(before.stats.total + 1);
    },
  },
  {
    name: "queue stats",
    touches: [queue],
    run: (kv) => kv.queueStats(),
    check: (r, { before }) => expect(r).toMatchObject(before.stats),
  },
  {
    name: "list the dead letters",
    touches: [queue],
    run: (kv) => kv.dlq.list(),
    check: (r, { before }) => expect(r).toEqual(before.dlq),
  },
  {
    name: "get a dead letter",
    prepare: async (admin) => (await admin.dlq.list())[0]!.id,
    touches: [queue],
    run: (kv, { prepared }) => kv.dlq.get(prepared),
    check: (r, { before }) => expect(r).toEqual(before.dlq[0]),
  },
  {
    name: "requeue a dead letter",
    prepare: async (admin) => (await admin.dlq.list())[0]!.id,
    touches: [queue],
    run: (kv, { prepared }) => kv.dlq.requeue(prepared),
    check: async (_, { admin, before }) =>
      expect(await admin.queueStats()).toMatchObject({ dlq: 0, total: before.stats.total }),
  },
  {
    name: "delete a dead letter",
    prepare: async (admin) => (await admin.dlq.list())[0]!.id,
    touches: [queue],
    run: (kv, { prepared }) => kv.dlq.delete(prepared),
    check: async (_, { admin }) => expect(await admin.dlq.list()).toEqual([]),
  },
  {
    name: "purge the dead letters",
    touches: [queue],
    run: (kv) => kv.dlq.purge(),
    check: async (r, { admin }) => {
      expect(r).toEqual({ deletedCount: 1 });
      expect(await admin.dlq.list()).toEqual([]);
    },
  },
  {
    name: "listen to the queue",
    prepare: async (admin) => (await admin.enqueue("for the listener")).id,
    touches: [queue],
    // A refused consumer ends and reports the refusal to onError.
    run: (kv, { prepared }) =>
      new Promise((resolve, reject) => {
        const got: [string, unknown][] = [];
        let refusal: unknown;
        const listener = kv.listenQueue((m) => void got.push([m.id, m.value]), {
          onError: (e) => {
            refusal = e;
          },
        });
        until(() => got.length > 0 || refusal !== undefined)
          .then(() => listener.stop())
          .then(() => (refusal ? reject(refusal) : resolve(got.filter(([id]) => id === prepared))))
          .catch(reject);
      }),
    check: (r, { prepared }) => expect(r).toEqual([[prepared, "for the listener"]]),
  },
];

const describeError = (e: unknown) =>
  e instanceof KvError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);

conformance("permissions", (kv, as) => {
  for (const kind of kinds) {
    it(`with ${kind.name}, each operation works exactly when the grants cover it, and is refused whole otherwise`, async () => {
      const admin = kv();
      const restricted = await as(kind.grants);
      await reset(admin);
      let before = await snapshot(admin);
      const failures: string[] = [];
      for (const op of ops) {
        const prepared = (await op.prepare?.(admin)) ?? "";
        if (op.prepare) before = await snapshot(admin);
        const allowed = op.touches.every((t) => permits(kind, t));
        const context = { admin, kind, allowed, before, prepared };
        let clean = false;
        try {
          const outcome = await op.run(restricted, context).then(
            (result) => ({ ok: true as const, result }),
            (error: unknown) => ({ ok: false as const, error }),
          );
          if (allowed) {
            if (!outcome.ok) throw new Error(`refused: ${describeError(outcome.error)}`);
            await op.check(outcome.result, context);
          } else {
            if (outcome.ok) throw new Error(`allowed, with ${JSON.stringify(outcome.result)}`);
            const { error } = outcome;
            if (!(error instanceof KvError && error.code === "FORBIDDEN"))
              throw new Error(`failed otherwise: ${describeError(error)}`);
            const refused = op.touches.filter((t) => !permits(kind, t)).map((t) => t.text);
            if (!refused.some((text) => error.message.includes(`may not ${text}`)))
              throw new Error(
                `refused with "${error.message}", which names none of: ${refused.join("; ")}`,
              );
            expect(await snapshot(admin), "the data after a refusal").toEqual(before);
            clean = true;
          }
        } catch (e) {
          failures.push(
            `${op.name}: expected ${allowed ? "to work" : "a refusal"}; ${(e as Error).message}`,
          );
        }
        if (!clean) {
          before = await snapshot(admin);
          if (!seeded(before)) {
            await reset(admin);
            before = await snapshot(admin);
          }
        }
      }
      expect(failures).toEqual([]);
    });
  }
});
