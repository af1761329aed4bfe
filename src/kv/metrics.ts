/**
 * Operation metrics as the Buntime KeyVal seed reports them (reference/seed-systems.md §1.11):
 * per operation a count, errors and a latency histogram, as JSON (`kv.metrics()`, `GET
 * /api/metrics`) or in Prometheus's text format (`keyval_*`). Recording is a few additions on
 * plain numbers; prom-client, which formats the text, is loaded only when text is asked for.
 */
import type { Counter, Gauge, Registry } from "prom-client";
import type { Database, QueueStats, StorageStats } from "../engine/database.js";
import { DatabaseWrapper } from "../engine/database-wrapper.js";
import { KvError } from "../kv-error.js";

/** Latency buckets (ms) of every duration histogram: the seed's. */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
];

/** Prometheus's text format, as `GET /metrics` answers it. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Observations counted into buckets by upper bound (inclusive), with their count and sum. */
export class Histogram {
  count = 0;
  sum = 0;
  /** Observations per bucket, not cumulative; the last is above every bound (`+Inf`). */
  readonly counts: number[];

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    this.count++;
    this.sum += value;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
  }

  /** Adds `other`'s observations (same bounds) to this one's. */
  add(other: Histogram): void {
    this.count += other.count;
    this.sum += other.sum;
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
  }
}

/** The error code an operation failed with: a `KvError`'s code, or `INTERNAL`. */
export const codeOf = (error: unknown): string =>
  error instanceof KvError ? error.code : "INTERNAL";

/** One operation's record: how often it ran, how often it failed (by error code), how long it took. */
export class OperationStats {
  /** Times it ran, failures included. */
  count = 0;
  /** Failures by error code (`KvError.code`). */
  readonly errors = new Map<string, number>();
  readonly latency = new Histogram(LATENCY_BUCKETS_MS);

  /** Records a run that took `ms` and threw `error` (`undefined`: it succeeded). */
  record(ms: number, error?: unknown): void {
    this.count++;
    this.latency.observe(ms);
    if (error !== undefined) this.addError(codeOf(error), 1);
  }

  addError(code: string, n: number): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + n);
  }

  get errorCount(): number {
    let n = 0;
    for (const count of this.errors.values()) n += count;
    return n;
  }

  /** Adds `other`'s counts, errors and latencies to this one's. */
  add(other: OperationStats): void {
    this.count += other.count;
    for (const [code, n] of other.errors) this.addError(code, n);
    this.latency.add(other.latency);
  }
}

/**
 * Runs `work`, recording its duration and outcome in `stats`. With `then` rather than as an async
 * function, whose frame costs a call more instructions.
 */
export function measured<T>(stats: OperationStats, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  let running: Promise<T>;
  try {
    running = work();
  } catch (error) {
    stats.record(performance.now() - started, error);
    return Promise.reject(error);
  }
  return running.then(
    (result) => {
      stats.record(performance.now() - started);
      return result;
    },
    (error) => {
      stats.record(performance.now() - started, error);
      throw error;
    },
  );
}

/** Operations by name, each recorded on first use. */
export class OperationMetrics {
  readonly #operations = new Map<string, OperationStats>();

  /** The record of `name`, made on first use. */
  operation(name: string): OperationStats {
    let stats = this.#operations.get(name);
    if (stats === undefined) {
      stats = new OperationStats();
      this.#operations.set(name, stats);
    }
    return stats;
  }

  get operations(): ReadonlyMap<string, OperationStats> {
    return this.#operations;
  }
}

/** What `kv.metrics()` reports on one operation. */
export interface OperationSummary {
  readonly count: number;
  readonly errors: number;
  /** The mean duration (ms) of the runs since the process started (durations are not persisted). */
  readonly avgLatencyMs: number;
}

