/**
 * What the node:http servers of the server benchmark share: listen on a free loopback port,
 * print `listening on <url>` once ready (bench/server-process.js waits for it), and on SIGTERM
 * stop accepting, close idle keep-alive connections, then run `onStop`.
 */
import http from "node:http";

/** Sends `text`, a JSON document, with `status`. */
export function sendJson(res, status, text) {
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

export function serve(handler, onStop = () => {}) {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, handler);
  server.listen(0, "127.0.0.1", () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
  process.once("SIGTERM", () => {
    server.close(onStop);
    server.closeIdleConnections();
  });
}
