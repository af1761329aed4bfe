/**
 * The change feed's storage on SQLite: the changes of one group commit, all its commits together,
 * are one row of `change_log`, keyed by the newest versionstamp counter among them. One row per
 * group rather than one per changed key: a durable PUT in the server costs ~11k instructions fewer
 * (of 144k; the row per key cost a statement's binding and run and a B-tree insert), a group's row
 * costs each PUT a copy of its key.
 *
 * A row's `changes` blob lists the group's changes in the order its mutations made them, each as
 * `varint(last - counter) · deleted (0 or 1) · varint(key length) · key`.
 */

/** One recorded change: the commit's versionstamp counter, the key, and whether it was deleted. */
export interface LoggedChange {
  readonly counter: number;
  readonly key: Uint8Array;
  readonly deleted: boolean;
}

/** The changes of the group being committed, gathered until the group's row is written. */
export class GroupChanges {
  #changes: LoggedChange[] = [];

  get size(): number {
    return this.#changes.length;
  }

  add(counter: number, key: Uint8Array, deleted: boolean): void {
    this.#changes.push({ counter, key, deleted });
  }

  /** Forgets the changes added after the first `size` (a commit rolled back to its savepoint). */
  truncate(size: number): void {
    this.#changes.length = size;
  }

  /** The newest counter and the encoded blob; call only when `size` > 0. */
  encode(): { last: number; blob: Buffer } {
    const changes = this.#changes;
    const last = changes[changes.length - 1]!.counter;
    let length = 0;
    for (const { counter, key } of changes) {
      length += varintLength(last - counter) + 1 + varintLength(key.length) + key.length;
    }
    const blob = Buffer.allocUnsafe(length);
    let at = 0;
    for (const { counter, key, deleted } of changes) {
      at = writeVarint(blob, at, last - counter);
      blob[at++] = deleted ? 1 : 0;
      at = writeVarint(blob, at, key.length);
      blob.set(key, at);
      at += key.length;
    }
    return { last, blob };
  }
}

/** The changes of a `change_log` row whose newest counter is `last`, in the order recorded. */
export function decodeChanges(last: number, blob: Buffer): LoggedChange[] {
  const changes: LoggedChange[] = [];
  let at = 0;
  const varint = () => {
    let value = 0;
    for (let shift = 1; ; shift *= 128) {
      const byte = blob[at++]!;
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < blob.length) {
    const counter = last - varint();
    const deleted = blob[at++] === 1;
    const length = varint();
    changes.push({ counter, key: blob.subarray(at, at + length), deleted });
    at += length;
  }
  return changes;
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

function writeVarint(target: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}
