/**
 * One session of the KV Connect benchmark on Cairn's SDK against a Cairn server
 * (`openKv("http://…")`, Cairn's JSON database protocol), run by bench/kv-connect-bench.js as
 * `node bench/kv-connect-node.js '<spec>'`. Prints the results as one JSON line.
 */
import { openKv } from "../dist/index.js";
import { measureCallers } from "./callers.js";

const spec = JSON.parse(process.argv[2]);
const kv = await openKv(spec.url, { accessToken: spec.token });
const results = await measureCallers(kv, spec);
await kv.close();
console.log(JSON.stringify(results));
