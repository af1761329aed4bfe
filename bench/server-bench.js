/**
 * The server benchmark: the same HTTP workloads on four servers, each in its own process, loaded
 * over loopback keep-alive connections by wrk or autocannon in another process (bench/load.js):
 *
 *   bare    bare node:http answering a constant body, the ceiling (bench/server-bare.js)
 *   raw     node:http + better-sqlite3 as a user would hand-roll it, group-committing PUTs
 *           (bench/server-sqlite.js)
 *   deno    Deno.serve + Deno KV as a Deno user would write it (bench/server-deno.ts)
 *   cairn   `cairn serve`
 *   cairn-workers  `cairn serve --workers auto`: one process per core, over the same file
 *   cairn-writer   `cairn serve --writer-thread`: commits applied on a thread of their own
 *
 *   S1 point GET · S2 durable point PUT · S3 10-key batch GET, on keys ["k", i] of 100k
 *   preloaded ones
 *
 * In each run, every workload on every system gets a fresh server on a fresh database in a
 * temporary directory, removed afterwards. A workload's servers are all up together and loaded
 * in turn at each connection count. Cairn's S1 server is also loaded on GET /health: Cairn's
 * listener, router and auth, next to bare node:http; with a principal's token holding one
 * read grant instead of the admin token: what authorization by grants costs a point GET; and on
 * Happy Server's GET /v1/kv/k<i>, of as many keys preloaded for the admin's user (`admin`).
 * Cairn's S2 server is also loaded on Happy's POST /v1/kv of one mutation, each creating a new
 * key at version -1: one checked commit, as a PUT is one commit. Both are reported against
 * Cairn's own GET or PUT of the same run. So is DynamoDB's GetItem of a random one of as many
 * items (table `bench`, bench/dynamodb.js) on Cairn's S1 server, and its PutItem of a random item
 * with a fresh value on its S2 server, signed with AWS Signature V4.
 */
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { happyKv, openKv } from "../dist/index.js";
import { getItemBody, preloadDynamo, putItemBody, signedHeaders } from "./dynamodb.js";
import { DENO, here, inTempDir, median, rotated, runLoad } from "./harness.js";
import { autocannonGenerator, generator, PREBUILT } from "./load-generator.js";
import { human, milliseconds } from "./report.js";
import { startServer } from "./server-process.js";
import { HAPPY_VALUE, PRELOAD_KEYS, setRows, VALUE } from "./workloads.js";

export const SERVER_WORKLOADS = ["S1", "S2", "S3"];
export const SERVER_SYSTEMS = ["bare", "raw", "deno", "cairn", "cairn-workers", "cairn-writer"];
const ROUTES = { S1: "get", S2: "put", S3: "batch" };
const CONNECTIONS = [1, 64];
/** Seconds per load at BENCH_SCALE=1, after an unscaled warm-up. */
const SECONDS = 5;
const WARMUP_SECONDS = 1;

/** Happy keys written per mutate when preloading (it divides PRELOAD_KEYS). */
const HAPPY_BATCH = 50;

async function preloadCairn(path) {
  const kv = await openKv(path);
  try {
    await setRows(kv, 0, PRELOAD_KEYS);
    const { kvMutate } = happyKv(kv);
    for (let row = 0; row < PRELOAD_KEYS; row += HAPPY_BATCH) {
      const mutations = Array.from({ length: HAPPY_BATCH }, (_, i) => ({
        key: `k${row + i}`,
        value: HAPPY_VALUE,
        version: -1,
      }));
      const result = await kvMutate({ uid: "admin" }, mutations);
      if (!result.success) throw new Error(`Preloading Happy keys: ${JSON.stringify(result)}`);
    }
    await preloadDynamo(kv);
  } finally {
    await kv.close();
  }
}

/** `[file, args]` starting each system's server on a database in `dir`, preloaded. */
export const SERVERS = {
  bare: () => [process.execPath, [here("server-bare.js")]],
  raw: (dir, token) => [process.execPath, [here("server-sqlite.js"), join(dir, "raw.db"), token]],
  deno: (dir, token) => [
    DENO,
    ["run", "--unstable-kv", "-A", here("server-deno.ts"), join(dir, "deno.db"), token],
  ],
  cairn: (dir, token) => cairnServer(dir, token, []),
  "cairn-workers": (dir, token) => cairnServer(dir, token, ["--workers", "auto"]),
  "cairn-writer": (dir, token) => cairnServer(dir, token, ["--writer-thread"]),
};

async function cairnServer(dir, token, flags) {
  const data = join(dir, "cairn.db");
  await preloadCairn(data);
  const cli = [here("../bin/cairn.js"), "serve", "--host", "127.0.0.1", "--port", "0"];
  return [process.execPath, [...cli, "--data", data, "--token", token, ...flags]];
}

