/**
 * What every system is measured on, and the workloads written once against the Deno KV API so
 * that Deno KV (bench/deno-kv.ts) and Cairn (bench/cell.js) run the very same code.
 */

/** The value every system stores: 96 bytes as JSON. */
export const VALUE = Object.freeze({ v: "x".repeat(88) });

/**
 * The value E3 writes on its `n`th rewrite: VALUE's size, different content. (SQLite skips
 * rewriting a row with identical bytes, which would spare the raw baseline its fsync.)
 */
export function rewrittenValue(n) {
  return { v: `${VALUE.v.slice(0, 80)}${String(n % 1e8).padStart(8, "0")}` };
}

/**
 * What each Happy Server key `k<i>` (bench/server-bench.js) holds: base64 text as long as VALUE's
 * `v` (Happy values are base64 strings).
 */
export const HAPPY_VALUE = Buffer.from("x".repeat(66)).toString("base64");

/** Keys written before E2–E4 start, and the mutations per commit when preloading and in E5. */
export const PRELOAD_KEYS = 100_000;
export const BATCH = 1000;

/** The workloads that read (or rewrite) the preloaded keys. */
export function needsPreload(workload) {
  return workload === "E2" || workload === "E3" || workload === "E4";
}

/** A seeded xorshift32 stream of key indexes in [0, PRELOAD_KEYS): the same for every system. */
export function randomKeys(seed = 0x9e3779b9) {
  let state = seed >>> 0;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % PRELOAD_KEYS;
  };
}

/**
 * Runs `work(from, count)` for `spec.warmup` units, then times `spec.count` more. A unit is one
 * operation, one list or, for E5, one row; `from` numbers units so that writes go to fresh keys.
 */
export async function measure(work, spec) {
  await work(0, spec.warmup);
  const start = performance.now();
  await work(spec.warmup, spec.count);
  return { count: spec.count, seconds: (performance.now() - start) / 1000 };
}

/** Writes keys `["k", from]` … `["k", from + count - 1]`, BATCH sets per commit. */
export async function setRows(kv, from, count) {
  for (let row = from; row < from + count; row += BATCH) {
    const atomic = kv.atomic();
    for (let i = row; i < Math.min(row + BATCH, from + count); i++) atomic.set(["k", i], VALUE);
    const result = await atomic.commit();
    if (!result.ok) throw new Error("A commit without checks failed");
  }
}

const kvWorkloads = {
  E1: (kv) => async (from, count) => {
    for (let i = from; i < from + count; i++) await kv.set(["k", i], VALUE);
  },
  E2: (kv) => {
    const next = randomKeys();
    return async (_from, count) => {
      for (let n = 0; n < count; n++) {
        const entry = await kv.get(["k", next()]);
        if (entry.versionstamp === null) throw new Error("A preloaded key is missing");
      }
    };
  },
  E3: (kv) => {
    const next = randomKeys();
    return async (from, count) => {
      for (let n = from; n < from + count; n++) {
        const key = ["k", next()];
        const entry = await kv.get(key);
        const result = await kv.atomic().check(entry).set(key, rewrittenValue(n)).commit();
        if (!result.ok) throw new Error("A check failed with no concurrent writer");
      }
    };
  },
  E4: (kv) => async (_from, count) => {
    for (let n = 0; n < count; n++) {
      let entries = 0;
      for await (const _entry of kv.list({ prefix: ["k"] }, { limit: 100 })) entries++;
      if (entries !== 100) throw new Error(`Listed ${entries} entries, expected 100`);
    }
  },
  E5: (kv) => (from, count) => setRows(kv, from, count),
};

/** Preloads `kv` if the workload needs it, then measures the workload on it. */
export async function measureKv(kv, spec) {
  if (needsPreload(spec.workload)) await setRows(kv, 0, PRELOAD_KEYS);
  return measure(kvWorkloads[spec.workload](kv), spec);
}
