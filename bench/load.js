/**
 * One load of the server benchmark, with autocannon in its own process: a warm-up, then the
 * timed run, on `connections` keep-alive connections to `url`. Run by bench/server-bench.js as
 * `node bench/load.js '{"url":"http://127.0.0.1:…","route":"get","connections":64,…}'`; prints
 * `{ requests, seconds, p99Ms }` as one JSON line, or fails if any request did not get a 2xx.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { PRELOAD_KEYS, VALUE } from "./workloads.js";

const CLIENT = fileURLToPath(new URL("load-client.cjs", import.meta.url));
/** Distinct prebuilt requests per load, shared out among its connections. */
const PREBUILT = 4096;
const KEYS_PER_BATCH = 10;

function options(spec, seconds) {
  const workers = spec.workers > 1 ? spec.workers : undefined;
  return {
    url: spec.url,
    connections: spec.connections,
    duration: seconds,
    workers,
    headers: { authorization: `Bearer ${spec.token}` },
    // Workers `require` the file; without them, autocannon wants the function itself.
    setupClient: workers ? CLIENT : createRequire(import.meta.url)(CLIENT),
    initialContext: {
      route: spec.route,
      keys: PRELOAD_KEYS,
      batch: KEYS_PER_BATCH,
      value: VALUE,
      requestsPerClient: Math.ceil(PREBUILT / spec.connections),
    },
  };
}

function failures(result) {
  const { errors, timeouts, non2xx, statusCodeStats } = result;
  if (errors + timeouts + non2xx === 0) return undefined;
  return `${errors} errors, ${timeouts} timeouts, ${non2xx} non-2xx (${JSON.stringify(statusCodeStats)})`;
}

/** Runs autocannon for `seconds`; throws unless every request got a 2xx. */
async function load(spec, seconds, phase) {
  const result = await autocannon(options(spec, seconds));
  const failed = failures(result);
  if (failed) throw new Error(`${spec.route} ${phase} on ${spec.url}: ${failed}`);
  return result;
}

const spec = JSON.parse(process.argv[2]);
await load(spec, spec.warmup, "warm-up");
const result = await load(spec, spec.seconds, "run");
console.log(
  JSON.stringify({
    requests: result.requests.total,
    seconds: result.duration,
    p99Ms: result.latency.p99,
  }),
);