/**
 * One request per route, sent before the load to check the server answers it as expected:
 * `expected(json)` holds. A route with an `operation` is DynamoDB's: `POST /` of that operation,
 * signed.
 */
const SAMPLES = {
  get: { method: "GET", path: "/api/keys/k/7", expected: (json) => json.value.v === VALUE.v },
  put: { method: "PUT", path: "/api/keys/k/7", body: VALUE, expected: () => true },
  batch: {
    method: "POST",
    path: "/api/keys/batch",
    body: { keys: Array.from({ length: 10 }, (_, i) => ["k", i * 1000]) },
    expected: (json) => json.every((entry) => entry.value.v === VALUE.v),
  },
  health: { method: "GET", path: "/health", expected: () => true },
  "happy-get": {
    method: "GET",
    path: "/v1/kv/k7",
    expected: (json) => json.value === HAPPY_VALUE && json.version === 0,
  },
  "happy-put": {
    method: "POST",
    path: "/v1/kv",
    body: { mutations: [{ key: "sample", value: HAPPY_VALUE, version: -1 }] },
    expected: (json) => json.success === true,
  },
  "dynamo-get": {
    method: "POST",
    path: "/",
    operation: "GetItem",
    body: getItemBody(7),
    expected: (json) => json.Item.id.S === "k7" && json.Item.v.S === VALUE.v,
  },
  "dynamo-put": {
    method: "POST",
    path: "/",
    operation: "PutItem",
    body: putItemBody(7, VALUE.v),
    expected: (json) => Object.keys(json).length === 0,
  },
};

