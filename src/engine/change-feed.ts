/**
 * The change feed above a backend: one reader per database follows the backend's change records
 * and hands each commit to every subscription whose ranges it touches. Subscriptions that start
 * from an older cursor first catch up on their own, then join the live reader; nothing polls
 * the storage per subscription.
 */
import type { Backend, ChangeRecord, CommitChanges } from "../backends/backend.js";
import { laterVersionstamp } from "../codec/versionstamp.js";
import { KvError } from "../kv-error.js";
import { limits } from "../limits.js";
import type {
  ChangesPage,
  ChangesRequest,
  FeedListener,
  FeedRanges,
  Subscription,
} from "./database.js";

/** Above every versionstamp: reading after it returns no commits, only the head. */
const LATEST = "ffffffffffffffffffff";

interface Subscriber {
  readonly ranges: FeedRanges["ranges"];
  /** The ranges as text: subscribers with the same ranges share each commit's selection. */
  readonly rangesKey: string;
  readonly listener: FeedListener;
  /** The last commit this subscriber has been told about (or looked past). */
  position: string;
  live: boolean;
  closed: boolean;
}

const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const rangesKeyOf = (ranges: FeedRanges["ranges"]) =>
  ranges.map((r) => `${hexOf(r.start)}-${hexOf(r.end)}`).join(",");

function inRanges(key: Uint8Array, ranges: FeedRanges["ranges"]): boolean {
  for (const r of ranges) {
    if (Buffer.compare(key, r.start) >= 0 && Buffer.compare(key, r.end) < 0) return true;
  }
  return false;
}

/**
 * The commit's changes within `ranges`, expired entries shown as deletions; `null` if none. When
 * that is all of the commit, the commit object itself, so that its watchers can share work.
 */
function select(commit: CommitChanges, ranges: FeedRanges["ranges"], now: number) {
  const expired = (c: ChangeRecord) => c.entry?.expiresAt != null && c.entry.expiresAt <= now;
  if (commit.changes.every((c) => inRanges(c.key, ranges) && !expired(c))) {
    return commit.changes.length > 0 ? commit : null;
  }
  const selected: ChangeRecord[] = [];
  for (const change of commit.changes) {
    if (!inRanges(change.key, ranges)) continue;
    selected.push(expired(change) ? { key: change.key, entry: null } : change);
  }
  return selected.length > 0 ? { versionstamp: commit.versionstamp, changes: selected } : null;
}

