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
import { KvError } from "../kv-error.js";
import { openKv } from "../sdk/kv.js";
import {
  type Channel,
  commitApplier,
  commitSender,
  hasOneWriter,
  isMessage,
  WriterDatabases,
} from "./commit-channel.js";
import { type CairnServer, type ServerOptions, startServer } from "./server.js";

/** What a worker tells the primary once its server listens. */
interface Listening {
  readonly cairn: "listening";
  readonly url: string;
  readonly port: number;
}

/** What this process sends to and receives from the primary (a worker's end of the channel). */
const primary: Channel = {
  send: (message) => process.connected && process.send!(message),
  on: (event, listener) => process.on(event, listener),
};

/** The primary's end of the channel to `worker`. */
const channelTo = (worker: Worker): Channel => ({
  send: (message) => worker.isConnected() && worker.send(message as never),
  on: (event, listener) => worker.on(event, listener),
});

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
      writesVia: hasOneWriter(options.data) ? commitSender(primary).writes : undefined,
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
  const databases = new WriterDatabases(kvOptions);
  if (hasOneWriter(options.data)) {
    databases.at(options.data);
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

  // Commits travel as structured clones (commit-channel.ts), not JSON.
  cluster.setupPrimary({ serialization: "advanced" });
  /** Starts one worker; resolves with its `listening` message. */
  const start = (): Promise<Listening> => {
    const worker = cluster.fork(env);
    workers.add(worker);
    const applier = commitApplier(channelTo(worker), (path) => databases.at(path));
    let listening = false;
    worker.on("exit", (code, signal) => {
      workers.delete(worker);
      applier.abandon(); // its claims would lease messages to nobody
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
    await databases.close();
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
