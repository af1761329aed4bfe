/**
 * `cairn serve --workers <n>`: n processes serving one port, to use more than one CPU core. The
 * first one, the primary, listens; it deals the connections out in turn to itself and the n − 1
 * workers it starts, handing a worker a connection's socket before reading anything from it (what
 * node:cluster does inside, but cluster's primary serves no requests of its own). Every process
 * runs the whole server (`startServer`) over the same storage, which is built to be shared by
 * processes like separate nodes: one SQLite file (WAL; versionstamps continue across connections;
 * other processes' commits wake watchers and consumers) or one PostgreSQL database.
 *
 * On SQLite every process reads the file itself, and the primary commits for all of them: its own
 * commits and the workers', which arrive over IPC, go through one engine (group commit across all
 * processes, one fsync per group). SQLite has one writer at a time, and a connection's page cache
 * starts cold after another connection's commit: several processes committing in turn would wait
 * for each other's lock and re-read the B-tree each time. PostgreSQL takes concurrent writers as
 * they are.
 *
 * The primary also prepares the storage once, starts listening when every worker is ready,
 * replaces a worker that dies, and stops them all on close.
 */
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import type net from "node:net";
import { openLocalDatabase } from "../kv/local-database.js";
import { KvError } from "../kv-error.js";
import {
  type Channel,
  commitApplier,
  commitSender,
  hasOneWriter,
  isMessage,
  WriterDatabases,
  type WritesVia,
} from "./commit-channel.js";
import { type CairnServer, type ServerOptions, startServer } from "./server.js";

/** What a worker tells the primary once it serves. */
interface Ready {
  readonly cairn: "ready";
}

/** What the primary sends a worker with the socket of a connection it is to serve. */
interface Connection {
  readonly cairn: "connection";
}

/** The environment variable that marks a worker, holding its primary's process id. */
const PRIMARY_PID = "CAIRN_PRIMARY_PID";

/**
 * This end of the IPC channel to the process at the other end: `process` in a worker (to its
 * primary), a worker's `ChildProcess` in the primary. A message sent just after the other end died,
 * before this one has seen it go, fails (EPIPE): it is dropped, as `Channel` says (without a
 * callback it would be an unhandled `error` event, ending this process: a primary answering the
 * commits of a worker killed under load). What was waiting on the other end is settled by the
 * `disconnect` and `exit` handlers.
 */
export const ipcChannel = (end: ChildProcess | NodeJS.Process): Channel => {
  const dropped = () => {};
  return {
    send: (message) => end.connected && end.send!(message as never, undefined, undefined, dropped),
    on: (event, listener) => end.on(event, listener),
  };
};

/** What this process sends to and receives from the primary (a worker's end of the channel). */
const primary = ipcChannel(process);

/** Whether this process is a worker started by `startWorkers`. */
export const isWorker = (): boolean =>
  process.send !== undefined && process.env[PRIMARY_PID] === String(process.ppid);

/**
 * In a worker: starts the server on the connections the primary hands over, and tells the primary
 * it serves. A worker stops on SIGTERM from the primary, or when the primary is gone (its writes
 * then fail with `UNAVAILABLE`); it ignores SIGINT, which a terminal sends to the whole process
 * group, so that the primary alone decides when and how to stop.
 */
export async function startWorkerServer(options: ServerOptions): Promise<CairnServer> {
  process.on("SIGINT", () => {});
  const sender = commitSender(primary);
  process.once("disconnect", () =>
    sender.fail(new KvError("UNAVAILABLE", "The server is stopping: its primary process is gone")),
  );
  let server: CairnServer;
  try {
    server = await startServer({
      ...options,
      writesVia: hasOneWriter(options.data) ? sender.writes : undefined,
      handedConnections: (serve) =>
        process.on("message", (message, socket) => {
          if (isMessage<Connection>(message, "connection") && socket) serve(socket as net.Socket);
        }),
    });
  } catch (error) {
    // Let this process end with its error; the primary learns of it from the exit code.
    process.channel?.unref();
    throw error;
  }
  primary.send({ cairn: "ready" } satisfies Ready);
  return {
    ...server,
    async close() {
      await server.close();
      // The channel to the primary is what keeps a worker alive.
      if (process.connected) process.disconnect();
    },
  };
}