export class ChangeFeed {
  readonly #backend: Backend;
  readonly #subscribers = new Set<Subscriber>();
  /** Every commit up to here has been handed to the live subscribers. */
  #head: Promise<string> | string;
  /** Commits happened while nobody listened: `#head` must be read again before use. */
  #stale = false;
  #pumping = false;
  #again = false;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(backend: Backend) {
    this.#backend = backend;
    this.#head = this.#readHead();
  }

  #readHead(): Promise<string> {
    const head = this.#backend.readChanges(LATEST, 1).then((page) => page.head);
    head.then(
      (h) => {
        if (this.#head === head) this.#head = h;
      },
      () => {}, // the subscription that awaits it fails
    );
    return head;
  }

  follow(request: FeedRanges & { cursor: string | null }, listener: FeedListener): Subscription {
    const subscriber: Subscriber = {
      ranges: request.ranges,
      rangesKey: rangesKeyOf(request.ranges),
      listener,
      position: request.cursor ?? "",
      live: false,
      closed: false,
    };
    if (this.#stale && this.#subscribers.size === 0) {
      this.#stale = false;
      this.#head = this.#readHead();
    }
    this.#subscribers.add(subscriber);
    this.#heartbeat ??= setInterval(() => this.#beat(), limits.watchHeartbeatMs).unref();
    void this.#catchUp(subscriber, request.cursor === null);
    return {
      close: () => {
        subscriber.closed = true;
        this.#remove(subscriber);
      },
    };
  }

  async changes(request: ChangesRequest): Promise<ChangesPage> {
    const cursor = request.cursor ?? (await this.#readHead());
    const page = await this.#backend.readChanges(cursor, request.limit);
    const now = Date.now();
    const commits = page.commits.flatMap((c) => select(c, request.ranges, now) ?? []);
    const last = page.commits.at(-1)?.versionstamp;
    return {
      commits,
      // With nothing left to read, the cursor moves up to the head.
      cursor: last ?? laterVersionstamp(page.head, cursor),
      ...(cursor < page.horizon && { lost: page.horizon }),
    };
  }

  /** Something was committed: hand it to the live subscribers. */
  async wake(): Promise<void> {
    if (this.#subscribers.size === 0) {
      this.#stale = true;
      return;
    }
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        const head = await this.#head;
        const page = await this.#backend.readChanges(head, limits.feedPageChanges);
        if (head < page.horizon) {
          for (const s of this.#live()) this.#lose(s, page.horizon);
        }
        this.#deliver(page.commits, this.#live());
        const last = page.commits.at(-1)?.versionstamp;
        if (last !== undefined) {
          this.#head = last;
          this.#again = true; // there may be more
        }
      } while (this.#again && this.#subscribers.size > 0);
    } catch (error) {
      for (const s of this.#live()) this.#fail(s, error);
    } finally {
      this.#pumping = false;
      if (this.#again) this.#stale = true; // stopped early: nobody listens any more
    }
  }

  /** Ends every subscription: the database is closing. */
  close(): void {
    const closed = new KvError("CLOSED", "The database is closed");
    for (const s of this.#subscribers) this.#fail(s, closed);
  }

  async #catchUp(s: Subscriber, fromNow: boolean): Promise<void> {
    try {
      if (fromNow) s.position = await this.#head;
      for (;;) {
        if (s.closed) return;
        const page = await this.#backend.readChanges(s.position, limits.feedPageChanges);
        if (s.closed) return;
        if (s.position < page.horizon) {
          this.#lose(s, page.horizon);
          continue;
        }
        this.#deliver(page.commits, [s]);
        // Live once nothing is left between this subscriber and the live reader.
        const head = this.#head;
        if (page.commits.length === 0 && typeof head === "string" && s.position >= head) {
          s.live = true;
          s.listener.heartbeat(s.position); // tells where the live feed starts
          return;
        }
        if (page.commits.length === 0) await this.#head;
      }
    } catch (error) {
      this.#fail(s, error);
    }
  }

  #deliver(commits: readonly CommitChanges[], to: Iterable<Subscriber>): void {
    const now = Date.now();
    // Per ranges, each commit's selection (`undefined`: not made yet), made once for all the
    // subscribers that watch those ranges: a thousand watchers of one prefix are one selection.
    const selections = new Map<string, (CommitChanges | null | undefined)[]>();
    for (const s of to) {
      let selected = selections.get(s.rangesKey);
      if (selected === undefined) {
        selected = new Array(commits.length);
        selections.set(s.rangesKey, selected);
      }
      for (let i = 0; i < commits.length; i++) {
        const commit = commits[i]!;
        if (s.closed) break;
        if (commit.versionstamp <= s.position) continue;
        s.position = commit.versionstamp;
        if (selected[i] === undefined) selected[i] = select(commit, s.ranges, now);
        const changes = selected[i];
        if (changes) s.listener.commit(changes);
      }
    }
  }

  *#live(): Generator<Subscriber> {
    for (const s of this.#subscribers) if (s.live && !s.closed) yield s;
  }

  #beat(): void {
    const head = this.#head;
    for (const s of this.#live()) {
      if (typeof head === "string" && head > s.position) s.position = head;
      s.listener.heartbeat(s.position);
    }
  }

  #lose(s: Subscriber, horizon: string): void {
    s.position = horizon;
    s.listener.lost(horizon);
  }

  #fail(s: Subscriber, error: unknown): void {
    if (s.closed) return;
    s.closed = true;
    this.#remove(s);
    s.listener.error(error);
  }

  #remove(s: Subscriber): void {
    this.#subscribers.delete(s);
    if (this.#subscribers.size === 0) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }
}
