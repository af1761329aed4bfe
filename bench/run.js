/**
 * Cairn's benchmark: Deno KV embedded, raw better-sqlite3 (the ceiling) and Cairn on the same
 * workloads, at the same durability; then the same comparison between servers over HTTP
 * (bench/server-bench.js). `npm run bench` builds Cairn first; then `node bench/run.js`.
 *
 *   BENCH_RUNS=3            full repetitions; the median of each cell is reported
 *   BENCH_SCALE=1           multiplies the work per cell
 *   BENCH_ONLY=E1,E4,MEM,S1 workloads to run (E1–E5 embedded, MEM for the memory check, S1–S3
 *                           on servers: see bench/server-bench.js; R1–R2 watch fan-out and
 *                           queues: see bench/realtime-bench.js; Q for where filters,
 *                           count and full-text search: see bench/query-bench.js; K1–K3 through Deno's client over
 *                           KV Connect: see bench/kv-connect-bench.js; C1–C2 on PostgreSQL and
 *                           several nodes: see bench/cluster-bench.js); default all
 *   BENCH_SYSTEMS=cairn,raw,deno,bare,deno-connect   systems to run; default all (bare: servers
 *                           only; deno-connect: KV Connect only)
 *
 * Every embedded cell (one workload on one system) runs in a fresh child process on a fresh
 * database in a temporary directory, removed afterwards. Prints a Markdown report, also written
 * to bench/results/latest.md, and a progress line per cell on stderr.
 */
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { CLUSTER_WORKLOADS, measureCluster, renderClusterReport } from "./cluster-bench.js";
import { DENO, here, inTempDir, median, rotated, runJson } from "./harness.js";
import { KV_CONNECT_SYSTEMS, KV_CONNECT_WORKLOADS, measureKvConnect } from "./kv-connect-bench.js";
import { renderKvConnectReport } from "./kv-connect-report.js";
import { measureQueries, renderQueryReport } from "./query-bench.js";
import { measureRealtime, REALTIME_WORKLOADS, renderRealtimeReport } from "./realtime-bench.js";
import { human, RELAXED_WORKLOADS, ROWS, renderReport } from "./report.js";
import { measureServers, SERVER_SYSTEMS, SERVER_WORKLOADS } from "./server-bench.js";
import { renderServerReport } from "./server-report.js";
import { BATCH, VALUE } from "./workloads.js";

const RESULTS = here("results/latest.md");

const WORKLOADS = ROWS.map((row) => row.workload);
const EMBEDDED_SYSTEMS = ["deno", "raw", "cairn", "cairn-pg"];

/** Units of work per cell at BENCH_SCALE=1, sized for 1–3 s each on a 2-core VM. */
const COUNTS = {
  E1: { deno: 5_000, raw: 5_000, cairn: 5_000, "cairn-relaxed": 25_000, "cairn-pg": 2_000 },
  E2: { deno: 40_000, raw: 400_000, cairn: 200_000, "cairn-pg": 20_000 },
  E3: { deno: 4_000, raw: 8_000, cairn: 5_000, "cairn-relaxed": 25_000, "cairn-pg": 2_000 },
  E4: { deno: 4_000, raw: 6_000, cairn: 4_000, "cairn-pg": 2_000 },
  E5: { deno: 300_000, raw: 600_000, cairn: 300_000, "cairn-pg": 100_000 },
};
/** Untimed units run first in every cell. */
const WARMUPS = { E1: 200, E2: 10_000, E3: 200, E4: 500, E5: 5 * BATCH };
const MEMORY_KEYS = 1_000_000;

const execFileAsync = promisify(execFile);

function listFromEnv(name, allowed) {
  const value = process.env[name];
  if (!value) return allowed;
  const items = value.split(",").map((item) => item.trim());
  const unknown = items.filter((item) => !allowed.includes(item));
  if (unknown.length > 0) {
    throw new Error(`${name}: unknown ${unknown.join(", ")} (expected ${allowed.join(", ")})`);
  }
  return allowed.filter((item) => items.includes(item));
}

function numberFromEnv(name, fallback, valid) {
  const value = Number(process.env[name] ?? fallback);
  if (!valid(value)) throw new Error(`${name}: invalid value ${process.env[name]}`);
  return value;
}

function readConfig() {
  const only = listFromEnv("BENCH_ONLY", [
    ...WORKLOADS,
    "MEM",
    "Q",
    ...SERVER_WORKLOADS,
    ...REALTIME_WORKLOADS,
    ...KV_CONNECT_WORKLOADS,
    ...CLUSTER_WORKLOADS,
  ]);
  return {
    runs: numberFromEnv("BENCH_RUNS", 3, (n) => Number.isInteger(n) && n >= 1),
    scale: numberFromEnv("BENCH_SCALE", 1, (n) => n > 0),
    workloads: only.filter((item) => WORKLOADS.includes(item)),
    memory: only.includes("MEM"),
    queries: only.includes("Q"),
    serverWorkloads: only.filter((item) => SERVER_WORKLOADS.includes(item)),
    realtimeWorkloads: only.filter((item) => REALTIME_WORKLOADS.includes(item)),
    kvConnectWorkloads: only.filter((item) => KV_CONNECT_WORKLOADS.includes(item)),
    clusterWorkloads: only.filter((item) => CLUSTER_WORKLOADS.includes(item)),
    systems: listFromEnv("BENCH_SYSTEMS", [
      ...new Set([...EMBEDDED_SYSTEMS, ...SERVER_SYSTEMS, ...KV_CONNECT_SYSTEMS]),
    ]),
  };
}