/**
 * In the primary: prepares the storage (creating or migrating it once, so that workers do not
 * race to; on SQLite, opening the database every process commits through), starts `count − 1`
 * workers running this same command line with `env` added, and once all of them serve, listens
 * and serves itself. One that exits before it serves stops them all and rejects (it printed its
 * reason itself). A worker that exits later is replaced.
 */
export async function startWorkers(
  count: number,
  options: ServerOptions,
  env: Record<string, string>,
): Promise<CairnServer> {
  if (options.data === ":memory:") {
    throw new KvError(
      "INVALID_ARGUMENT",
      "--workers needs a data file or a postgres:// URL: an in-memory database lives in one process",
    );
  }
  const kvOptions = {
    durability: options.durability,
    changeRetention: options.changeRetention,
    sweep: options.sweep,
  };
  const databases = new WriterDatabases(kvOptions);
  const oneWriter = hasOneWriter(options.data);
  if (oneWriter) databases.at(options.data);
  else await openLocalDatabase(options.data, kvOptions).close();

  const workers = new Set<ChildProcess>();
  /** The workers that serve, in the order connections are dealt to them (the primary last). */
  const serving: ChildProcess[] = [];
  let state: "starting" | "serving" | "closing" = "starting";
  let fail: (error: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });

  /** Starts one worker; resolves once it serves. */
  const start = (): Promise<void> => {
    // Commits travel as structured clones (commit-channel.ts), not JSON.
    const worker = fork(process.argv[1]!, process.argv.slice(2), {
      env: { ...process.env, ...env, [PRIMARY_PID]: String(process.pid) },
      serialization: "advanced",
    });
    workers.add(worker);
    const applier = commitApplier(ipcChannel(worker), (path) => databases.at(path));
    let ready = false;
    worker.on("exit", (code, signal) => {
      workers.delete(worker);
      const at = serving.indexOf(worker);
      if (at !== -1) serving.splice(at, 1);
      applier.abandon(); // its claims would lease messages to nobody
      if (state === "closing") return;
      const how = signal ?? `exit code ${code}`;
      if (ready) {
        console.error(`cairn: worker ${worker.pid} stopped (${how}); starting another`);
        void start();
      } else if (state === "starting") {
        fail(new KvError("INTERNAL", `A worker could not start (${how}); its error is above`));
      } else {
        console.error(`cairn: a replacement worker did not start (${how}); serving without it`);
      }
    });
    return new Promise((resolve) => {
      worker.on("message", (message: unknown) => {
        if (!isMessage<Ready>(message, "ready")) return;
        ready = true;
        serving.push(worker);
        resolve();
      });
    });
  };

  let turn = 0;
  /** Serves each connection in turn here or in a worker. */
  const balance = (socket: net.Socket, here: (socket: net.Socket) => void) => {
    const worker = serving[turn++ % (serving.length + 1)];
    if (worker === undefined) return here(socket);
    // If the worker has just gone, the socket is still this process's.
    worker.send({ cairn: "connection" } satisfies Connection, socket, (error) => {
      if (error && !socket.destroyed) here(socket);
    });
  };
  /** The primary's own writes, to the same engines the workers' go to. */
  const writes: WritesVia = {
    commit: (path, commit) => databases.at(path).commit(commit),
    claim: (path, request, signal) => databases.at(path).claim(request, signal),
  };

  let server: CairnServer | undefined;
  const close = async () => {
    state = "closing";
    const closing = server?.close(); // stops accepting at once
    const exits = [...workers].map((worker) => once(worker, "exit"));
    for (const worker of workers) worker.kill("SIGTERM");
    await Promise.all([closing, ...exits]);
    // Only now: workers finishing their requests still commit through these.
    await databases.close();
  };

  try {
    await Promise.race([Promise.all(Array.from({ length: count - 1 }, start)), failed]);
    server = await startServer({
      ...options,
      writesVia: oneWriter ? writes : undefined,
      balance,
    });
    state = "serving";
    return { url: server.url, port: server.port, close };
  } catch (error) {
    await close();
    throw error;
  }
}
