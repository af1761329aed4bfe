/**
 * One session of the KV Connect benchmark on Deno's own client, run by bench/kv-connect-bench.js
 * as `deno run --unstable-kv -A bench/kv-connect-deno.ts '<spec>'`: with `spec.url`, Deno.openKv
 * on a Cairn server over KV Connect (token from DENO_KV_ACCESS_TOKEN); with `spec.dir`, Deno KV
 * embedded on a file there, preloaded first. Prints the results as one JSON line.
 */
// @ts-types="./callers.d.ts"
import { type CallersKv, type CallersSpec, measureCallers, preload } from "./callers.js";

// Declared here rather than from Deno's types so that the Node type check (tsconfig.json) passes.
declare const Deno: {
  readonly args: string[];
  openKv(path: string): Promise<CallersKv & { close(): void }>;
};

const spec = JSON.parse(Deno.args[0]!) as CallersSpec & { url?: string; dir?: string };
const kv = await Deno.openKv(spec.url ?? `${spec.dir}/deno.db`);
if (spec.url === undefined) await preload(kv);
const results = await measureCallers(kv, spec);
kv.close();
console.log(JSON.stringify(results));