/**
 * What `kv.metrics()` and `GET /api/metrics` report, in the seed's shape: per operation (by its
 * seed name: `get`, `set`, `delete`, `list`, `atomic_commit`, `queue_enqueue`, …) and in total,
 * the queue's state, and the user keyspace's live entries and their size in bytes (keys plus
 * stored values). Embedded, the operations are this `Kv`'s own calls; remote, the server's
 * requests (docs/operations.md, Metrics).
 */
export interface KvMetrics {
  readonly operations: Readonly<Record<string, OperationSummary>>;
  readonly totals: { readonly operations: number; readonly errors: number };
  readonly queue: QueueStats;
  readonly storage: StorageStats;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** The seed's JSON of `operations`, with the database's `state`. */
export function metricsJson(
  operations: ReadonlyMap<string, OperationStats>,
  state: DatabaseState,
): KvMetrics {
  const summaries: Record<string, OperationSummary> = {};
  let total = 0;
  let errors = 0;
  for (const name of [...operations.keys()].sort()) {
    const stats = operations.get(name)!;
    const failed = stats.errorCount;
    const { count, sum } = stats.latency;
    summaries[name] = {
      count: stats.count,
      errors: failed,
      avgLatencyMs: count === 0 ? 0 : round3(sum / count),
    };
    total += stats.count;
    errors += failed;
  }
  return { operations: summaries, totals: { operations: total, errors }, ...state };
}

type PromClient = typeof import("prom-client");

let promClient: Promise<PromClient> | undefined;

/** A counter whose series are read from `series` when scraped. */
export function collectedCounter(
  client: PromClient,
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  series: () => Iterable<readonly [Record<string, string>, number]>,
): Counter {
  return new client.Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect(this: Counter) {
      this.reset();
      for (const [labels, value] of series()) this.inc(labels, value);
    },
  });
}

/** A gauge whose series are read from `series` when scraped. */
export function collectedGauge(
  client: PromClient,
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  series: () => Iterable<readonly [Record<string, string>, number]>,
): Gauge {
  return new client.Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect(this: Gauge) {
      this.reset();
      for (const [labels, value] of series()) this.set(labels, value);
    },
  });
}

/**
 * A histogram whose series are read from `series` when scraped. prom-client's own histogram
 * hashes and validates its labels on every observation (over a microsecond each: a few percent of
 * a point GET), so observations go to `Histogram`s and only their totals reach prom-client, as a
 * metric of the shape its registry formats (`get()` like its own metrics').
 */
export function collectedHistogram(
  registry: Registry,
  name: string,
  help: string,
  series: () => Iterable<readonly [Record<string, string>, Histogram]>,
): void {
  const values = () => {
    const out: { value: number; labels: Record<string, string | number>; metricName: string }[] =
      [];
    for (const [labels, h] of series()) {
      let cumulative = 0;
      h.bounds.forEach((le, i) => {
        cumulative += h.counts[i]!;
        out.push({ value: cumulative, labels: { ...labels, le }, metricName: `${name}_bucket` });
      });
      out.push({ value: h.count, labels: { ...labels, le: "+Inf" }, metricName: `${name}_bucket` });
      out.push({ value: h.sum, labels, metricName: `${name}_sum` });
      out.push({ value: h.count, labels, metricName: `${name}_count` });
    }
    return out;
  };
  const metric = {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    get: async () => ({ name, help, type: "histogram", aggregator: "sum", values: values() }),
  };
  registry.registerMetric(metric as never);
}

/** Series by one label, `operation`. */
function byOperation<T>(
  operations: ReadonlyMap<string, OperationStats>,
  value: (stats: OperationStats) => T,
): [Record<string, string>, T][] {
  return [...operations].map(([operation, stats]) => [{ operation }, value(stats)]);
}

/** The state `keyval_*` gauges show, read just before the text is made. */
export interface DatabaseState {
  readonly queue: QueueStats;
  readonly storage: StorageStats;
}

