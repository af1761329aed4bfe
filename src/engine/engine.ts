/**
 * The local engine: a `Database` over a storage `Backend`. It owns server time, turns mutations
 * into storage mutations (the queue's retry policy included), groups concurrent commits into one
 * storage transaction (group commit), sweeps expired entries and old change records, hands the
 * change feed to watchers (change-feed.ts), and wakes waiting queue consumers when a commit, a
 * timer or another process makes a message claimable.
 *
 * Group commit: commits arriving while the event loop is busy are queued and flushed together on
 * the next turn (`setImmediate`), so many concurrent writers share one transaction and one fsync,
 * while each keeps its own checks, its own versionstamp and its own outcome.
 */
import type {
  Backend,
  Claimed,
  CountRange,
  DeadLetter,
  KeyRange,
  LeasedMessage,
  QueueStats,
  RawEntry,
  SearchIndex,
  SearchRequest,
  Settlement,
  StorageCommit,
  StorageMutation,
  StorageStats,
} from "../backends/backend.js";
import { resolvePlaceholders } from "../codec/server-time.js";
import { decodeValue, encodeValue } from "../codec/value-codec.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { ChangeFeed } from "./change-feed.js";
import {
  type ChangesPage,
  type ChangesRequest,
  type CheckedCommit,
  type ClaimRequest,
  type CommitResult,
  commitMutations,
  type Database,
  type FeedListener,
  type FeedRanges,
  handedOut,
  type Mutation,
  type Subscription,
} from "./database.js";
import { readModifyWrite, sum } from "./mutations.js";

export interface EngineOptions {
  /** How long change records are kept for resuming watches (ms). */
  readonly changeRetentionMs?: number;
  /**
   * Whether this engine removes expired entries and old change records in the background
   * (default true). Reads hide expired entries either way.
   */
  readonly sweep?: boolean;
  /** Told of every group commit this engine makes. */
  readonly commitObserver?: CommitObserver;
}

/** What watches an engine's group commits (the server's metrics). */
export interface CommitObserver {
  /** A group of `commits` commits (claims and sweeps included) took `ms` in the storage. */
  committed(commits: number, ms: number): void;
}

type Outcome = CommitResult & { readonly claimed?: Claimed };

interface Pending {
  /** Builds the storage commit at flush time, so expiry is computed from the commit's `now`. */
  readonly build: (now: number) => StorageCommit;
  readonly resolve: (result: Outcome) => void;
  readonly reject: (error: unknown) => void;
}

/** What a failed delivery leads to: another attempt after the next backoff, or the dead-letter queue. */
function afterFailure(message: LeasedMessage, error: string, now: number): Settlement {
  const delay = message.backoffSchedule[message.attempts - 1];
  return delay === undefined
    ? { type: "deadLetter", error }
    : { type: "retry", readyAt: now + delay };
}

function toStorage(m: Mutation, now: number): StorageMutation {
  switch (m.type) {
    case "enqueue":
      return {
        type: "enqueue",
        message: {
          id: m.id,
          value: m.value,
          attempts: 0,
          backoffSchedule: m.backoffSchedule,
          keysIfUndelivered: m.keysIfUndelivered,
          createdAt: now,
        },
        readyAt: now + m.delay,
      };
    case "settle": {
      const error = m.error ?? "The handler failed";
      return {
        type: "settle",
        id: m.id,
        lease: m.lease,
        decide: (message) => (m.ok ? { type: "ack" } : afterFailure(message, error, now)),
      };
    }
    case "release":
      return { type: "settle", id: m.id, lease: m.lease, decide: () => ({ type: "release" }) };
    case "renewLease":
      return { type: "renewLease", id: m.id, lease: m.lease, leaseUntil: now + m.leaseMs };
    case "requeue":
    case "deleteDeadLetter":
      return m;
    case "set":
      return {
        type: "set",
        key: m.key,
        value: m.resolveNow ? encodeValue(resolvePlaceholders(decodeValue(m.value), now)) : m.value,
        expiresAt: m.expireIn === undefined ? null : now + m.expireIn,
        suffixVersionstamp: m.suffixVersionstamp === true,
      };
    case "delete":
    case "deleteRange":
      return m;
    case "sum": {
      const { value, bounds } = m;
      return { type: "modify", key: m.key, apply: (current) => sum(current, value, bounds) };
    }
    default: {
      const combine = readModifyWrite[m.type];
      const operand = m.value;
      return { type: "modify", key: m.key, apply: (current) => combine(current, operand) };
    }
  }
}

