/**
 * Driver errors as `KvError`: each backend converts them where they enter it, with its own test
 * of which driver errors are worth retrying.
 */
import { KvError } from "../kv-error.js";

/**
 * `e` as a `KvError`: `UNAVAILABLE` when the driver's error code says that trying again may
 * succeed (`transient`: busy, locked, connection trouble, serialization failures), `INTERNAL`
 * otherwise, its message prefixed with the `driver`'s name. A `KvError` (one the engine's own
 * functions threw inside a commit) passes through as it is.
 */
export function storageError(
  e: unknown,
  driver: string,
  transient: (code: string) => boolean,
): KvError {
  if (e instanceof KvError) return e;
  const code = String((e as { code?: string }).code ?? "");
  const message = `${driver}: ${(e as Error).message}`;
  return new KvError(transient(code) ? "UNAVAILABLE" : "INTERNAL", message, { cause: e });
}
