/**
 * One benchmark cell on Cairn or raw better-sqlite3, run by bench/run.js as
 * `node bench/cell.js '{"system":"cairn","workload":"E1","dir":"/tmp/…",…}'`.
 * Prints the measurement as one JSON line.
 */
import { join } from "node:path";
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

const cells = {
  cairn: (spec) => measureCairn(spec, "full"),
  "cairn-relaxed": (spec) => measureCairn(spec, "relaxed"),
  raw: (spec) => measureRaw(join(spec.dir, "raw.db"), spec),
};

const spec = JSON.parse(process.argv[2]);
console.log(JSON.stringify(await cells[spec.system](spec)));
