/**
 * Watching keys, on the engine's change feed: the seed's callback form (prefixes or exact keys,
 * backpressure, resumable cursors) and Deno's stream form. Both subscribe first and read the
 * initial state after, so no change between the two is missed; changes already contained in the
 * initial state are dropped by versionstamp.
 */
import { type Duration, parseDuration } from "../codec/duration.js";
import { concatBytes, decodeKey, encodeReadKey, type KvKey } from "../codec/key-codec.js";
import { decodeValue } from "../codec/value-codec.js";
import { isVersionstamp } from "../codec/versionstamp.js";
import type {
  ChangeRecord,
  CommitChanges,
  Database,
  FeedRanges,
  Subscription,
} from "../engine/database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import type { KvEntryMaybe } from "./types.js";

export interface KvWatchOptions {
  /** Only the keys themselves, not the keys under them (default false: prefixes). */
  readonly exact?: boolean;
  /** Call back first with the current entries (default true; not when resuming from a `cursor`). */
  readonly emitInitial?: boolean;
  /** At most this many entries per prefix in the initial emission (default 100). */
  readonly limit?: number;
  /** `"sse"` (default): pushed as commits happen. `"polling"`: the change feed is read every `pollInterval`. */
  readonly mode?: "sse" | "polling";
  /** Default 1000 ms. */
  readonly pollInterval?: Duration;
  /**
   * While the callback is busy, changes wait coalesced per key (the last one wins), at most this
   * many keys; without it every commit's entries are delivered, in order.
   */
  readonly bufferSize?: number;
  /** When the buffer is full and another key changes: drop the oldest key (default) or the new one. */
  readonly overflowStrategy?: "drop-oldest" | "drop-newest";
  /** Resume after this versionstamp: every change since is delivered, commit by commit. */
  readonly cursor?: string;
  /**
   * The cursor is older than the retained change history. The watch then calls back with the
   * current entries (as an initial emission) and goes on from `oldest`.
   */
  readonly onHistoryLost?: (oldest: string) => void;
  /** A failure of the watch (it has stopped) or an error thrown by the callback. */
  readonly onError?: (error: unknown) => void;
}

export interface KvWatchInfo {
  /** The commit these entries come from (a resume cursor), or the snapshot's for initial ones. */
  readonly versionstamp: string | null;
  readonly initial: boolean;
}

export type KvWatchCallback<T = unknown> = (
  entries: KvEntryMaybe<T>[],
  info: KvWatchInfo,
) => unknown;

export interface KvWatchHandle {
  /** Resolves once the watch follows the feed (after the initial emission, if any). */
  readonly ready: Promise<void>;
  /** Resolves once the watch has stopped. */
  readonly closed: Promise<void>;
  /** The versionstamp of the last commit delivered or heartbeat seen: resume from it. */
  readonly cursor: string | null;
  stop(): void;
  [Symbol.dispose](): void;
}

const FF = [0xff];
const ZERO = [0x00];

function rangesOf(keys: readonly Uint8Array[], exact: boolean): FeedRanges {
  return {
    ranges: keys.map((k) => ({ start: k, end: concatBytes(k, exact ? ZERO : FF) })),
  };
}

function entryOf<T>(change: ChangeRecord): KvEntryMaybe<T> {
  const decoded = decodeKey(change.key);
  return change.entry
    ? {
        key: decoded,
        value: decodeValue(change.entry) as T,
        versionstamp: change.entry.versionstamp,
      }
    : { key: decoded, value: null, versionstamp: null };
}

/** Serializes deliveries to the callback, coalescing per key when a buffer size is set. */
class Delivery<T> {
  readonly #callback: KvWatchCallback<T>;
  readonly #onError: (error: unknown) => void;
  readonly #bufferSize: number | undefined;
  readonly #dropNewest: boolean;
  readonly #queue: { entries: KvEntryMaybe<T>[]; info: KvWatchInfo }[] = [];
  readonly #buffer = new Map<string, KvEntryMaybe<T>>();
  #bufferInfo: KvWatchInfo = { versionstamp: null, initial: false };
  #busy = false;
  stopped = false;