async function checkRoute(url, token, route) {
  const { method, path, operation, body, expected } = SAMPLES[route];
  const sent = body && JSON.stringify(body);
  const response = await fetch(`${url}${path}`, {
    method,
    headers: operation
      ? signedHeaders(url, token, operation, sent)
      : { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: sent,
  });
  const text = await response.text();
  if (!response.ok || !expected(JSON.parse(text))) {
    throw new Error(
      `${method} ${path} on ${url} answered ${response.status} ${text.slice(0, 300)}`,
    );
  }
}

/**
 * The targets of one server: its workload's route; on Cairn's S1 server also GET /health, the
 * GET with a principal's token (`granted`) instead of the admin token, Happy's GET and DynamoDB's
 * GetItem; on its S2 server also Happy's mutate and DynamoDB's PutItem.
 */
function targetsOf(workload, system) {
  const targets = [{ system, route: ROUTES[workload] }];
  if (workload === "S1" && system === "cairn") {
    targets.push({ system: "cairn-health", route: "health" });
    targets.push({ system: "cairn-granted", route: "get", granted: true });
    targets.push({ system: "happy-get", route: "happy-get" });
    targets.push({ system: "dynamo-get", route: "dynamo-get" });
  }
  if (workload === "S2" && system === "cairn") {
    targets.push({ system: "happy-put", route: "happy-put" });
    targets.push({ system: "dynamo-put", route: "dynamo-put" });
  }
  return targets;
}

/** A principal's token on Cairn's server at `url`: read on the keys the workloads use. */
export async function grantedToken(url, adminToken) {
  const response = await fetch(`${url}/admin/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "bench", grants: [{ prefix: ["k"], access: "read" }] }),
  });
  if (response.status !== 201) throw new Error(`POST /admin/tokens: ${await response.text()}`);
  return (await response.json()).token;
}

const secondsOf = (scale) => Math.max(1, SECONDS * scale);

/** Loads `url` from its own process: `{ rate, p99Ms }`. */
async function measureLoad(url, token, { route, connections }, scale) {
  const spec = {
    url,
    token,
    route,
    connections,
    seconds: secondsOf(scale),
    warmup: WARMUP_SECONDS,
  };
  const { requests, seconds, p99Ms } = await runLoad(spec);
  return { rate: requests / seconds, p99Ms };
}

/**
 * Runs `work(servers)` with a server per system started on a fresh database of its own, each
 * checked on its routes; stops them all afterwards. `servers` are `{ system, url }` in the
 * order of `systems`.
 */
async function withServers(workload, systems, token, work, started = []) {
  if (started.length === systems.length) return work(started);
  const system = systems[started.length];
  return inTempDir(`server-${system}`, async (dir) => {
    const server = await startServer(await SERVERS[system](dir, token), `${system} server`);
    try {
      const targets = targetsOf(workload, system);
      const granted = targets.some((t) => t.granted)
        ? await grantedToken(server.url, token)
        : undefined;
      if (system !== "bare") {
        for (const target of targets) {
          await checkRoute(server.url, target.granted ? granted : token, target.route);
        }
      }
      return await withServers(workload, systems, token, work, [
        ...started,
        { system, url: server.url, granted },
      ]);
    } finally {
      await server.stop();
    }
  });
}

/**
 * One run of one workload: every system's server up at once, idle but for the one under load,
 * loaded in turn (in an order rotated by run) at each connection count, so that the loads
 * compared in a ratio are at most one round of loads apart. A shared VM's speed can drift by
 * tens of percent over minutes; a round keeps that drift out of most ratios.
 */
function measureWorkload(workload, systems, run, scale, onResult) {
  const token = randomBytes(16).toString("base64url");
  return withServers(workload, rotated(systems, run), token, async (servers) => {
    for (const connections of CONNECTIONS) {
      for (const { system, url, granted } of servers) {
        for (const target of targetsOf(workload, system)) {
          const load = { system: target.system, route: target.route, connections };
          const as = target.granted ? granted : token;
          onResult({ ...load, ...(await measureLoad(url, as, load, scale)) });
        }
      }
    }
  });
}

/** `samples[workload][system][connections]` lists → their medians, rate and p99 apart. */
function mediansOf(samples) {
  const mapValues = (object, f) =>
    Object.fromEntries(Object.entries(object).map(([key, value]) => [key, f(value)]));
  return mapValues(samples, (bySystem) =>
    mapValues(bySystem, (byConnections) =>
      mapValues(byConnections, (list) => ({
        rate: median(list.map((sample) => sample.rate)),
        p99Ms: median(list.map((sample) => sample.p99Ms)),
      })),
    ),
  );
}

/** What each of Cairn's targets is compared with: the other systems, or Cairn's own route. */
const COMPARED_WITH = {
  cairn: ["bare", "raw", "deno"],
  "cairn-workers": ["bare", "raw", "deno"],
  "cairn-writer": ["bare", "raw", "deno"],
  "cairn-health": ["bare", "raw", "deno"],
  "cairn-granted": ["cairn"],
  "happy-get": ["cairn"],
  "happy-put": ["cairn"],
  "dynamo-get": ["cairn"],
  "dynamo-put": ["cairn"],
};

/**
 * Cairn's rate over each other system's, per run (both measured in the same run, minutes apart
 * at most), then the median over runs: `ratios[workload][connections][cairn system][other]`.
 */
function ratiosOf(samples) {
  const ratios = {};
  for (const [workload, bySystem] of Object.entries(samples)) {
    for (const [cairn, others] of Object.entries(COMPARED_WITH)) {
      for (const [connections, mine] of Object.entries(bySystem[cairn] ?? {})) {
        for (const other of others) {
          const theirs = bySystem[other]?.[connections];
          if (!theirs) continue;
          const perRun = mine.map((sample, run) => sample.rate / theirs[run].rate);
          ratios[workload] ??= {};
          ratios[workload][connections] ??= {};
          ratios[workload][connections][cairn] ??= {};
          ratios[workload][connections][cairn][other] = median(perRun);
        }
      }
    }
  }
  return ratios;
}

function describeConditions(config) {
  const threadsOf = ({ threads }) =>
    CONNECTIONS.map((n) => `${threads(n)} at ${n} connection${n === 1 ? "" : "s"}`);
  const main = generator();
  const dynamo = autocannonGenerator();
  return {
    generator: `${main.name} ${main.version}`,
    threads: threadsOf(main),
    dynamoGenerator: `${dynamo.name} ${dynamo.version}`,
    dynamoThreads: threadsOf(dynamo),
    prebuilt: PREBUILT,
    connections: CONNECTIONS,
    seconds: secondsOf(config.scale),
    warmupSeconds: WARMUP_SECONDS,
    valueBytes: JSON.stringify(VALUE).length,
    happyValueChars: HAPPY_VALUE.length,
    keys: PRELOAD_KEYS,
    workers: availableParallelism(),
  };
}

/** Adds a load's result to `samples[workload][system][connections]` and prints a progress line. */
function record(samples, workload, { system, connections, rate, p99Ms }, progress) {
  samples[workload] ??= {};
  samples[workload][system] ??= {};
  samples[workload][system][connections] ??= [];
  samples[workload][system][connections].push({ rate, p99Ms });
  console.error(
    `[${progress}] ${workload} ${system} ${connections} conn ${human(rate)}/s p99 ${milliseconds(p99Ms)} ms`,
  );
}

/**
 * Every run of every workload: `{ medians, ratios, conditions }`, medians by workload, system and
 * connections, and Cairn's ratios to the others as medians of per-run ratios (see `ratiosOf`).
 */
export async function measureServers(config) {
  const samples = {};
  const systems = config.systems.filter((system) => SERVER_SYSTEMS.includes(system));
  for (let run = 0; run < config.runs; run++) {
    const progress = `server run ${run + 1}/${config.runs}`;
    for (const workload of config.serverWorkloads) {
      await measureWorkload(workload, systems, run, config.scale, (result) =>
        record(samples, workload, result, progress),
      );
    }
  }
  return {
    medians: mediansOf(samples),
    ratios: ratiosOf(samples),
    conditions: describeConditions(config),
  };
}
