/**
 * Query and Scan: a range of a table's items, or of an index's entries, read in key order (a
 * Query's partition in range key order) and paged as DynamoDB pages: `Limit` items evaluated, or
 * 1 MB of them, then `LastEvaluatedKey`; the filter applies after both.
 */
import { crc32 } from "node:zlib";
import { concatBytes, encodeKey, hasPrefix } from "../../codec/key-codec.js";
import type { Database } from "../../engine/database.js";
import { limits } from "../../limits.js";
import { type AttributeValue, type Item, itemSize } from "./attribute-value.js";
import { validation } from "./errors.js";
import { evaluate, project } from "./expression-eval.js";
import { type Condition, type Path, parseCondition, parseProjection } from "./expression-parser.js";
import { decodeItem, keyOfKey } from "./items.js";
import { type KeyCondition, keyCondition } from "./key-condition.js";
import {
  indexEntryKey,
  indexPrefix,
  itemKey,
  itemsPrefix,
  keyParts,
  partitionPrefix,
  rangeKeyBytes,
  tableKey,
} from "./keys.js";
import {
  type Context,
  expressionContext,
  keyMember,
  noAccounting,
  noLegacy,
  type Operations,
} from "./operation.js";
import type { Input } from "./request-input.js";
import {
  checkTableName,
  type IndexSchema,
  type KeyAttribute,
  rememberTable,
  type Table,
  tableOf,
} from "./tables.js";

/** The first byte string after every one that starts with `prefix`. */
function successor(prefix: Uint8Array): Uint8Array {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  const out = prefix.slice(0, end);
  out[end - 1]! += 1;
  return out;
}

const after = (prefix: Uint8Array) => concatBytes(prefix, [0xff]);

interface Source {
  readonly table: Table;
  readonly index?: IndexSchema;
  /** The keys the source is ordered by. */
  readonly hash: KeyAttribute;
  readonly range?: KeyAttribute;
  readonly prefix: Uint8Array;
}

function sourceOf(table: Table, indexName: string | undefined): Source {
  if (indexName === undefined) {
    return { table, hash: table.hash, range: table.range, prefix: itemsPrefix(table.name) };
  }
  const index = table.indexes.find((i) => i.name === indexName);
  if (index === undefined) {
    throw validation(`The table does not have the specified index: ${indexName}`);
  }
  if (index.status !== "ACTIVE") {
    throw validation(`Cannot read from backfilling global secondary index: ${indexName}`);
  }
  return {
    table,
    index,
    hash: index.hash,
    range: index.range,
    prefix: indexPrefix(table.name, index.name),
  };
}

/** The key attributes of an entry of `source`: what `LastEvaluatedKey` holds. */
function keyAttributesOf(source: Source, item: Item): Item {
  const out: Record<string, AttributeValue> = {};
  const { table, index } = source;
  for (const a of [table.hash, table.range, index?.hash, index?.range]) {
    if (a !== undefined && item[a.name] !== undefined) out[a.name] = item[a.name]!;
  }
  return out;
}

/** Where an `ExclusiveStartKey` sits in `source`'s order. */
function startKeyBytes(source: Source, start: Item): Uint8Array {
  const { table, index } = source;
  const tableKeyBytes = keyOfKey(
    table,
    Object.fromEntries(
      [table.hash, table.range].flatMap((a) =>
        a && start[a.name] !== undefined ? [[a.name, start[a.name]!]] : [],
      ),
    ),
  ).bytes;
  const expected = new Set(
    [table.hash, table.range, index?.hash, index?.range].flatMap((a) => (a ? [a.name] : [])),
  );
  if (Object.keys(start).some((name) => !expected.has(name))) {
    throw validation(
      "The provided starting key is invalid: The provided key element does not match the schema",
    );
  }
  if (index === undefined) return tableKeyBytes;
  const hash = start[index.hash.name];
  const range = index.range && start[index.range.name];
  if (hash === undefined || (index.range && range === undefined)) {
    throw validation(
      "The provided starting key is invalid: The provided key element does not match the schema",
    );
  }
  return indexEntryKey(table.name, index.name, hash, range, tableKeyBytes);
}

