/**
 * Persistent metrics (the seed's `metrics.persistent`): the request and error counters survive
 * restarts. They are kept in the default database's system keyspace (keys starting with 0xFF,
 * beside the principals, tokens.ts), a record per face, loaded at start and flushed every
 * interval and at close; histograms are not kept (as the seed's). A flush adds this server's
 * increments since its last one to the stored counts in a checked commit, so that servers sharing
 * a database never lose each other's; each then reports the database's totals as of its last
 * flush plus its own increments since.
 */
import { concatBytes, decodeKey, encodeKey, SYSTEM_KEYSPACE } from "../codec/key-codec.js";
import { decodeValue, encodeValue } from "../codec/value-codec.js";
import { checkCommit } from "../engine/commit-limits.js";
import type { Database, Mutation } from "../engine/database.js";
import type { OperationStats } from "../kv/metrics.js";
import type { ServerMetrics } from "./metrics.js";

const METRICS = concatBytes(new Uint8Array([SYSTEM_KEYSPACE]), encodeKey(["metrics"]));
const keyOf = (face: string) => concatBytes(METRICS, encodeKey([face]));
const END = concatBytes(METRICS, [0xff]);

/** A face's counters as stored: per operation, its count and its errors by code. */
type StoredFace = Record<string, { count: number; errors: Record<string, number> }>;

/** Every face's stored record. */
async function readStored(database: Database) {
  const [entries] = await database.scan([
    { start: METRICS, end: END, limit: 1000, reverse: false },
  ]);
  return entries!.map((entry) => ({
    face: decodeKey(entry.key.subarray(METRICS.length))[0] as string,
    stored: decodeValue(entry) as StoredFace,
    versionstamp: entry.versionstamp,
  }));
}

/** Flushes that lost to another server's in a row before this one waits for the next interval. */
const MAX_ATTEMPTS = 5;

/** A counter: the face, operation and (for errors) code it counts, and how to read and bump it. */
interface Counter {
  readonly id: string;
  readonly face: string;
  readonly operation: string;
  readonly code?: string;
  readonly stats: OperationStats;
}

const read = (c: Counter) =>
  c.code === undefined ? c.stats.count : (c.stats.errors.get(c.code) ?? 0);

function bump(c: Counter, n: number): void {
  if (c.code === undefined) c.stats.count += n;
  else c.stats.addError(c.code, n);
}

export class PersistedMetrics {
  /** Each counter's value as of the last load or flush: what the database holds for it. */
  readonly #stored = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> | undefined;

  private constructor(
    private readonly database: Database,
    private readonly metrics: ServerMetrics,
    intervalMs: number,
  ) {
    this.#timer = setInterval(() => void this.flush().catch(() => {}), intervalMs);
    this.#timer.unref();
  }

  /** Loads the stored counts into `metrics`, then flushes every `intervalMs`. */
  static async start(
    database: Database,
    metrics: ServerMetrics,
    intervalMs: number,
  ): Promise<PersistedMetrics> {
    const persisted = new PersistedMetrics(database, metrics, intervalMs);
    try {
      for (const { face, stored } of await readStored(database)) {
        for (const [c, total] of persisted.#countersOf(face, stored)) {
          bump(c, total);
          persisted.#stored.set(c.id, total);
        }
      }
    } catch (error) {
      clearInterval(persisted.#timer);
      throw error;
    }
    return persisted;
  }

  /** The counters of `stored` (a face's record) with their stored values, made in `metrics`. */
  *#countersOf(face: string, stored: StoredFace): Iterable<[Counter, number]> {
    for (const [operation, { count, errors }] of Object.entries(stored)) {
      const stats = this.metrics.route(face, operation);
      yield [{ id: `${face}\0${operation}`, face, operation, stats }, count];
      for (const [code, n] of Object.entries(errors)) {
        yield [{ id: `${face}\0${operation}\0${code}`, face, operation, code, stats }, n];
      }
    }
  }

  /** Every counter `metrics` holds now. */
  *#counters(): Iterable<Counter> {
    for (const [face, operations] of this.metrics.faces) {
      for (const [operation, stats] of operations.operations) {
        yield { id: `${face}\0${operation}`, face, operation, stats };
        for (const code of stats.errors.keys()) {
          yield { id: `${face}\0${operation}\0${code}`, face, operation, code, stats };
        }
      }
    }
  }

  /** Adds the increments since the last flush to the stored counts (one flush at a time). */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    const counters = [...this.#counters()];
    const at = new Map(counters.map((c) => [c.id, read(c)]));
    const delta = (c: Counter) => at.get(c.id)! - (this.#stored.get(c.id) ?? 0);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const faces = new Map<string, StoredFace>();
      const versionstamps = new Map<string, string>();
      for (const { face, stored, versionstamp } of await readStored(this.database)) {
        faces.set(face, stored);
        versionstamps.set(face, versionstamp);
      }
      const changed = new Set<string>();
      for (const c of counters) {
        const n = delta(c);
        if (n === 0) continue;
        let face = faces.get(c.face);
        if (face === undefined) {
          face = {};
          faces.set(c.face, face);
        }
        face[c.operation] ??= { count: 0, errors: {} };
        const stored = face[c.operation]!;
        if (c.code === undefined) stored.count += n;
        else stored.errors[c.code] = (stored.errors[c.code] ?? 0) + n;
        changed.add(c.face);
      }
      const checks = [...changed].map((face) => ({
        key: keyOf(face),
        versionstamp: versionstamps.get(face) ?? null,
      }));
      const mutations: Mutation[] = [...changed].map((face) => ({
        type: "set",
        key: keyOf(face),
        value: encodeValue(faces.get(face)),
      }));
      const result =
        mutations.length === 0
          ? { ok: true }
          : await this.database.commit(checkCommit({ checks, mutations }));
      if (!result.ok) continue; // another server flushed meanwhile: read its counts again
      for (const [face, stored] of faces) {
        for (const [c, total] of this.#countersOf(face, stored)) {
          // The stored total, plus what this server counted since the flush began.
          bump(c, total - (at.get(c.id) ?? 0));
          this.#stored.set(c.id, total);
        }
      }
      return;
    }
  }

  /** Stops flushing, after a last flush. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    // A flush in progress may have begun before the last requests: one more after it.
    await this.#flushing?.catch(() => {});
    await this.flush().catch(() => {});
  }
}
