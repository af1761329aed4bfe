import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeKey } from "../src/codec/key-codec.js";
import { openKv } from "../src/sdk/kv.js";
import { type CairnServer, startServer } from "../src/server/server.js";
import { describeEach, serverForTests, sleep, storages, until } from "./targets.js";

const TOKEN = randomUUID();
const BUCKETS = ["1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "+Inf"];

/** One sample of Prometheus text: `name{labels} value`. */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/**
 * Parses Prometheus's text format (0.0.4) strictly: every sample belongs to a family announced by
 * `# HELP` and `# TYPE` before it (a histogram's `_bucket`, `_sum` and `_count` to their
 * family), and each family is announced once. Returns the families' types and the samples.
 */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment;
      if (kind === "HELP") {
        expect(helped.has(name!), `a second HELP for ${name}`).toBe(false);
        helped.add(name!);
      } else {
        expect(helped.has(name!), `TYPE of ${name} before its HELP`).toBe(true);
        expect(["counter", "gauge", "histogram"]).toContain(rest);
        types.set(name!, rest!);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(sample, `not a sample: ${line}`).not.toBeNull();
    const [, name, labelText, value] = sample!;
    const family = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, "");
    expect(types.has(family), `${name} has no TYPE`).toBe(true);
    if (family !== name) expect(types.get(family)).toBe("histogram");
    const labels: Record<string, string> = {};
    for (const [, key, v] of (labelText ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = v!;
    }
    samples.push({ name: name!, labels, value: Number(value) });
  }
  return { types, samples };
}

/** The value of the one sample of `name` with (at least) `labels`; 0 when there is none. */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

