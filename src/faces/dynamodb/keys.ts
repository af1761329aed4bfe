/**
 * Where a table lives in Cairn's keyspace (docs/dynamodb.md): everything of table `t` under the
 * prefix `["dynamodb", t]`, so that a grant on it covers the table, and the CLI, watch and backups
 * see its items.
 *
 * - `["dynamodb", t]`: the table's description;
 * - `["dynamodb", t, "item", hash, range?]`: an item, in its wire form (JSON);
 * - `["dynamodb", t, "index", index, hash, range?, item]`: an item as a secondary index projects
 *   it, `item` telling apart items with equal index keys;
 * - `["dynamodb", t, "txn", token]`: a TransactWriteItems' idempotency token, for 10 minutes.
 *
 * Key attributes become key parts: S a string (ordered by UTF-8 bytes, as DynamoDB orders them),
 * N bytes in numeric order (`numberKey`), B its bytes. A partition key whose part would take over
 * `MAX_HASH_PART_BYTES` is kept as its SHA-256, a bigint part, which no key attribute makes
 * (partitions have no order to keep), so that the longest keys DynamoDB allows fit PostgreSQL's
 * index rows.
 */
import { createHash } from "node:crypto";
import { concatBytes, encodeKey, type KvKeyPart } from "../../codec/key-codec.js";
import { type AttributeValue, binaryOf } from "./attribute-value.js";
import { numberKey } from "./decimal.js";

const ROOT = "dynamodb";
const MAX_HASH_PART_BYTES = 256;

export const tableKey = (table: string) => encodeKey([ROOT, table]);

/** Everything of `table` but its description. */
export const tablePrefix = (table: string) => encodeKey([ROOT, table]);

export const itemsPrefix = (table: string) => encodeKey([ROOT, table, "item"]);

export const indexPrefix = (table: string, index: string) =>
  encodeKey([ROOT, table, "index", index]);

export const transactionKey = (table: string, token: string) =>
  encodeKey([ROOT, table, "txn", token]);

/** The description keys of every table: `["dynamodb", *]`, found by skipping over each table. */
export const tablesStart = encodeKey([ROOT]);

/** A key attribute's part of a key. */
function rangePart(value: AttributeValue): KvKeyPart {
  if ("S" in value) return value.S;
  if ("N" in value) return numberKey(value.N);
  return new Uint8Array(binaryOf((value as { B: string }).B));
}

function hashPart(value: AttributeValue): KvKeyPart {
  const part = rangePart(value);
  const size = typeof part === "string" ? Buffer.byteLength(part) : (part as Uint8Array).length;
  if (size <= MAX_HASH_PART_BYTES) return part;
  return BigInt(
    `0x${createHash("sha256")
      .update(encodeKey([part]))
      .digest("hex")}`,
  );
}

/** An item's parts below the items prefix: its hash key, then its range key if the table has one. */
export function keyParts(hash: AttributeValue, range: AttributeValue | undefined): KvKeyPart[] {
  return range === undefined ? [hashPart(hash)] : [hashPart(hash), rangePart(range)];
}

export const itemKey = (table: string, hash: AttributeValue, range?: AttributeValue) =>
  encodeKey([ROOT, table, "item", ...keyParts(hash, range)]);

/** The key of a partition's items (a Query's range). */
export const partitionPrefix = (prefix: Uint8Array, hash: AttributeValue) =>
  concatBytes(prefix, encodeKey([hashPart(hash)]));

/** The part of a range key, encoded (for a Query's bounds). */
export const rangeKeyBytes = (range: AttributeValue) => encodeKey([rangePart(range)]);

/** What tells apart index entries of equal index keys: the item's key, digested to a fixed size. */
export function itemDigest(itemKeyBytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(itemKeyBytes).digest().subarray(0, 16));
}

export function indexEntryKey(
  table: string,
  index: string,
  hash: AttributeValue,
  range: AttributeValue | undefined,
  itemKeyBytes: Uint8Array,
): Uint8Array {
  return encodeKey([
    ROOT,
    table,
    "index",
    index,
    ...keyParts(hash, range),
    itemDigest(itemKeyBytes),
  ]);
}
