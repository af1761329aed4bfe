/**
 * One benchmark cell on Deno KV embedded, run by bench/run.js as
 * `deno run --unstable-kv -A bench/deno-kv.ts '{"workload":"E1","dir":"/tmp/…",…}'`.
 * Prints the measurement as one JSON line.
 */
// @ts-types="./workloads.d.ts"
import { type CellSpec, type KvLike, measureKv } from "./workloads.js";

// Declared here rather than from Deno's types so that the Node type check (tsconfig.json) passes.
declare const Deno: {
  readonly args: string[];
  openKv(path: string): Promise<KvLike & { close(): void }>;
};

const spec = JSON.parse(Deno.args[0]!) as CellSpec & { dir: string };
const kv = await Deno.openKv(`${spec.dir}/deno.db`);
const result = await measureKv(kv, spec);
kv.close();
console.log(JSON.stringify(result));
