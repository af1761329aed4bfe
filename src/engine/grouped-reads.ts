/**
 * Group read: the `get`s that arrive in one event-loop turn are merged into one `get` of all
 * their keys, run on the next turn (`setImmediate`), the way group commit merges commits. Storage
 * then opens one read transaction for the whole group instead of one per request (in SQLite the
 * transaction, not the lookup, is most of a point read's cost). Each caller still gets exactly its
 * own entries, all from one snapshot taken after its request arrived, so no read is staler than
 * when each ran alone.
 *
 * For servers, where many requests arrive together and the deferred turn costs no extra wait; an
 * embedded caller awaiting reads one by one would only wait a turn per read, so `openKv` does not
 * use it.
 */

import { limits } from "../limits.js";
import type { RawEntry } from "./database.js";
import { DatabaseWrapper } from "./database-wrapper.js";

interface PendingRead {
  readonly keys: readonly Uint8Array[];
  readonly resolve: (entries: (RawEntry | null)[]) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupedReads extends DatabaseWrapper {
  #queue: PendingRead[] = [];
  /** Storage reads under way, awaited by `close()`. */
  readonly #reading = new Set<Promise<void>>();

  override get(keys: readonly Uint8Array[]): Promise<(RawEntry | null)[]> {
    return new Promise((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ keys, resolve, reject });
    });
  }

  override async close(): Promise<void> {
    this.#flush();
    await Promise.all(this.#reading);
    await this.database.close();
  }

  #flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    const reads: Promise<void>[] = [];
    let start = 0;
    while (start < queue.length) {
      let end = start + 1;
      let count = queue[start]!.keys.length;
      while (end < queue.length && count + queue[end]!.keys.length <= limits.maxGroupedReadKeys) {
        count += queue[end]!.keys.length;
        end++;
      }
      reads.push(this.#read(queue.slice(start, end)));
      start = end;
    }
    for (const read of reads) {
      this.#reading.add(read);
      void read.finally(() => this.#reading.delete(read));
    }
  }

  async #read(group: readonly PendingRead[]): Promise<void> {
    if (group.length === 1) {
      const { keys, resolve, reject } = group[0]!;
      await this.database.get(keys).then(resolve, reject);
      return;
    }
    let entries: (RawEntry | null)[];
    try {
      entries = await this.database.get(group.flatMap((read) => read.keys));
    } catch (error) {
      for (const read of group) read.reject(error);
      return;
    }
    let at = 0;
    for (const read of group) {
      read.resolve(entries.slice(at, at + read.keys.length));
      at += read.keys.length;
    }
  }
}
