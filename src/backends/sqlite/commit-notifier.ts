/**
 * `onCommit` on SQLite: other processes' commits to the same file, seen by polling
 * `PRAGMA data_version` while anyone listens, and at once through a watch on the WAL file.
 */
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import type { Statement } from "./statements.js";

/** Delays (ms) of the looks for another process's commit after its WAL write (see #watchWal). */
const WAL_RECHECKS_MS = [1, 3, 10];

export class CommitNotifier {
  readonly #db: BetterSqlite3.Database;
  /** `SQL.dataVersion`. */
  readonly #dataVersion: Statement;
  readonly #pollMs: number;
  readonly #listeners = new Set<() => void>();
  #pollTimer: NodeJS.Timeout | undefined;
  #walWatcher: FSWatcher | undefined;
  #checkScheduled = false;
  #polledDataVersion = -1;

  /** Looks for other processes' commits every `pollMs` while anyone listens. */
  constructor(db: BetterSqlite3.Database, dataVersion: Statement, pollMs: number) {
    this.#db = db;
    this.#dataVersion = dataVersion;
    this.#pollMs = pollMs;
  }

  /** `Backend.onCommit`. */
  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (this.#pollTimer === undefined) {
      this.#polledDataVersion = this.#dataVersion.get() as number;
      this.#pollTimer = setInterval(() => this.#poll(), this.#pollMs);
      this.#pollTimer.unref();
      this.#walWatcher = this.#watchWal();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /** Stops looking and forgets every listener. */
  close(): void {
    this.#stop();
    this.#listeners.clear();
  }

  #stop(): void {
    clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#walWatcher?.close();
    this.#walWatcher = undefined;
  }

  /**
   * Every commit appends to the WAL file, so a change to it (this connection's own writes
   * included) is a cue to look for other processes' commits: in the next event-loop turn, then,
   * until one shows, after each of `WAL_RECHECKS_MS` (the file changes as the commit's frames are
   * written, before its fsync and the WAL index make it visible).
   * The directory is watched rather than the file, which SQLite may delete and create again.
   */
  #watchWal(): FSWatcher | undefined {
    if (this.#db.memory) return undefined;
    const wal = `${basename(this.#db.name)}-wal`;
    try {
      const watcher = watch(dirname(this.#db.name), { persistent: false }, (_event, file) => {
        if (file !== wal || this.#checkScheduled) return;
        this.#checkScheduled = true;
        const check = (attempt: number) => {
          const found = this.#poll();
          const delay = WAL_RECHECKS_MS[attempt];
          if (found || delay === undefined || this.#walWatcher !== watcher) {
            this.#checkScheduled = false;
          } else setTimeout(() => check(attempt + 1), delay).unref();
        };
        setImmediate(() => check(0));
      });
      watcher.on("error", () => watcher.close()); // the poll carries on alone
      return watcher;
    } catch {
      return undefined; // no file events here (e.g. the inotify limit): the poll alone
    }
  }

  /**
   * Tells the listeners if another connection committed since the last look (`PRAGMA data_version`
   * changes only then); returns whether one did.
   */
  #poll(): boolean {
    try {
      const dataVersion = this.#dataVersion.get() as number;
      if (dataVersion === this.#polledDataVersion) return false;
      this.#polledDataVersion = dataVersion;
    } catch {
      return false; // closed or busy: the next poll tries again
    }
    for (const listener of this.#listeners) listener();
    return true;
  }
}
