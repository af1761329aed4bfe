/**
 * The databases one server serves: the default one at the configured data path, and named ones
 * (`/db/<name>` on every face), each its own SQLite file in `databases/` beside the default file
 * (`./cairn-data/cairn.db` → `./cairn-data/databases/<name>.db`), its own in-memory database
 * when the default is `:memory:`, or on PostgreSQL its own schema (`<schema>_<name>`). A named
 * database is created by the first request that may create it (one that writes, or KV Connect's
 * metadata exchange), opened again after a restart by the first request that names it, and closed
 * when no request has used it for a while; every database closes with the server.
 */
import { createHash, randomUUID } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import {
  type CheckedCommit,
  type ClaimRequest,
  type CommitResult,
  type Database,
  handedOut,
  type LeasedMessage,
} from "../engine/database.js";
import { DatabaseWrapper } from "../engine/database-wrapper.js";
import { Engine } from "../engine/engine.js";
import { GroupedReads } from "../engine/grouped-reads.js";
import {
  isPostgresUrl,
  type LocalOptions,
  localDatabaseExists,
  openLocalDatabase,
} from "../kv/local-database.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import type { WritesVia } from "./commit-channel.js";

/**
 * A database whose writes, commits and queue claims, are applied elsewhere (by the server's writer
 * thread or a `--workers` primary); the rest is its own.
 */
class WritesElsewhere extends DatabaseWrapper {
  constructor(
    database: Database,
    private readonly path: string,
    private readonly via: WritesVia,
  ) {
    super(database);
  }

  override async commit(commit: CheckedCommit): Promise<CommitResult> {
    const result = await this.via.commit(this.path, commit);
    if (result.ok) this.#committed();
    return result;
  }

  override async claim(request: ClaimRequest, signal?: AbortSignal): Promise<LeasedMessage[]> {
    const messages = await this.via.claim(this.path, request, signal);
    // Settling may have moved messages to the dead-letter queue and written their keys.
    if (request.settle?.length) this.#committed();
    return handedOut(this, messages, signal); // answered after the abort reached the writer
  }

  #committed(): void {
    if (this.database instanceof Engine) this.database.committedElsewhere();
  }
}

/** A named database's name: lowercase, so that names stay distinct on every file system. */
const DATABASE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** `name`, if it is a valid database name; `INVALID_ARGUMENT` saying what one is otherwise. */
export function databaseName(name: string): string {
  if (!DATABASE_NAME.test(name)) {
    throw new KvError(
      "INVALID_ARGUMENT",
      "Invalid database name: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit.",
    );
  }
  return name;
}

