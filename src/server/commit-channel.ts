/**
 * Commits applied by one writer on behalf of others, over a message channel: a server's writer
 * thread (writer.ts) for its HTTP thread, a `--workers` primary for its workers (workers.ts).
 * SQLite has one writer at a time; the one that commits keeps a warm page cache and never waits
 * for another's lock, and the ones that serve requests never wait for an fsync.
 *
 * The channel carries structured clones (a MessagePort, or IPC with `serialization: "advanced"`):
 * commits go as the engine's own `Commit` objects, already validated by the sender's faces.
 */
import type { Commit, CommitResult, Database } from "../engine/database.js";
import { KvError, type KvErrorCode } from "../kv-error.js";
import { isPostgresUrl, type KvOptions, openDatabase } from "../sdk/kv.js";

/** Whether the storage at `data` takes its commits from one writer: a SQLite file (see above). */
export const hasOneWriter = (data: string): boolean => data !== ":memory:" && !isPostgresUrl(data);

/** Where commits are sent: `commitVia(path, commit)` applies `commit` to the database at `path`. */
export type CommitVia = (path: string, commit: Commit) => Promise<CommitResult>;

/** One end of a channel: a MessagePort, a worker thread, a cluster worker or its process. */
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
    readonly commit: Commit;
  }[];
}

type Answer =
  | { readonly id: number; readonly result: CommitResult }
  | { readonly id: number; readonly error: { readonly code: string; readonly message: string } };

/** The writer's answers to one `Commits`, in its order. */
interface Committed {
  readonly cairn: "committed";
  readonly answers: readonly Answer[];
}

export const isMessage = <T extends { cairn: string }>(
  message: unknown,
  kind: T["cairn"],
): message is T => (message as T | null)?.cairn === kind;

/**
 * The sending end: a `CommitVia` that sends the commits of one event-loop turn in one message, or
 * in messages of `perMessage` as they come, and resolves each with the writer's answer.
 * `fail(error)` rejects every commit still waiting (the writer is gone); later commits reject with
 * the same error.
 *
 * A writer thread takes 8 per message: a turn that parses many requests then sends their commits
 * as it goes, so that the writer starts on the first ones while this side parses the rest
 * (measured: one message per turn left both sides idle half the time, each waiting for the other;
 * 8 kept them both busy, 1 and 4 spent more on messages than they gained). Over IPC, where each
 * message costs system calls on both sides, one message per turn did better.
 */
export function commitSender(
  channel: Channel,
  perMessage = Number.POSITIVE_INFINITY,
): {
  commitVia: CommitVia;
  /** Sends the commits queued so far now, ahead of any message sent after. */
  flush(): void;
  fail(error: Error): void;
} {
  const waiting = new Map<number, { resolve(r: CommitResult): void; reject(e: Error): void }>();
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
      else promise?.resolve(answer.result);
    }
  });
  const send = () => {
    const commits = queued;
    queued = [];
    if (commits.length === 0 || failed !== undefined) return;
    try {
      channel.send({ cairn: "commits", commits } satisfies Commits);
    } catch (error) {
      for (const { id } of commits) {
        waiting
          .get(id)
          ?.reject(
            new KvError(
              "INTERNAL",
              `A commit could not reach the writer: ${(error as Error).message}`,
            ),
          );
        waiting.delete(id);
      }
    }
  };
  return {
    commitVia: (path, commit) =>
      new Promise((resolve, reject) => {
        if (failed !== undefined) return reject(failed);
        if (queued.length === 0) setImmediate(send);
        const id = nextId++;
        waiting.set(id, { resolve, reject });
        queued.push({ id, path, commit });
        if (queued.length >= perMessage) send();
      }),
    flush: send,
    fail(error) {
      failed ??= error;
      for (const { reject } of waiting.values()) reject(failed);
      waiting.clear();
    },
  };
}

/**
 * The writing end: applies the commits arriving on `channel` to `databaseAt(path)` and answers
 * each message with one. The commits of a message go to the engine together, so they share its
 * group commit. `settled()` resolves once every message received so far is answered.
 */
export function commitApplier(
  channel: Channel,
  databaseAt: (path: string) => Database,
): { settled(): Promise<void> } {
  const applying = new Set<Promise<void>>();
  const apply = async ({ commits }: Commits) => {
    const answers = await Promise.all(
      commits.map(async ({ id, path, commit }): Promise<Answer> => {
        try {
          return { id, result: await databaseAt(path).commit(commit) };
        } catch (error) {
          const e = error instanceof KvError ? error : new KvError("INTERNAL", String(error));
          return { id, error: { code: e.code, message: e.message } };
        }
      }),
    );
    channel.send({ cairn: "committed", answers } satisfies Committed);
  };
  channel.on("message", (message) => {
    if (!isMessage<Commits>(message, "commits")) return;
    const applied = apply(message).finally(() => applying.delete(applied));
    applying.add(applied);
  });
  return {
    settled: async () => {
      await Promise.all(applying);
    },
  };
}

/** The writer's databases: one engine per path, opened on first use with `options`. */
export class WriterDatabases {
  readonly #open = new Map<string, Database>();

  constructor(private readonly options: KvOptions) {}

  at(path: string): Database {
    let database = this.#open.get(path);
    if (database === undefined) {
      database = openDatabase(path, this.options);
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