type Select = "ALL_ATTRIBUTES" | "ALL_PROJECTED_ATTRIBUTES" | "SPECIFIC_ATTRIBUTES" | "COUNT";

interface ReadRequest {
  readonly source: Source;
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly reverse: boolean;
  readonly exclusiveStart?: Uint8Array;
  readonly limit?: number;
  readonly filter?: Condition;
  readonly projection?: readonly Path[];
  readonly select: Select;
  /** Whether an entry belongs (a Scan's segment); absent: all do. */
  readonly accept?: (item: Item) => boolean;
  /** Whether index entries stand for their whole items, read from the table (an LSI). */
  readonly fetchItems: boolean;
}

/** One page of a Query or a Scan. */
async function readPage(database: Database, request: ReadRequest) {
  const { source, reverse } = request;
  let start = request.start;
  let end = request.end;
  if (request.exclusiveStart !== undefined) {
    if (reverse) {
      if (Buffer.compare(request.exclusiveStart, end) < 0) end = request.exclusiveStart;
    } else {
      const next = concatBytes(request.exclusiveStart, [0x00]);
      if (Buffer.compare(next, start) > 0) start = next;
    }
  }
  const items: Item[] = [];
  let scanned = 0;
  let bytes = 0;
  let last: Item | undefined;
  let more = false;
  const limit = request.limit ?? Number.POSITIVE_INFINITY;
  outer: while (Buffer.compare(start, end) < 0) {
    const batch = Math.min(limits.maxReadEntries, Math.max(1, limit - scanned));
    const [page] = await database.scan([{ start, end, limit: batch, reverse }]);
    const entries = page!;
    let evaluated = entries.map(decodeItem);
    if (request.fetchItems) evaluated = await tableItems(database, source.table, evaluated);
    for (let i = 0; i < entries.length; i++) {
      const item = evaluated[i]!;
      if (request.accept && !request.accept(item)) continue;
      scanned++;
      bytes += itemSize(item);
      last = item;
      if (request.filter === undefined || evaluate(request.filter, item)) {
        items.push(request.projection ? project(item, request.projection) : item);
      }
      if (scanned >= limit || bytes >= limits.dynamoMaxPageBytes) {
        more = true;
        break outer;
      }
    }
    if (entries.length < batch) break;
    const boundary = entries.at(-1)!.key;
    if (reverse) end = boundary;
    else start = concatBytes(boundary, [0x00]);
  }
  return {
    ...(request.select !== "COUNT" && { Items: items }),
    Count: items.length,
    ScannedCount: scanned,
    ...(more && last !== undefined && { LastEvaluatedKey: keyAttributesOf(source, last) }),
  };
}

/** The whole items that index entries (an LSI's projection) stand for, from the table. */
async function tableItems(database: Database, table: Table, entries: Item[]): Promise<Item[]> {
  if (entries.length === 0) return entries;
  const keys = entries.map((entry) =>
    itemKey(table.name, entry[table.hash.name]!, table.range && entry[table.range.name]),
  );
  const found = await database.get(keys);
  return found.map((entry, i) => (entry ? decodeItem(entry) : entries[i]!));
}

/** The table, read now (a Query or Scan reads it in its own snapshot: tables change rarely). */
async function tableFor(context: Context, name: string): Promise<Table> {
  const [entry] = await context.database.get([tableKey(name)]);
  return rememberTable(context.databaseId, tableOf(entry, name)).table;
}

interface CommonParts {
  readonly filter?: Condition;
  readonly projection?: readonly Path[];
  readonly select: Select;
  readonly limit?: number;
  readonly exclusiveStart?: Item;
  readonly indexName?: string;
}

