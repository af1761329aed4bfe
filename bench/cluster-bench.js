/**
 * The PostgreSQL benchmark (issue #7): `cairn serve` on SQLite beside `cairn serve` on
 * PostgreSQL, and one beside two server processes over one PostgreSQL database, on the server
 * benchmark's routes (point GET, durable PUT, 10-key batch GET) at 64 connections in all. With
 * two nodes the load is split evenly: one load-generator process per node (bench/load.js), run at
 * the same time.
 *
 *   C1 SQLite vs PostgreSQL, one node    C2 one vs two nodes over one PostgreSQL
 *   BENCH_POSTGRES=postgres://…          the PostgreSQL to use (default the local one, trust auth)
 */
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { PostgresBackend } from "../dist/backends/postgres/postgres-backend.js";
import { openKv } from "../dist/index.js";
import { here, inTempDir, median, runLoad } from "./harness.js";
import { generator } from "./load-generator.js";
import { human, milliseconds } from "./report.js";
import { startServer } from "./server-process.js";
import { PRELOAD_KEYS, setRows } from "./workloads.js";

export const CLUSTER_WORKLOADS = ["C1", "C2"];
const ROUTES = ["get", "put", "batch"];
const CONNECTIONS = 64;
const SECONDS = 5;
const WARMUP_SECONDS = 1;

const postgresBase = () => process.env.BENCH_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";

async function preload(data) {
  const kv = await openKv(data);
  try {
    await setRows(kv, 0, PRELOAD_KEYS);
  } finally {
    await kv.close();
  }
}

/** Runs `work(data)` on a fresh, preloaded database of `kind`, removed afterwards. */
async function onDatabase(kind, work) {
  if (kind === "sqlite") {
    return inTempDir("cluster", async (dir) => {
      const data = join(dir, "cairn.db");
      await preload(data);
      return work(data);
    });
  }
  const schema = `bench_${randomUUID().replaceAll("-", "")}`;
  const base = postgresBase();
  const data = `${base}${base.includes("?") ? "&" : "?"}schema=${schema}`;
  try {
    await preload(data);
    return await work(data);
  } finally {
    const backend = new PostgresBackend(data, { maxConnections: 1 });
    await backend.dropSchema();
    await backend.close();
  }
}

const generatorName = () => {
  const { name, version } = generator();
  return `${name} ${version}`;
};

/** Loads every node at once, `connections` split among them: total requests/s, worst p99. */
async function loadNodes(urls, token, route, scale) {
  const seconds = Math.max(1, SECONDS * scale);
  const results = await Promise.all(
    urls.map((url) =>
      runLoad({
        url,
        token,
        route,
        connections: CONNECTIONS / urls.length,
        seconds,
        warmup: WARMUP_SECONDS,
      }),
    ),
  );
  return {
    rate: results.reduce((sum, r) => sum + r.requests / r.seconds, 0),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
  };
}

/** `nodes` servers over one database of `kind`, loaded on every route. */
function measureSetup(kind, nodes, scale) {
  const token = randomBytes(16).toString("base64url");
  return onDatabase(kind, async (data) => {
    const cli = [here("../bin/cairn.js"), "serve", "--host", "127.0.0.1", "--port", "0"];
    const servers = [];
    try {
      for (let i = 0; i < nodes; i++) {
        const args = [...cli, "--data", data, "--token", token];
        servers.push(await startServer([process.execPath, args], `cairn ${kind} node ${i + 1}`));
      }
      const results = {};
      for (const route of ROUTES) {
        results[route] = await loadNodes(
          servers.map((s) => s.url),
          token,
          route,
          scale,
        );
      }
      return results;
    } finally {
      for (const server of servers) await server.stop();
    }
  });
}

const SETUPS = {
  C1: [
    ["sqlite", 1],
    ["postgres", 1],
  ],
  C2: [
    ["postgres", 1],
    ["postgres", 2],
  ],
};

/** Medians over `config.runs` of each selected workload's setups. */
export async function measureCluster(config) {
  const setups = [
    ...new Set(config.clusterWorkloads.flatMap((w) => SETUPS[w].map((s) => s.join(":")))),
  ];
  const samples = {};
  for (let run = 0; run < config.runs; run++) {
    for (const setup of setups) {
      const [kind, nodes] = setup.split(":");
      const results = await measureSetup(kind, Number(nodes), config.scale);
      for (const [route, r] of Object.entries(results)) {
        samples[setup] ??= {};
        samples[setup][route] ??= [];
        samples[setup][route].push(r);
        console.error(
          `[cluster run ${run + 1}/${config.runs}] ${kind} × ${nodes} ${route} ${human(r.rate)}/s p99 ${milliseconds(r.p99Ms)} ms`,
        );
      }
    }
  }
  const medians = {};
  for (const [setup, byRoute] of Object.entries(samples)) {
    medians[setup] = {};
    for (const [route, list] of Object.entries(byRoute)) {
      medians[setup][route] = {
        rate: median(list.map((r) => r.rate)),
        p99Ms: median(list.map((r) => r.p99Ms)),
      };
    }
  }
  return {
    medians,
    workloads: config.clusterWorkloads,
    seconds: Math.max(1, SECONDS * config.scale),
  };
}

export function renderClusterReport({ medians, workloads, seconds }) {
  const cell = (setup, route) => {
    const m = medians[setup]?.[route];
    return m ? `${human(m.rate)}/s · p99 ${milliseconds(m.p99Ms)} ms` : "—";
  };
  const ratio = (a, b, route) => {
    const x = medians[a]?.[route]?.rate;
    const y = medians[b]?.[route]?.rate;
    return x && y ? `${(x / y).toFixed(2)}×` : "—";
  };
  const titles = { get: "point GET", put: "durable PUT", batch: "10-key batch GET" };
  const lines = ["", "### PostgreSQL and several nodes", ""];
  lines.push(
    "| route | SQLite, 1 node | PostgreSQL, 1 node | PostgreSQL, 2 nodes | PostgreSQL / SQLite | 2 nodes / 1 node |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const route of ROUTES) {
    lines.push(
      `| ${titles[route]} | ${cell("sqlite:1", route)} | ${cell("postgres:1", route)} | ${cell("postgres:2", route)} | ${ratio("postgres:1", "sqlite:1", route)} | ${ratio("postgres:2", "postgres:1", route)} |`,
    );
  }
  lines.push(
    "",
    `Workloads ${workloads.join(", ")}; ${CONNECTIONS} keep-alive connections in all (split evenly between nodes, one ${generatorName()} process per node), ${seconds} s per load after ${WARMUP_SECONDS} s of warm-up, ${PRELOAD_KEYS / 1000}k preloaded keys; every server and PostgreSQL on the same machine.`,
  );
  return `${lines.join("\n")}\n`;
}
