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
import type { Commit, CommitResult, Database } from "../engine/database.js";
import { DatabaseWrapper } from "../engine/database-wrapper.js";
import { Engine } from "../engine/engine.js";
import { GroupedReads } from "../engine/grouped-reads.js";
import { databaseIdOf, isDatabaseName, type KvConnectDatabases } from "../faces/kv-connect.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import { isPostgresUrl, type KvOptions, openDatabase } from "../sdk/kv.js";
import type { CommitVia } from "./commit-channel.js";

/**
 * A database whose commits are applied elsewhere (by the server's writer thread or a `--workers`
 * primary); the rest is its own.
 */
class CommitsElsewhere extends DatabaseWrapper {
  constructor(
    database: Database,
    private readonly commitVia: (commit: Commit) => Promise<CommitResult>,
  ) {
    super(database);
  }

  override async commit(commit: Commit): Promise<CommitResult> {
    const result = await this.commitVia(commit);
    if (result.ok && this.database instanceof Engine) this.database.committedElsewhere();
    return result;
  }
}

interface Open {
  readonly database: Database;
  readonly id: string;
}

export class Databases implements KvConnectDatabases {
  readonly #data: string;
  readonly #options: KvOptions;
  readonly #commitVia: CommitVia | undefined;
  readonly #default: Open;
  readonly #named = new Map<string, Open>();

  /**
   * `options` apply to every database (durability, change retention); with `commitVia`, commits
   * go there instead of to each database's own engine.
   */
  constructor(data: string, options: KvOptions = {}, commitVia?: CommitVia) {
    this.#data = data;
    this.#options = options;
    this.#commitVia = commitVia;
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
    const commitVia = this.#commitVia;
    const opened = openDatabase(path, this.#options);
    // Concurrent requests' reads share one storage read per event-loop turn (see GroupedReads).
    const database = new GroupedReads(
      commitVia ? new CommitsElsewhere(opened, (commit) => commitVia(path, commit)) : opened,
    );
    return { database, id: path === ":memory:" ? randomUUID() : databaseIdOf(path) };
  }
}
