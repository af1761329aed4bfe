/**
 * Query workloads on embedded Cairn (run from bench/run.js, or alone after `npm run build`:
 * `node bench/query-bench.js [runs] [scale]`, printing JSON):
 *
 *   Q1  filtered list: the 1% of 100k entries that match a where filter, evaluated in SQLite,
 *       against listing all 100k and filtering in JavaScript (what a caller does without filters)
 *   Q2  count of 100k entries, plain and filtered, against listing them and counting in JavaScript
 *
 * Every run uses a fresh database in a temporary directory; the median of the runs is reported.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openKv } from "../dist/index.js";
import { inTempDir, median } from "./harness.js";

export const QUERY_ENTRIES = 100_000;
/** One entry in this many matches Q1's filter. */
const MATCH_EVERY = 100;
const WHERE = { group: "hit" };

/** Seconds for `work()`, repeated until at least `minSeconds` have passed; the time per call. */
async function timePerCall(work, minSeconds = 1) {
  await work(); // warm-up
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    await work();
    calls++;
    elapsed = (performance.now() - start) / 1000;
  } while (elapsed < minSeconds);
  return elapsed / calls;
}

async function measureOnce(entries) {
  return inTempDir("query", async (dir) => {
    const kv = await openKv(join(dir, "q.db"), { durability: "relaxed" });
    try {
      for (let from = 0; from < entries; from += 1000) {
        const op = kv.atomic();
        for (let i = from; i < Math.min(entries, from + 1000); i++) {
          op.set(["q", i], {
            i,
            group: i % MATCH_EVERY === 0 ? "hit" : "miss",
            pad: "x".repeat(60),
          });
        }
        await op.commit();
      }
      const matches = Math.ceil(entries / MATCH_EVERY);
      const inDatabase = async () => {
        let n = 0;
        for await (const _ of kv.list(["q"], { where: WHERE, batchSize: 1000 })) n++;
        if (n !== matches) throw new Error(`Q1 found ${n} of ${matches}`);
      };
      const inJavaScript = async () => {
        let n = 0;
        for await (const e of kv.list(["q"], { batchSize: 1000 })) if (e.value.group === "hit") n++;
        if (n !== matches) throw new Error(`Q1 (JS) found ${n} of ${matches}`);
      };
      const count = async () => {
        if ((await kv.count(["q"])) !== entries) throw new Error("Q2 count is wrong");
      };
      const countFiltered = async () => {
        if ((await kv.count(["q"], { where: WHERE })) !== matches) throw new Error("Q2 filtered");
      };
      const countInJavaScript = async () => {
        let n = 0;
        for await (const _ of kv.list(["q"], { batchSize: 1000 })) n++;
        if (n !== entries) throw new Error("Q2 (JS) count is wrong");
      };
      return {
        filteredList: await timePerCall(inDatabase),
        listFilteredInJs: await timePerCall(inJavaScript),
        count: await timePerCall(count),
        countFiltered: await timePerCall(countFiltered),
        countInJs: await timePerCall(countInJavaScript),
      };
    } finally {
      await kv.close();
    }
  });
}

/** Median seconds per query of each measurement over `runs` fresh databases. */
export async function measureQueries(runs, scale = 1) {
  const entries = Math.max(MATCH_EVERY * 10, Math.round(QUERY_ENTRIES * scale));
  const samples = [];
  for (let run = 0; run < runs; run++) {
    samples.push(await measureOnce(entries));
    console.error(`[query run ${run + 1}/${runs}] ${JSON.stringify(samples.at(-1))}`);
  }
  const result = { entries, matches: Math.ceil(entries / MATCH_EVERY) };
  for (const name of Object.keys(samples[0])) result[name] = median(samples.map((s) => s[name]));
  return result;
}

const ms = (seconds) => `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;

/** The Markdown section for the README and bench/results/latest.md. */
export function renderQueryReport(q) {
  const ratio = (a, b) => `${(a / b).toFixed(1)}×`;
  const filterRatio = q.listFilteredInJs / q.filteredList;
  return [
    "",
    "### Queries",
    "",
    `Embedded Cairn, ${q.entries.toLocaleString("en")} entries of ~100 bytes of JSON under one prefix, ${q.matches.toLocaleString("en")} (1%) matching \`where: { group: "hit" }\`; median time per query:`,
    "",
    "| workload | in the database | in JavaScript (list everything, test each value) | speed-up | target |",
    "| --- | ---: | ---: | ---: | --- |",
    `| Q1 filtered list (1% match) | ${ms(q.filteredList)} | ${ms(q.listFilteredInJs)} | ${ratio(q.listFilteredInJs, q.filteredList)} | ≥ 10× ${filterRatio >= 10 ? "✓" : "✗"} |`,
    `| Q2 count | ${ms(q.count)} | ${ms(q.countInJs)} | ${ratio(q.countInJs, q.count)} | info |`,
    `| Q2 count with the filter | ${ms(q.countFiltered)} | ${ms(q.listFilteredInJs)} | ${ratio(q.listFilteredInJs, q.countFiltered)} | info |`,
    "",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await measureQueries(Number(process.argv[2] ?? 1), Number(process.argv[3] ?? 1));
  process.stdout.write(`${JSON.stringify(result)}\n${renderQueryReport(result)}`);
}
