import { expect, it } from "vitest";
import { encodeKey } from "../../src/codec/key-codec.js";
import { KvError } from "../../src/kv-error.js";
import { collect, conformance, errorOf } from "../targets.js";

/**
 * `kv.metrics()`: embedded, the Kv's own calls; remote, the server's requests. The two name a
 * read the same (`get`, `count`, `list` per page); a remote write is the commit the SDK sends
 * (`atomic_commit`), where an embedded one is the call made (`set`, `queue_enqueue`).
 */
conformance("metrics", (kv, as) => {
  const populate = async () => {
    await kv().set(["a"], { x: 1 });
    await kv().set(["b"], "text");
    await kv().get(["a"]);
    await kv().get(["missing"]);
    expect(await kv().count([])).toBe(2);
    expect(await collect(kv().list({ prefix: [] }))).toHaveLength(2);
    await kv().enqueue("later", { delay: 60_000 });
  };

  it("reports the seed's shape: operations, totals, the queue and the live entries' size", async () => {
    await populate();
    const metrics = await kv().metrics();
    expect(Object.keys(metrics).sort()).toEqual(["operations", "queue", "storage", "totals"]);
    const { operations } = metrics;
    expect(operations.get).toMatchObject({ count: 2, errors: 0 });
    expect(operations.count).toMatchObject({ count: 1, errors: 0 });
    expect(operations.list).toMatchObject({ count: 1, errors: 0 });
    const writes = ["set", "queue_enqueue", "atomic_commit"].map(
      (op) => operations[op]?.count ?? 0,
    );
    expect(writes.reduce((a, b) => a + b)).toBe(3);
    for (const summary of Object.values(operations)) {
      expect(summary.avgLatencyMs).toBeGreaterThanOrEqual(0);
    }
    const counts = Object.values(operations).map((o) => o.count);
    expect(metrics.totals).toEqual({ operations: counts.reduce((a, b) => a + b), errors: 0 });
    expect(metrics.queue).toEqual({ pending: 1, processing: 0, dlq: 0, total: 1 });
    const keyBytes = encodeKey(["a"]).length + encodeKey(["b"]).length;
    expect(metrics.storage).toEqual({
      entries: 2,
      sizeBytes: keyBytes + '{"x":1}'.length + '"text"'.length,
    });
  });

  it("answers the same as Prometheus text", async () => {
    await populate();
    const text = await kv().metrics("prometheus");
    expect(text).toContain("# TYPE keyval_operations_total counter");
    expect(text).toContain("# TYPE keyval_operation_duration_ms histogram");
    expect(text).toContain('keyval_operations_total{operation="get"} 2');
    expect(text).toContain('keyval_operation_duration_ms_count{operation="get"} 2');
    expect(text).toContain('keyval_errors_total{operation="get"} 0');
    expect(text).toContain('keyval_operation_errors_total{operation="get"} 0');
    expect(text).toContain("\nkeyval_entries_total 2\n");
    expect(text).toContain("\nkeyval_queue_pending 1\n");
  });

  it("refuses another format, and a principal that may not read the whole database", async () => {
    const wrong = await errorOf(() => kv().metrics("xml" as never));
    expect(wrong).toBeInstanceOf(KvError);
    expect((wrong as KvError).code).toBe("INVALID_ARGUMENT");
    const reader = await as([{ prefix: ["a"], access: "read" }, { queue: true }]);
    const refused = await errorOf(() => reader.metrics());
    expect((refused as KvError).code).toBe("FORBIDDEN");
  });
});
