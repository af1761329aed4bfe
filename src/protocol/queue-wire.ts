/**
 * The wire form of the queue: `POST <base>/db/claim` (leases messages, settling others in the
 * same request), `queue-stats` and `dead-letters`. See database-wire.ts for values.
 */
import type { EncodedValue } from "../codec/value-codec.js";
import type { ClaimRequest, DeadLetter, LeasedMessage, StoredMessage } from "../engine/database.js";
import { limits } from "../limits.js";
import {
  array,
  b64,
  entryFromWire,
  idFromWire,
  integerFromWire,
  invalid,
  leaseFromWire,
  mutationFromWire,
  object,
  unb64,
  valueToWire,
  type WireValue,
} from "./database-wire.js";

export interface WireMessage {
  id: string;
  value: WireValue;
  attempts: number;
  backoffSchedule: number[];
  keysIfUndelivered: string[];
  createdAt: number;
}

export type WireLeased = WireMessage & { lease: string; leaseUntil: number };

export type WireDeadLetter = WireMessage & { error: string; failedAt: number };

function messageToWire(m: StoredMessage): WireMessage {
  return {
    id: m.id,
    value: valueToWire(m.value),
    attempts: m.attempts,
    backoffSchedule: [...m.backoffSchedule],
    keysIfUndelivered: m.keysIfUndelivered.map(b64),
    createdAt: m.createdAt,
  };
}

function messageFromWire(w: WireMessage): StoredMessage {
  const value = entryFromWire({ ...w.value, key: "", versionstamp: "" });
  return {
    id: w.id,
    value: { encoding: value.encoding, data: value.data } as EncodedValue,
    attempts: w.attempts,
    backoffSchedule: w.backoffSchedule,
    keysIfUndelivered: w.keysIfUndelivered.map(unb64),
    createdAt: w.createdAt,
  };
}

export const leasedToWire = (m: LeasedMessage): WireLeased => ({
  ...messageToWire(m),
  lease: m.lease,
  leaseUntil: m.leaseUntil,
});

export const leasedFromWire = (w: WireLeased): LeasedMessage => ({
  ...messageFromWire(w),
  lease: w.lease,
  leaseUntil: w.leaseUntil,
});

export const deadLetterToWire = (d: DeadLetter): WireDeadLetter => ({
  ...messageToWire(d),
  error: d.error,
  failedAt: d.failedAt,
});

export const deadLetterFromWire = (w: WireDeadLetter): DeadLetter => ({
  ...messageFromWire(w),
  error: w.error,
  failedAt: w.failedAt,
});

export function claimRequestFromWire(body: unknown): ClaimRequest {
  const b = object(body, "body");
  const limit = integerFromWire(b.limit, "limit", 1, limits.maxClaimMessages);
  const waitMs = integerFromWire(b.waitMs, "waitMs", 0, limits.maxClaimWaitMs);
  const settle = array(
    b.settle ?? [],
    "settle",
    limits.maxClaimMessages,
    "Too many settlements",
  ).map((m, i) => {
    const mutation = mutationFromWire(m, i);
    if (mutation.type !== "settle") throw invalid(`settle[${i}] must be a settle mutation`);
    return mutation;
  });
  return { limit, waitMs, leaseMs: leaseFromWire(b.leaseMs, "leaseMs"), settle };
}

export function deadLetterQueryFromWire(
  body: unknown,
): { limit: number; offset: number } | { id: string } {
  const b = object(body, "body");
  if (b.id !== undefined) return { id: idFromWire(b.id, "id") };
  return {
    limit: integerFromWire(b.limit, "limit", 1, limits.maxListLimit),
    offset: integerFromWire(b.offset, "offset", 0, Number.MAX_SAFE_INTEGER),
  };
}
