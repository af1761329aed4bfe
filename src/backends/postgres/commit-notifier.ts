/**
 * `onCommit` on PostgreSQL: every commit NOTIFYs the database's channel with the id of the process
 * that made it, and the others LISTEN while anyone here listens.
 */
import { randomUUID } from "node:crypto";
import { type Sql, sendQuery, type Tx } from "./connection.js";
import { SQL } from "./statements.js";

export class CommitNotifier {
  readonly #sql: Sql;
  readonly #channel: string;
  /** Tells this process's notifications from the others'. */
  readonly #instance = randomUUID();
  readonly #listeners = new Set<() => void>();
  #unlisten: Promise<{ unlisten(): Promise<void> }> | undefined;

  /** Listens on the channel of schema `schema`. */
  constructor(sql: Sql, schema: string) {
    this.#sql = sql;
    this.#channel = `cairn_${schema}`;
  }

  /** Sends, with the statements of `tx`, the notification of its commit. */
  notify(tx: Tx): Promise<unknown> {
    return sendQuery(tx, SQL.notify, [this.#channel, this.#instance]);
  }

  /** `Backend.onCommit`. */
  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    const wake = () => {
      for (const l of this.#listeners) l();
    };
    this.#unlisten ??= this.#sql.listen(
      this.#channel,
      (payload) => {
        if (payload !== this.#instance) wake(); // our own commits: the engine knows
      },
      // Listening (again, after a lost connection): commits made before are news too.
      wake,
    );
    this.#unlisten.catch(() => {
      this.#unlisten = undefined; // e.g. unreachable: the next registration tries again
    });
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#unlisten) {
        const unlisten = this.#unlisten;
        this.#unlisten = undefined;
        void unlisten.then((l) => l.unlisten()).catch(() => {});
      }
    };
  }

  /** Forgets every listener and stops listening. */
  async close(): Promise<void> {
    this.#listeners.clear();
    const unlisten = this.#unlisten;
    this.#unlisten = undefined;
    await unlisten?.then((l) => l.unlisten()).catch(() => {});
  }
}
