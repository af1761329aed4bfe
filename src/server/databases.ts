/**
 * The databases one server serves: the default one at the configured data path, and named ones
 * (KV Connect's `/db/<name>`), each its own SQLite file in `databases/` beside the default file
 * (`./cairn-data/cairn.db` → `./cairn-data/databases/<name>.db`), its own in-memory database
 * when the default is `:memory:`, or on PostgreSQL its own schema (`<schema>_<name>`). A named
 * database is created by the metadata exchange, which needs the server's access token, and opened
 * again after a restart by the first request that names it (on PostgreSQL, whose schemas this
 * process cannot see without asking, by any request that names it); every database closes with
 * the server.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  type ClaimRequest,
  type Commit,
  type CommitResult,
  type Database,
  handedOut,
  type LeasedMessage,
} from "../engine/database.js";
import { DatabaseWrapper } from "../engine/database-wrapper.js";
import { Engine } from "../engine/engine.js";
import { GroupedReads } from "../engine/grouped-reads.js";
import { databaseIdOf, isDatabaseName, type KvConnectDatabases } from "../faces/kv-connect.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { isPostgresUrl, type KvOptions, openDatabase } from "../sdk/kv.js";
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

  override async commit(commit: Commit): Promise<CommitResult> {
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

interface Open {
  readonly database: Database;
  readonly id: string;
}

export class Databases implements KvConnectDatabases {
  readonly #data: string;
  readonly #options: KvOptions;
  readonly #writesVia: WritesVia | undefined;
  readonly #default: Open;
  readonly #named = new Map<string, Open>();

  /**
   * `options` apply to every database (durability, change retention); with `writesVia`, commits
   * and queue claims go there instead of to each database's own engine.
   */
  constructor(data: string, options: KvOptions = {}, writesVia?: WritesVia) {
    this.#data = data;
    this.#options = options;
    this.#writesVia = writesVia;
    this.#default = this.#openAt(data);
  }

  /** The default database. */
  get default(): Database {
    return this.#default.database;
  }

  /** Where the named database `name` lives (`:memory:` beside an in-memory default). */
  #pathOf(name: string): string {
    // The face validates names; this keeps any other caller from reaching outside `databases/`.
    if (!isDatabaseName(name))
      throw new KvError("INVALID_ARGUMENT", `Invalid database name ${name}`);
    if (this.#data === ":memory:") return ":memory:";
    if (!isPostgresUrl(this.#data)) return join(dirname(this.#data), "databases", `${name}.db`);
    const url = new URL(this.#data);
    url.searchParams.set("schema", `${url.searchParams.get("schema") ?? "cairn"}_${name}`);
    return url.toString();
  }

  open(name: string | null, create: boolean): Open | undefined {
    if (name === null) return this.#default;
    const open = this.#named.get(name);
    if (open) return open;
    const path = this.#pathOf(name);
    const exists = isPostgresUrl(path) || (path !== ":memory:" && existsSync(path));
    if (!create && !exists) return undefined;
    if (this.#named.size >= limits.maxNamedDatabases) {
      throw new KvError(
        "INVALID_ARGUMENT",
        `Too many databases (max ${limits.maxNamedDatabases} named databases per server)`,
      );
    }
    const opened = this.#openAt(path);
    this.#named.set(name, opened);
    return opened;
  }

  /** Closes every database, letting pending commits finish. */
  async close(): Promise<void> {
    const all = [this.#default, ...this.#named.values()];
    this.#named.clear();
    const results = await Promise.allSettled(all.map((open) => open.database.close()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  #openAt(path: string): Open {
    const via = this.#writesVia;
    const opened = openDatabase(path, this.#options);
    // Concurrent requests' reads share one storage read per event-loop turn (see GroupedReads).
    const database = new GroupedReads(via ? new WritesElsewhere(opened, path, via) : opened);
    return { database, id: path === ":memory:" ? randomUUID() : databaseIdOf(path) };
  }
}
