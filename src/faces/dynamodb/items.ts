/**
 * Items as stored: their keys (checked against the table's key schema), their wire form as JSON
 * values, and the mutations that write one — the item, its TTL, and its entries in every secondary
 * index, in the same commit, so an index is never stale.
 */
import { decodeKey } from "../../codec/key-codec.js";
import { type EncodedValue, ValueEncoding } from "../../codec/value-codec.js";
import type { Mutation, RawEntry } from "../../engine/database.js";
import { limits } from "../../limits.js";
import { formatKeyPath } from "../../protocol/key-path.js";
import { type AttributeValue, type Item, itemSize, typeOf } from "./attribute-value.js";
import { dynamoError, validation } from "./errors.js";
import { indexEntryKey, itemKey } from "./keys.js";
import type { IndexSchema, KeyAttribute, Table } from "./tables.js";

export interface ItemKey {
  readonly hash: AttributeValue;
  readonly range?: AttributeValue;
  /** The item's key in Cairn's keyspace. */
  readonly bytes: Uint8Array;
}

export const encodeItem = (item: Item): EncodedValue => ({
  encoding: ValueEncoding.JSON,
  data: JSON.stringify(item),
});

/** The item stored in `entry`; `InternalServerError` for what the face did not write there. */
export function decodeItem(entry: RawEntry): Item {
  if (entry.encoding === ValueEncoding.JSON) {
    const item: unknown = JSON.parse(entry.data);
    if (typeof item === "object" && item !== null && !Array.isArray(item)) return item as Item;
  }
  throw dynamoError(
    "InternalServerError",
    `The entry at ${formatKey(entry.key)} is not an item: something other than the DynamoDB API wrote it`,
  );
}

const mismatch = () => validation("The provided key element does not match the schema");

/** The key of `key`, a request's `Key`: exactly the table's key attributes, of their types. */
export function keyOfKey(table: Table, key: Item): ItemKey {
  const names = Object.keys(key);
  if (names.length !== (table.range ? 2 : 1)) throw mismatch();
  const part = (attribute: KeyAttribute) => {
    const value = key[attribute.name];
    if (value === undefined || typeOf(value) !== attribute.type) throw mismatch();
    checkNotEmpty(attribute.name, value);
    return value;
  };
  const hash = part(table.hash);
  const range = table.range && part(table.range);
  return { hash, range, bytes: itemKey(table.name, hash, range) };
}

function checkNotEmpty(name: string, value: AttributeValue): void {
  if (("S" in value && value.S === "") || ("B" in value && value.B === "")) {
    throw validation(
      `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty ${"S" in value ? "string" : "binary"} value. Key: ${name}`,
    );
  }
}

/** The key of an item to be written, whose key and index key attributes must have their types. */
export function keyOfItem(table: Table, item: Item): ItemKey {
  const part = (attribute: KeyAttribute) => {
    const value = item[attribute.name];
    if (value === undefined) {
      throw validation(
        `One or more parameter values were invalid: Missing the key ${attribute.name} in the item`,
      );
    }
    if (typeOf(value) !== attribute.type) {
      throw validation(
        `One or more parameter values were invalid: Type mismatch for key ${attribute.name} expected: ${attribute.type} actual: ${typeOf(value)}`,
      );
    }
    checkNotEmpty(attribute.name, value);
    return value;
  };
  const hash = part(table.hash);
  const range = table.range && part(table.range);
  for (const index of table.indexes) {
    for (const attribute of index.range ? [index.hash, index.range] : [index.hash]) {
      const value = item[attribute.name];
      if (value === undefined) continue;
      if (typeOf(value) !== attribute.type) {
        throw validation(
          `One or more parameter values were invalid: Type mismatch for Index Key ${attribute.name} Expected: ${attribute.type} Actual: ${typeOf(value)} IndexName: ${index.name}`,
        );
      }
      checkNotEmpty(attribute.name, value);
    }
  }
  return { hash, range, bytes: itemKey(table.name, hash, range) };
}

