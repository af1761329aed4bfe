/**
 * The KV Connect benchmark: the same point get, durable point set and 10-key getMany, at 1 and 64
 * concurrent callers on one database handle, through three clients:
 *
 *   deno          Deno KV embedded (`Deno.openKv(file)`), in the Deno process itself
 *   cairn         Cairn's SDK in Node against `cairn serve` (`openKv("http://…")`, Cairn's JSON
 *                 database protocol over HTTP/1.1 keep-alive)
 *   deno-connect  Deno's own client against `cairn serve` over KV Connect (`Deno.openKv("http://…")`,
 *                 protobuf over cleartext HTTP/2, one connection)
 *
 * Workloads and timing live in bench/callers.js, shared by every client. Each workload on each
 * system gets a fresh database (and for the served systems a fresh server process) in a temporary
 * directory, preloaded with the same keys and removed afterwards.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { openKv } from "../dist/index.js";
import { preload } from "./callers.js";
import { DENO, here, inTempDir, median, rotated, runJson } from "./harness.js";
import { human } from "./report.js";
import { startServer } from "./server-process.js";
import { PRELOAD_KEYS, VALUE } from "./workloads.js";

export const KV_CONNECT_WORKLOADS = ["K1", "K2", "K3"];
export const KV_CONNECT_SYSTEMS = ["deno", "cairn", "deno-connect"];
const CALLERS = [1, 64];
/** Seconds per measurement at BENCH_SCALE=1, after an unscaled warm-up at the same concurrency. */
const SECONDS = 5;
const WARMUP_SECONDS = 1;

const secondsOf = (scale) => Math.max(1, SECONDS * scale);

/** Starts `cairn serve` on a preloaded database in `dir`. */
async function cairnServer(dir, token) {
  const data = join(dir, "cairn.db");
  const kv = await openKv(data);
  try {
    await preload(kv);
  } finally {
    await kv.close();
  }
  const cli = [here("../bin/cairn.js"), "serve", "--host", "127.0.0.1", "--port", "0"];
  return startServer([process.execPath, [...cli, "--data", data, "--token", token]], "cairn serve");
}

/** Measures one workload on one system in a fresh directory: `[{ callers, ops, seconds, p99Ms }]`. */
function measureSession({ workload, system }, scale) {
  const spec = {
    workload,
    callers: CALLERS,
    seconds: secondsOf(scale),
    warmupSeconds: WARMUP_SECONDS,
  };
  return inTempDir(`kv-connect-${system}`, async (dir) => {
    if (system === "deno") {
      const args = ["run", "--unstable-kv", "-A", here("kv-connect-deno.ts")];
      return runJson(DENO, [...args, JSON.stringify({ ...spec, dir })]);
    }
    const token = randomBytes(16).toString("base64url");
    const server = await cairnServer(dir, token);
    try {
      if (system === "cairn") {
        return await runJson(process.execPath, [
          here("kv-connect-node.js"),
          JSON.stringify({ ...spec, url: server.url, token }),
        ]);
      }
      const args = ["run", "--unstable-kv", "-A", here("kv-connect-deno.ts")];
      return await runJson(DENO, [...args, JSON.stringify({ ...spec, url: server.url })], {
        DENO_KV_ACCESS_TOKEN: token,
      });
    } finally {
      await server.stop();
    }
  });
}

/** Every run's sessions: `{ medians, conditions }`, medians by workload, system and callers. */
export async function measureKvConnect(config) {
  const samples = {};
  const systems = config.systems.filter((system) => KV_CONNECT_SYSTEMS.includes(system));
  for (let run = 0; run < config.runs; run++) {
    for (const workload of config.kvConnectWorkloads) {
      for (const system of rotated(systems, run)) {
        const results = await measureSession({ workload, system }, config.scale);
        for (const { callers, ops, seconds, p99Ms } of results) {
          samples[workload] ??= {};
          samples[workload][system] ??= {};
          samples[workload][system][callers] ??= [];
          samples[workload][system][callers].push({ rate: ops / seconds, p99Ms });
          console.error(
            `[kv-connect run ${run + 1}/${config.runs}] ${workload} ${system} ${callers} callers ` +
              `${human(ops / seconds)}/s p99 ${p99Ms.toFixed(2)} ms`,
          );
        }
      }
    }
  }
  const mapValues = (object, f) =>
    Object.fromEntries(Object.entries(object).map(([key, value]) => [key, f(value)]));
  const medians = mapValues(samples, (bySystem) =>
    mapValues(bySystem, (byCallers) =>
      mapValues(byCallers, (list) => ({
        rate: median(list.map((sample) => sample.rate)),
        p99Ms: median(list.map((sample) => sample.p99Ms)),
      })),
    ),
  );
  return {
    medians,
    conditions: {
      callers: CALLERS,
      seconds: secondsOf(config.scale),
      warmupSeconds: WARMUP_SECONDS,
      keys: PRELOAD_KEYS,
      valueBytes: JSON.stringify(VALUE).length,
    },
  };
}
