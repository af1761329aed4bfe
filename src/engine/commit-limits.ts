import { encodedSize } from "../codec/value-codec.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import type { Commit } from "./database.js";

/**
 * Enforces Deno's atomic limits with its messages (`ATOMIC_TOO_LARGE`): checks, mutations, the
 * total size (check keys, mutation keys, value-carrying keys twice, values) and the total size of
 * value-carrying keys. The SDK and every face call this before committing.
 */
export function assertCommitLimits(commit: Commit): void {
  if (commit.checks.length > limits.maxChecks) {
    throw new KvError("ATOMIC_TOO_LARGE", `Too many checks (max ${limits.maxChecks})`);
  }
  if (commit.mutations.length > limits.maxMutations) {
    throw new KvError("ATOMIC_TOO_LARGE", `Too many mutations (max ${limits.maxMutations})`);
  }
  let total = 0;
  let keys = 0;
  for (const check of commit.checks) total += check.key.length;
  for (const m of commit.mutations) {
    if (m.type === "deleteRange") total += m.start.length + m.end.length;
    else if (m.type === "delete") total += m.key.length;
    else {
      total += m.key.length * 2 + encodedSize(m.value);
      keys += m.key.length;
    }
  }
  if (total > limits.maxTotalMutationBytes) {
    throw new KvError(
      "ATOMIC_TOO_LARGE",
      `Total mutation size too large (max ${limits.maxTotalMutationBytes} bytes)`,
    );
  }
  if (keys > limits.maxTotalKeyBytes) {
    throw new KvError(
      "ATOMIC_TOO_LARGE",
      `Total key size too large (max ${limits.maxTotalKeyBytes} bytes)`,
    );
  }
}
