/**
 * One benchmark cell on Cairn or raw better-sqlite3, run by bench/run.js as
 * `node bench/cell.js '{"system":"cairn","workload":"E1","dir":"/tmp/…",…}'`.
 * Prints the measurement as one JSON line.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { PostgresBackend } from "../dist/backends/postgres/postgres-backend.js";
import { openKv } from "../dist/index.js";
import { measureRaw } from "./raw-sqlite.js";
import { measureKv } from "./workloads.js";

async function measureCairn(spec, durability) {
  const kv = await openKv(join(spec.dir, "cairn.db"), { durability });
  try {
    return await measureKv(kv, spec);
  } finally {
    await kv.close();
  }
}

/** Cairn on a fresh schema of BENCH_POSTGRES (default: the local PostgreSQL, trust auth), dropped after. */
async function measureCairnPostgres(spec) {
  const base = process.env.BENCH_POSTGRES ?? "postgres://postgres@127.0.0.1:5432/test";
  const url = `${base}${base.includes("?") ? "&" : "?"}schema=bench_${randomUUID().replaceAll("-", "")}`;
  const kv = await openKv(url);
  try {
    return await measureKv(kv, spec);
  } finally {
    await kv.close();
    const backend = new PostgresBackend(url, { maxConnections: 1 });
    await backend.dropSchema();
    await backend.close();
  }
}

const cells = {
  cairn: (spec) => measureCairn(spec, "full"),
  "cairn-relaxed": (spec) => measureCairn(spec, "relaxed"),
  "cairn-pg": measureCairnPostgres,
  raw: (spec) => measureRaw(join(spec.dir, "raw.db"), spec),
};

const spec = JSON.parse(process.argv[2]);
console.log(JSON.stringify(await cells[spec.system](spec)));
