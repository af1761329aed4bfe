import { encodedSize } from "../codec/value-codec.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import type { CheckedCommit, Commit } from "./database.js";

/** The messages of the four atomic limits. */
export interface CommitLimitMessages {
  readonly checks: string;
  readonly mutations: string;
  readonly totalSize: string;
  readonly keySize: string;
}

/** Deno's client-side texts, which its tests check. */
export const denoClientMessages: CommitLimitMessages = {
  checks: `Too many checks (max ${limits.maxChecks})`,
  mutations: `Too many mutations (max ${limits.maxMutations})`,
  totalSize: `Total mutation size too large (max ${limits.maxTotalMutationBytes} bytes)`,
  keySize: `Total key size too large (max ${limits.maxTotalKeyBytes} bytes)`,
};

/** The atomic limits a commit is checked against: Deno's (`limits`), unless a face needs others. */
export interface CommitBounds {
  readonly maxChecks: number;
  readonly maxMutations: number;
  readonly maxTotalMutationBytes: number;
  readonly maxTotalKeyBytes: number;
}

/**
 * `commit`, checked against Deno's atomic limits (`ATOMIC_TOO_LARGE`): checks, mutations, the
 * total size (check keys, mutation keys, value-carrying keys twice, values) and the total size of
 * value-carrying keys; and a set's TTL against `limits.maxExpireInMs` (`INVALID_ARGUMENT`). The only way to make the commit `Database.commit` takes; the SDK and every
 * face call it with their protocol's texts.
 */
export function checkCommit(
  commit: Commit,
  messages: CommitLimitMessages = denoClientMessages,
  bounds: CommitBounds = limits,
): CheckedCommit {
  const fail = (message: string) => new KvError("ATOMIC_TOO_LARGE", message);
  if (commit.checks.length > bounds.maxChecks) throw fail(messages.checks);
  if (commit.mutations.length > bounds.maxMutations) throw fail(messages.mutations);
  let total = 0;
  let keys = 0;
  for (const check of commit.checks) total += check.key.length;
  for (const m of commit.mutations) {
    switch (m.type) {
      case "deleteRange":
        total += m.start.length + m.end.length;
        break;
      case "delete":
        total += m.key.length;
        break;
      case "enqueue":
        // Deno counts 4 bytes per backoff interval.
        total += encodedSize(m.value) + 4 * m.backoffSchedule.length;
        for (const key of m.keysIfUndelivered) total += key.length;
        break;
      case "set":
        if (m.expireIn !== undefined && !(m.expireIn <= limits.maxExpireInMs)) {
          throw new KvError(
            "INVALID_ARGUMENT",
            `expireIn ${m.expireIn} ms is longer than the longest TTL (${limits.maxExpireInMs} ms)`,
          );
        }
        total += m.key.length * 2 + encodedSize(m.value);
        keys += m.key.length;
        break;
      case "sum":
      case "min":
      case "max":
      case "append":
      case "prepend":
        total += m.key.length * 2 + encodedSize(m.value);
        keys += m.key.length;
        break;
      default: // queue bookkeeping: no keys or values
    }
  }
  if (total > bounds.maxTotalMutationBytes) throw fail(messages.totalSize);
  if (keys > bounds.maxTotalKeyBytes) throw fail(messages.keySize);
  return commit as CheckedCommit;
}
