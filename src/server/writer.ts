/**
 * A server's writer thread (`cairn serve --writer-thread`, SQLite files). The server applies its
 * commits on a thread of its own (through an engine there over the same files), so that the thread
 * serving HTTP never blocks on SQLite's writes, checkpoints and fsyncs: it goes on parsing
 * requests, reading and answering while the writer makes the last group durable, and the next
 * group forms meanwhile. Reads stay on the HTTP thread's own connection; WAL lets them run while
 * the writer writes, and a commit is answered only once it is durable, so a read that follows it
 * sees it.
 *
 * Queue claims, which write too, are made on the writer thread as well, where commits wake them.
 *
 * The price: every commit crosses between the threads twice, and watchers on the HTTP thread
 * learn of each commit from the writer's answer and read it back through a page cache that the
 * other connection's commit has made cold. With 1000 watchers that costs more than it saves, and
 * one client's PUTs wait for the threads' wake-ups, hence off by default.
 *
 * The thread starts with the first write, and again with the next one if it ever stops.
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { LocalOptions } from "../kv/local-database.js";
import { KvError } from "../kv-error.js";
import {
  commitApplier,
  commitSender,
  isMessage,
  WriterDatabases,
  type WritesVia,
} from "./commit-channel.js";

/**
 * The thread's module: this file as built. From the build it is this file itself; from the sources
 * (the tests run them), the same path under `dist/`, which `npm test` builds first, as a thread
 * cannot load TypeScript.
 */
const THREAD_MODULE = new URL("../../dist/server/writer.js", import.meta.url);

/** See `commitSender`. */
const COMMITS_PER_MESSAGE = 8;

interface WriterData {
  readonly cairn: "writer";
  readonly options: LocalOptions;
}

export interface Writer {
  /** Applies writes to the database at a path on the writer thread. */
  readonly writes: WritesVia;
  /** Lets pending commits finish, closes the thread's databases and stops it. */
  close(): Promise<void>;
}

/** `module`: the thread's module; tests pass one that fails on purpose. */
export function startWriter(options: LocalOptions, module: URL = THREAD_MODULE): Writer {
  let current: ReturnType<typeof start> | undefined;
  let closed = false;
  const start = () => {
    const worker = new Worker(module, {
      workerData: { cairn: "writer", options } satisfies WriterData,
    });
    const sender = commitSender(
      {
        send: (message) => worker.postMessage(message),
        on: (event, listener) => worker.on(event, listener),
      },
      COMMITS_PER_MESSAGE,
    );
    let failure: unknown;
    worker.on("error", (error) => {
      failure = error;
      console.error("cairn: the writer thread failed:", error);
    });
    const exited = new Promise<void>((resolve) => {
      worker.on("exit", () => {
        if (current?.worker === worker) current = undefined;
        sender.fail(
          new KvError(
            "INTERNAL",
            `The writer thread stopped${failure ? ` (${(failure as Error).message})` : ""}; writes in flight may or may not have been applied`,
          ),
        );
        resolve();
      });
    });
    return { worker, sender, exited };
  };
  /** The running thread's writes, started if need be. */
  const running = (): WritesVia => {
    if (closed) throw new KvError("CLOSED", "The database is closed");
    current ??= start();
    return current.sender.writes;
  };
  return {
    writes: {
      commit: async (path, commit) => running().commit(path, commit),
      claim: async (path, request, signal) => running().claim(path, request, signal),
    },
    async close() {
      closed = true;
      if (current === undefined) return;
      const { worker, sender, exited } = current;
      current = undefined;
      sender.flush();
      worker.postMessage({ cairn: "close" });
      await exited;
    },
  };
}

/** In the thread: applies the commits the server sends until told to close. */
function runWriter(options: LocalOptions): void {
  const port = parentPort!;
  const databases = new WriterDatabases(options);
  const applier = commitApplier(
    {
      send: (message) => port.postMessage(message),
      on: (event, listener) => port.on(event, listener),
    },
    (path) => databases.at(path),
  );
  port.on("message", async (message) => {
    if (!isMessage(message, "close")) return;
    await applier.settled();
    await databases.close().catch((error) => console.error("cairn: closing the writer:", error));
    process.exit(0);
  });
}

if (!isMainThread && isMessage<WriterData>(workerData, "writer")) runWriter(workerData.options);
