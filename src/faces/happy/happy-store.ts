/**
 * Happy Server's kv module (reference/seed-systems.md §2) over a Cairn database: per-user items
 * with integer versions and tombstones, mutated all or nothing. A user's data lives under
 * `["happy", uid]`:
 *
 *   ["happy", uid, "kv", key]              { value: base64 | null, version }   (null: a tombstone)
 *   ["happy", uid, "seq"]                  the user's last update seq
 *   ["happy", uid, "updates", seq]         an update event's { id, seq, createdAt }
 *   ["happy", uid, "updates", seq, i]      its i-th change { key, value, version }
 *
 * A mutate is a commit checked by the versionstamp of the user's seq, which every commit rewrites:
 * a user's mutates are serialized, so concurrent ones never both win, and `seq` rises by exactly 1
 * per mutate. The mutates of one user that arrive while one of theirs commits go together in the
 * next commit, each checked against the ones before it. Its update event is written in the same commit under keys of its own
 * (kept `limits.happyUpdateRetentionMs`), so following them (the change feed, which hands over
 * only a key's latest value) yields every event, in order, resumable from a versionstamp.
 */
import { randomFillSync } from "node:crypto";
import { concatBytes, decodeKey, encodeWriteKey, type KvKey } from "../../codec/key-codec.js";
import { decodeValue, encodeValueChecked } from "../../codec/value-codec.js";
import { checkCommit } from "../../engine/commit-limits.js";
import type { Database, Mutation, RawEntry, Subscription } from "../../engine/database.js";
import { databaseOf, type Kv } from "../../kv/kv.js";
import { stringPrefixed } from "../../kv/kv-list-iterator.js";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";

/** Whose data: the authenticated user (the principal's name, over HTTP). */
export interface HappyContext {
  readonly uid: string;
}

export interface HappyItem {
  readonly key: string;
  /** The value's bytes, base64. */
  readonly value: string;
  readonly version: number;
}

export interface HappyMutation {
  readonly key: string;
  /** base64, or `null` to delete (a tombstone that keeps its version). */
  readonly value: string | null;
  /** The version the key has now: −1 for a key that never existed. */
  readonly version: number;
}

export type HappyMutateResult =
  | { readonly success: true; readonly results: { key: string; version: number }[] }
  | {
      readonly success: false;
      readonly errors: {
        key: string;
        error: "version-mismatch";
        version: number;
        value: string | null;
      }[];
    };

export interface HappyUpdate {
  readonly id: string;
  readonly seq: number;
  readonly body: {
    readonly t: "kv-batch-update";
    readonly changes: { key: string; value: string | null; version: number }[];
  };
  readonly createdAt: number;
}

/** Most keys of a bulk get, and mutations of a mutate (the original's limits). */
const MAX_KEYS = 100;
const MAX_LIST_LIMIT = 1000;
/** How often a mutate reads and commits again when another write came between. */
const MUTATE_ATTEMPTS = 100;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const invalid = (message: string) => new KvError("INVALID_ARGUMENT", message);

/** A key's stored record. */
interface StoredItem {
  readonly value: string | null;
  readonly version: number;
}

function uidOf(ctx: HappyContext): string {
  const uid = ctx?.uid;
  if (typeof uid !== "string" || uid === "") throw invalid("ctx.uid must be a non-empty string");
  return uid;
}

function checkKey(key: unknown, what: string): string {
  if (typeof key !== "string") throw invalid(`${what} must be a string`);
  return key;
}

/** The mutations of a mutate, checked: 1–100, each `{ key, value, version }`, no key twice. */
function checkMutations(mutations: unknown): HappyMutation[] {
  if (!Array.isArray(mutations) || mutations.length < 1 || mutations.length > MAX_KEYS)
    throw invalid(`mutations must be an array of 1 to ${MAX_KEYS} mutations`);
  const seen = new Set<string>();
  return mutations.map((m, i) => {
    const what = `mutations[${i}]`;
    if (m === null || typeof m !== "object" || Array.isArray(m))
      throw invalid(`${what} must be an object { key, value, version }`);
    const { key, value, version, ...rest } = m as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw invalid(`${what} has a field it does not take: ${extra}`);
    checkKey(key, `${what}.key`);
    if (seen.has(key as string))
      throw invalid(`${what}.key ${JSON.stringify(key)} appears twice: mutate each key once`);
    seen.add(key as string);
    if (value !== null && (typeof value !== "string" || !BASE64.test(value)))
      throw invalid(`${what}.value must be a base64 string, or null to delete`);
    if (typeof version !== "number" || !Number.isSafeInteger(version) || version < -1)
      throw invalid(`${what}.version must be an integer of at least -1 (-1: a new key)`);
    return { key: key as string, value: value as string | null, version };
  });
}