/** `item` if within the size limit; `ValidationException` (with `message`) otherwise. */
export function checkSize(
  item: Item,
  message = "Item size has exceeded the maximum allowed size",
): Item {
  if (itemSize(item) > limits.dynamoMaxItemBytes) throw validation(message);
  return item;
}

/** The table's and an index's key attributes: what every projection keeps. */
function keyNames(table: Table, index: IndexSchema): string[] {
  return [table.hash, table.range, index.hash, index.range].flatMap((a) => (a ? [a.name] : []));
}

/** `item` as `index` projects it. */
export function projected(table: Table, index: IndexSchema, item: Item): Item {
  if (index.projection === "ALL") return item;
  const out: Record<string, AttributeValue> = {};
  for (const name of [...keyNames(table, index), ...(index.nonKey ?? [])]) {
    const value = item[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Where `item` sits in `index`; `undefined` when it lacks an index key (a sparse index). */
export function indexKeyOf(table: Table, index: IndexSchema, item: Item, key: Uint8Array) {
  const hash = item[index.hash.name];
  const range = index.range && item[index.range.name];
  if (hash === undefined || (index.range && range === undefined)) return undefined;
  return indexEntryKey(table.name, index.name, hash, range, key);
}

/** The entry of `item` (at `key`) in `index`, if it has one there, expiring with the item. */
export function indexEntry(
  table: Table,
  index: IndexSchema,
  item: Item,
  key: Uint8Array,
  now: number,
): Mutation | undefined {
  const at = indexKeyOf(table, index, item, key);
  if (at === undefined) return undefined;
  const expiresAt = expiryOf(table, item, now);
  return {
    type: "set",
    key: at,
    value: encodeItem(projected(table, index, item)),
    ...(expiresAt !== undefined && { expireIn: Math.max(1, expiresAt - now) }),
  };
}

const FIVE_YEARS_MS = 5 * 365 * 24 * 3_600_000;

/**
 * When `item` expires (epoch ms) under the table's TTL: its TTL attribute, a number of epoch
 * seconds; `undefined` for none. Like DynamoDB, a time over five years past is taken as no expiry
 * (a value in another unit by mistake), and so is one past what Cairn can store.
 */
export function expiryOf(table: Table, item: Item, now: number): number | undefined {
  if (table.ttlAttribute === undefined) return undefined;
  const value = item[table.ttlAttribute];
  if (value === undefined || !("N" in value)) return undefined;
  const at = Number(value.N) * 1000;
  if (!(at >= now - FIVE_YEARS_MS) || !(at - now <= limits.maxExpireInMs)) return undefined;
  return Math.floor(at);
}

/**
 * The mutations that replace `old` (`undefined`: none) with `next` (`undefined`: delete) at
 * `key`: the item with its expiry, and the entries of every index. An item already expired is
 * deleted at once.
 */
export function writeMutations(
  table: Table,
  key: Uint8Array,
  old: Item | undefined,
  next: Item | undefined,
  now: number,
): Mutation[] {
  const expiresAt = next && expiryOf(table, next, now);
  const live = expiresAt === undefined || expiresAt > now ? next : undefined;
  const mutations: Mutation[] = [
    live === undefined
      ? { type: "delete", key }
      : {
          type: "set",
          key,
          value: encodeItem(live),
          ...(expiresAt !== undefined && { expireIn: expiresAt - now }),
        },
  ];
  for (const index of table.indexes) {
    const entry = live && indexEntry(table, index, live, key, now);
    const before = old && indexKeyOf(table, index, old, key);
    if (before !== undefined && !(entry?.type === "set" && sameBytes(before, entry.key))) {
      mutations.push({ type: "delete", key: before });
    }
    if (entry !== undefined) mutations.push(entry);
  }
  return mutations;
}

const formatKey = (key: Uint8Array) => formatKeyPath(decodeKey(key));

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
