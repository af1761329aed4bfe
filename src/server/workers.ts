/**
 * `cairn serve --workers <n>`: n processes serving one port, to use more than one CPU core.
 * node:cluster's primary accepts each connection and hands it to a worker; every worker runs the
 * whole server (`startServer`) over the same storage, which is built to be shared by processes
 * like separate nodes: one SQLite file (WAL; versionstamps continue across connections; other
 * processes' commits wake watchers and consumers) or one PostgreSQL database.
 *
 * On SQLite the workers read the file themselves but send their commits to the primary, which
 * applies them through one engine (group commit across all workers, one fsync per group). SQLite
 * has one writer at a time, and a connection's page cache starts cold after another connection's
 * commit: several processes committing in turn would wait for each other's lock and re-read the
 * B-tree each time. PostgreSQL takes concurrent writers as they are.
 *
 * The primary serves no HTTP. It prepares the storage once, starts the workers, reports the URL
 * when all of them listen, replaces a worker that dies, and stops them all on close.
 */
import cluster, { type Worker } from "node:cluster";
import { once } from "node:events";
import type { Commit, CommitResult, Database } from "../engine/database.js";
import { KvError, type KvErrorCode } from "../kv-error.js";
import { commitFromWire, commitToWire } from "../protocol/database-wire.js";
import { isPostgresUrl, type KvOptions, openDatabase, openKv } from "../sdk/kv.js";
import { type CairnServer, type ServerOptions, startServer } from "./server.js";

/** What a worker tells the primary once its server listens. */
interface Listening {
  readonly cairn: "listening";
  readonly url: string;
  readonly port: number;
}

/** Commits a worker sends in one event-loop turn, each for the database at `path`. */
interface Commits {
  readonly cairn: "commits";
  readonly commits: readonly {
    readonly id: number;
    readonly path: string;
    readonly commit: unknown;
  }[];
}

/** The primary's answers, in any order. */
interface Committed {
  readonly cairn: "committed";
  readonly results: readonly (
    | { readonly id: number; readonly result: CommitResult }
    | { readonly id: number; readonly error: { readonly code: string; readonly message: string } }
  )[];
}

const isMessage = <T extends { cairn: string }>(message: unknown, kind: T["cairn"]): message is T =>
  (message as T | null)?.cairn === kind;

/** Whether a database at `data` sends its commits to the primary (see above). */
const commitsThroughPrimary = (data: string) => data !== ":memory:" && !isPostgresUrl(data);

/**
 * In a worker: a commit function for the database at a path, which sends the commits of one
 * event-loop turn to the primary in one message and resolves each with the primary's answer.
 */
