/**
 * Writes applied by one writer on behalf of others, over a message channel: a server's writer
 * thread (writer.ts) for its HTTP thread, a `--workers` primary for its workers (workers.ts).
 * SQLite has one writer at a time; the one that writes keeps a warm page cache and never waits
 * for another's lock, and the ones that serve requests never wait for an fsync. The writes are
 * commits and queue claims (a claim leases messages and settles earlier ones: it writes too, and
 * waits for a message where commits are made, so that they wake it at once).
 *
 * The channel carries structured clones (a MessagePort, or IPC with `serialization: "advanced"`):
 * commits go as the engine's own `Commit` objects, already validated by the sender's faces.
 */
import type {
  CheckedCommit,
  ClaimRequest,
  CommitResult,
  Database,
  LeasedMessage,
} from "../engine/database.js";
import { isPostgresUrl, type LocalOptions, openLocalDatabase } from "../kv/local-database.js";
import { KvError, type KvErrorCode } from "../kv-error.js";

/** Whether the storage at `data` takes its commits from one writer: a SQLite file (see above). */
export const hasOneWriter = (data: string): boolean => data !== ":memory:" && !isPostgresUrl(data);

/** Where writes are sent, each for the database at `path`. */
export interface WritesVia {
  commit(path: string, commit: CheckedCommit): Promise<CommitResult>;
  /** `Database.claim` there; `signal` aborts it there. */
  claim(path: string, request: ClaimRequest, signal?: AbortSignal): Promise<LeasedMessage[]>;
}

/** One end of a channel: a MessagePort, a worker thread, a forked worker process or its parent. */
export interface Channel {
  /** Drops a message to an end that is gone; throws only for a message it cannot carry. */
  send(message: unknown): void;
  on(event: "message", listener: (message: unknown) => void): void;
}

/** Commits sent in one event-loop turn, each for the database at `path`. */
interface Commits {
  readonly cairn: "commits";
  readonly commits: readonly {
    readonly id: number;
    readonly path: string;
    /** Checked by the sender: a message passes on the type's promise. */
    readonly commit: CheckedCommit;
  }[];
}

/** One claim, answered on its own: it may wait long for a message. */
interface Claim {
  readonly cairn: "claim";
  readonly id: number;
  readonly path: string;
  readonly request: ClaimRequest;
}

/** The claim `id` is no longer wanted (its request's client went away). */
interface AbortClaim {
  readonly cairn: "abort";
  readonly id: number;
}

type Answer =
  | { readonly id: number; readonly result: CommitResult | LeasedMessage[] }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string } };

/** The writer's answers to one `Commits` (in its order) or to one `Claim`. */
interface Committed {
  readonly cairn: "committed";
  readonly answers: readonly Answer[];
}

export const isMessage = <T extends { cairn: string }>(
  message: unknown,
  kind: T["cairn"],
): message is T => (message as T | null)?.cairn === kind;

/**
 * The sending end: `WritesVia` over `channel`. Commits of one event-loop turn go in one message,
 * or in messages of `perMessage` as they come; each claim goes at once in a message of its own,
 * after the commits queued before it.
 * Each write resolves with the writer's answer. `fail(error)` rejects every write still waiting
 * (the writer is gone); later writes reject with the same error.
 *
 * A writer thread takes 8 commits per message: a turn that parses many requests then sends their
 * commits as it goes, so that the writer starts on the first ones while this side parses the rest
 * (measured: one message per turn left both sides idle half the time, each waiting for the other;
 * 8 kept them both busy, 1 and 4 spent more on messages than they gained). Over IPC, where each
 * message costs system calls on both sides, one message per turn did better.
 */
