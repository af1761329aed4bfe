/**
 * The KV Connect benchmark's workloads (bench/kv-connect-bench.js), written once against the
 * Deno KV API so that Deno's client, remote and embedded (bench/kv-connect-deno.ts), and Cairn's
 * SDK (bench/kv-connect-node.js) run the very same code: `callers` concurrent loops on one
 * database handle, each awaiting one operation at a time, for a fixed time, timing every
 * operation.
 *
 *   K1 point get · K2 durable point set · K3 10-key getMany, on random keys ["k", i] of the
 *   PRELOAD_KEYS preloaded ones
 */
import { PRELOAD_KEYS, randomKeys, rewrittenValue, setRows, VALUE } from "./workloads.js";

export const KEYS_PER_GET_MANY = 10;

const operations = {
  K1: (kv) => async (next) => {
    const entry = await kv.get(["k", next()]);
    if (entry.value?.v !== VALUE.v) throw new Error("A preloaded key is missing");
  },
  K2: (kv) => async (next, n) => {
    const result = await kv.set(["k", next()], rewrittenValue(n));
    if (!result.ok) throw new Error("A set failed");
  },
  K3: (kv) => async (next) => {
    const keys = Array.from({ length: KEYS_PER_GET_MANY }, () => ["k", next()]);
    const entries = await kv.getMany(keys);
    if (!entries.every((entry) => entry.value?.v?.length === VALUE.v.length))
      throw new Error("A preloaded key is missing");
  },
};

function percentile(values, p) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

/** `callers` loops for `seconds`: `{ ops, seconds, p99Ms }`. */
async function run(kv, workload, callers, seconds) {
  const operation = operations[workload](kv);
  const latencies = [];
  let n = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      const next = randomKeys(0x9e3779b9 + caller * 7919);
      while (performance.now() < deadline) {
        const before = performance.now();
        await operation(next, n++);
        latencies.push(performance.now() - before);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { ops: latencies.length, seconds: elapsed, p99Ms: percentile(latencies, 0.99) };
}

/**
 * Measures `spec.workload` on `kv` at each of `spec.callers` after a warm-up of
 * `spec.warmupSeconds` at that count: `[{ callers, ops, seconds, p99Ms }]`.
 */
export async function measureCallers(kv, spec) {
  const results = [];
  for (const callers of spec.callers) {
    await run(kv, spec.workload, callers, spec.warmupSeconds);
    results.push({ callers, ...(await run(kv, spec.workload, callers, spec.seconds)) });
  }
  return results;
}

/** Writes the PRELOAD_KEYS keys every workload reads or rewrites. */
export const preload = (kv) => setRows(kv, 0, PRELOAD_KEYS);
