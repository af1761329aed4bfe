/**
 * A `Database` on a Cairn server, over the database protocol (protocol/database-wire.ts). Errors
 * come back as the server's `{ error, code }` and are rebuilt as the same `KvError`.
 *
 * Requests go through undici's `request` on a keep-alive pool of this database's own: the same
 * HTTP client as Node's `fetch`, without the Fetch API's objects, 3–5× the requests a second.
 */
import { Agent, Client, type Dispatcher, request } from "undici";
import {
  type ChangesPage,
  type ChangesRequest,
  type CheckedCommit,
  type ClaimRequest,
  type CommitResult,
  type CountRange,
  commitMutations,
  type Database,
  type DeadLetter,
  type FeedListener,
  type FeedRanges,
  handedOut,
  type KeyRange,
  type LeasedMessage,
  type QueueStats,
  type RawEntry,
  type SearchIndex,
  type SearchRequest,
  type StorageStats,
  type Subscription,
} from "../engine/database.js";
import type { KvMetricsFormat } from "../kv/kv.js";
import type { KvMetrics } from "../kv/metrics.js";
import { errorStatus, KvError, type KvErrorCode } from "../kv-error.js";
import {
  commitToWire,
  countToWire,
  entryFromWire,
  keysToWire,
  rangesToWire,
  type WireEntry,
} from "../protocol/database-wire.js";
import { commitChangesFromWire, feedRangesToWire, type WireCommit } from "../protocol/feed-wire.js";
import {
  deadLetterFromWire,
  leasedFromWire,
  type WireDeadLetter,
  type WireLeased,
} from "../protocol/queue-wire.js";
import {
  indexFromServer,
  indexPrefixToWire,
  indexToWire,
  searchToWire,
  type WireIndex,
} from "../protocol/search-wire.js";
import { SseParser } from "../protocol/sse.js";

/**
 * The routes that only read: a read that fails because its kept-alive connection broke (the server
 * closed it, or a `--workers` worker holding it died) is sent once more, on a connection of its own.
 * Nothing else is: a commit or a claim may have been applied before the connection broke.
 */
const READS = new Set([
  "/db/get",
  "/db/scan",
  "/db/count",
  "/db/changes",
  "/db/list-indexes",
  "/db/search",
  "/db/queue-stats",
  "/db/storage-stats",
  "/db/dead-letters",
]);
/** undici's codes for a connection that broke under a request (not one that could not open). */
const BROKEN_CONNECTION = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"]);

/** Reconnection delays of a change-feed stream: doubling from 100 ms up to 5 s. */
const reconnectDelay = (attempt: number) => Math.min(100 * 2 ** attempt, 5000);

/** The error a server's answer stands for: its `{ error, code }`, or one made from the status. */
export function errorFromResponse(base: string, status: number, text: string): KvError {
  let json: { error?: string; code?: string } | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: described below
  }
  const code = json?.code && json.code in errorStatus ? (json.code as KvErrorCode) : undefined;
  return new KvError(
    code ?? (status >= 500 ? "UNAVAILABLE" : "INTERNAL"),
    json?.error ?? `The server at ${base} answered ${status}: ${text.slice(0, 200)}`,
  );
}

/**
 * The API base for a server URL: `/api` of the server (`http://host:port`) or of one of its named
 * databases (`http://host:port/db/orders`), or the path the URL names (the seed's `/keyval/api`).
 */
export function apiBase(url: string): string {
  const parsed = new URL(url);
  const path = parsed.pathname.replace(/\/+$/, "");
  const named = /^\/db\/[^/]+$/.test(path);
  return `${parsed.origin}${path === "" || named ? `${path}/api` : path}`;
}

export class RemoteDatabase implements Database {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  /** Open change-feed streams, closed with the database. */
  readonly #subscriptions = new Set<Subscription>();
  readonly #agent = new Agent();
  /** Claims in flight: `close()` ends their waits. */
  readonly #claims = new Set<AbortController>();

  constructor(url: string, accessToken: string | undefined) {
    this.#base = apiBase(url);
    this.#headers = { "content-type": "application/json" };
    if (accessToken) this.#headers.authorization = `Bearer ${accessToken}`;
  }