describeEach(storages, "metrics", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const call = (method: string, path: string, body?: string, headers: object = auth) =>
    fetch(`${server().url}${path}`, { method, headers: { ...headers }, body });
  const scrape = async (path = "/metrics") => {
    const response = await call("GET", path);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    return parsePrometheus(await response.text());
  };
  // biome-ignore lint/suspicious/noExplicitAny: assertions navigate the metrics JSON
  const json = async (path = "/api/metrics"): Promise<any> => {
    const response = await call("GET", path);
    expect(response.status).toBe(200);
    return response.json();
  };

  it("counts every request exactly under concurrent load, its errors by code, in both formats", async () => {
    const before = (await scrape()).samples;
    const beforeJson = await json();
    const requests: Promise<Response>[] = [];
    for (let i = 0; i < 50; i++) requests.push(call("PUT", `/api/keys/load/${i}`, `{"i":${i}}`));
    for (let i = 0; i < 5; i++) requests.push(call("PUT", `/api/keys/load/bad${i}`, "{not json"));
    await Promise.all(requests.splice(0));
    for (let i = 0; i < 200; i++) requests.push(call("GET", `/api/keys/load/${i % 50}`));
    for (let i = 0; i < 10; i++) requests.push(call("GET", `/api/keys/load/missing${i}`));
    for (let i = 0; i < 3; i++) {
      requests.push(call("GET", "/api/keys/load/0", undefined, { authorization: "Bearer wrong" }));
    }
    const statuses = (await Promise.all(requests)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(200);
    expect(statuses.filter((s) => s === 404)).toHaveLength(10);
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);

    const after = (await scrape()).samples;
    const delta = (name: string, labels: Record<string, string>) =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);
    const get = { face: "json-api", operation: "get" };
    const set = { face: "json-api", operation: "set" };
    expect(delta("cairn_requests_total", get)).toBe(213);
    expect(delta("cairn_requests_total", set)).toBe(55);
    expect(delta("cairn_request_errors_total", { ...get, code: "NOT_FOUND" })).toBe(10);
    expect(delta("cairn_request_errors_total", { ...get, code: "UNAUTHORIZED" })).toBe(3);
    expect(delta("cairn_request_errors_total", { ...set, code: "INVALID_JSON" })).toBe(5);
    expect(delta("cairn_request_duration_ms_count", get)).toBe(213);
    expect(delta("keyval_operations_total", { operation: "get" })).toBe(213);
    expect(delta("keyval_errors_total", { operation: "get" })).toBe(13);
    expect(delta("keyval_operation_errors_total", { operation: "get" })).toBe(13);
    expect(delta("keyval_operations_total", { operation: "set" })).toBe(55);
    expect(delta("keyval_operation_duration_ms_count", { operation: "set" })).toBe(55);

    const afterJson = await json();
    const ops = (m: typeof afterJson, op: string) => m.operations[op] ?? { count: 0, errors: 0 };
    expect(ops(afterJson, "get").count - ops(beforeJson, "get").count).toBe(213);
    expect(ops(afterJson, "get").errors - ops(beforeJson, "get").errors).toBe(13);
    expect(ops(afterJson, "set").count - ops(beforeJson, "set").count).toBe(55);
    expect(ops(afterJson, "set").errors - ops(beforeJson, "set").errors).toBe(5);
    expect(afterJson.operations.get.avgLatencyMs).toBeGreaterThan(0);
    expect(afterJson.totals.operations - beforeJson.totals.operations).toBe(268);
    expect(afterJson.totals.errors - beforeJson.totals.errors).toBe(18);
    // The seed server's nested copy (reference §6.1), beside the flat form its client reads.
    expect(afterJson.operations.operations.get).toEqual(afterJson.operations.get);
    expect(afterJson.operations.totals).toEqual(afterJson.totals);
  });

  it("fills the seed's histogram buckets, cumulative, up to +Inf = _count", async () => {
    const { samples, types } = await scrape();
    expect(types.get("cairn_request_duration_ms")).toBe("histogram");
    expect(types.get("keyval_operation_duration_ms")).toBe("histogram");
    for (const family of ["cairn_request_duration_ms", "keyval_operation_duration_ms"]) {
      const labels: Record<string, string> =
        family === "cairn_request_duration_ms"
          ? { face: "json-api", operation: "get" }
          : { operation: "get" };
      const buckets = samples.filter(
        (s) =>
          s.name === `${family}_bucket` &&
          Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      );
      expect(buckets.map((b) => b.labels.le)).toEqual(BUCKETS);
      const values = buckets.map((b) => b.value);
      expect(values).toEqual([...values].sort((a, b) => a - b));
      expect(values.at(-1)).toBe(sampleValue(samples, `${family}_count`, labels));
      expect(values.at(-1)).toBeGreaterThanOrEqual(213);
      expect(sampleValue(samples, `${family}_sum`, labels)).toBeGreaterThan(0);
    }
  });

  it("announces every metric with HELP and TYPE", async () => {
    const { types } = await scrape();
    const expected: Record<string, string> = {
      cairn_requests_total: "counter",
      cairn_request_errors_total: "counter",
      cairn_request_duration_ms: "histogram",
      keyval_operations_total: "counter",
      keyval_errors_total: "counter",
      keyval_operation_errors_total: "counter",
      keyval_operation_duration_ms: "histogram",
      keyval_queue_pending: "gauge",
      keyval_queue_processing: "gauge",
      keyval_queue_dlq: "gauge",
      keyval_queue_total: "gauge",
      keyval_entries_total: "gauge",
      keyval_storage_bytes: "gauge",
      cairn_connections_open: "gauge",
      cairn_streams_open: "gauge",
      cairn_commit_batch_size: "histogram",
      cairn_commit_duration_ms: "histogram",
    };
    for (const [name, type] of Object.entries(expected))
      expect([name, types.get(name)]).toEqual([name, type]);
    // The seed's route answers the same families.
    expect([...(await scrape("/api/metrics/prometheus")).types.keys()].sort()).toEqual(
      [...types.keys()].sort(),
    );
  });

  it("labels each face's requests with its operation", async () => {
    const happy = await call("GET", "/v1/kv/nothing-here");
    expect(happy.status).toBe(404);
    const dynamo = await call("POST", "/", "{}", {
      ...auth,
      "x-amz-target": "DynamoDB_20120810.ListTables",
    });
    expect(dynamo.status).toBe(400); // not signed: DynamoDB's own error, counted all the same
    const { samples } = await scrape();
    expect(sampleValue(samples, "cairn_requests_total", { face: "happy", operation: "get" })).toBe(
      1,
    );
    expect(
      sampleValue(samples, "cairn_request_errors_total", {
        face: "happy",
        operation: "get",
        code: "NOT_FOUND",
      }),
    ).toBe(1);
    expect(
      sampleValue(samples, "cairn_requests_total", { face: "dynamodb", operation: "ListTables" }),
    ).toBe(1);
    // Happy's requests are not the seed's operations.
    expect(sampleValue(samples, "keyval_operations_total", { operation: "mutate" })).toBe(0);
  });

  it("shows the queue's state: pending, processing, dead letters, total", async () => {
    const enqueue = (body: object) => call("POST", "/api/queue/enqueue", JSON.stringify(body));
    expect((await enqueue({ value: "doomed", options: { backoffSchedule: [] } })).status).toBe(200);
    // biome-ignore lint/suspicious/noExplicitAny: the poll's JSON
    const polled: any = await (await call("GET", "/api/queue/poll")).json();
    expect(polled.message.value).toBe("doomed");
    const nack = await call("POST", "/api/queue/nack", JSON.stringify({ id: polled.message.id }));
    expect(nack.status).toBe(200);
    await enqueue({ value: "a" });
    await enqueue({ value: "b" });
    const next = (await (await call("GET", "/api/queue/poll")).json()) as {
      message: { value: unknown };
    };
    expect(next.message.value).toBe("a");

    const { samples } = await scrape();
    expect(sampleValue(samples, "keyval_queue_pending")).toBe(1);
    expect(sampleValue(samples, "keyval_queue_processing")).toBe(1);
    expect(sampleValue(samples, "keyval_queue_dlq")).toBe(1);
    expect(sampleValue(samples, "keyval_queue_total")).toBe(3);
    expect((await json()).queue).toEqual({ pending: 1, processing: 1, dlq: 1, total: 3 });
    expect(sampleValue(samples, "keyval_operations_total", { operation: "queue_nack" })).toBe(1);
    expect(sampleValue(samples, "keyval_operations_total", { operation: "queue_dequeue" })).toBe(2);
    expect(sampleValue(samples, "keyval_operations_total", { operation: "queue_enqueue" })).toBe(3);
  });

  it("counts and sizes a database's live entries: keys plus stored values, expired ones left out", async () => {
    const entries: [string, string][] = [
      ["a", '{"x":1}'],
      ["b", '"text"'],
      ["c", "[1,2,3]"],
    ];
    for (const [key, value] of entries) {
      expect((await call("PUT", `/db/sizes/api/keys/${key}`, value)).status).toBe(200);
    }
    expect((await call("PUT", "/db/sizes/api/keys/gone?expiresIn=1", "1")).status).toBe(200);
    await sleep(20);
    const sizeBytes = entries.reduce(
      (n, [key, value]) => n + encodeKey([key]).length + value.length,
      0,
    );
    const metrics = await json("/db/sizes/api/metrics");
    expect(metrics.storage).toEqual({ entries: 3, sizeBytes });
    const { samples } = await scrape("/db/sizes/api/metrics/prometheus");
    expect(sampleValue(samples, "keyval_entries_total")).toBe(3);
    expect(sampleValue(samples, "keyval_storage_bytes")).toBe(sizeBytes);
  });

  it("counts open connections and streams, and group commits", async () => {
    const watch = await call("GET", "/api/watch?keys=w", undefined, auth);
    expect(watch.status).toBe(200);
    const reader = watch.body!.getReader();
    await reader.read();
    let samples = (await scrape()).samples;
    expect(sampleValue(samples, "cairn_streams_open")).toBe(1);
    expect(sampleValue(samples, "cairn_connections_open")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, "cairn_commit_batch_size_count")).toBeGreaterThan(0);
    expect(sampleValue(samples, "cairn_commit_duration_ms_count")).toBe(
      sampleValue(samples, "cairn_commit_batch_size_count"),
    );
    await reader.cancel();
    await until(async () => {
      samples = (await scrape()).samples;
      return sampleValue(samples, "cairn_streams_open") === 0;
    });
  });

  it("serves metrics to the admin token only", async () => {
    for (const path of ["/metrics", "/api/metrics", "/api/metrics/prometheus"]) {
      expect((await call("GET", path, undefined, {})).status).toBe(401);
    }
    const created = await call(
      "POST",
      "/admin/tokens",
      JSON.stringify({
        name: `reader-${randomUUID()}`,
        grants: [{ prefix: [], access: "read" }, { queue: true }],
      }),
      { ...auth, "content-type": "application/json" },
    );
    expect(created.status).toBe(201);
    const { token } = (await created.json()) as { token: string };
    const asReader = { authorization: `Bearer ${token}` };
    expect((await call("GET", "/metrics", undefined, asReader)).status).toBe(403);
    expect((await call("GET", "/api/metrics", undefined, asReader)).status).toBe(403);
  });

  it("kv.metrics() on a remote Kv is the server's, in the SDK's flat shape", async () => {
    const kv = await openKv(server().url, { accessToken: TOKEN });
    try {
      await kv.set(["sdk"], 1);
      await kv.get(["sdk"]);
      const metrics = await kv.metrics();
      expect(metrics.operations.operations).toBeUndefined();
      expect(metrics.operations.get!.count).toBeGreaterThanOrEqual(214);
      expect(metrics.operations.atomic_commit!.count).toBeGreaterThanOrEqual(1);
      expect(Object.keys(metrics).sort()).toEqual(["operations", "queue", "storage", "totals"]);
      const text = await kv.metrics("prometheus");
      expect(parsePrometheus(text).types.get("keyval_operations_total")).toBe("counter");
    } finally {
      await kv.close();
    }
  });
});

