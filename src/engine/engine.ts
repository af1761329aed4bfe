/**
 * The local engine: a `Database` over a storage `Backend`. It owns server time, turns mutations
 * into storage mutations, groups concurrent commits into one storage transaction (group commit),
 * and sweeps expired entries.
 *
 * Group commit: commits arriving while the event loop is busy are queued and flushed together on
 * the next turn (`setImmediate`), so many concurrent writers share one transaction and one fsync,
 * while each keeps its own checks, its own versionstamp and its own outcome.
 */
import type {
  Backend,
  KeyRange,
  RawEntry,
  StorageCommit,
  StorageMutation,
} from "../backends/backend.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import type { Commit, CommitResult, Database, Mutation } from "./database.js";
import { readModifyWrite } from "./mutations.js";

interface Pending {
  /** Builds the storage commit at flush time, so expiry is computed from the commit's `now`. */
  readonly build: (now: number) => StorageCommit;
  readonly resolve: (result: CommitResult) => void;
  readonly reject: (error: unknown) => void;
}

function toStorage(m: Mutation, now: number): StorageMutation {
  switch (m.type) {
    case "set":
      return {
        type: "set",
        key: m.key,
        value: m.value,
        expiresAt: m.expireIn === undefined ? null : now + m.expireIn,
        suffixVersionstamp: m.suffixVersionstamp === true,
      };
    case "delete":
    case "deleteRange":
      return m;
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

export class Engine implements Database {
  readonly #backend: Backend;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweepAt = Number.POSITIVE_INFINITY;

  constructor(backend: Backend) {
    this.#backend = backend;
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

  commit(commit: Commit): Promise<CommitResult> {
    return this.#enqueue((now) => ({
      checks: commit.checks,
      mutations: commit.mutations.map((m) => toStorage(m, now)),
    }));
  }

  #enqueue(build: (now: number) => StorageCommit): Promise<CommitResult> {
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
      try {
        outcomes = await this.#backend.commit(commits, now);
      } catch (e) {
        for (const m of members) m.reject(e);
        continue;
      }
      let expiry = Number.POSITIVE_INFINITY;
      outcomes.forEach((outcome, i) => {
        const member = members[i]!;
        if (outcome.ok === true) {
          expiry = Math.min(expiry, earliestExpiry(commits[i]!));
          member.resolve({
            ok: true,
            versionstamp: outcome.versionstamp,
            deletedCount: outcome.deleted,
          });
        } else if (outcome.ok === false) {
          member.resolve({ ok: false });
        } else {
          member.reject(outcome.error);
        }
      });
      if (expiry < this.#sweepAt) this.#scheduleSweep(expiry);
    }
  }

  #scheduleSweep(at: number): void {
    if (this.#closed) return;
    clearTimeout(this.#sweepTimer);
    this.#sweepAt = Math.min(at, Date.now() + limits.sweepIntervalMs);
    this.#sweepTimer = setTimeout(() => this.#sweep(), Math.max(0, this.#sweepAt - Date.now()));
    this.#sweepTimer.unref();
  }

  async #sweep(): Promise<void> {
    this.#sweepAt = Number.POSITIVE_INFINITY;
    try {
      const purge = { type: "purgeExpired", limit: limits.sweepBatch } as const;
      const result = await this.#enqueue(() => ({ checks: [], mutations: [purge] }));
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
    await this.#flush();
    await this.#backend.close();
  }
}
