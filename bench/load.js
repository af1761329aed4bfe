/**
 * One load of the server benchmark, in its own process: a warm-up (unless `warmup` is 0), then
 * the timed run, on `connections` keep-alive connections to `url`, by wrk or autocannon
 * (bench/load-generator.js; the DynamoDB routes always by autocannon, their requests signed here
 * before the warm-up: a signature holds 15 minutes, and a load lasts seconds). Run by
 * bench/server-bench.js as `node bench/load.js '{"url":"http://127.0.0.1:…","route":"get",…}'`;
 * prints `{ requests, seconds, p99Ms }` as one JSON line, or fails if any request did not get a 2xx
 * within `timeout` seconds (if given; else the generator's own limit: wrk 2, autocannon 10).
 */
import { execFile } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import autocannon from "autocannon";
import { DYNAMO_REQUESTS, signedHeaders } from "./dynamodb.js";
import { autocannonGenerator, generator, PREBUILT } from "./load-generator.js";
import { HAPPY_VALUE, PRELOAD_KEYS, VALUE } from "./workloads.js";

const CLIENT = fileURLToPath(new URL("load-client.cjs", import.meta.url));
const WRK_SCRIPT = fileURLToPath(new URL("load.lua", import.meta.url));
const KEYS_PER_BATCH = 10;

/** Tells this load's new Happy keys from those of the loads before it on the same server. */
const loadId = () => randomBytes(6).toString("hex");

async function wrkLoad(spec, seconds) {
  const threads = generator().threads(spec.connections);
  const { stdout } = await promisify(execFile)(
    "wrk",
    [
      `-t${threads}`,
      `-c${spec.connections}`,
      `-d${seconds}s`,
      ...(spec.timeout ? [`--timeout=${spec.timeout}s`] : []),
      "-s",
      WRK_SCRIPT,
      spec.url,
    ],
    {
      env: {
        ...process.env,
        LOAD_ROUTE: spec.route,
        LOAD_TOKEN: spec.token,
        LOAD_KEYS: String(PRELOAD_KEYS),
        LOAD_BATCH: String(KEYS_PER_BATCH),
        LOAD_VALUE: JSON.stringify(VALUE),
        LOAD_HAPPY_VALUE: HAPPY_VALUE,
        LOAD_ID: loadId(),
      },
    },
  );
  const result = JSON.parse(stdout.trim().split("\n").at(-1));
  return { ...result, failures: result.failed > 0 ? result.failures : undefined };
}

/**
 * PREBUILT signed requests of the DynamoDB route `route` (each PutItem of its own value) to
 * `url`, as the JSON text of `[{ headers, body }]`, for load-client.cjs.
 */
function signedRequests({ url, token, route }) {
  const first = randomInt(1e8);
  const now = Date.now();
  const requests = Array.from({ length: PREBUILT }, (_, i) => {
    const { operation, body } = DYNAMO_REQUESTS[route](first + i);
    const text = JSON.stringify(body);
    return { headers: signedHeaders(url, token, operation, text, now), body: text };
  });
  return JSON.stringify(requests);
}

async function autocannonLoad(spec, seconds, signed) {
  const workers = autocannonGenerator().threads(spec.connections);
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: seconds,
    ...(spec.timeout && { timeout: spec.timeout }),
    workers: workers > 1 ? workers : undefined,
    headers: signed ? {} : { authorization: `Bearer ${spec.token}` },
    // Workers `require` the file; without them, autocannon wants the function itself.
    setupClient: workers > 1 ? CLIENT : createRequire(import.meta.url)(CLIENT),
    initialContext: {
      route: spec.route,
      keys: PRELOAD_KEYS,
      batch: KEYS_PER_BATCH,
      value: VALUE,
      happyValue: HAPPY_VALUE,
      loadId: loadId(),
      requestsPerClient: Math.ceil(PREBUILT / spec.connections),
      signed,
      workers,
    },
  });
  const { errors, timeouts, non2xx, statusCodeStats } = result;
  return {
    requests: result.requests.total,
    seconds: result.duration,
    p99Ms: result.latency.p99,
    failures:
      errors + timeouts + non2xx === 0
        ? undefined
        : `${errors} errors, ${timeouts} timeouts, ${non2xx} non-2xx (${JSON.stringify(statusCodeStats)})`,
  };
}

/** Loads for `seconds`; throws unless every request got a 2xx. */
async function load(spec, seconds, phase, signed) {
  const run = generator().name === "wrk" && !signed ? wrkLoad : autocannonLoad;
  const { failures, ...result } = await run(spec, seconds, signed);
  if (failures) throw new Error(`${spec.route} ${phase} on ${spec.url}: ${failures}`);
  return result;
}

const spec = JSON.parse(process.argv[2]);
const signed = spec.route in DYNAMO_REQUESTS ? signedRequests(spec) : undefined;
if (spec.warmup > 0) await load(spec, spec.warmup, "warm-up", signed);
console.log(JSON.stringify(await load(spec, spec.seconds, "run", signed)));
