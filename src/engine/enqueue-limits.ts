import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import type { Mutation } from "./database.js";

type Enqueue = Extract<Mutation, { type: "enqueue" }>;

/**
 * Enforces the bounds of one enqueued message (`INVALID_ARGUMENT`): the delay (0 to 30 days),
 * the backoff schedule (at most 10 intervals of 0 to 1 hour) and at most 10 undelivered keys.
 * The SDK and every face call this before committing.
 */
export function assertEnqueueLimits(m: Enqueue): void {
  const fail = (message: string) => new KvError("INVALID_ARGUMENT", message);
  if (!Number.isFinite(m.delay) || m.delay < 0 || m.delay > limits.maxEnqueueDelayMs) {
    throw fail(
      `delay must be between 0 and ${limits.maxEnqueueDelayMs} ms (30 days): got ${m.delay}`,
    );
  }
  if (m.backoffSchedule.length > limits.maxBackoffIntervals) {
    throw fail(`backoffSchedule may have at most ${limits.maxBackoffIntervals} intervals`);
  }
  for (const interval of m.backoffSchedule) {
    if (!Number.isFinite(interval) || interval < 0 || interval > limits.maxBackoffIntervalMs) {
      throw fail(
        `Each backoffSchedule interval must be between 0 and ${limits.maxBackoffIntervalMs} ms (1 hour): got ${interval}`,
      );
    }
  }
  if (m.keysIfUndelivered.length > limits.maxKeysIfUndelivered) {
    throw fail(`keysIfUndelivered may have at most ${limits.maxKeysIfUndelivered} keys`);
  }
}