function primaryCommits(): (path: string, commit: Commit) => Promise<CommitResult> {
  const waiting = new Map<number, { resolve(r: CommitResult): void; reject(e: Error): void }>();
  let queued: Commits["commits"][number][] = [];
  let nextId = 0;
  process.on("message", (message: unknown) => {
    if (!isMessage<Committed>(message, "committed")) return;
    for (const answer of message.results) {
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
    process.send!({ cairn: "commits", commits } satisfies Commits);
  };
  return (path, commit) =>
    new Promise((resolve, reject) => {
      if (queued.length === 0) setImmediate(send);
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      queued.push({ id, path, commit: commitToWire(commit) });
    });
}

/**
 * In the primary: applies the commits `worker` sends, through one database per path (opened on
 * first use with `options`, shared by all workers), and answers each message in one.
 */
function applyCommits(worker: Worker, databases: Map<string, Database>, options: KvOptions): void {
  const databaseAt = (path: string) => {
    let database = databases.get(path);
    if (database === undefined) {
      database = openDatabase(path, options);
      databases.set(path, database);
    }
    return database;
  };
  worker.on("message", async (message: unknown) => {
    if (!isMessage<Commits>(message, "commits")) return;
    const results = await Promise.all(
      message.commits.map(async ({ id, path, commit }): Promise<Committed["results"][number]> => {
        try {
          return { id, result: await databaseAt(path).commit(commitFromWire(commit)) };
        } catch (error) {
          const e = error instanceof KvError ? error : new KvError("INTERNAL", String(error));
          return { id, error: { code: e.code, message: e.message } };
        }
      }),
    );
    if (worker.isConnected()) worker.send({ cairn: "committed", results } satisfies Committed);
  });
}

/** Whether this process is a worker started by `startWorkers`. */
export const isWorker = (): boolean => cluster.isWorker;

/**
 * In a worker: starts the server and tells the primary where it listens. A worker stops on
 * SIGTERM from the primary; it ignores SIGINT, which a terminal sends to the whole process group,
 * so that the primary alone decides when and how to stop.
 */
export async function startWorkerServer(options: ServerOptions): Promise<CairnServer> {
  process.on("SIGINT", () => {});
  let server: CairnServer;
  try {
    server = await startServer({
      ...options,
      commitVia: commitsThroughPrimary(options.data) ? primaryCommits() : undefined,
    });
  } catch (error) {
    // Let this process end with its error; the primary learns of it from the exit code.
    process.channel?.unref();
    throw error;
  }
  process.send!({ cairn: "listening", url: server.url, port: server.port } satisfies Listening);
  return {
    ...server,
    async close() {
      await server.close();
      // The channel to the primary is what keeps a worker alive (the primary holds the port).
      process.disconnect();
    },
  };
}

/** The workers of one `cairn serve --workers`, as a server. */
export interface WorkerPool extends CairnServer {
  /** Rejects if the pool stops serving on its own: every worker gone, and none could be started. */
  readonly failure: Promise<never>;
}

/**
 * In the primary: prepares the storage (creating or migrating it once, so that workers do not
 * race to; on SQLite, opening the database the workers commit through), then starts `count`
 * workers running this same command line with `env` added, and resolves once all of them listen.
 * One that exits before it listens stops them all and rejects (it printed its reason itself). A
 * worker that exits later is replaced.
 */
export async function startWorkers(
  count: number,
  options: ServerOptions,
  env: Record<string, string>,
): Promise<WorkerPool> {
  if (options.data === ":memory:") {
    throw new KvError(
      "INVALID_ARGUMENT",
      "--workers needs a data file or a postgres:// URL: an in-memory database lives in one process",
    );
  }
  const kvOptions = { durability: options.durability, changeRetention: options.changeRetention };
  const databases = new Map<string, Database>();
  if (commitsThroughPrimary(options.data)) {
    databases.set(options.data, openDatabase(options.data, kvOptions));
  } else {
    await (await openKv(options.data, kvOptions)).close();
  }

  const workers = new Set<Worker>();
  let state: "starting" | "serving" | "closing" = "starting";
  let fail: (error: Error) => void = () => {};
  const failure = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failure.catch(() => {}); // observed by whoever awaits it

  /** Starts one worker; resolves with its `listening` message. */
  const start = (): Promise<Listening> => {
    const worker = cluster.fork(env);
    workers.add(worker);
    applyCommits(worker, databases, kvOptions);
    let listening = false;
    worker.on("exit", (code, signal) => {
      workers.delete(worker);
      if (state === "closing") return;
      const how = signal ?? `exit code ${code}`;
      if (listening) {
        console.error(`cairn: worker ${worker.process.pid} stopped (${how}); starting another`);
        void start();
      } else if (state === "starting" || workers.size === 0) {
        fail(new KvError("INTERNAL", `A worker could not start (${how}); its error is above`));
      } else {
        console.error(`cairn: a replacement worker did not start (${how}); serving without it`);
      }
    });
    return new Promise((resolve) => {
      worker.on("message", (message: unknown) => {
        if (!isMessage<Listening>(message, "listening")) return;
        listening = true;
        resolve(message);
      });
    });
  };

  const close = async () => {
    state = "closing";
    const exits = [...workers].map((worker) => once(worker, "exit"));
    for (const worker of workers) worker.process.kill("SIGTERM");
    await Promise.all(exits);
    // Only now: workers finishing their requests still commit through these.
    await Promise.all([...databases.values()].map((database) => database.close()));
  };

  try {
    const [first] = await Promise.race([
      Promise.all(Array.from({ length: count }, start)),
      failure,
    ]);
    state = "serving";
    return { url: first!.url, port: first!.port, close, failure };
  } catch (error) {
    await close();
    throw error;
  }
}