describeEach(storages, "persistent metrics", (storage) => {
  let data: string;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ data, drop } = await storage.open());
  });
  afterAll(() => drop());

  const start = () =>
    startServer({
      host: "127.0.0.1",
      port: 0,
      data,
      auth: true,
      token: TOKEN,
      metricsPersistent: true,
      metricsFlushIntervalMs: 50,
    });
  const get = (server: CairnServer, key: string) =>
    fetch(`${server.url}/api/keys/${key}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const samplesOf = async (server: CairnServer) => {
    const response = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return parsePrometheus(await response.text()).samples;
  };
  const getLabels = { face: "json-api", operation: "get" };

  it("keeps the counters across restarts, summed over servers sharing the database; not the histograms", async () => {
    // Two servers on one database, flushing as they go: neither loses the other's counts.
    const [a, b] = [await start(), await start()];
    for (let i = 0; i < 5; i++) expect((await get(a, `missing-a${i}`)).status).toBe(404);
    for (let i = 0; i < 3; i++) expect((await get(b, `missing-b${i}`)).status).toBe(404);
    await sleep(120); // both flushed at least once
    expect((await get(a, "missing-late")).status).toBe(404);
    await Promise.all([a.close(), b.close()]);

    const c = await start();
    try {
      let samples = await samplesOf(c);
      expect(sampleValue(samples, "cairn_requests_total", getLabels)).toBe(9);
      expect(
        sampleValue(samples, "cairn_request_errors_total", { ...getLabels, code: "NOT_FOUND" }),
      ).toBe(9);
      expect(sampleValue(samples, "keyval_operations_total", { operation: "get" })).toBe(9);
      expect(sampleValue(samples, "keyval_errors_total", { operation: "get" })).toBe(9);
      expect(sampleValue(samples, "cairn_request_duration_ms_count", getLabels)).toBe(0);
      expect((await get(c, "missing-c")).status).toBe(404);
      samples = await samplesOf(c);
      expect(sampleValue(samples, "cairn_requests_total", getLabels)).toBe(10);
      expect(sampleValue(samples, "cairn_request_duration_ms_count", getLabels)).toBe(1);
    } finally {
      await c.close();
    }
    // The counters live in the system keyspace: no user range sees them.
    const kv = await openKv(data);
    try {
      expect(await kv.count([])).toBe(0);
    } finally {
      await kv.close();
    }
  });
});

describe("metrics without a token (metricsPublic)", () => {
  it("serves /metrics and /api/metrics to anyone, and still refuses data without a token", async () => {
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      data: ":memory:",
      auth: true,
      token: TOKEN,
      metricsPublic: true,
    });
    try {
      for (const path of ["/metrics", "/api/metrics", "/api/metrics/prometheus"]) {
        expect((await fetch(`${server.url}${path}`)).status).toBe(200);
      }
      expect((await fetch(`${server.url}/api/keys/a`)).status).toBe(401);
    } finally {
      await server.close();
    }
  });
});
