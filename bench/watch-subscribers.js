// The watch fan-out's subscribers: `count` SSE connections to `<url>/api/watch/prefix` in this one
// process. Each `change` event carries values { t } (the writer's clock before its commit; same
// machine): the delivery latency is now - t. Prints "ready" once every stream is open, and on
// SIGTERM the latencies' percentiles as JSON.
import http from "node:http";

// A load generator must not be the bottleneck: the writer's timestamps are picked out of each
// chunk with one regular expression instead of parsing every event.
const STAMP = /"t":(\d+)/g;

const [url, token, count, prefix] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
const latencies = [];
let open = 0;

for (let i = 0; i < Number(count); i++) {
  const request = http.get(
    `${url}/api/watch/prefix?prefix=${prefix}&initial=false`,
    { agent, headers: { authorization: `Bearer ${token}` } },
    (response) => {
      if (response.statusCode !== 200) throw new Error(`watch answered ${response.statusCode}`);
      if (++open === Number(count)) process.stdout.write("ready\n");
      response.setEncoding("utf8");
      let rest = "";
      response.on("data", (chunk) => {
        const text = rest + chunk;
        const end = text.lastIndexOf("\n\n") + 2; // complete events only (0 when none)
        rest = text.slice(end);
        const now = Date.now();
        for (const match of text.slice(0, end).matchAll(STAMP))
          latencies.push(now - Number(match[1]));
      });
    },
  );
  request.on("error", (error) => {
    console.error(`subscriber ${i}: ${error.message}`);
    process.exit(1);
  });
}

process.on("SIGTERM", () => {
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null;
  process.stdout.write(
    `${JSON.stringify({ deliveries: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? null })}\n`,
  );
  process.exit(0);
});
