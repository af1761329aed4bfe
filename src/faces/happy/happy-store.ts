/**
 * Happy Server's kv module (reference/seed-systems.md §2) over a Cairn database: per-user items
 * with integer versions and tombstones, mutated all or nothing. A user's data lives under
 * `["happy", uid]`:
 *
 *   ["happy", uid, "kv", key]   { value: base64 | null, version }   (null: a tombstone)
 *   ["happy", uid, "seq"]       the user's last update seq
 *   ["happy", uid, "update"]    the user's last update event, rewritten by every mutate
 *
 * A mutate is one commit checked by the versionstamps of what it read, its keys' records and
 * the seq, so concurrent mutates never both win and `seq` rises by exactly 1 per mutate; its
 * update event is written in the same commit, so following that key's changes (the change feed)
 * yields every event in order, resumable from a versionstamp.
 */
import { randomBytes } from "node:crypto";
import { concatBytes, encodeWriteKey, type KvKey } from "../../codec/key-codec.js";
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
export const MAX_KEYS = 100;
const MAX_LIST_LIMIT = 1000;
/** How often a mutate reads and commits again when another write came between. */
const MUTATE_ATTEMPTS = 100;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const invalid = (message: string) => new KvError("INVALID_ARGUMENT", message);

/** A key's stored record. */
interface Record_ {
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
export function checkMutations(mutations: unknown): HappyMutation[] {
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
export function checkKeys(keys: unknown): string[] {
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_KEYS)
    throw invalid(`keys must be an array of 1 to ${MAX_KEYS} keys`);
  return keys.map((key, i) => checkKey(key, `keys[${i}]`));
}

/** A list's limit: 1–1000, default 100. */
export function checkLimit(limit: unknown): number {
  if (limit === undefined) return 100;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
    throw invalid(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  return limit;
}

const recordOf = (entry: RawEntry | null | undefined): Record_ | null =>
  entry ? (decodeValue(entry) as Record_) : null;

/** One user's items, as Happy Server's kv functions see them. */
export class HappyKvStore {
  constructor(private readonly database: () => Database) {}

  #user(ctx: HappyContext): KvKey {
    return ["happy", uidOf(ctx)];
  }

  #keyOf(user: KvKey, key: string): Uint8Array {
    return encodeWriteKey([...user, "kv", key]);
  }

  /** The key whose every change is one update event of the user (`onUpdate`, the SSE route). */
  updateKey(ctx: HappyContext): Uint8Array {
    return encodeWriteKey([...this.#user(ctx), "update"]);
  }

  /** The key's record: its value (`null`: deleted) and version; `null` when it never existed. */
  async record(ctx: HappyContext, key: string): Promise<Record_ | null> {
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
    const names = checkKeys(keys);
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
    for await (const { name, value } of stringPrefixed<Record_>(
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
  async mutate(ctx: HappyContext, mutations: readonly HappyMutation[]): Promise<HappyMutateResult> {
    const user = this.#user(ctx);
    const checked = checkMutations(mutations);
    const keys = checked.map((m) => this.#keyOf(user, m.key));
    const seqKey = encodeWriteKey([...user, "seq"]);
    const updateKey = encodeWriteKey([...user, "update"]);
    for (let attempt = 0; attempt < MUTATE_ATTEMPTS; attempt++) {
      const entries = await this.database().get([...keys, seqKey]);
      const errors = checked.flatMap((m, i) => {
        const record = recordOf(entries[i]);
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
      if (errors.length > 0) return { success: false, errors };
      const changes = checked.map((m) => ({
        key: m.key,
        value: m.value,
        version: m.version === -1 ? 0 : m.version + 1,
      }));
      const seqEntry = entries[keys.length];
      const seq = (seqEntry ? (decodeValue(seqEntry) as number) : 0) + 1;
      const update: HappyUpdate = {
        id: randomBytes(9).toString("base64url"),
        seq,
        body: { t: "kv-batch-update", changes },
        createdAt: Date.now(),
      };
      const writes: Mutation[] = [
        ...changes.map(
          (c, i): Mutation => ({
            type: "set",
            key: keys[i]!,
            value: encodeValueChecked({ value: c.value, version: c.version }),
          }),
        ),
        { type: "set", key: seqKey, value: encodeValueChecked(seq) },
        { type: "set", key: updateKey, value: encodeValueChecked(update, limits.maxValueBytes) },
      ];
      const checks = [...keys, seqKey].map((key, i) => ({
        key,
        versionstamp: entries[i]?.versionstamp ?? null,
      }));
      const result = await this.database().commit(checkCommit({ checks, mutations: writes }));
      if (result.ok) {
        return { success: true, results: changes.map(({ key, version }) => ({ key, version })) };
      }
    }
    throw new KvError("UNAVAILABLE", "The keys kept changing: the mutate gave up, try again");
  }
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
 * Follows the update events of `ctx`'s user in `database` after `cursor` (`null`: from now): the
 * changes of the key each mutate rewrites, from the change feed.
 */
export function followUpdates(
  database: Database,
  ctx: HappyContext,
  cursor: string | null,
  listener: UpdateListener,
): Subscription {
  const key = new HappyKvStore(() => database).updateKey(ctx);
  return database.follow(
    { ranges: [{ start: key, end: concatBytes(key, [0x00]) }], cursor },
    {
      commit: (commit) => {
        for (const change of commit.changes) {
          if (change.entry)
            listener.update(decodeValue(change.entry) as HappyUpdate, commit.versionstamp);
        }
      },
      heartbeat: (versionstamp) => listener.heartbeat?.(versionstamp),
      lost: (oldest) => listener.lost?.(oldest),
      error: (error) => listener.error(error),
    },
  );
}

/**
 * Happy Server's kv functions over `kv` (embedded or remote); `ctx.uid` scopes every call. `kvGet`
 * answers `{ success, key, value, version }`, as the seed's example reads it: `success: false`
 * and `value: null` when the key is missing or deleted (`version`: the tombstone's, else −1).
 * `onUpdate` calls `listener` with each update event of the user, from now, until `stop()`.
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
    onUpdate(
      ctx: HappyContext,
      listener: (update: HappyUpdate) => void,
      options: { onError?: (error: unknown) => void } = {},
    ): { stop(): void } {
      const subscription = followUpdates(database(), ctx, null, {
        update: listener,
        error: options.onError ?? ((e) => console.error("cairn: onUpdate failed:", e)),
      });
      return { stop: () => subscription.close() };
    },
  };
}
