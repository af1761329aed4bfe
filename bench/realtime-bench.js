/**
 * The realtime benchmark (issue #5): watch fan-out and queue throughput on Cairn.
 *
 *   R1 watch fan-out: 1,000 SSE subscribers on one prefix of `cairn serve`, in one process of
 *      their own; a writer commits 200 times a second (one key each, JSON API PUT) for a few
 *      seconds, after a second of the same unmeasured; delivery latency from just before each
 *      commit to its arrival at each subscriber
 *   R2 queue throughput: 8 producers enqueue while 1 or 8 consumers (listenQueue, one message at
 *      a time each) handle and acknowledge, end to end, embedded on SQLite (durable, fsync per
 *      commit group) and through `cairn serve`
 *
 *   BENCH_WATCHERS=1000, BENCH_COMMITS_PER_SECOND=200, BENCH_SCALE multiplies durations and counts
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import { join } from "node:path";
import { here, inTempDir, median, runJson } from "./harness.js";
import { human } from "./report.js";
import { startServer } from "./server-process.js";

export const REALTIME_WORKLOADS = ["R1", "R2"];
const TOKEN = "bench-token";
const SECONDS = 5;
/** R1 commits for this long before the measured ones: the server finishes setting up the subscriptions and warms up. */
const WARMUP_SECONDS = 1;
const QUEUE_MESSAGES = 10_000;

function cairnServer(dir) {
  const cli = [here("../bin/cairn.js"), "serve", "--host", "127.0.0.1", "--port", "0"];
  return startServer(
    [process.execPath, [...cli, "--data", join(dir, "cairn.db"), "--token", TOKEN]],
    "cairn",
  );
}

function put(agent, url, path, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${url}${path}`,
      {
        method: "PUT",
        agent,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      },
      (response) => {
        response.resume();
        response.on("end", () =>
          response.statusCode === 200 ? resolve() : reject(new Error(`PUT ${response.statusCode}`)),
        );
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

async function fanOut(watchers, perSecond, seconds) {
  return inTempDir("watch", async (dir) => {
    const server = await cairnServer(dir);
    const subscribers = spawn(
      process.execPath,
      [here("watch-subscribers.js"), server.url, TOKEN, String(watchers), "events"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      let output = "";
      subscribers.stdout.on("data", (chunk) => {
        output += chunk;
      });
      while (!output.includes("ready\n")) await new Promise((r) => setTimeout(r, 50));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
      /** Commits `count` at `perSecond`, each value made by `value()` just before its PUT. */
      const commit = async (count, value) => {
        const started = performance.now();
        const writes = [];
        for (let i = 0; i < count; i++) {
          const due = started + (i * 1000) / perSecond;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          writes.push(put(agent, server.url, `/api/keys/events/${i}`, JSON.stringify(value())));
        }
        await Promise.all(writes);
        return count / ((performance.now() - started) / 1000);
      };
      // Warm-up at the same rate, not measured (the subscribers time only values with a `t`).
      await commit(perSecond * WARMUP_SECONDS, () => ({ warmup: Date.now() }));
      const total = Math.round(perSecond * seconds);
      const achieved = await commit(total, () => ({ t: Date.now() }));
      await new Promise((r) => setTimeout(r, 1000)); // the last deliveries arrive
      const exited = once(subscribers, "exit");
      subscribers.kill("SIGTERM");
      await exited;
      const result = JSON.parse(output.split("\n").filter(Boolean).at(-1));
      agent.destroy();
      return { ...result, expected: total * watchers, achieved };
    } finally {
      subscribers.kill("SIGKILL");
      await server.stop();
    }
  });
}

async function queueCell(target, consumers, count) {
  return inTempDir("queue", async (dir) => {
    if (target === "embedded") {
      return runJson(process.execPath, [
        here("queue-cell.js"),
        join(dir, "q.db"),
        "",
        String(consumers),
        String(count),
      ]);
    }
    const server = await cairnServer(dir);
    try {
      return await runJson(process.execPath, [
        here("queue-cell.js"),
        server.url,
        TOKEN,
        String(consumers),
        String(count),
      ]);
    } finally {
      await server.stop();
    }
  });
}

/** Medians over `config.runs` of every realtime workload selected. */
export async function measureRealtime(config) {
  const watchers = Number(process.env.BENCH_WATCHERS ?? 1000);
  const perSecond = Number(process.env.BENCH_COMMITS_PER_SECOND ?? 200);
  const result = { conditions: { watchers, perSecond, seconds: SECONDS * config.scale } };
  if (config.realtimeWorkloads.includes("R1")) {
    const runs = [];
    for (let run = 0; run < config.runs; run++) {
      const r = await fanOut(watchers, perSecond, SECONDS * config.scale);
      console.error(
        `[run ${run + 1}/${config.runs}] R1 ${watchers} watchers: p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.deliveries}/${r.expected} delivered`,
      );
      runs.push(r);
    }
    result.fanOut = {
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      max: median(runs.map((r) => r.max)),
      delivered: median(runs.map((r) => r.deliveries / r.expected)),
      achieved: median(runs.map((r) => r.achieved)),
    };
  }
  if (config.realtimeWorkloads.includes("R2")) {
    result.queue = {};
    const count = Math.round(QUEUE_MESSAGES * config.scale);
    for (const target of ["embedded", "server"]) {
      for (const consumers of [1, 8]) {
        const rates = [];
        for (let run = 0; run < config.runs; run++) {
          const { count: n, seconds } = await queueCell(target, consumers, count);
          rates.push(n / seconds);
          console.error(
            `[run ${run + 1}/${config.runs}] R2 ${target} ${consumers} consumers: ${human(n / seconds)}/s`,
          );
        }
        result.queue[`${target} ${consumers}`] = median(rates);
      }
    }
    result.conditions.queueMessages = count;
  }
  return result;
}

export function renderRealtimeReport(r) {
  const lines = ["", "### Realtime", ""];
  if (r.fanOut) {
    const f = r.fanOut;
    lines.push(
      `R1 watch fan-out: ${r.conditions.watchers} SSE subscribers on one prefix (one process), ${r.conditions.perSecond} commits/s asked (${Math.round(f.achieved)}/s achieved) for ${r.conditions.seconds} s after ${WARMUP_SECONDS} s unmeasured: ` +
        `commit → delivery p50 ${f.p50} ms, p99 ${f.p99} ms, max ${f.max} ms; ${(f.delivered * 100).toFixed(1)}% of deliveries arrived (target p99 ≤ 50 ms ${f.p99 <= 50 ? "✓" : "✗"}).`,
      "",
    );
  }
  if (r.queue) {
    lines.push(
      "| R2 queue, enqueue → handler → ack | 1 consumer | 8 consumers | target (8) |",
      "| --- | ---: | ---: | --- |",
    );
    for (const target of ["embedded", "server"]) {
      const eight = r.queue[`${target} 8`];
      lines.push(
        `| ${target === "embedded" ? "embedded SQLite" : "through cairn serve"} | ${human(r.queue[`${target} 1`])}/s | ${human(eight)}/s | ≥ 5k/s ${eight >= 5000 ? "✓" : "✗"} |`,
      );
    }
    lines.push(
      "",
      `${r.conditions.queueMessages} messages of ~80 bytes per cell, 8 producers, fsync per commit group.`,
    );
  }
  return `${lines.join("\n")}\n`;
}
