/**
 * The one place a request's principal is held to what it may do: the request's database is the
 * server's, wrapped here, so that every face and every route is checked the same way, whatever it
 * calls. Today a principal may read, or read and write, the whole database; grants per prefix
 * (the identity issue) narrow these checks without changing any route.
 */
import type { Database } from "../engine/database.js";
import { DatabaseWrapper } from "../engine/database-wrapper.js";
import type { Access, Principal } from "../faces/face.js";
import { KvError } from "../kv-error.js";

type Args<K extends keyof Database> = Parameters<Database[K]>;

class Permitted extends DatabaseWrapper {
  constructor(
    database: Database,
    private readonly principal: Principal,
  ) {
    super(database);
  }

  #may(access: Access): void {
    if (!this.principal.can(access)) {
      throw new KvError("FORBIDDEN", `This token may not ${access} here`);
    }
  }

  override get(...args: Args<"get">) {
    this.#may("read");
    return super.get(...args);
  }
  override scan(...args: Args<"scan">) {
    this.#may("read");
    return super.scan(...args);
  }
  override count(...args: Args<"count">) {
    this.#may("read");
    return super.count(...args);
  }
  override commit(...args: Args<"commit">) {
    this.#may("write");
    return super.commit(...args);
  }
  override follow(...args: Args<"follow">) {
    this.#may("read");
    return super.follow(...args);
  }
  override changes(...args: Args<"changes">) {
    this.#may("read");
    return super.changes(...args);
  }
  override claim(...args: Args<"claim">) {
    this.#may("write");
    return super.claim(...args);
  }
  override createIndex(...args: Args<"createIndex">) {
    this.#may("write");
    return super.createIndex(...args);
  }
  override removeIndex(...args: Args<"removeIndex">) {
    this.#may("write");
    return super.removeIndex(...args);
  }
  override listIndexes() {
    this.#may("read");
    return super.listIndexes();
  }
  override search(...args: Args<"search">) {
    this.#may("read");
    return super.search(...args);
  }
  override queueStats() {
    this.#may("read");
    return super.queueStats();
  }
  override deadLetters(...args: Args<"deadLetters">) {
    this.#may("read");
    return super.deadLetters(...args);
  }
  /** The database is the server's: a request cannot close it. */
  override close(): Promise<void> {
    return Promise.reject(new KvError("FORBIDDEN", "A request cannot close the database"));
  }
}

/** `database` as `principal` may use it, for one request. */
export function permitted(database: Database, principal: Principal): Database {
  return new Permitted(database, principal);
}