/**
 * Registers the seed's metrics (reference §1.11) in `registry`: `keyval_operations_total`,
 * `keyval_errors_total` and its documented name `keyval_operation_errors_total`,
 * `keyval_operation_duration_ms`, and the queue and storage gauges, read from `operations()` and
 * `state()` when scraped.
 */
export function registerSeedMetrics(
  client: PromClient,
  registry: Registry,
  operations: () => ReadonlyMap<string, OperationStats>,
  state: () => DatabaseState,
): void {
  collectedCounter(
    client,
    registry,
    "keyval_operations_total",
    "Operations performed, by operation.",
    ["operation"],
    () => byOperation(operations(), (s) => s.count),
  );
  for (const name of ["keyval_errors_total", "keyval_operation_errors_total"]) {
    collectedCounter(
      client,
      registry,
      name,
      "Operations failed, by operation.",
      ["operation"],
      () => byOperation(operations(), (s) => s.errorCount),
    );
  }
  collectedHistogram(
    registry,
    "keyval_operation_duration_ms",
    "Operation durations in milliseconds, by operation.",
    () => byOperation(operations(), (s) => s.latency),
  );
  const gauges: [string, string, (s: DatabaseState) => number][] = [
    ["keyval_queue_pending", "Queue messages waiting for delivery.", (s) => s.queue.pending],
    ["keyval_queue_processing", "Queue messages leased to a consumer.", (s) => s.queue.processing],
    ["keyval_queue_dlq", "Messages in the dead-letter queue.", (s) => s.queue.dlq],
    ["keyval_queue_total", "Queue and dead-letter messages.", (s) => s.queue.total],
    ["keyval_entries_total", "Live entries in the user keyspace.", (s) => s.storage.entries],
    [
      "keyval_storage_bytes",
      "Bytes of the live entries' keys and stored values.",
      (s) => s.storage.sizeBytes,
    ],
  ];
  for (const [name, help, value] of gauges) {
    collectedGauge(client, registry, name, help, [], () => [[{}, value(state())]]);
  }
}

/**
 * A prom-client registry of its own (never prom-client's global one: a process may hold many
 * servers and databases), made on the first scrape by `build`, which registers metrics that read
 * `state` as it was when `text(state)` was called.
 */
export class PrometheusRegistry {
  #registry: Promise<Registry> | undefined;
  #state: DatabaseState | undefined;

  constructor(
    private readonly build: (
      client: PromClient,
      registry: Registry,
      state: () => DatabaseState,
    ) => void,
  ) {}

  /** The metrics as Prometheus text, its gauges of the database showing `state`. */
  async text(state: DatabaseState): Promise<string> {
    this.#registry ??= (async () => {
      promClient ??= import("prom-client");
      const client = await promClient;
      const registry = new client.Registry();
      this.build(client, registry, () => this.#state!);
      return registry;
    })();
    const registry = await this.#registry;
    // Every metric's collect() runs before metrics() first awaits: the state is this call's.
    this.#state = state;
    return registry.metrics();
  }
}

/** The queue's and the storage's state of `database`, for gauges. */
export async function databaseState(database: Database): Promise<DatabaseState> {
  const [queue, storage] = await Promise.all([database.queueStats(), database.storageStats()]);
  return { queue, storage };
}

/**
 * `database` with its scans (`list`) or commits (`atomic_commit`) recorded: for the `Kv` calls
 * that reach their database later, page by page or at commit.
 */
export class RecordingDatabase extends DatabaseWrapper {
  constructor(
    database: Database,
    private readonly scans?: OperationStats,
    private readonly commits?: OperationStats,
  ) {
    super(database);
  }

  override scan(...args: Parameters<Database["scan"]>) {
    return this.scans ? measured(this.scans, () => super.scan(...args)) : super.scan(...args);
  }

  override commit(...args: Parameters<Database["commit"]>) {
    return this.commits
      ? measured(this.commits, () => super.commit(...args))
      : super.commit(...args);
  }
}