/** The units a cell times: E5 in whole commits of BATCH rows. */
function countOf(workload, system, scale) {
  const count = COUNTS[workload][system] * scale;
  return workload === "E5"
    ? Math.max(BATCH, Math.round(count / BATCH) * BATCH)
    : Math.max(1, Math.round(count));
}

/** The systems a workload runs on: the selected ones, plus Cairn relaxed where it applies. */
function systemsOf(config, workload) {
  const systems = config.systems.filter((system) => EMBEDDED_SYSTEMS.includes(system));
  const withRelaxed = systems.includes("cairn") && RELAXED_WORKLOADS.includes(workload);
  return withRelaxed ? [...systems, "cairn-relaxed"] : systems;
}

/** The cells of one run: per workload every system, rotated by run so no system always goes first. */
function cellsOfRun(config, run) {
  return config.workloads.flatMap((workload) =>
    rotated(systemsOf(config, workload), run).map((system) => ({ workload, system })),
  );
}

/** Measures one cell in its own process: `{ count, seconds }`. */
function measureCell({ workload, system }, scale) {
  const warmup = WARMUPS[workload];
  const count = countOf(workload, system, scale);
  return inTempDir(system, (dir) => {
    const spec = JSON.stringify({ system, workload, dir, warmup, count });
    return system === "deno"
      ? runJson(DENO, ["run", "--unstable-kv", "-A", here("deno-kv.ts"), spec])
      : runJson(process.execPath, [here("cell.js"), spec]);
  });
}

/** Runs the memory check in its own process: RSS samples as Cairn's database grows. */
async function measureMemory(scale) {
  const keys = Math.max(4 * BATCH, Math.round(MEMORY_KEYS * scale));
  const samples = await inTempDir("memory", (dir) =>
    runJson(process.execPath, ["--expose-gc", here("memory.js"), dir, String(keys)]),
  );
  console.error(`[memory] ${human(keys)} keys ${Math.round(samples.at(-1).rssMb)} MB`);
  return samples;
}

/** Every run's cells; returns the median rate per workload and system. */
async function measureAll(config) {
  const rates = {};
  for (let run = 0; run < config.runs; run++) {
    for (const cell of cellsOfRun(config, run)) {
      const { count, seconds } = await measureCell(cell, config.scale);
      rates[cell.workload] ??= {};
      rates[cell.workload][cell.system] ??= [];
      rates[cell.workload][cell.system].push(count / seconds);
      console.error(
        `[run ${run + 1}/${config.runs}] ${cell.workload} ${cell.system} ` +
          `${human(count / seconds)}/s (${seconds.toFixed(1)} s)`,
      );
    }
  }
  const medians = {};
  for (const [workload, bySystem] of Object.entries(rates)) {
    medians[workload] = Object.fromEntries(
      Object.entries(bySystem).map(([system, values]) => [system, median(values)]),
    );
  }
  return medians;
}

async function denoVersion() {
  const { stdout } = await execFileAsync(DENO, ["--version"]);
  return stdout.split(" ")[1];
}

function sqliteVersion() {
  const db = new Database(":memory:");
  try {
    return db.prepare("SELECT sqlite_version()").pluck().get();
  } finally {
    db.close();
  }
}

async function describeConditions(config) {
  const work = config.workloads.map((workload) => {
    const counts = systemsOf(config, workload)
      .map((system) => `${system} ${human(countOf(workload, system, config.scale))}`)
      .join(", ");
    return `${workload} ${counts}`;
  });
  return {
    date: new Date().toISOString(),
    node: process.version,
    deno: await denoVersion(),
    sqlite: sqliteVersion(),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    runs: config.runs,
    scale: config.scale,
    valueBytes: JSON.stringify(VALUE).length,
    work: work.join("; "),
  };
}

async function main() {
  const config = readConfig();
  const medians = await measureAll(config);
  const memory = config.memory ? await measureMemory(config.scale) : undefined;
  const server = config.serverWorkloads.length > 0 ? await measureServers(config) : undefined;
  const realtime = config.realtimeWorkloads.length > 0 ? await measureRealtime(config) : undefined;
  const queries = config.queries ? await measureQueries(config.runs, config.scale) : undefined;
  const kvConnect =
    config.kvConnectWorkloads.length > 0 ? await measureKvConnect(config) : undefined;
  const cluster = config.clusterWorkloads.length > 0 ? await measureCluster(config) : undefined;
  const report =
    renderReport({ medians, memory, conditions: await describeConditions(config) }) +
    (server ? renderServerReport(server) : "") +
    (realtime ? renderRealtimeReport(realtime) : "") +
    (queries ? renderQueryReport(queries) : "") +
    (kvConnect ? renderKvConnectReport(kvConnect) : "") +
    (cluster ? renderClusterReport(cluster) : "");
  await mkdir(here("results"), { recursive: true });
  await writeFile(RESULTS, report);
  process.stdout.write(report);
}

await main();
