/**
 * Cairn's memory as its database grows: writes `keys` keys (commits of BATCH sets, relaxed
 * durability to save time) and samples RSS and JS heap after a forced GC at 0 keys and at every
 * quarter.
 * Run by bench/run.js as `node --expose-gc bench/memory.js <dir> <keys>`; prints one JSON line.
 */
import { join } from "node:path";
import { openKv } from "../dist/index.js";
import { setRows } from "./workloads.js";

/** RSS and JS heap in MB, after a forced GC. */
function sample(keys) {
  globalThis.gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { keys, rssMb: rss / 2 ** 20, heapMb: heapUsed / 2 ** 20 };
}

const [dir, total] = [process.argv[2], Number(process.argv[3])];
const kv = await openKv(join(dir, "cairn.db"), { durability: "relaxed" });
const samples = [sample(0)];
for (let quarter = 1; quarter <= 4; quarter++) {
  const from = samples.at(-1).keys;
  const to = Math.round((total * quarter) / 4);
  await setRows(kv, from, to - from);
  samples.push(sample(to));
}
await kv.close();
console.log(JSON.stringify(samples));
