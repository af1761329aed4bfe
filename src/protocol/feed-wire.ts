/**
 * The wire form of the change feed, which the remote SDK follows: `POST <base>/db/follow` (a
 * server-sent event stream of commits, heartbeats and `lost`) and `POST <base>/db/changes` (one
 * page, for readers that poll). See database-wire.ts for keys and entries.
 */
import { isVersionstamp } from "../codec/versionstamp.js";
import type { ChangesRequest, CommitChanges, FeedRanges } from "../engine/database.js";
import { limits } from "../limits.js";
import {
  array,
  b64,
  boundFromWire,
  entryFromWire,
  entryToWire,
  integerFromWire,
  invalid,
  object,
  unb64,
  type WireEntry,
} from "./database-wire.js";

export interface WireChange {
  key: string;
  entry: WireEntry | null;
}

export interface WireCommit {
  versionstamp: string;
  changes: WireChange[];
}

export const commitChangesToWire = (c: CommitChanges): WireCommit => ({
  versionstamp: c.versionstamp,
  changes: c.changes.map((change) => ({
    key: b64(change.key),
    entry: change.entry && entryToWire(change.entry),
  })),
});

/** Decodes a commit the server sent (trusted); expiry is the server's business, so none is kept. */
export const commitChangesFromWire = (w: WireCommit): CommitChanges => ({
  versionstamp: w.versionstamp,
  changes: w.changes.map((change) => ({
    key: unb64(change.key),
    entry: change.entry && { ...entryFromWire(change.entry), expiresAt: null },
  })),
});

export const feedRangesToWire = (r: FeedRanges) => ({
  ranges: r.ranges.map((range) => ({ start: b64(range.start), end: b64(range.end) })),
});

/** A versionstamp cursor, or `null`. */
export function cursorFromWire(value: unknown, what: string): string | null {
  if (value === null || value === undefined) return null;
  if (!isVersionstamp(value))
    throw invalid(`${what} must be null or a versionstamp (20 hex characters)`);
  return value;
}

export function feedRangesFromWire(body: unknown): FeedRanges {
  const ranges = array(
    object(body, "body").ranges,
    "ranges",
    limits.maxFeedRanges,
    `Too many ranges (max ${limits.maxFeedRanges})`,
  );
  return {
    ranges: ranges.map((r, i) => {
      const range = object(r, `ranges[${i}]`);
      return {
        start: boundFromWire(range.start, `ranges[${i}].start`),
        end: boundFromWire(range.end, `ranges[${i}].end`),
      };
    }),
  };
}

export function changesRequestFromWire(body: unknown): ChangesRequest {
  const b = object(body, "body");
  const limit = integerFromWire(b.limit, "limit", 1, limits.feedPageChanges);
  return { ...feedRangesFromWire(b), cursor: cursorFromWire(b.cursor, "cursor"), limit };
}
