/**
 * autocannon's `setupClient` for bench/load.js: gives each connection its own requests for the
 * route in `initialContext`. GET and batch requests are prebuilt, with random preloaded keys; a
 * PUT is built per request, to a random key with a value never sent before (the benchmark's
 * value with its last 8 characters replaced by the thread and a counter, as in `rewrittenValue`),
 * so that no write is a no-op. Happy Server's GET is prebuilt too, of a random preloaded key
 * `k<i>`; its mutate is built per request, creating a key never created before (the load's id,
 * the thread and a counter) at version -1. The DynamoDB routes' requests come signed, prebuilt
 * by bench/load.js (`signed`: the JSON text of `[{ headers, body }]`), each connection its own
 * slice of them. CommonJS because autocannon's workers `require` it.
 */
const { threadId } = require("node:worker_threads");

const JSON_TYPE = { "content-type": "application/json" };
let puts = 0;
let creates = 0;
let signedClients = 0;
/** The signed requests, parsed once per thread. */
let parsed = { text: undefined, requests: [] };

const randomKey = (keys) => Math.floor(Math.random() * keys);

function freshValue({ v }) {
  puts++;
  return { v: `${v.slice(0, -8)}${String(threadId * 1e7 + (puts % 1e7)).padStart(8, "0")}` };
}

const ROUTES = {
  get: ({ keys }) => ({ method: "GET", path: `/api/keys/k/${randomKey(keys)}` }),
  batch: ({ keys, batch }) => ({
    method: "POST",
    path: "/api/keys/batch",
    headers: JSON_TYPE,
    body: JSON.stringify({ keys: Array.from({ length: batch }, () => ["k", randomKey(keys)]) }),
  }),
  put: ({ keys, value }) => ({
    method: "PUT",
    headers: JSON_TYPE,
    setupRequest: (request) =>
      Object.assign(request, {
        path: `/api/keys/k/${randomKey(keys)}`,
        body: JSON.stringify(freshValue(value)),
      }),
  }),
  health: () => ({ method: "GET", path: "/health" }),
  "happy-get": ({ keys }) => ({ method: "GET", path: `/v1/kv/k${randomKey(keys)}` }),
  "happy-put": ({ happyValue, loadId }) => ({
    method: "POST",
    path: "/v1/kv",
    headers: JSON_TYPE,
    setupRequest: (request) =>
      Object.assign(request, {
        body: JSON.stringify({
          mutations: [
            { key: `n${loadId}-${threadId}-${++creates}`, value: happyValue, version: -1 },
          ],
        }),
      }),
  }),
};

/**
 * This connection's slice of the signed requests. Connections are numbered per thread, and
 * autocannon's threads (created one after the other) told apart by their id, so that slices of
 * `requestsPerClient` are disjoint. The requests travel as one string because autocannon deep-
 * copies the context for every connection and every time it cycles through its requests.
 */
function signedSlice({ signed, workers, requestsPerClient }) {
  if (parsed.text !== signed) parsed = { text: signed, requests: JSON.parse(signed) };
  const { requests } = parsed;
  const start = (signedClients++ * workers + (threadId % workers)) * requestsPerClient;
  return Array.from({ length: requestsPerClient }, (_, i) => ({
    method: "POST",
    path: "/",
    ...requests[(start + i) % requests.length],
  }));
}

module.exports = function setupClient(client) {
  const context = client.opts.initialContext;
  if (context.signed) {
    client.setRequests(signedSlice(context));
    return;
  }
  const request = ROUTES[context.route];
  client.setRequests(Array.from({ length: context.requestsPerClient }, () => request(context)));
};