/** What Query and Scan take alike, read and checked. */
function commonParts(input: Input, expressions: ReturnType<typeof expressionContext>): CommonParts {
  const filterText = input.string("FilterExpression");
  const projectionText = input.string("ProjectionExpression");
  const filter =
    filterText === undefined
      ? undefined
      : parseCondition(filterText, "FilterExpression", expressions);
  const projection =
    projectionText === undefined ? undefined : parseProjection(projectionText, expressions);
  const selected = input.string("Select");
  if (
    selected !== undefined &&
    !["ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "SPECIFIC_ATTRIBUTES", "COUNT"].includes(
      selected,
    )
  ) {
    throw validation(
      `1 validation error detected: Value '${selected}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]`,
    );
  }
  if (projection !== undefined && selected !== undefined && selected !== "SPECIFIC_ATTRIBUTES") {
    throw validation(`Cannot specify the ProjectionExpression when choosing to get ${selected}`);
  }
  if (selected === "SPECIFIC_ATTRIBUTES" && projection === undefined) {
    throw validation(
      "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES",
    );
  }
  const limit = input.number("Limit");
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
    throw validation(
      `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1`,
    );
  }
  const exclusiveStart = input.has("ExclusiveStartKey")
    ? keyMember(input, "ExclusiveStartKey")
    : undefined;
  const indexName = input.string("IndexName");
  input.boolean("ConsistentRead");
  noAccounting(input);
  return {
    filter,
    projection,
    // Without Select, DynamoDB reads a table's whole items but an index's projected attributes.
    select: (selected ??
      (projection
        ? "SPECIFIC_ATTRIBUTES"
        : indexName === undefined
          ? "ALL_ATTRIBUTES"
          : "ALL_PROJECTED_ATTRIBUTES")) as Select,
    limit,
    exclusiveStart,
    indexName,
  };
}

/** Checks what a read of an index may ask, and whether its items come from the table. */
function fetchesItems(
  source: Source,
  parts: CommonParts,
  consistent: boolean | undefined,
): boolean {
  const { index } = source;
  if (index === undefined) return false;
  if (index.global && consistent) {
    throw validation("Consistent reads are not supported on global secondary indexes");
  }
  if (index.projection === "ALL") return false;
  const wantsAll = parts.select === "ALL_ATTRIBUTES" || parts.projection !== undefined;
  if (wantsAll && index.global && parts.select === "ALL_ATTRIBUTES") {
    throw validation(
      `One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index ${index.name} because its projection type is not ALL`,
    );
  }
  return wantsAll && !index.global;
}

/** The key range a Query's sort key condition selects within its partition `p`. */
function sortRange(
  p: Uint8Array,
  sort: KeyCondition["sort"],
): { start: Uint8Array; end: Uint8Array } {
  const all = { start: p, end: after(p) };
  if (sort === undefined) return all;
  const at = (v: AttributeValue) => concatBytes(p, rangeKeyBytes(v));
  const [a, b] = sort.values;
  switch (sort.op) {
    case "=":
      return { start: at(a!), end: after(at(a!)) };
    case "<":
      return { start: p, end: at(a!) };
    case "<=":
      return { start: p, end: after(at(a!)) };
    case ">":
      return { start: after(at(a!)), end: all.end };
    case ">=":
      return { start: at(a!), end: all.end };
    case "BETWEEN":
      return { start: at(a!), end: after(at(b!)) };
    default: {
      // begins_with: the part's encoding without its terminator is a prefix of its extensions'.
      const encoded = at(a!);
      const prefix = encoded.subarray(0, encoded.length - 1);
      return { start: prefix, end: successor(prefix) };
    }
  }
}

/** Refuses, as DynamoDB does, a Query's `ExclusiveStartKey` its key condition does not select. */
function checkStartKey(
  start: Uint8Array,
  partition: Uint8Array,
  range: { start: Uint8Array; end: Uint8Array },
): void {
  if (!hasPrefix(start, partition)) {
    throw validation(
      "The provided starting key is outside query boundaries based on provided conditions",
    );
  }
  if (Buffer.compare(start, range.start) < 0 || Buffer.compare(start, range.end) >= 0) {
    throw validation("The provided starting key does not match the range key predicate");
  }
}