/** The keys of a bulk get, checked: 1–100 strings. */
function checkKeys(keys: unknown): string[] {
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_KEYS)
    throw invalid(`keys must be an array of 1 to ${MAX_KEYS} keys`);
  return keys.map((key, i) => checkKey(key, `keys[${i}]`));
}

/** A list's limit: 1–1000, default 100. */
function checkLimit(limit: unknown): number {
  if (limit === undefined) return 100;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
    throw invalid(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  return limit;
}

const recordOf = (entry: RawEntry | null | undefined): StoredItem | null =>
  entry ? (decodeValue(entry) as StoredItem) : null;

/** A mutate waiting for its user's next commit. */
interface Pending {
  readonly mutations: HappyMutation[];
  resolve(result: HappyMutateResult): void;
  reject(error: unknown): void;
}

/** Mutations one commit takes from a user's queue at most (a mutate is never split). */
const MAX_BATCH_MUTATIONS = 100;

/** Users' items, as Happy Server's kv functions see them. */
export class HappyKvStore {
  /**
   * Over `database`. The mutates of one user wait in `queues` (under `scope` and the uid) while
   * one of theirs commits, and the next commit takes them together: stores that share `queues`
   * (one per request over HTTP) share the batching.
   */
  constructor(
    private readonly database: () => Database,
    private readonly queues = new Map<string, Pending[]>(),
    private readonly scope = "",
  ) {}

  #user(ctx: HappyContext): KvKey {
    return ["happy", uidOf(ctx)];
  }

  #keyOf(user: KvKey, key: string): Uint8Array {
    return encodeWriteKey([...user, "kv", key]);
  }

  /** The keys under which the user's update events are written (`followUpdates`). */
  updatesKey(ctx: HappyContext): Uint8Array {
    return encodeWriteKey([...this.#user(ctx), "updates"]);
  }

  /** The key's record: its value (`null`: deleted) and version; `null` when it never existed. */
  async record(ctx: HappyContext, key: string): Promise<StoredItem | null> {
    const user = this.#user(ctx);
    const [entry] = await this.database().get([this.#keyOf(user, checkKey(key, "key"))]);
    return recordOf(entry);
  }

  /** The item, or `null` when it is missing or deleted (the original's `kvGet`). */
  async get(ctx: HappyContext, key: string): Promise<HappyItem | null> {
    const record = await this.record(ctx, key);
    return record?.value == null ? null : { key, value: record.value, version: record.version };
  }

  /** The items of `keys` that exist, in the order asked; missing and deleted keys are left out. */
  async bulkGet(ctx: HappyContext, keys: readonly string[]): Promise<{ values: HappyItem[] }> {
    const user = this.#user(ctx);
    const names = [...new Set(checkKeys(keys))]; // a key asked twice is answered once
    const entries = await this.database().get(names.map((k) => this.#keyOf(user, k)));
    const values: HappyItem[] = [];
    entries.forEach((entry, i) => {
      const record = recordOf(entry);
      if (record?.value != null)
        values.push({ key: names[i]!, value: record.value, version: record.version });
    });
    return { values };
  }

  /** Items whose key starts with `prefix`, in key order, deleted ones left out. */
  async list(
    ctx: HappyContext,
    options: { prefix?: string; limit?: number } = {},
  ): Promise<{ items: HappyItem[] }> {
    const user = this.#user(ctx);
    const prefix = options.prefix ?? "";
    if (typeof prefix !== "string") throw invalid("prefix must be a string");
    const limit = checkLimit(options.limit);
    const items: HappyItem[] = [];
    for await (const { name, value } of stringPrefixed<StoredItem>(
      this.database,
      [...user, "kv"],
      prefix,
    )) {
      if (value.value === null) continue;
      items.push({ key: name, value: value.value, version: value.version });
      if (items.length === limit) break;
    }
    return { items };
  }

  /**
   * Applies every mutation or none: each needs the key's current version (−1: never existed), or
   * the mutate answers every mismatch with the key's current version and value. A new key gets
   * version 0, an update version + 1; `value: null` keeps a tombstone with its version.
   */
  mutate(ctx: HappyContext, mutations: readonly HappyMutation[]): Promise<HappyMutateResult> {
    const user = this.#user(ctx);
    const checked = checkMutations(mutations);
    const id = `${this.scope}\0${user[1]}`;
    return new Promise((resolve, reject) => {
      const pending = { mutations: checked, resolve, reject };
      const queue = this.queues.get(id);
      if (queue !== undefined) queue.push(pending);
      else {
        this.queues.set(id, [pending]);
        void this.#drain(id, user);
      }
    });
  }

  /**
   * Commits the user's queued mutates until none is left: those that arrived while a commit was
   * in flight go together in the next, as the engine groups commits. A batch that fails as a
   * whole (too large together) is committed again one mutate at a time, so that only the one at
   * fault fails.
   */
  async #drain(id: string, user: KvKey): Promise<void> {
    const queue = this.queues.get(id)!;
    while (queue.length > 0) {
      let taken = 1;
      let size = queue[0]!.mutations.length;
      while (taken < queue.length && size + queue[taken]!.mutations.length <= MAX_BATCH_MUTATIONS)
        size += queue[taken++]!.mutations.length;
      const batch = queue.splice(0, taken);
      try {
        const results = await this.#commit(
          user,
          batch.map((p) => p.mutations),
        );
        for (const [i, p] of batch.entries()) p.resolve(results[i]!);
      } catch (error) {
        if (batch.length === 1) batch[0]!.reject(error);
        else {
          for (const p of batch) {
            await this.#commit(user, [p.mutations]).then(([r]) => p.resolve(r!), p.reject);
          }
        }
      }
    }
    this.queues.delete(id);
  }

  /**
   * Applies `mutates` in order in one commit checked by the user's seq, each against the state
   * the ones before it left: their results in order.
   */
  async #commit(user: KvKey, mutates: HappyMutation[][]): Promise<HappyMutateResult[]> {
    const names = [...new Set(mutates.flatMap((m) => m.map(({ key }) => key)))];
    const keyOf = new Map(names.map((name) => [name, this.#keyOf(user, name)]));
    const seqKey = encodeWriteKey([...user, "seq"]);
    for (let attempt = 0; attempt < MUTATE_ATTEMPTS; attempt++) {
      const entries = await this.database().get([...keyOf.values(), seqKey]);
      const state = new Map(names.map((name, i) => [name, recordOf(entries[i])]));
      const seqEntry = entries[names.length];
      let seq = seqEntry ? (decodeValue(seqEntry) as number) : 0;
      const results: HappyMutateResult[] = [];
      const events: Mutation[] = [];
      const changed = new Set<string>();
      for (const mutations of mutates) {
        const errors = mutations.flatMap((m) => {
          const record = state.get(m.key);
          const version = record?.version ?? -1;
          return version === m.version
            ? []
            : [
                {
                  key: m.key,
                  error: "version-mismatch" as const,
                  version,
                  value: record?.value ?? null,
                },
              ];
        });
        if (errors.length > 0) {
          results.push({ success: false, errors });
          continue;
        }
        seq++;
        const changes = mutations.map((m) => ({
          key: m.key,
          value: m.value,
          version: m.version === -1 ? 0 : m.version + 1,
        }));
        for (const c of changes) {
          state.set(c.key, { value: c.value, version: c.version });
          changed.add(c.key);
        }
        events.push(...eventWrites(user, seq, changes));
        results.push({
          success: true,
          results: changes.map(({ key, version }) => ({ key, version })),
        });
      }
      if (events.length === 0) return results; // every mutate mismatched: nothing to write
      const writes: Mutation[] = [
        ...[...changed].map(
          (name): Mutation => ({
            type: "set",
            key: keyOf.get(name)!,
            value: encodeValueChecked(state.get(name)),
          }),
        ),
        { type: "set", key: seqKey, value: encodeValueChecked(seq) },
        ...events,
      ];
      const checks = [{ key: seqKey, versionstamp: seqEntry?.versionstamp ?? null }];
      const result = await this.database().commit(checkCommit({ checks, mutations: writes }));
      if (result.ok) return results;
    }
    throw new KvError("UNAVAILABLE", "The keys kept changing: the mutate gave up, try again");
  }
}

/** The writes of update event `seq`: its `{ id, seq, createdAt }`, then each change, kept a while. */
function eventWrites(
  user: KvKey,
  seq: number,
  changes: HappyUpdate["body"]["changes"],
): Mutation[] {
  const expireIn = limits.happyUpdateRetentionMs;
  const event = { id: eventId(), seq, createdAt: Date.now() };
  return [
    {
      type: "set",
      key: encodeWriteKey([...user, "updates", seq]),
      value: encodeValueChecked(event),
      expireIn,
    },
    ...changes.map(
      (c, i): Mutation => ({
        type: "set",
        key: encodeWriteKey([...user, "updates", seq, i]),
        value: encodeValueChecked(c),
        expireIn,
      }),
    ),
  ];
}

/** What `followUpdates` tells, in order. */
export interface UpdateListener {
  /** One update event, made by the commit `versionstamp`. */
  update(update: HappyUpdate, versionstamp: string): void;
  heartbeat?(versionstamp: string): void;
  /** Events between the cursor and `oldest` are no longer kept. */
  lost?(oldest: string): void;
  error(error: unknown): void;
}

/**
 * Follows the update events of `ctx`'s user in `database` after `cursor` (`null`: from now), one
 * per mutate, each assembled from the keys its commit wrote under the user's updates.
 */
export function followUpdates(
  database: Database,
  ctx: HappyContext,
  cursor: string | null,
  listener: UpdateListener,
): Subscription {
  const base = new HappyKvStore(() => database).updatesKey(ctx);
  return database.follow(
    { ranges: [{ start: concatBytes(base, [0x00]), end: concatBytes(base, [0xff]) }], cursor },
    {
      commit: (commit) => {
        // A commit holds one event or more (a user's mutates committed together), each as its
        // `{ id, seq, createdAt }` under [seq] followed by its changes under [seq, i], in key order.
        let event: { id: string; seq: number; createdAt: number } | undefined;
        let changes: HappyUpdate["body"]["changes"] = [];
        const send = () => {
          if (event === undefined) return;
          const { id, seq, createdAt } = event;
          listener.update(
            { id, seq, body: { t: "kv-batch-update", changes }, createdAt },
            commit.versionstamp,
          );
        };
        for (const change of commit.changes) {
          if (change.entry === null) continue; // an old event expiring
          const value = decodeValue(change.entry);
          if (decodeKey(change.key.subarray(base.length)).length === 1) {
            send();
            event = value as never;
            changes = [];
          } else changes.push(value as never);
        }
        send();
      },
      heartbeat: (versionstamp) => listener.heartbeat?.(versionstamp),
      lost: (oldest) => listener.lost?.(oldest),
      error: (error) => listener.error(error),
    },
  );
}

/** A random event id: 12 letters and digits, as the original's. */
function eventId(): string {
  if (randomAt + 12 > random.length) {
    randomFillSync(random); // one call for many ids: a call per id cost a mutate 6% of its CPU
    randomAt = 0;
  }
  let id = "";
  for (let i = 0; i < 12; i++) id += ID_LETTERS[random[randomAt++]! % ID_LETTERS.length];
  return id;
}

const ID_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const random = Buffer.alloc(4096);
let randomAt = random.length;

/**
 * Happy Server's kv functions over `kv` (embedded or remote); `ctx.uid` scopes every call. `kvGet`
 * answers `{ success, key, value, version }`, as the seed's example reads it: `success: false`
 * and `value: null` when the key is missing or deleted (`version`: the tombstone's, else −1).
 * `onUpdate` calls `listener` with each update event of the user, from when `ready` resolves,
 * until `stop()`.
 */
export function happyKv(kv: Kv) {
  const database = databaseOf(kv);
  const store = new HappyKvStore(database);
  return {
    async kvGet(ctx: HappyContext, key: string) {
      const record = await store.record(ctx, key);
      return record?.value == null
        ? { success: false as const, key, value: null, version: record?.version ?? -1 }
        : { success: true as const, key, value: record.value, version: record.version };
    },
    kvBulkGet: (ctx: HappyContext, keys: string[]) => store.bulkGet(ctx, keys),
    kvList: (ctx: HappyContext, options?: { prefix?: string; limit?: number }) =>
      store.list(ctx, options),
    kvMutate: (ctx: HappyContext, mutations: HappyMutation[]) => store.mutate(ctx, mutations),
    /** `ready` resolves once the subscription follows: every mutate after it is delivered. */
    onUpdate(
      ctx: HappyContext,
      listener: (update: HappyUpdate) => void,
      options: { onError?: (error: unknown) => void } = {},
    ): { readonly ready: Promise<void>; stop(): void } {
      const onError = options.onError ?? ((e) => console.error("cairn: onUpdate failed:", e));
      let following!: () => void;
      const ready = new Promise<void>((resolve) => {
        following = resolve;
      });
      const subscription = followUpdates(database(), ctx, null, {
        update: listener,
        heartbeat: () => following(),
        error: (error) => {
          following();
          onError(error);
        },
      });
      return { ready, stop: () => subscription.close() };
    },
  };
}