  constructor(callback: KvWatchCallback<T>, options: KvWatchOptions) {
    this.#callback = callback;
    this.#onError = options.onError ?? ((e) => console.error("cairn: watch callback failed:", e));
    this.#bufferSize = options.bufferSize;
    this.#dropNewest = options.overflowStrategy === "drop-newest";
  }

  push(entries: KvEntryMaybe<T>[], info: KvWatchInfo): void {
    if (this.stopped) return;
    if (this.#bufferSize === undefined) {
      this.#queue.push({ entries, info });
    } else {
      for (const entry of entries) {
        const id = JSON.stringify(entry.key, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
        if (this.#buffer.has(id))
          this.#buffer.delete(id); // re-inserted: last wins, newest position
        else if (this.#buffer.size >= this.#bufferSize) {
          if (this.#dropNewest) continue;
          this.#buffer.delete(this.#buffer.keys().next().value!);
        }
        this.#buffer.set(id, entry);
      }
      this.#bufferInfo = info;
    }
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (;;) {
        let next: { entries: KvEntryMaybe<T>[]; info: KvWatchInfo } | undefined;
        if (this.#bufferSize === undefined) next = this.#queue.shift();
        else if (this.#buffer.size > 0) {
          next = { entries: [...this.#buffer.values()], info: this.#bufferInfo };
          this.#buffer.clear();
        }
        if (next === undefined || this.stopped) return;
        try {
          await this.#callback(next.entries, next.info);
        } catch (error) {
          this.#onError(error);
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}

/** What `followKeys` hands on: raw changes, the initial state as changes too. */
export interface KeyFeedEvent {
  /** Missing keys of an initial emission, and deleted keys, have `entry: null`. */
  readonly changes: readonly ChangeRecord[];
  readonly versionstamp: string | null;
  readonly initial: boolean;
  /** The feed's commit object when `changes` is all of it (shared by every watcher of it). */
  readonly commit?: CommitChanges;
}

export type FollowKeysOptions = Omit<
  KvWatchOptions,
  "bufferSize" | "overflowStrategy" | "onError"
> & { readonly onError: (error: unknown) => void };

/** Validates watch options shared by every form; throws `INVALID_ARGUMENT`. */
function checkOptions(keys: readonly KvKey[], options: KvWatchOptions): void {
  if (keys.length > limits.maxFeedRanges) {
    throw new KvError("INVALID_ARGUMENT", `Too many keys watched (max ${limits.maxFeedRanges})`);
  }
  const { bufferSize, cursor } = options;
  if (bufferSize !== undefined && (!Number.isInteger(bufferSize) || bufferSize < 1)) {
    throw new KvError("INVALID_ARGUMENT", "bufferSize must be a positive integer");
  }
  if (cursor !== undefined && !isVersionstamp(cursor)) {
    throw new KvError("INVALID_ARGUMENT", "cursor must be a versionstamp (20 hex characters)");
  }
  const strategy = options.overflowStrategy ?? "drop-oldest";
  if (strategy !== "drop-oldest" && strategy !== "drop-newest") {
    throw new KvError(
      "INVALID_ARGUMENT",
      'overflowStrategy must be "drop-oldest" or "drop-newest"',
    );
  }
  const mode = options.mode ?? "sse";
  if (mode !== "sse" && mode !== "polling") {
    throw new KvError("INVALID_ARGUMENT", 'mode must be "sse" or "polling"');
  }
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > limits.maxReadEntries) {
    throw new KvError(
      "INVALID_ARGUMENT",
      `limit must be an integer from 1 to ${limits.maxReadEntries}`,
    );
  }
}

const hex = (key: Uint8Array) => Buffer.from(key).toString("hex");

/**
 * The core of every watch: subscribes to the change feed for `keys` (prefixes unless `exact`),
 * reads the initial state once subscribed, and hands `sink` each commit's changes in order,
 * without the ones the initial state already showed.
 */
export function followKeys(
  database: () => Database,
  keys: readonly KvKey[],
  sink: (event: KeyFeedEvent) => void,
  options: FollowKeysOptions,
): KvWatchHandle {
  checkOptions(keys, options);
  const { cursor, onError } = options;
  const pollMs = parseDuration(options.pollInterval ?? 1000, "pollInterval");
  const limit = options.limit ?? 100;
  const exact = options.exact === true;
  const encoded = keys.map(encodeReadKey);
  const ranges = rangesOf(encoded, exact);
  const db = database();

  let stopped = false;
  let position: string | null = cursor ?? null;
  /** Per key, the versionstamp the initial state showed; cleared once every commit is newer. */
  let shown = new Map<string, string>();
  let shownUpTo = "";
  let ready = false;
  const pending: CommitChanges[] = [];
  let resolveReady!: () => void;
  const readyPromise = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  let subscription: Subscription | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  const stop = () => {
    if (stopped) return;
    stopped = true;
    subscription?.close();
    clearTimeout(pollTimer);
    resolveReady();
    resolveClosed();
  };

  const deliver = (commit: CommitChanges) => {
    if (stopped) return;
    if (shown.size > 0 && commit.versionstamp > shownUpTo) shown = new Map();
    const changes =
      shown.size === 0
        ? commit.changes
        : commit.changes.filter((c) => {
            const seen = shown.get(hex(c.key));
            return seen === undefined || commit.versionstamp > seen;
          });
    if (changes.length === 0) return;
    sink({
      changes,
      versionstamp: commit.versionstamp,
      initial: false,
      ...(changes === commit.changes && { commit }),
    });
  };

  const onCommit = (commit: CommitChanges) => {
    position = commit.versionstamp;
    if (ready) deliver(commit);
    else pending.push(commit);
  };

  const live = () => {
    ready = true;
    for (const commit of pending.splice(0)) deliver(commit);
    resolveReady();
  };

  /** Hands on the current entries, then what arrived meanwhile. */
  const emitInitial = async () => {
    ready = false;
    try {
      const own = await db.get(encoded);
      const changes: ChangeRecord[] = exact
        ? own.map((raw, i) => ({ key: encoded[i]!, entry: raw && { ...raw, expiresAt: null } }))
        : own.flatMap((raw) => (raw ? [{ key: raw.key, entry: { ...raw, expiresAt: null } }] : []));
      if (!exact) {
        const scans = await Promise.all(
          ranges.ranges.map((r) =>
            db.scan([{ start: concatBytes(r.start, ZERO), end: r.end, limit, reverse: false }]),
          ),
        );
        for (const raw of scans.flatMap((scan) => scan[0]!)) {
          changes.push({ key: raw.key, entry: { ...raw, expiresAt: null } });
        }
      }
      shown = new Map();
      shownUpTo = "";
      for (const c of changes) {
        if (c.entry === null) continue;
        shown.set(hex(c.key), c.entry.versionstamp);
        if (c.entry.versionstamp > shownUpTo) shownUpTo = c.entry.versionstamp;
      }
      if (!stopped && (exact || changes.length > 0)) {
        sink({ changes, versionstamp: position, initial: true });
      }
    } catch (error) {
      onError(error);
    }
    live();
  };

  const lost = (oldest: string) => {
    position = oldest;
    options.onHistoryLost?.(oldest);
    return emitInitial();
  };

  const wantInitial = options.emitInitial !== false && cursor === undefined;
  if ((options.mode ?? "sse") === "sse") {
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      if (wantInitial) void emitInitial();
      else live();
    };
    subscription = db.follow(
      { ...ranges, cursor: position },
      {
        commit: (commit) => {
          start();
          onCommit(commit);
        },
        heartbeat: (versionstamp) => {
          position = versionstamp;
          start();
        },
        lost: (oldest) => void lost(oldest),
        error: (error) => {
          if (!stopped) onError(error);
          stop();
        },
      },
    );
  } else {
    const poll = async () => {
      try {
        const page = await db.changes({
          ...ranges,
          cursor: position,
          limit: limits.feedPageChanges,
        });
        if (stopped) return;
        if (page.lost !== undefined) await lost(page.lost);
        else {
          for (const commit of page.commits) onCommit(commit);
          position = page.cursor;
        }
      } catch (error) {
        onError(error);
        if (error instanceof KvError && error.status < 500) return stop();
      }
      if (!stopped) pollTimer = setTimeout(poll, pollMs);
    };
    void (async () => {
      try {
        position ??= (await db.changes({ ...ranges, cursor: null, limit: 1 })).cursor;
      } catch (error) {
        onError(error);
        return stop();
      }
      if (wantInitial) await emitInitial();
      else live();
      if (!stopped) pollTimer = setTimeout(poll, pollMs);
    })();
  }

  return {
    ready: readyPromise,
    closed,
    get cursor() {
      return position;
    },
    stop,
    [Symbol.dispose]: stop,
  };
}

/** The seed's `kv.watch(keyOrKeys, callback, options)`: decoded entries, with backpressure. */
export function watchKeys<T>(
  database: () => Database,
  keys: readonly KvKey[],
  callback: KvWatchCallback<T>,
  options: KvWatchOptions = {},
): KvWatchHandle {
  if (typeof callback !== "function") {
    throw new KvError("INVALID_ARGUMENT", "watch needs a callback function");
  }
  const delivery = new Delivery<T>(callback, options);
  const handle = followKeys(
    database,
    keys,
    (event) => {
      const entries = event.changes.map((c) => entryOf<T>(c));
      delivery.push(entries, { versionstamp: event.versionstamp, initial: event.initial });
    },
    { ...options, onError: options.onError ?? ((e) => console.error("cairn: watch failed:", e)) },
  );
  void handle.closed.then(() => {
    delivery.stopped = true;
  });
  return handle;
}

/**
 * Deno's `kv.watch(keys, { raw })`: a stream whose first chunk holds the current entry of every
 * key and whose later chunks follow every change to any of them. Without `raw`, a chunk is sent
 * only when some key's versionstamp changed.
 */
export function watchStream<T extends readonly unknown[]>(
  database: () => Database,
  keys: readonly KvKey[],
  options: { raw?: boolean } = {},
): ReadableStream<{ [K in keyof T]: KvEntryMaybe<T[K]> }> {
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every(Array.isArray)) {
    throw new KvError("INVALID_ARGUMENT", "watch needs an array of keys");
  }
  if (keys.length > limits.maxReadRanges) {
    throw new KvError("INVALID_ARGUMENT", `Too many keys (max ${limits.maxReadRanges})`);
  }
  let handle: KvWatchHandle | undefined;
  let cancelled = false;
  type Chunk = { [K in keyof T]: KvEntryMaybe<T[K]> };
  return new ReadableStream<Chunk>({
    start(controller) {
      const state: KvEntryMaybe[] = [];
      const encoded = keys.map(encodeReadKey);
      const index = new Map(encoded.map((k, i) => [Buffer.from(k).toString("hex"), i]));
      let last: string | undefined;
      handle = watchKeys(
        database,
        keys,
        async (entries, info) => {
          const changed = new Set<number>();
          for (const entry of entries) {
            const i = index.get(Buffer.from(encodeReadKey(entry.key)).toString("hex"));
            if (i === undefined) continue;
            state[i] = { ...entry, key: keys[i]! };
            changed.add(i);
          }
          // A key shown before may have expired since, before any sweep says so: read it again.
          const shown = state.flatMap((e, i) =>
            changed.has(i) || e.versionstamp === null ? [] : [i],
          );
          if (!info.initial && shown.length > 0) {
            const now = await database().get(shown.map((i) => encoded[i]!));
            now.forEach((raw, j) => {
              const i = shown[j]!;
              if (raw === null) state[i] = { key: keys[i]!, value: null, versionstamp: null };
            });
          }
          if (cancelled) return;
          const stamps = state.map((e) => e.versionstamp ?? "").join(",");
          if (!options.raw && !info.initial && stamps === last) return;
          last = stamps;
          controller.enqueue([...state] as unknown as Chunk);
        },
        {
          exact: true,
          onError: (error) => {
            if (handle !== undefined) controller.error(error);
          },
        },
      );
    },
    cancel() {
      cancelled = true;
      handle?.stop();
    },
  });
}