export const readOperations: Operations = {
  Query: {
    access: "read",
    async run(context, input) {
      const name = checkTableName(input.string("TableName"));
      const expressions = expressionContext(input);
      const keyText = input.string("KeyConditionExpression");
      noLegacy(input, "KeyConditions", "QueryFilter", "ConditionalOperator", "AttributesToGet");
      if (keyText === undefined) {
        throw validation(
          "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        );
      }
      const keyExpression = parseCondition(keyText, "KeyConditionExpression", expressions);
      const parts = commonParts(input, expressions);
      const forward = input.boolean("ScanIndexForward") ?? true;
      const consistent = input.members.ConsistentRead === true;
      expressions.checkAllUsed(["KeyConditionExpression", "FilterExpression"]);
      input.done();
      const table = await tableFor(context, name);
      const source = sourceOf(table, parts.indexName);
      const { hash, sort } = keyCondition(keyExpression, source.hash.name, source.range?.name);
      if (hash === undefined || !(source.hash.type in hash)) {
        throw validation(
          "One or more parameter values were invalid: Condition parameter type does not match schema type",
        );
      }
      for (const v of sort?.values ?? []) {
        if (!(source.range!.type in v)) {
          throw validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
          );
        }
      }
      const partition = partitionPrefix(source.prefix, hash);
      const range = sortRange(partition, sort);
      const exclusiveStart = parts.exclusiveStart && startKeyBytes(source, parts.exclusiveStart);
      if (exclusiveStart !== undefined) checkStartKey(exclusiveStart, partition, range);
      return readPage(context.database, {
        source,
        ...range,
        reverse: !forward,
        exclusiveStart,
        limit: parts.limit,
        filter: parts.filter,
        projection: parts.projection,
        select: parts.select,
        fetchItems: fetchesItems(source, parts, consistent),
      });
    },
  },

  Scan: {
    access: "read",
    async run(context, input) {
      const name = checkTableName(input.string("TableName"));
      const expressions = expressionContext(input);
      noLegacy(input, "ScanFilter", "ConditionalOperator", "AttributesToGet");
      const parts = commonParts(input, expressions);
      const segment = input.number("Segment");
      const total = input.number("TotalSegments");
      const consistent = input.members.ConsistentRead === true;
      expressions.checkAllUsed(["FilterExpression"]);
      input.done();
      if (total !== undefined && !(Number.isInteger(total) && total >= 1 && total <= 1_000_000)) {
        throw validation(
          `1 validation error detected: Value '${total}' at 'totalSegments' failed to satisfy constraint: Member must have value ${total < 1 ? "greater than or equal to 1" : "less than or equal to 1000000"}`,
        );
      }
      if (segment !== undefined && (segment < 0 || segment > 999_999)) {
        throw validation(
          `1 validation error detected: Value '${segment}' at 'segment' failed to satisfy constraint: Member must have value ${segment < 0 ? "greater than or equal to 0" : "less than or equal to 999999"}`,
        );
      }
      if ((segment === undefined) !== (total === undefined)) {
        throw validation(
          segment === undefined
            ? "The Segment parameter is required but was not present in the request when parameter TotalSegments is present"
            : "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        );
      }
      if (
        segment !== undefined &&
        !(Number.isInteger(segment) && segment >= 0 && segment < total!)
      ) {
        throw validation(
          `The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: ${segment} is not less than TotalSegments: ${total}`,
        );
      }
      const table = await tableFor(context, name);
      const source = sourceOf(table, parts.indexName);
      // A segment is the partitions whose key hashes to it: each partition in exactly one.
      const accept =
        total === undefined
          ? undefined
          : (item: Item) =>
              crc32(encodeKey(keyParts(item[table.hash.name]!, undefined))) % total === segment;
      return readPage(context.database, {
        source,
        start: source.prefix,
        end: after(source.prefix),
        reverse: false,
        exclusiveStart: parts.exclusiveStart && startKeyBytes(source, parts.exclusiveStart),
        limit: parts.limit,
        filter: parts.filter,
        projection: parts.projection,
        select: parts.select,
        accept,
        fetchItems: fetchesItems(source, parts, consistent),
      });
    },
  },
};