/** The earliest expiry a storage commit sets, or `Infinity`. */
function earliestExpiry(commit: StorageCommit): number {
  let at = Number.POSITIVE_INFINITY;
  for (const m of commit.mutations)
    if (m.type === "set" && m.expiresAt !== null && m.expiresAt < at) at = m.expiresAt;
  return at;
}

/** Whether committing `m` can make a queue message claimable. */
const feedsQueue = (m: StorageMutation) =>
  m.type === "enqueue" || m.type === "settle" || m.type === "requeue";

export class Engine implements Database {
  readonly #backend: Backend;
  readonly #feed: ChangeFeed;
  readonly #retentionMs: number;
  readonly #sweeps: boolean;
  readonly #observer: CommitObserver | undefined;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweepAt = Number.POSITIVE_INFINITY;
  /** Consumers waiting for a claimable message, and a count of wake-ups to notice missed ones. */
  readonly #claimWaiters = new Set<() => void>();
  #queueWakes = 0;
  #queueTimer: NodeJS.Timeout | undefined;
  #queueTimerAt = Number.POSITIVE_INFINITY;
  #stopListening: (() => void) | undefined;

  constructor(backend: Backend, options: EngineOptions = {}) {
    this.#backend = backend;
    this.#feed = new ChangeFeed(backend);
    this.#retentionMs = options.changeRetentionMs ?? limits.changeRetentionMs;
    this.#sweeps = options.sweep !== false;
    this.#observer = options.commitObserver;
    if (!this.#sweeps) return;
    this.#scheduleSweep(Date.now() + limits.sweepIntervalMs);
    backend.nextExpiry().then(
      (at) => at !== null && this.#scheduleSweep(at),
      () => {}, // the periodic sweep retries
    );
  }

  get(keys: readonly Uint8Array[]): Promise<(RawEntry | null)[]> {
    return this.#backend.get(keys, Date.now());
  }

  scan(ranges: readonly KeyRange[]): Promise<RawEntry[][]> {
    return this.#backend.scan(ranges, Date.now());
  }

  count(range: CountRange): Promise<number> {
    return this.#backend.count(range, Date.now());
  }

  commit(commit: CheckedCommit): Promise<CommitResult> {
    return this.#enqueue((now) => ({
      checks: commit.checks,
      mutations: commit.mutations.map((m) => toStorage(m, now)),
    }));
  }

  follow(request: FeedRanges & { cursor: string | null }, listener: FeedListener): Subscription {
    if (this.#closed) throw new KvError("CLOSED", "The database is closed");
    this.#listenForOthers();
    return this.#feed.follow(request, listener);
  }

  changes(request: ChangesRequest): Promise<ChangesPage> {
    return this.#feed.changes(request);
  }

  async claim(request: ClaimRequest, signal?: AbortSignal): Promise<LeasedMessage[]> {
    this.#listenForOthers();
    const deadline = Date.now() + request.waitMs;
    const claim = { type: "claim", limit: request.limit, leaseMs: request.leaseMs } as const;
    let settle = request.settle ?? [];
    for (;;) {
      const wakes = this.#queueWakes;
      const settling = settle;
      settle = [];
      // A consumer that stopped takes nothing more, but what it handled is still settled.
      if (signal?.aborted) {
        if (settling.length > 0) await commitMutations(this, settling);
        return [];
      }
      const { claimed } = await this.#enqueue((now) => ({
        checks: [],
        mutations: [...settling.map((m) => toStorage(m, now)), claim],
      }));
      if (claimed!.messages.length > 0) return handedOut(this, claimed!.messages, signal);
      if (this.#closed || signal?.aborted || Date.now() >= deadline) return [];
      if (claimed!.nextAt !== null) this.#wakeQueueAt(claimed!.nextAt);
      if (wakes !== this.#queueWakes) continue; // woken while claiming: look again
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          this.#claimWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, deadline - Date.now());
        signal?.addEventListener("abort", done);
        this.#claimWaiters.add(done);
      });
    }
  }

  createIndex(index: SearchIndex): Promise<void> {
    return this.#backend.createIndex(index);
  }

  removeIndex(prefix: Uint8Array): Promise<boolean> {
    return this.#backend.removeIndex(prefix);
  }

  listIndexes(): Promise<SearchIndex[]> {
    return this.#backend.listIndexes();
  }

  search(request: SearchRequest): Promise<RawEntry[]> {
    return this.#backend.search(request, Date.now());
  }

  queueStats(): Promise<QueueStats> {
    return this.#backend.queueStats(Date.now());
  }

  storageStats(): Promise<StorageStats> {
    return this.#backend.storageStats(Date.now());
  }

  deadLetters(query: { limit: number; offset: number } | { id: string }): Promise<DeadLetter[]> {
    return this.#backend.deadLetters(query);
  }

  /** Commits made by other processes on the same storage wake watchers and consumers here too. */
  #listenForOthers(): void {
    this.#stopListening ??= this.#backend.onCommit(() => this.committedElsewhere());
  }

  /**
   * Wakes watchers and queue consumers for a commit that another engine made on this storage
   * (a server's writer thread), at once rather than when `Backend.onCommit` notices it.
   */
  committedElsewhere(): void {
    void this.#feed.wake();
    this.#wakeQueue();
  }

  #wakeQueue(): void {
    this.#queueWakes++;
    for (const waiter of [...this.#claimWaiters]) waiter();
  }

  /** Wakes consumers when a delayed or retried message, or an expired lease, becomes claimable. */
  #wakeQueueAt(at: number): void {
    if (at >= this.#queueTimerAt) return;
    clearTimeout(this.#queueTimer);
    this.#queueTimerAt = at;
    this.#queueTimer = setTimeout(
      () => {
        this.#queueTimerAt = Number.POSITIVE_INFINITY;
        this.#wakeQueue();
      },
      Math.max(0, at - Date.now()),
    );
    this.#queueTimer.unref();
  }

  #enqueue(build: (now: number) => StorageCommit): Promise<Outcome> {
    if (this.#closed) return Promise.reject(new KvError("CLOSED", "The database is closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ build, resolve, reject });
      if (this.#queue.length === 1 && !this.#flushing) setImmediate(() => this.#flush());
    });
  }

  #flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = undefined;
      // Commits queued after the drain's last look but before this callback still need a flush.
      if (this.#queue.length > 0) setImmediate(() => this.#flush());
    });
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const group = this.#queue.splice(0, limits.maxGroupCommit);
      const now = Date.now();
      const commits: StorageCommit[] = [];
      const members: Pending[] = [];
      for (const pending of group) {
        try {
          commits.push(pending.build(now));
          members.push(pending);
        } catch (e) {
          pending.reject(e);
        }
      }
      let outcomes: Awaited<ReturnType<Backend["commit"]>>;
      const started = this.#observer && performance.now();
      try {
        outcomes = await this.#backend.commit(commits, now);
      } catch (e) {
        for (const m of members) m.reject(e);
        continue;
      }
      if (started !== undefined)
        this.#observer!.committed(commits.length, performance.now() - started);
      let expiry = Number.POSITIVE_INFINITY;
      let committed = false;
      let queued = false;
      outcomes.forEach((outcome, i) => {
        const member = members[i]!;
        if (outcome.ok === true) {
          committed = true;
          queued ||= commits[i]!.mutations.some(feedsQueue);
          expiry = Math.min(expiry, earliestExpiry(commits[i]!));
          member.resolve({
            ok: true,
            versionstamp: outcome.versionstamp,
            deletedCount: outcome.deletedCount,
            ...(outcome.claimed && { claimed: outcome.claimed }),
          });
        } else if (outcome.ok === false) {
          member.resolve({ ok: false });
        } else {
          member.reject(outcome.error);
        }
      });
      if (expiry < this.#sweepAt) this.#scheduleSweep(expiry);
      if (committed) void this.#feed.wake();
      if (queued) this.#wakeQueue();
    }
  }

  #scheduleSweep(at: number): void {
    if (this.#closed || !this.#sweeps) return;
    clearTimeout(this.#sweepTimer);
    this.#sweepAt = Math.min(at, Date.now() + limits.sweepIntervalMs);
    this.#sweepTimer = setTimeout(() => this.#sweep(), Math.max(0, this.#sweepAt - Date.now()));
    this.#sweepTimer.unref();
  }

  async #sweep(): Promise<void> {
    this.#sweepAt = Number.POSITIVE_INFINITY;
    try {
      const purge = { type: "purgeExpired", limit: limits.sweepBatch } as const;
      const result = await this.#enqueue((now) => ({
        checks: [],
        mutations: [
          purge,
          {
            type: "pruneChanges",
            before: now - this.#retentionMs,
            keep: limits.maxRetainedChanges,
          },
        ],
      }));
      const more = result.ok && result.deletedCount >= limits.sweepBatch;
      const next = more ? Date.now() : await this.#backend.nextExpiry();
      this.#scheduleSweep(next ?? Date.now() + limits.sweepIntervalMs);
    } catch {
      this.#scheduleSweep(Date.now() + limits.sweepIntervalMs);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    clearTimeout(this.#queueTimer);
    this.#stopListening?.();
    this.#feed.close();
    this.#wakeQueue();
    await this.#flush();
    await this.#backend.close();
  }
}
