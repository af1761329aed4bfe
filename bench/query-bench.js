/**
 * Query workloads on embedded Cairn (run from bench/run.js, or alone after `npm run build`:
 * `node bench/query-bench.js [runs] [scale]`, printing JSON):
 *
 *   Q1  filtered list: the 1% of 100k entries that match a where filter, evaluated in SQLite,
 *       against listing all 100k and filtering in JavaScript (what a caller does without filters)
 *   Q2  count of 100k entries, plain and filtered, against listing them and counting in JavaScript
 *   Q3  full-text search over 50k documents (SQLite, and PostgreSQL when BENCH_POSTGRES or the
 *       local one is reachable): building the index over stored documents, a rare word (1%), two
 *       common words (4% match both: every match is ranked), a rare word with a where filter,
 *       and a 1000-document commit under the index
 *
 * Every run uses a fresh database in a temporary directory; the median of the runs is reported.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { PostgresBackend } from "../dist/backends/postgres/postgres-backend.js";
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

export const SEARCH_DOCUMENTS = 50_000;
const VOCABULARY = Array.from({ length: 500 }, (_, i) => `w${i}`);

/** Document `i`: 12 words from the vocabulary, "alpha" and "beta" in a fifth of them each, "zephyr" in 1%. */
function searchDocument(i) {
  let x = (i * 2654435761) >>> 0;
  const words = [];
  for (let w = 0; w < 12; w++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    words.push(VOCABULARY[x % VOCABULARY.length]);
  }
  if (i % 5 === 0) words.push("alpha");
  if (i % 5 === 1 || i % 25 === 0) words.push("beta");
  if (i % 100 === 7) words.push("zephyr");
  return { i, title: `Document ${i}`, body: words.join(" "), group: i % 2 === 0 ? "even" : "odd" };
}

async function writeDocuments(kv, from, to) {
  for (let start = from; start < to; start += 1000) {
    const op = kv.atomic();
    for (let i = start; i < Math.min(to, start + 1000); i++) op.set(["docs", i], searchDocument(i));
    await op.commit();
  }
}

async function measureSearchOnce(kv, documents) {
  await writeDocuments(kv, 0, documents);
  let start = performance.now();
  await kv.createIndex(["docs"], { fields: ["title", "body"] });
  const buildIndex = (performance.now() - start) / 1000;
  const expect = (n, want, what) => {
    if (n !== want) throw new Error(`${what} found ${n}, expected ${want}`);
  };
  const rare = Math.min(100, Math.ceil((documents - 7) / 100));
  const searches = {
    searchRare: async () => expect((await kv.search(["docs"], "zephyr")).length, rare, "Q3 rare"),
    searchCommonPair: async () =>
      expect((await kv.search(["docs"], "alpha beta")).length, 100, "Q3 common"),
    searchWhere: async () =>
      expect(
        (await kv.search(["docs"], "zephyr", { where: { group: "odd" } })).length,
        Math.min(100, Math.ceil((documents - 7) / 100)),
        "Q3 where",
      ),
  };
  const result = { buildIndex };
  for (const [name, work] of Object.entries(searches)) result[name] = await timePerCall(work);
  start = performance.now();
  await writeDocuments(kv, documents, documents + 1000);
  result.indexedCommit = (performance.now() - start) / 1000;
  return result;
}

async function measureSearchSqlite(documents) {
  return inTempDir("search", async (dir) => {
    const kv = await openKv(join(dir, "s.db"), { durability: "relaxed" });
    try {
      return await measureSearchOnce(kv, documents);
    } finally {
      await kv.close();
    }
  });
}

/** On a fresh schema, dropped after; `undefined` when PostgreSQL is unreachable. */
async function measureSearchPostgres(documents) {
  const base = process.env.BENCH_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";
  const url = `${base}${base.includes("?") ? "&" : "?"}schema=bench_${randomUUID().replaceAll("-", "")}`;
  const kv = await openKv(url);
  try {
    return await measureSearchOnce(kv, documents);
  } catch (e) {
    if (e?.code === "UNAVAILABLE") return undefined;
    throw e;
  } finally {
    await kv.close();
    const backend = new PostgresBackend(url, { maxConnections: 1 });
    await backend.dropSchema().catch(() => {});
    await backend.close();
  }
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
  const documents = Math.max(1000, Math.round(SEARCH_DOCUMENTS * scale));
  result.search = { documents };
  for (const [backend, measure] of [
    ["sqlite", measureSearchSqlite],
    ["postgres", measureSearchPostgres],
  ]) {
    const runsOf = [];
    for (let run = 0; run < runs; run++) {
      const sample = await measure(documents);
      if (sample === undefined) break;
      runsOf.push(sample);
      console.error(`[search ${backend} run ${run + 1}/${runs}] ${JSON.stringify(sample)}`);
    }
    if (runsOf.length === 0) continue;
    result.search[backend] = {};
    for (const name of Object.keys(runsOf[0])) {
      result.search[backend][name] = median(runsOf.map((s) => s[name]));
    }
  }
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
    ...renderSearchReport(q.search),
  ].join("\n");
}

function renderSearchReport(search) {
  if (!search) return [];
  const backends = ["sqlite", "postgres"].filter((b) => search[b]);
  const names = { sqlite: "SQLite (FTS5)", postgres: "PostgreSQL (tsvector, GIN)" };
  const row = (title, name) =>
    `| ${title} | ${backends.map((b) => ms(search[b][name])).join(" | ")} |`;
  return [
    `Q3 full-text search: ${search.documents.toLocaleString("en")} documents of 12–14 words (\`fields: ["title", "body"]\`, unicode61), median time:`,
    "",
    `| workload | ${backends.map((b) => names[b]).join(" | ")} |`,
    `| --- |${backends.map(() => " ---: |").join("")}`,
    row("build the index over the stored documents", "buildIndex"),
    row("`zephyr` (1% match, best 100)", "searchRare"),
    row("`alpha beta` (4% match both, all ranked, best 100)", "searchCommonPair"),
    row('`zephyr` with `where: { group: "odd" }`', "searchWhere"),
    row("one commit of 1000 documents under the index", "indexedCommit"),
    "",
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await measureQueries(Number(process.argv[2] ?? 1), Number(process.argv[3] ?? 1));
  process.stdout.write(`${JSON.stringify(result)}\n${renderQueryReport(result)}`);
}