export function commitSender(
  channel: Channel,
  perMessage = Number.POSITIVE_INFINITY,
): {
  writes: WritesVia;
  /** Sends the commits queued so far now, ahead of any message sent after. */
  flush(): void;
  fail(error: Error): void;
} {
  type Waiting = { resolve(result: never): void; reject(e: Error): void };
  const waiting = new Map<number, Waiting>();
  let queued: Commits["commits"][number][] = [];
  let nextId = 0;
  let failed: Error | undefined;
  channel.on("message", (message) => {
    if (!isMessage<Committed>(message, "committed")) return;
    for (const answer of message.answers) {
      const promise = waiting.get(answer.id);
      waiting.delete(answer.id);
      if ("error" in answer)
        promise?.reject(new KvError(answer.error.code as KvErrorCode, answer.error.message));
      else promise?.resolve(answer.result as never);
    }
  });
  const unreachable = (error: unknown) =>
    new KvError("INTERNAL", `A write could not reach the writer: ${(error as Error).message}`);
  const send = () => {
    const commits = queued;
    queued = [];
    if (commits.length === 0 || failed !== undefined) return;
    try {
      channel.send({ cairn: "commits", commits } satisfies Commits);
    } catch (error) {
      for (const { id } of commits) {
        waiting.get(id)?.reject(unreachable(error));
        waiting.delete(id);
      }
    }
  };
  /** Registers a write waiting for its answer; its id. */
  const wait = (promise: Waiting) => {
    const id = nextId++;
    waiting.set(id, promise);
    return id;
  };
  return {
    writes: {
      commit: (path, commit) =>
        new Promise((resolve, reject) => {
          if (failed !== undefined) return reject(failed);
          if (queued.length === 0) setImmediate(send);
          queued.push({ id: wait({ resolve, reject }), path, commit });
          if (queued.length >= perMessage) send();
        }),
      claim: (path, request, signal) =>
        new Promise((resolve, reject) => {
          if (failed !== undefined) return reject(failed);
          const abort = () =>
            waiting.has(id) && channel.send({ cairn: "abort", id } satisfies AbortClaim);
          // Off the signal once answered: a queue consumer's one signal sees claim after claim.
          const answered =
            <T>(settle: (value: T) => void) =>
            (value: T) => {
              signal?.removeEventListener("abort", abort);
              settle(value);
            };
          const id = wait({ resolve: answered(resolve), reject: answered(reject) });
          send(); // the commits before it go first: it may be waiting for what they enqueue
          try {
            channel.send({ cairn: "claim", id, path, request } satisfies Claim);
          } catch (error) {
            waiting.delete(id);
            return reject(unreachable(error));
          }
          if (signal?.aborted) abort();
          else signal?.addEventListener("abort", abort, { once: true });
        }),
    },
    flush: send,
    fail(error) {
      failed ??= error;
      for (const { reject } of waiting.values()) reject(failed);
      waiting.clear();
    },
  };
}

/** An answer carrying `error`, as a `KvError`'s code and message. */
function errorAnswer(id: number, error: unknown): Answer {
  const e = error instanceof KvError ? error : new KvError("INTERNAL", String(error));
  return { id, error: { code: e.code, message: e.message } };
}

/**
 * The writing end: applies the writes arriving on `channel` to `databaseAt(path)` and answers each
 * message with one. The commits of a message go to the engine together, so they share its group
 * commit. `settled()` resolves once every commit received so far is answered (claims end when
 * their database closes, if not before); `abandon()` aborts the claims waiting for a message, as
 * their sender is gone.
 */
export function commitApplier(
  channel: Channel,
  databaseAt: (path: string) => Database,
): { settled(): Promise<void>; abandon(): void } {
  const applying = new Set<Promise<void>>();
  const claims = new Map<number, AbortController>();
  const apply = async ({ commits }: Commits) => {
    const answers = await Promise.all(
      commits.map(async ({ id, path, commit }): Promise<Answer> => {
        try {
          return { id, result: await databaseAt(path).commit(commit) };
        } catch (error) {
          return errorAnswer(id, error);
        }
      }),
    );
    channel.send({ cairn: "committed", answers } satisfies Committed);
  };
  const claim = async ({ id, path, request }: Claim) => {
    const aborted = new AbortController();
    claims.set(id, aborted);
    let answer: Answer;
    try {
      answer = { id, result: await databaseAt(path).claim(request, aborted.signal) };
    } catch (error) {
      answer = errorAnswer(id, error);
    } finally {
      claims.delete(id);
    }
    channel.send({ cairn: "committed", answers: [answer] } satisfies Committed);
  };
  channel.on("message", (message) => {
    if (isMessage<Commits>(message, "commits")) {
      const applied = apply(message).finally(() => applying.delete(applied));
      applying.add(applied);
    } else if (isMessage<Claim>(message, "claim")) void claim(message);
    else if (isMessage<AbortClaim>(message, "abort")) claims.get(message.id)?.abort();
  });
  return {
    settled: async () => {
      await Promise.all(applying);
    },
    abandon: () => {
      for (const aborted of claims.values()) aborted.abort();
    },
  };
}

/** The writer's databases: one engine per path, opened on first use with `options`. */
export class WriterDatabases {
  readonly #open = new Map<string, Database>();

  constructor(private readonly options: LocalOptions) {}

  at(path: string): Database {
    let database = this.#open.get(path);
    if (database === undefined) {
      database = openLocalDatabase(path, this.options);
      this.#open.set(path, database);
    }
    return database;
  }

  /** Closes every database, letting pending commits finish. */
  async close(): Promise<void> {
    const closed = await Promise.allSettled([...this.#open.values()].map((db) => db.close()));
    this.#open.clear();
    const failed = closed.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
  }
}
