/**
 * The server's metrics, in one place: every request of every face counted, timed and its errors
 * counted by code (`cairn_requests_total`, `cairn_request_duration_ms`,
 * `cairn_request_errors_total`, by `face` and `operation`), the seed's `keyval_*` over the faces
 * of its API, gauges of connections, streams, the queue and the storage, and the engine's group
 * commits. Recording is plain arithmetic on records resolved once per route; prom-client reads
 * them when scraped. docs/operations.md ("Metrics") lists every metric.
 */

import type { Database } from "../engine/database.js";
import type { CommitObserver } from "../engine/engine.js";
import type { Face, Route } from "../faces/face.js";
import { Reply } from "../faces/http-io.js";
import {
  collectedCounter,
  collectedGauge,
  collectedHistogram,
  databaseState,
  Histogram,
  LATENCY_BUCKETS_MS,
  metricsJson,
  OperationMetrics,
  type OperationStats,
  PROMETHEUS_CONTENT_TYPE,
  PrometheusRegistry,
  registerSeedMetrics,
} from "../kv/metrics.js";
import { noAuth } from "./auth.js";

/**
 * The faces whose operations are the seed's `keyval_*` (and `GET /api/metrics`'s): its JSON API,
 * and Cairn's SDK wire, through which the SDK's remote `Kv` (the seed's client) calls.
 */
const KEYVAL_FACES = ["json-api", "database-protocol"];

/** Bounds of the commit-batch histogram: commits per group commit. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** What the server's gauges read: its listener's connections and its open streams. */
export interface ServerGauges {
  connections(): number;
  streams(): number;
}

export class ServerMetrics {
  /** Requests by face, then by operation. */
  readonly #faces = new Map<string, OperationMetrics>();
  readonly #batches = new Histogram(BATCH_BUCKETS);
  readonly #commitLatency = new Histogram(LATENCY_BUCKETS_MS);
  readonly #prometheus: PrometheusRegistry;

  /** Told of the group commits of the databases this server opens. */
  readonly commits: CommitObserver = {
    committed: (commits, ms) => {
      this.#batches.observe(commits);
      this.#commitLatency.observe(ms);
    },
  };

  constructor(gauges: ServerGauges) {
    this.#prometheus = new PrometheusRegistry((client, registry, state) => {
      const requests = () => this.#requests();
      collectedCounter(
        client,
        registry,
        "cairn_requests_total",
        "Requests answered, by face and operation.",
        ["face", "operation"],
        () => requests().map(([labels, s]) => [labels, s.count] as const),
      );
      collectedCounter(
        client,
        registry,
        "cairn_request_errors_total",
        "Requests answered with an error, by face, operation and error code.",
        ["face", "operation", "code"],
        () =>
          requests().flatMap(([labels, s]) =>
            [...s.errors].map(([code, n]) => [{ ...labels, code }, n] as const),
          ),
      );
      collectedHistogram(
        registry,
        "cairn_request_duration_ms",
        "Time to answer a request in milliseconds (a stream's: until it started), by face and operation.",
        () => requests().map(([labels, s]) => [labels, s.latency] as const),
      );
      registerSeedMetrics(client, registry, () => this.keyvalOperations(), state);
      collectedGauge(
        client,
        registry,
        "cairn_connections_open",
        "Connections the server's listener holds open.",
        [],
        () => [[{}, gauges.connections()]],
      );
      collectedGauge(
        client,
        registry,
        "cairn_streams_open",
        "Streaming responses open: watches, queue listeners, change feeds.",
        [],
        () => [[{}, gauges.streams()]],
      );
      collectedHistogram(
        registry,
        "cairn_commit_batch_size",
        "Commits per group commit (one storage transaction) of this process's engines.",
        () => [[{}, this.#batches]],
      );
      collectedHistogram(
        registry,
        "cairn_commit_duration_ms",
        "Time a group commit took in the storage, in milliseconds.",
        () => [[{}, this.#commitLatency]],
      );
    });
  }

  /** The record of `face`'s requests for `operation`: resolved once per route, when mounted. */
  route(face: string, operation: string): OperationStats {
    let operations = this.#faces.get(face);
    if (operations === undefined) {
      operations = new OperationMetrics();
      this.#faces.set(face, operations);
    }
    return operations.operation(operation);
  }

  /** Every record, by face and operation. */
  get faces(): ReadonlyMap<string, OperationMetrics> {
    return this.#faces;
  }

  #requests(): [Record<string, string>, OperationStats][] {
    return [...this.#faces].flatMap(([face, operations]) =>
      [...operations.operations].map(
        ([operation, stats]): [Record<string, string>, OperationStats] => [
          { face, operation },
          stats,
        ],
      ),
    );
  }

  /** The seed's operations: those of the faces of its API, summed by operation. */
  keyvalOperations(): ReadonlyMap<string, OperationStats> {
    const sum = new OperationMetrics();
    for (const face of KEYVAL_FACES) {
      for (const [name, stats] of this.#faces.get(face)?.operations ?? []) {
        sum.operation(name).add(stats);
      }
    }
    return sum.operations;
  }

  /**
   * The seed's JSON (`KvMetrics`) with `database`'s queue and storage; its operations also carry
   * the seed server's nested copy, `operations.operations` and `operations.totals`, which its
   * own server answers where its client reads the flat form (reference §6.1, 10).
   */
  async json(database: Database): Promise<unknown> {
    const metrics = metricsJson(this.keyvalOperations(), await databaseState(database));
    return {
      ...metrics,
      operations: {
        ...metrics.operations,
        operations: metrics.operations,
        totals: metrics.totals,
      },
    };
  }

  /** Every metric as Prometheus text, its queue and storage gauges `database`'s. */
  async prometheus(database: Database): Promise<string> {
    return this.#prometheus.text(await databaseState(database));
  }
}

/** How the metrics routes are reached. */
export interface MetricsRouteOptions {
  /** Serve them without a token (for a Prometheus scraper on a trusted network); default: the admin's only. */
  readonly public?: boolean;
}

const prometheusReply = (text: string) => new Reply(200, PROMETHEUS_CONTENT_TYPE, text);

/**
 * The metrics routes: `GET /metrics` (Prometheus text, the default database's gauges) at the
 * root, and the seed's `GET /api/metrics` (JSON) and `/api/metrics/prometheus` under the JSON
 * API's bases, also under `/db/<name>` with that database's queue and storage. The admin token
 * only, unless `public`.
 */
export function metricsFaces(metrics: ServerMetrics, options: MetricsRouteOptions = {}): Face[] {
  const authenticate = options.public ? () => noAuth.authenticate(undefined) : undefined;
  const route = (path: string, operation: string, handle: Route["handle"]): Route => ({
    method: "GET",
    path,
    access: "admin",
    operation,
    handle,
  });
  return [
    {
      name: "metrics",
      bases: [""],
      perDatabase: false,
      routes: [
        route("/metrics", "prometheus", async ({ database }) =>
          prometheusReply(await metrics.prometheus(database)),
        ),
      ],
      ...(authenticate && { authenticate }),
    },
    {
      name: "metrics-api",
      bases: ["/api", "/keyval/api"],
      routes: [
        route("/metrics", "json", ({ database }) => metrics.json(database)),
        route("/metrics/prometheus", "prometheus", async ({ database }) =>
          prometheusReply(await metrics.prometheus(database)),
        ),
      ],
      ...(authenticate && { authenticate }),
    },
  ];
}
