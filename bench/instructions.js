/**
 * What a request costs each single-process server of the server benchmark, counted rather than
 * timed: the instructions its threads execute per request, under valgrind's callgrind. On a
 * shared VM whose speed drifts by tens of percent from minute to minute, rates and CPU times
 * cannot show a change of a few percent; instruction counts repeat to within 1–3%.
 *
 *   node bench/instructions.js [route] [system ...]     (after `npm run build`; needs valgrind)
 *
 * route: get, put (the default) or batch, as in S1–S3, or dynamo-get or dynamo-put (DynamoDB's
 * GetItem and PutItem: see bench/dynamodb.js; cairn only); systems: bare, raw, cairn,
 * cairn-granted (Cairn with a principal's token; the default: raw and cairn). Each server runs
 * under callgrind, is warmed up by WARMUP_REQUESTS requests,
 * then counted over loads of SECONDS until two in a row agree (V8 has then optimized the hot
 * code), all at 64 connections. Under callgrind a server runs ~50× slower than the load
 * generator, so every event-loop turn finds all 64 connections waiting: PUTs commit in groups of
 * ~64, whatever the machine. Reported per request: the main thread (the event loop: HTTP, the
 * engine, SQLite's statements and commit) and the other threads together (V8's compiler and
 * garbage collector, libuv's pool). fsync and the kernel's work are not the process's instructions.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { inTempDir, runLoad } from "./harness.js";
import { grantedToken, SERVERS } from "./server-bench.js";
import { startServer } from "./server-process.js";

const ROUTES = ["get", "put", "batch", "dynamo-get", "dynamo-put"];
/** `cairn-granted`: Cairn loaded with a principal's token (one read grant), not the admin's. */
const SYSTEMS = ["bare", "raw", "cairn", "cairn-granted"];
const CONNECTIONS = 64;
const WARMUP_REQUESTS = 20_000;
const SECONDS = 15;
/** Loads of SECONDS are repeated until two in a row agree this closely on the main thread… */
const SETTLED = 0.02;
/** …or this many were made (V8 may still be optimizing: the report says so). */
const MAX_LOADS = 8;
/** Under callgrind a request can take seconds before V8 has optimized the code it runs. */
const TIMEOUT_SECONDS = 60;

const [route = "put", ...chosen] = process.argv.slice(2);
const systems = chosen.length > 0 ? chosen : ["raw", "cairn"];
if (!ROUTES.includes(route) || !systems.every((system) => SYSTEMS.includes(system))) {
  console.error(`usage: node bench/instructions.js [${ROUTES.join("|")}] [${SYSTEMS.join(" ")}]`);
  process.exit(2);
}
if (spawnSync("valgrind", ["--version"]).error) {
  console.error("bench/instructions.js needs valgrind on the PATH (apt-get install valgrind)");
  process.exit(1);
}

/** `{ requests }` of one load of `seconds`, with no warm-up of its own. */
const load = (url, token, seconds) =>
  runLoad({
    url,
    token,
    route,
    connections: CONNECTIONS,
    seconds,
    warmup: 0,
    timeout: TIMEOUT_SECONDS,
  });

/** Writes callgrind's counts so far to a file of their own and starts counting from zero. */
const dump = (pid) => promisify(execFile)("callgrind_control", ["--dump", String(pid)]);

/** Instructions of each thread in callgrind's `n`th dump, main thread first. */
async function threadTotals(dir, n) {
  const files = (await readdir(dir)).filter((f) => f.startsWith(`callgrind.out.${n}-`)).sort();
  return Promise.all(
    files.map(async (f) =>
      Number(/^summary: (\d+)$/m.exec(await readFile(join(dir, f), "utf8"))[1]),
    ),
  );
}

async function measure(system) {
  return inTempDir(`instructions-${system}`, async (dir) => {
    const token = randomBytes(16).toString("base64url");
    const granted = system === "cairn-granted";
    const [file, args] = await SERVERS[granted ? "cairn" : system](dir, token);
    const valgrind = [
      "--quiet",
      "--tool=callgrind",
      "--separate-threads=yes",
      `--callgrind-out-file=${join(dir, "callgrind.out")}`,
    ];
    const server = await startServer(["valgrind", [...valgrind, file, ...args]], system);
    try {
      const as = granted ? await grantedToken(server.url, token) : token;
      // V8 optimizes a function after so many calls, not so much time: warm up by requests.
      for (let warmed = 0; warmed < WARMUP_REQUESTS; ) {
        warmed += (await load(server.url, as, SECONDS)).requests;
      }
      await dump(server.pid); // dump 1: the start and the warm-up
      let previous;
      for (let n = 2; n < 2 + MAX_LOADS; n++) {
        const { requests } = await load(server.url, as, SECONDS);
        await dump(server.pid);
        const [main, ...others] = await threadTotals(dir, n);
        const counted = {
          requests,
          main: main / requests,
          others: others.reduce((a, b) => a + b, 0) / requests,
        };
        if (previous && Math.abs(counted.main / previous.main - 1) < SETTLED) return counted;
        previous = counted;
      }
      return { ...previous, unsettled: true };
    } finally {
      await server.stop();
    }
  });
}

const thousands = (n) => `${(n / 1000).toFixed(1)}k`;
const columns = ["requests counted", "instructions per request: main thread", "other threads"];
console.log(`| ${route}, ${CONNECTIONS} connections | ${columns.join(" | ")} |`);
console.log("| --- | ---: | ---: | ---: |");
for (const system of systems) {
  const { requests, main, others, unsettled } = await measure(system);
  const note = unsettled ? " (still changing after the last load)" : "";
  console.log(`| ${system}${note} | ${requests} | ${thousands(main)} | ${thousands(others)} |`);
}
