/**
 * A database that passes every call on to another: the base of the wrappers that change a few
 * calls and leave the rest alone (`GroupedReads` merges gets; the server's `WritesElsewhere`
 * sends commits and queue claims to its writer thread or its `--workers` primary).
 */
import type { Database } from "./database.js";

type Args<K extends keyof Database> = Parameters<Database[K]>;

export class DatabaseWrapper implements Database {
  constructor(protected readonly database: Database) {}

  get(...args: Args<"get">) {
    return this.database.get(...args);
  }
  scan(...args: Args<"scan">) {
    return this.database.scan(...args);
  }
  count(...args: Args<"count">) {
    return this.database.count(...args);
  }
  commit(...args: Args<"commit">) {
    return this.database.commit(...args);
  }
  follow(...args: Args<"follow">) {
    return this.database.follow(...args);
  }
  changes(...args: Args<"changes">) {
    return this.database.changes(...args);
  }
  claim(...args: Args<"claim">) {
    return this.database.claim(...args);
  }
  createIndex(...args: Args<"createIndex">) {
    return this.database.createIndex(...args);
  }
  removeIndex(...args: Args<"removeIndex">) {
    return this.database.removeIndex(...args);
  }
  listIndexes() {
    return this.database.listIndexes();
  }
  search(...args: Args<"search">) {
    return this.database.search(...args);
  }
  queueStats() {
    return this.database.queueStats();
  }
  storageStats() {
    return this.database.storageStats();
  }
  deadLetters(...args: Args<"deadLetters">) {
    return this.database.deadLetters(...args);
  }
  close() {
    return this.database.close();
  }
}
