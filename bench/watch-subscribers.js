// The watch fan-out's subscribers: `count` SSE streams of `<url>/api/watch/prefix` in this one
// process. Each `change` event carries values { t } (the writer's clock just before its commit;
// same machine): the delivery latency is now - t. Prints "ready" once every stream is open, and on
// SIGTERM the latencies' percentiles as JSON.
//
// A load generator must not be the bottleneck: each stream is a bare TCP socket that sends one
// HTTP request and picks the writer's timestamps out of the bytes with one regular expression,
// without an HTTP parser or event parsing.
import net from "node:net";

const [url, token, count, prefix] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const request = `GET /api/watch/prefix?prefix=${prefix}&initial=false HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`;
const STAMP = /"t":(\d+)(?=\D)/g; // a number cut at the end of a chunk waits for the rest
const latencies = [];
let open = 0;

for (let i = 0; i < Number(count); i++) {
  const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(request));
  socket.setNoDelay(true);
  socket.setEncoding("latin1");
  let started = false;
  let rest = "";
  socket.on("data", (chunk) => {
    const now = Date.now();
    if (!started) {
      if (!chunk.startsWith("HTTP/1.1 200")) {
        console.error(`subscriber ${i}: ${chunk.split("\r\n")[0]}`);
        process.exit(1);
      }
      started = true;
      if (++open === Number(count)) process.stdout.write("ready\n");
    }
    // A stamp may straddle two chunks: keep the tail after the last complete one.
    const text = rest + chunk;
    let last = 0;
    for (const match of text.matchAll(STAMP)) {
      latencies.push(now - Number(match[1]));
      last = match.index + match[0].length;
    }
    rest = text.slice(Math.max(last, text.length - 32));
  });
  socket.on("error", (error) => {
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
