/**
 * How both backends store a queue message beside its value: the backoff schedule and the keys
 * that receive the value if it is never delivered, as JSON text (the keys in base64).
 */
import type { EncodedValue } from "../codec/value-codec.js";
import type { StoredMessage } from "./backend.js";

/** The `backoff` and `undelivered` columns of `message`. */
export function messageColumns(message: StoredMessage): [backoff: string, undelivered: string] {
  return [
    JSON.stringify(message.backoffSchedule),
    JSON.stringify(message.keysIfUndelivered.map((k) => Buffer.from(k).toString("base64"))),
  ];
}

/** A message read back from its columns. */
export function storedMessage(
  id: string,
  value: EncodedValue,
  attempts: number,
  backoff: string,
  undelivered: string,
  createdAt: number,
): StoredMessage {
  return {
    id,
    value,
    attempts,
    backoffSchedule: JSON.parse(backoff),
    keysIfUndelivered: (JSON.parse(undelivered) as string[]).map(
      (k) => new Uint8Array(Buffer.from(k, "base64")),
    ),
    createdAt,
  };
}