  async #request(
    path: string,
    body: unknown,
    signal?: AbortSignal,
    headers?: Record<string, string>,
  ): Promise<Dispatcher.ResponseData> {
    const send = (dispatcher: Dispatcher) =>
      request(`${this.#base}${path}`, {
        method: "POST",
        headers: headers ? { ...this.#headers, ...headers } : this.#headers,
        body: JSON.stringify(body),
        signal,
        dispatcher,
      });
    let response: Dispatcher.ResponseData;
    try {
      response = await send(this.#agent).catch((e) => {
        const broken = BROKEN_CONNECTION.has((e as { code?: string }).code ?? "");
        if (!broken || !READS.has(path) || signal?.aborted) throw e;
        // On a connection of its own: the pool's others may have broken too.
        const once = new Client(new URL(this.#base).origin);
        const sent = send(once);
        void sent.finally(() => once.close()).catch(() => {});
        return sent;
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new KvError(
        "UNAVAILABLE",
        `Cannot reach the Cairn server at ${this.#base}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      throw errorFromResponse(this.#base, response.statusCode, await response.body.text());
    }
    return response;
  }

  async #post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.#request(path, body, signal);
    const text = await response.body.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw errorFromResponse(this.#base, response.statusCode, text);
    }
  }

  async get(keys: readonly Uint8Array[]): Promise<(RawEntry | null)[]> {
    const { entries } = await this.#post<{ entries: (WireEntry | null)[] }>(
      "/db/get",
      keysToWire(keys),
    );
    return entries.map((e) => (e ? entryFromWire(e) : null));
  }

  async scan(ranges: readonly KeyRange[]): Promise<RawEntry[][]> {
    const result = await this.#post<{ ranges: WireEntry[][] }>("/db/scan", rangesToWire(ranges));
    return result.ranges.map((entries) => entries.map(entryFromWire));
  }

  async count(range: CountRange): Promise<number> {
    return (await this.#post<{ count: number }>("/db/count", countToWire(range))).count;
  }

  commit(commit: CheckedCommit): Promise<CommitResult> {
    return this.#post<CommitResult>("/db/commit", commitToWire(commit));
  }

  follow(request: FeedRanges & { cursor: string | null }, listener: FeedListener): Subscription {
    const controller = new AbortController();
    let position = request.cursor;
    const subscription = {
      close: () => {
        this.#subscriptions.delete(subscription);
        controller.abort();
      },
    };
    this.#subscriptions.add(subscription);
    const fail = (error: unknown) => {
      subscription.close();
      listener.error(error);
    };
    // One stream at a time; when it breaks, reconnect from the last position the server named.
    const run = async () => {
      for (let attempt = 0; !controller.signal.aborted; attempt++) {
        try {
          const resume = position === null ? undefined : { "last-event-id": position };
          const response = await this.#request(
            "/db/follow",
            { ...feedRangesToWire(request), cursor: position },
            controller.signal,
            resume,
          );
          const parser = new SseParser();
          const decoder = new TextDecoder();
          for await (const chunk of response.body as AsyncIterable<Buffer>) {
            for (const event of parser.push(decoder.decode(chunk, { stream: true }))) {
              if (controller.signal.aborted) return;
              attempt = 0;
              if (event.id !== undefined) position = event.id;
              if (event.event === "commit") {
                listener.commit(commitChangesFromWire(JSON.parse(event.data) as WireCommit));
              } else if (event.event === "heartbeat") listener.heartbeat(event.id!);
              else if (event.event === "lost") listener.lost(event.id!);
              else if (event.event === "error") {
                const { error, code } = JSON.parse(event.data);
                return fail(errorFromResponse(this.#base, 400, JSON.stringify({ error, code })));
              }
            }
          }
        } catch (error) {
          if (controller.signal.aborted) return;
          // Bad requests stay bad; only transient faults are retried.
          if (error instanceof KvError && error.status < 500) return fail(error);
        }
        await new Promise((resolve) => setTimeout(resolve, reconnectDelay(attempt)));
      }
    };
    void run();
    return subscription;
  }

  async changes(request: ChangesRequest): Promise<ChangesPage> {
    const page = await this.#post<ChangesPage & { commits: WireCommit[] }>("/db/changes", {
      ...feedRangesToWire(request),
      cursor: request.cursor,
      limit: request.limit,
    });
    return { ...page, commits: page.commits.map(commitChangesFromWire) };
  }

  /**
   * A claim is never cut short over the wire: a server may have leased messages in the instant the
   * connection broke, and they would then wait out their lease. When `signal` aborts, the caller
   * gets `[]` at once and the request runs on, releasing what it leases (`handedOut`). Its
   * settlements are committed once more first, so that `stop()` ends with them written (settling
   * a message twice is harmless: the second finds it settled, or leased anew, and does nothing).
   */
  async claim(request: ClaimRequest, signal?: AbortSignal): Promise<LeasedMessage[]> {
    const closing = new AbortController(); // only `close()` cuts it short
    this.#claims.add(closing);
    const answer = this.#post<{ messages: WireLeased[] }>("/db/claim", request, closing.signal)
      .then(({ messages }) => messages.map(leasedFromWire))
      .finally(() => this.#claims.delete(closing));
    if (signal === undefined) return answer;
    let stopWaiting = () => {};
    const abandoned = new Promise<[]>((resolve) => {
      stopWaiting = () => resolve([]);
      if (signal.aborted) stopWaiting();
      else signal.addEventListener("abort", stopWaiting, { once: true });
    });
    const messages = await Promise.race([answer, abandoned]).finally(() =>
      signal.removeEventListener("abort", stopWaiting),
    );
    if (!signal.aborted) return messages;
    void answer.then((late) => handedOut(this, late, signal)).catch(() => {});
    if (request.settle?.length) await commitMutations(this, request.settle);
    return [];
  }

  async createIndex(index: SearchIndex): Promise<void> {
    await this.#post("/db/create-index", indexToWire(index));
  }

  async removeIndex(prefix: Uint8Array): Promise<boolean> {
    const body = indexPrefixToWire(prefix);
    return (await this.#post<{ removed: boolean }>("/db/remove-index", body)).removed;
  }

  async listIndexes(): Promise<SearchIndex[]> {
    const { indexes } = await this.#post<{ indexes: WireIndex[] }>("/db/list-indexes", {});
    return indexes.map(indexFromServer);
  }

  async search(request: SearchRequest): Promise<RawEntry[]> {
    const { entries } = await this.#post<{ entries: WireEntry[] }>(
      "/db/search",
      searchToWire(request),
    );
    return entries.map(entryFromWire);
  }

  queueStats(): Promise<QueueStats> {
    return this.#post<QueueStats>("/db/queue-stats", {});
  }

  storageStats(): Promise<StorageStats> {
    return this.#post<StorageStats>("/db/storage-stats", {});
  }

  async deadLetters(
    query: { limit: number; offset: number } | { id: string },
  ): Promise<DeadLetter[]> {
    const { deadLetters } = await this.#post<{ deadLetters: WireDeadLetter[] }>(
      "/db/dead-letters",
      query,
    );
    return deadLetters.map(deadLetterFromWire);
  }

  /**
   * The server's metrics (`GET /api/metrics`, or `/api/metrics/prometheus` as text), in the
   * seed's flat shape: the server's nested copy of its operations (`operations.operations`,
   * `operations.totals`) is left out.
   */
  async metrics(format: KvMetricsFormat): Promise<KvMetrics | string> {
    let response: Dispatcher.ResponseData;
    const path = format === "prometheus" ? "/metrics/prometheus" : "/metrics";
    try {
      response = await request(`${this.#base}${path}`, {
        headers: this.#headers,
        dispatcher: this.#agent,
      });
    } catch (e) {
      throw new KvError(
        "UNAVAILABLE",
        `Cannot reach the Cairn server at ${this.#base}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const text = await response.body.text();
    if (response.statusCode !== 200) throw errorFromResponse(this.#base, response.statusCode, text);
    if (format === "prometheus") return text;
    const { operations, ...rest } = JSON.parse(text) as KvMetrics;
    const { operations: _nested, totals: _totals, ...flat } = operations as Record<string, never>;
    return { operations: flat, ...rest };
  }

  async close(): Promise<void> {
    for (const subscription of [...this.#subscriptions]) subscription.close();
    for (const claim of this.#claims) claim.abort();
    await this.#agent.close(); // once requests in flight are answered
  }
}
