/**
 * The `Backend` methods the SQL backends (sqlite/, postgres/) implement alike: each hands the call
 * to a function of one of the backend's parallel files (change-feed.ts, search.ts, queue.ts), with
 * the backend's connection, through the backend's `run`. Each backend implements the rest: its
 * reads, its commit path, `onCommit` and `close`.
 */
import type {
  Backend,
  DeadLetter,
  QueueStats,
  RawEntry,
  SearchIndex,
  SearchRequest,
  StoredChanges,
} from "./backend.js";

/** A result at once (SQLite) or later (PostgreSQL). */
type Eventually<T> = T | Promise<T>;

type DeadLetterQuery = Parameters<Backend["deadLetters"]>[0];

/** The functions of a backend's change-feed.ts, search.ts and queue.ts, on its connection `C`. */
export interface SqlBackendFiles<C> {
  readonly changeFeed: {
    readChanges(c: C, after: string, limit: number): Eventually<StoredChanges>;
  };
  readonly search: {
    createIndex(c: C, index: SearchIndex): Eventually<void>;
    removeIndex(c: C, prefix: Uint8Array): Eventually<boolean>;
    listIndexes(c: C): Eventually<SearchIndex[]>;
    search(c: C, request: SearchRequest, now: number): Eventually<RawEntry[]>;
  };
  readonly queue: {
    queueStats(c: C, now: number): Eventually<QueueStats>;
    deadLetters(c: C, query: DeadLetterQuery): Eventually<DeadLetter[]>;
  };
}

export abstract class SqlBackend<C> {
  protected readonly connection: C;
  readonly #files: SqlBackendFiles<C>;

  protected constructor(connection: C, files: SqlBackendFiles<C>) {
    this.connection = connection;
    this.#files = files;
  }

  /** Runs `work`, mapping driver errors to `KvError`. */
  protected abstract run<T>(work: () => Eventually<T>): Promise<T>;

  readChanges(after: string, limit: number): Promise<StoredChanges> {
    return this.run(() => this.#files.changeFeed.readChanges(this.connection, after, limit));
  }

  createIndex(index: SearchIndex): Promise<void> {
    return this.run(() => this.#files.search.createIndex(this.connection, index));
  }

  removeIndex(prefix: Uint8Array): Promise<boolean> {
    return this.run(() => this.#files.search.removeIndex(this.connection, prefix));
  }

  listIndexes(): Promise<SearchIndex[]> {
    return this.run(() => this.#files.search.listIndexes(this.connection));
  }

  search(request: SearchRequest, now: number): Promise<RawEntry[]> {
    return this.run(() => this.#files.search.search(this.connection, request, now));
  }

  queueStats(now: number): Promise<QueueStats> {
    return this.run(() => this.#files.queue.queueStats(this.connection, now));
  }

  deadLetters(query: DeadLetterQuery): Promise<DeadLetter[]> {
    return this.run(() => this.#files.queue.deadLetters(this.connection, query));
  }
}