/** A stable UUID for the database at `data` (the same across restarts of the server). */
function databaseIdOf(data: string): string {
  const h = createHash("sha256")
    // A URL names the same database from any working directory (a path is made absolute).
    .update(`cairn:${/^[a-z][a-z0-9+.-]*:\/\//i.test(data) ? data : resolve(data)}`)
    .digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** An open database and its stable id. */
export interface OpenDatabase {
  readonly database: Database;
  readonly id: string;
}

interface Named extends OpenDatabase {
  readonly name: string;
  /** Requests using it now; it is closed only at zero. */
  users: number;
  lastUsed: number;
}

export class Databases {
  readonly #data: string;
  readonly #options: LocalOptions;
  readonly #writesVia: WritesVia | undefined;
  readonly #idleMs: number;
  readonly #default: OpenDatabase;
  readonly #named = new Map<string, Named>();
  readonly #closing = new Set<Promise<void>>();
  readonly #sweep: NodeJS.Timeout;

  /**
   * `options` apply to every database (durability, change retention); with `writesVia`, commits
   * and queue claims go there instead of to each database's own engine. A named database unused
   * for `idleMs` is closed.
   */
  constructor(
    data: string,
    options: LocalOptions = {},
    writesVia?: WritesVia,
    idleMs: number = limits.namedDatabaseIdleMs,
  ) {
    if (!(idleMs >= 1 && idleMs <= 2 ** 31 - 1)) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `namedDatabaseIdleMs must be from 1 to ${2 ** 31 - 1} milliseconds: received ${idleMs}`,
      );
    }
    this.#data = data;
    this.#options = options;
    this.#writesVia = writesVia;
    this.#idleMs = idleMs;
    this.#default = this.#openAt(data);
    this.#sweep = setInterval(() => this.#closeIdle(Date.now() - this.#idleMs), idleMs);
    this.#sweep.unref();
  }

  /** The default database. */
  get default(): OpenDatabase {
    return this.#default;
  }

  /** How many named databases are open. */
  get openNamed(): number {
    return this.#named.size;
  }

  /** Where the named database `name` lives (`:memory:` beside an in-memory default). */
  #pathOf(name: string): string {
    if (this.#data === ":memory:") return ":memory:";
    if (!isPostgresUrl(this.#data)) return join(dirname(this.#data), "databases", `${name}.db`);
    const url = new URL(this.#data);
    url.searchParams.set("schema", `${url.searchParams.get("schema") ?? "cairn"}_${name}`);
    return url.toString();
  }

  /**
   * The named database `name` for one request, opened if need be; `undefined` if it does not
   * exist (see `create`). `release` it when the request ends. `INVALID_ARGUMENT` for an invalid
   * name.
   */
  async acquire(name: string): Promise<OpenDatabase | undefined> {
    if (!this.#named.has(databaseName(name)) && !(await localDatabaseExists(this.#pathOf(name)))) {
      return undefined;
    }
    // Opened by then if another request made it meanwhile: one engine per database.
    return this.create(name);
  }

  /** The named database `name` for one request, made if it does not exist; see `acquire`. */
  create(name: string): OpenDatabase {
    const named = this.#named.get(databaseName(name)) ?? this.#openNamed(name, this.#pathOf(name));
    named.users++;
    return named;
  }

  #openNamed(name: string, path: string): Named {
    const excess = this.#named.size + 1 - limits.maxOpenNamedDatabases;
    if (excess > 0) this.#closeIdle(Date.now(), excess);
    const named = { ...this.#openAt(path), name, users: 0, lastUsed: 0 };
    this.#named.set(name, named);
    return named;
  }

  /** The end of a request that `acquire`d `open`. */
  release(open: OpenDatabase): void {
    const named = open as Named;
    named.users--;
    named.lastUsed = Date.now();
  }

  /**
   * Closes up to `count` named databases no request uses that were last used before `before`,
   * least recently used first. An in-memory database lives only while open: it stays.
   */
  #closeIdle(before: number, count = Number.POSITIVE_INFINITY): void {
    if (this.#data === ":memory:") return;
    const idle = [...this.#named.values()]
      .filter((named) => named.users === 0 && named.lastUsed < before)
      .sort((a, b) => a.lastUsed - b.lastUsed)
      .slice(0, count);
    for (const named of idle) {
      this.#named.delete(named.name);
      const closing = named.database
        .close()
        .catch((error) => console.error(`cairn: closing database ${named.name}:`, error))
        .finally(() => this.#closing.delete(closing));
      this.#closing.add(closing);
    }
  }

  /** Closes every database, letting pending commits finish. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    const all = [this.#default, ...this.#named.values()];
    this.#named.clear();
    const results = await Promise.allSettled([
      ...all.map((open) => open.database.close()),
      ...this.#closing,
    ]);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  #openAt(path: string): OpenDatabase {
    const via = this.#writesVia;
    const opened = openLocalDatabase(path, this.#options);
    // Concurrent requests' reads share one storage read per event-loop turn (see GroupedReads).
    const database = new GroupedReads(via ? new WritesElsewhere(opened, path, via) : opened);
    return { database, id: path === ":memory:" ? randomUUID() : databaseIdOf(path) };
  }
}
