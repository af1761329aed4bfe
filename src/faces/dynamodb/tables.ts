/**
 * Tables: their descriptions as stored (`["dynamodb", <name>]`, keys.ts), checked as DynamoDB's
 * CreateTable and UpdateTable check them, and shown as DescribeTable shows them.
 */
import { randomUUID } from "node:crypto";
import { decodeValue, encodeValue } from "../../codec/value-codec.js";
import type { Database, RawEntry } from "../../engine/database.js";
import { dynamoError, validation } from "./errors.js";
import { tableKey } from "./keys.js";
import type { Input } from "./request-input.js";

export type KeyType = "S" | "N" | "B";

export interface KeyAttribute {
  readonly name: string;
  readonly type: KeyType;
}

export type ProjectionType = "ALL" | "KEYS_ONLY" | "INCLUDE";

export interface IndexSchema {
  readonly name: string;
  readonly global: boolean;
  readonly hash: KeyAttribute;
  readonly range?: KeyAttribute;
  readonly projection: ProjectionType;
  /** Attributes an INCLUDE projection keeps besides the keys. */
  readonly nonKey?: readonly string[];
  /** CREATING while existing items are being added to it (UpdateTable), ACTIVE after. */
  readonly status: "CREATING" | "ACTIVE";
  readonly throughput?: Throughput;
}

export interface Throughput {
  readonly read: number;
  readonly write: number;
}

export interface Table {
  readonly name: string;
  readonly id: string;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly hash: KeyAttribute;
  readonly range?: KeyAttribute;
  /** Every attribute a key of the table or of an index names, with its type. */
  readonly attributes: readonly KeyAttribute[];
  readonly indexes: readonly IndexSchema[];
  readonly billingMode: "PROVISIONED" | "PAY_PER_REQUEST";
  readonly throughput?: Throughput;
  /** The attribute whose epoch seconds say when an item expires, while TTL is on. */
  readonly ttlAttribute?: string;
  readonly tags: readonly { readonly Key: string; readonly Value: string }[];
  readonly deletionProtection: boolean;
  readonly tableClass: "STANDARD" | "STANDARD_INFREQUENT_ACCESS";
}

/** A table as read, with the versionstamp its description had (for commits that depend on it). */
export interface TableAt {
  readonly table: Table;
  readonly versionstamp: string;
}

const TABLE_NAME = /^[a-zA-Z0-9_.-]+$/;

/** DynamoDB's check of a table or index name (`what`: the member's name in messages). */
export function checkTableName(name: string | undefined, what = "tableName"): string {
  if (name === undefined) {
    throw validation(
      `1 validation error detected: Value null at '${what}' failed to satisfy constraint: Member must not be null`,
    );
  }
  const problems: string[] = [];
  if (name.length < 3) problems.push("Member must have length greater than or equal to 3");
  if (name.length > 255) problems.push("Member must have length less than or equal to 255");
  if (!TABLE_NAME.test(name))
    problems.push("Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
  if (problems.length > 0) {
    throw validation(
      `${problems.length} validation error${problems.length > 1 ? "s" : ""} detected: ${problems
        .map((p) => `Value '${name}' at '${what}' failed to satisfy constraint: ${p}`)
        .join("; ")}`,
    );
  }
  return name;
}

export const notFound = (name: string) =>
  dynamoError(
    "ResourceNotFoundException",
    `Requested resource not found: Table: ${name} not found`,
  );

/** The table described by `entry` (the entry of `tableKey(name)`); `ResourceNotFoundException` when none. */
export function tableOf(entry: RawEntry | null | undefined, name: string): TableAt {
  if (!entry) throw notFound(name);
  return { table: decodeValue(entry) as Table, versionstamp: entry.versionstamp };
}

export async function readTable(database: Database, name: string): Promise<TableAt> {
  const [entry] = await database.get([tableKey(name)]);
  return tableOf(entry, name);
}

export const encodeTable = (table: Table) => encodeValue(table);

/** The key schema of a table or an index: a HASH key, then optionally a RANGE key. */
function keySchema(
  input: Input,
  what: string,
  types: ReadonlyMap<string, KeyType>,
): { hash: KeyAttribute; range?: KeyAttribute } {
  const schema = input.objects("KeySchema");
  if (schema === undefined || schema.length === 0 || schema.length > 2) {
    throw validation(
      `1 validation error detected: Value '${schema === undefined ? "null" : `[${schema.length} elements]`}' at '${what}' failed to satisfy constraint: Member must have length less than or equal to 2 and greater than or equal to 1`,
    );
  }
  const elements = schema.map((element) => {
    const name = element.string("AttributeName");
    const keyType = element.string("KeyType");
    element.done();
    if (name === undefined || name.length === 0) {
      throw validation(
        "One or more parameter values were invalid: Some AttributeName in the KeySchema is empty",
      );
    }
    if (keyType !== "HASH" && keyType !== "RANGE") {
      throw validation(
        `1 validation error detected: Value '${keyType}' at '${what}.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]`,
      );
    }
    const type = types.get(name);
    if (type === undefined) {
      throw validation(
        `One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [${name}], AttributeDefinitions: [${[...types.keys()].join(", ")}]`,
      );
    }
    return { name, type, keyType };
  });
  const [first, second] = elements;
  if (first!.keyType !== "HASH") {
    throw validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
  }
  if (second !== undefined && second.keyType !== "RANGE") {
    throw validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type");
  }
  if (second !== undefined && second.name === first!.name) {
    throw validation(
      "Both the Hash Key and the Range Key element in the KeySchema have the same name",
    );
  }
  const attribute = ({ name, type }: KeyAttribute) => ({ name, type });
  return second === undefined
    ? { hash: attribute(first!) }
    : { hash: attribute(first!), range: attribute(second) };
}

function attributeTypes(
  input: Input,
  previous: readonly KeyAttribute[] = [],
): Map<string, KeyType> {
  const types = new Map(previous.map((a) => [a.name, a.type] as const));
  const named = new Set<string>();
  for (const definition of input.objects("AttributeDefinitions") ?? []) {
    const name = definition.string("AttributeName");
    const type = definition.string("AttributeType");
    definition.done();
    if (name === undefined || name.length === 0) {
      throw validation("One or more parameter values were invalid: An AttributeName is empty");
    }
    if (type !== "S" && type !== "N" && type !== "B") {
      throw validation(
        `1 validation error detected: Value '${type}' at 'attributeDefinitions.${name}.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]`,
      );
    }
    if (named.has(name)) throw validation(`Attribute Name is duplicated: ${name}`);
    named.add(name);
    const known = types.get(name);
    if (known !== undefined && known !== type) {
      throw validation(
        `One or more parameter values were invalid: Cannot change the type of attribute ${name} from ${known} to ${type}`,
      );
    }
    types.set(name, type);
  }
  return types;
}

function throughput(input: Input | undefined): Throughput | undefined {
  if (input === undefined) return undefined;
  const read = input.number("ReadCapacityUnits");
  const write = input.number("WriteCapacityUnits");
  input.done();
  for (const [name, units] of [
    ["readCapacityUnits", read],
    ["writeCapacityUnits", write],
  ] as const) {
    if (units === undefined || !Number.isInteger(units) || units < 1) {
      throw validation(
        `1 validation error detected: Value '${units ?? "null"}' at 'provisionedThroughput.${name}' failed to satisfy constraint: Member must have value greater than or equal to 1`,
      );
    }
  }
  return { read: read!, write: write! };
}

/** The billing mode and throughput of a CreateTable or UpdateTable, checked against each other. */
function billing(
  mode: string | undefined,
  units: Throughput | undefined,
): { billingMode: Table["billingMode"]; throughput?: Throughput } {
  const billingMode = mode ?? "PROVISIONED";
  if (billingMode !== "PROVISIONED" && billingMode !== "PAY_PER_REQUEST") {
    throw validation(
      `1 validation error detected: Value '${mode}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]`,
    );
  }
  if (billingMode === "PAY_PER_REQUEST" && units !== undefined) {
    throw validation(
      "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
    );
  }
  if (billingMode === "PROVISIONED" && units === undefined) {
    throw validation(
      "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
    );
  }
  return units === undefined ? { billingMode } : { billingMode, throughput: units };
}

/** Refuses a global secondary index's throughput that the table's billing mode does not take. */
function checkIndexThroughput(
  billingMode: Table["billingMode"],
  units: Throughput | undefined,
  index: string,
): void {
  if (billingMode === "PAY_PER_REQUEST" && units !== undefined) {
    throw validation(
      `One or more parameter values were invalid: ProvisionedThroughput should not be specified for index: ${index} when BillingMode is PAY_PER_REQUEST`,
    );
  }
  if (billingMode === "PROVISIONED" && units === undefined) {
    throw validation(
      `One or more parameter values were invalid: ProvisionedThroughput is not specified for index: ${index}`,
    );
  }
}

function projection(
  input: Input | undefined,
  indexName: string,
): Pick<IndexSchema, "projection" | "nonKey"> {
  if (input === undefined) {
    throw validation(
      `1 validation error detected: Value null at 'projection' failed to satisfy constraint: Member must not be null (index ${indexName})`,
    );
  }
  const type = input.string("ProjectionType") ?? "ALL";
  const nonKey = input.strings("NonKeyAttributes");
  input.done();
  if (type !== "ALL" && type !== "KEYS_ONLY" && type !== "INCLUDE") {
    throw validation(
      `1 validation error detected: Value '${type}' at 'projection.projectionType' failed to satisfy constraint: Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]`,
    );
  }
  if (type === "INCLUDE") {
    if (nonKey === undefined || nonKey.length === 0) {
      throw validation(
        "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
      );
    }
    return { projection: type, nonKey: [...new Set(nonKey)] };
  }
  if (nonKey !== undefined) {
    throw validation(
      `One or more parameter values were invalid: ProjectionType is ${type}, but NonKeyAttributes is specified`,
    );
  }
  return { projection: type };
}

function indexSchema(
  input: Input,
  global: boolean,
  types: ReadonlyMap<string, KeyType>,
  table: { hash: KeyAttribute; range?: KeyAttribute },
  billingMode: Table["billingMode"],
): IndexSchema {
  const name = checkTableName(input.string("IndexName"), "indexName");
  const keys = keySchema(
    input,
    `${global ? "globalSecondaryIndexes" : "localSecondaryIndexes"}.${name}.keySchema`,
    types,
  );
  const shape = projection(input.object("Projection"), name);
  const units = global ? throughput(input.object("ProvisionedThroughput")) : undefined;
  input.done();
  if (!global) {
    if (table.range === undefined) {
      throw validation(
        "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
      );
    }
    if (keys.hash.name !== table.hash.name || keys.range === undefined) {
      throw validation(
        `One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: ${name}. index hash key: ${keys.hash.name}, table hash key: ${table.hash.name}`,
      );
    }
  }
  if (global) checkIndexThroughput(billingMode, units, name);
  return { name, global, ...keys, ...shape, status: "ACTIVE", ...(units && { throughput: units }) };
}

/** Every attribute named by a key schema of the table or its indexes. */
function keyAttributes(table: Pick<Table, "hash" | "range" | "indexes">): Set<string> {
  const names = new Set([table.hash.name, ...(table.range ? [table.range.name] : [])]);
  for (const index of table.indexes) {
    names.add(index.hash.name);
    if (index.range) names.add(index.range.name);
  }
  return names;
}

/**
 * Refuses a CreateTable whose AttributeDefinitions do not name exactly the attributes of its key
 * schemas (the table's and its indexes'), with DynamoDB's message for each way they differ.
 */
function checkDefinitions(input: Input, types: ReadonlyMap<string, KeyType>): void {
  const indexes = [
    ...(input.objects("LocalSecondaryIndexes") ?? []),
    ...(input.objects("GlobalSecondaryIndexes") ?? []),
  ];
  const keys = [
    ...new Set(
      [input, ...indexes].flatMap((schema) =>
        (schema.objects("KeySchema") ?? []).flatMap((e) => e.string("AttributeName") || []),
      ),
    ),
  ].sort();
  const defined = [...types.keys()].sort();
  const missing = keys.filter((name) => !types.has(name));
  if (missing.length === 0 && defined.length === keys.length) return;
  const list = (names: readonly string[]) => `[${names.join(", ")}]`;
  const invalid = "One or more parameter values were invalid: ";
  if (defined.length > keys.length) {
    throw validation(
      indexes.length > 0
        ? `${invalid}Some AttributeDefinitions are not used. AttributeDefinitions: ${list(defined)}, keys used: ${list(keys)}`
        : `${invalid}Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions`,
    );
  }
  if (defined.length < keys.length && indexes.length === 0) {
    throw validation("Invalid KeySchema: Some index key attribute have no definition");
  }
  throw validation(
    `${invalid}Some index key attributes are not defined in AttributeDefinitions. Keys: ${list(indexes.length > 0 ? missing : keys)}, AttributeDefinitions: ${list(defined)}`,
  );
}

/**
 * The definitions of `types` a key of the table names. A definition none names is refused,
 * unless it is among `previous` (the table's before an UpdateTable, such as a deleted index's
 * key): that one is left out.
 */
function definedAttributes(
  types: ReadonlyMap<string, KeyType>,
  table: Pick<Table, "hash" | "range" | "indexes">,
  previous: readonly KeyAttribute[] = [],
): KeyAttribute[] {
  const used = keyAttributes(table);
  for (const name of types.keys()) {
    if (!used.has(name) && !previous.some((a) => a.name === name)) {
      throw validation(
        "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
      );
    }
  }
  return [...types].flatMap(([name, type]) => (used.has(name) ? [{ name, type }] : []));
}

function checkIndexNames(indexes: readonly IndexSchema[]): void {
  const names = new Set<string>();
  for (const index of indexes) {
    if (names.has(index.name)) {
      throw validation(
        `One or more parameter values were invalid: Duplicate index name: ${index.name}`,
      );
    }
    names.add(index.name);
  }
  if (indexes.filter((i) => i.global).length > 20) {
    throw validation(
      "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 20",
    );
  }
  if (indexes.filter((i) => !i.global).length > 5) {
    throw validation(
      "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5",
    );
  }
}

function refuseStreamsAndEncryption(input: Input): void {
  if (input.object("StreamSpecification")?.boolean("StreamEnabled")) {
    throw validation(
      "Cairn has no DynamoDB Streams: follow a table's changes with Cairn's watch or change feed on the prefix [\"dynamodb\", <table>] (docs/dynamodb.md)",
    );
  }
  if (input.object("SSESpecification")?.boolean("Enabled")) {
    throw validation(
      "Cairn does not encrypt data at rest: remove SSESpecification, or set Enabled to false (encrypt the storage's disk instead)",
    );
  }
}

function tableClass(value: string | undefined, previous: Table["tableClass"] = "STANDARD") {
  if (value === undefined) return previous;
  if (value !== "STANDARD" && value !== "STANDARD_INFREQUENT_ACCESS") {
    throw validation(
      `1 validation error detected: Value '${value}' at 'tableClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, STANDARD_INFREQUENT_ACCESS]`,
    );
  }
  return value;
}

function tags(input: Input): Table["tags"] {
  return (input.objects("Tags") ?? []).map((tag) => {
    const Key = tag.string("Key");
    const Value = tag.string("Value");
    tag.done();
    if (Key === undefined || Value === undefined) {
      throw validation("One or more parameter values were invalid: A tag needs a Key and a Value");
    }
    return { Key, Value };
  });
}

/** The table a CreateTable request describes. */
export function newTable(input: Input): Table {
  const name = checkTableName(input.string("TableName"));
  const types = attributeTypes(input);
  checkDefinitions(input, types);
  const keys = keySchema(input, "keySchema", types);
  const { billingMode, throughput: units } = billing(
    input.string("BillingMode"),
    throughput(input.object("ProvisionedThroughput")),
  );
  const indexes = [
    ...(input.objects("LocalSecondaryIndexes") ?? []).map((i) =>
      indexSchema(i, false, types, keys, billingMode),
    ),
    ...(input.objects("GlobalSecondaryIndexes") ?? []).map((i) =>
      indexSchema(i, true, types, keys, billingMode),
    ),
  ];
  checkIndexNames(indexes);
  refuseStreamsAndEncryption(input);
  const table: Table = {
    name,
    id: randomUUID(),
    createdAt: Date.now(),
    ...keys,
    attributes: [],
    indexes,
    billingMode,
    ...(units && { throughput: units }),
    tags: tags(input),
    deletionProtection: input.boolean("DeletionProtectionEnabled") ?? false,
    tableClass: tableClass(input.string("TableClass")),
  };
  input.done();
  return { ...table, attributes: definedAttributes(types, table) };
}

/**
 * The table an UpdateTable request makes of `table`, and the indexes it creates (to be filled
 * with the existing items) and deletes.
 */
export function updatedTable(
  table: Table,
  input: Input,
): { table: Table; created: IndexSchema[]; deleted: IndexSchema[] } {
  const types = attributeTypes(input, table.attributes);
  const mode = input.string("BillingMode") ?? table.billingMode;
  const units = throughput(input.object("ProvisionedThroughput"));
  const { billingMode, throughput: tableUnits } = billing(
    mode,
    units ?? (mode === "PROVISIONED" ? table.throughput : undefined),
  );
  let indexes = [...table.indexes];
  const created: IndexSchema[] = [];
  const deleted: IndexSchema[] = [];
  for (const update of input.objects("GlobalSecondaryIndexUpdates") ?? []) {
    const create = update.object("Create");
    const change = update.object("Update");
    const remove = update.object("Delete");
    update.done();
    if ([create, change, remove].filter(Boolean).length !== 1) {
      throw validation(
        "One or more parameter values were invalid: One of GlobalSecondaryIndexUpdate.Create, Update or Delete must be specified, and only one",
      );
    }
    if (create) {
      const index = {
        ...indexSchema(create, true, types, table, billingMode),
        status: "CREATING" as const,
      };
      if (indexes.some((i) => i.name === index.name)) {
        throw validation(
          `One or more parameter values were invalid: Index with name: ${index.name} already exists`,
        );
      }
      indexes.push(index);
      created.push(index);
      continue;
    }
    const target = (change ?? remove)!;
    const name = checkTableName(target.string("IndexName"), "indexName");
    const found = indexes.find((i) => i.name === name && i.global);
    if (found === undefined) {
      throw dynamoError(
        "ResourceNotFoundException",
        `Requested resource not found: Index: ${name} not found`,
      );
    }
    if (remove) {
      remove.done();
      indexes = indexes.filter((i) => i !== found);
      deleted.push(found);
    } else {
      const units = throughput(change!.object("ProvisionedThroughput"));
      change!.done();
      checkIndexThroughput(billingMode, units, name);
      indexes = indexes.map((i) =>
        i === found ? { ...i, ...(units && { throughput: units }) } : i,
      );
    }
  }
  checkIndexNames(indexes);
  refuseStreamsAndEncryption(input);
  const next: Table = {
    ...table,
    billingMode,
    indexes,
    deletionProtection: input.boolean("DeletionProtectionEnabled") ?? table.deletionProtection,
    tableClass: tableClass(input.string("TableClass"), table.tableClass),
  };
  if (tableUnits) (next as { throughput?: Throughput }).throughput = tableUnits;
  else delete (next as { throughput?: Throughput }).throughput;
  input.done(["TableName"]);
  return {
    table: { ...next, attributes: definedAttributes(types, next, table.attributes) },
    created,
    deleted,
  };
}

const keySchemaOf = ({ hash, range }: { hash: KeyAttribute; range?: KeyAttribute }) => [
  { AttributeName: hash.name, KeyType: "HASH" },
  ...(range ? [{ AttributeName: range.name, KeyType: "RANGE" }] : []),
];

const arnOf = (table: Table) => `arn:aws:dynamodb:cairn:000000000000:table/${table.name}`;

function throughputOf(units: Throughput | undefined) {
  return {
    NumberOfDecreasesToday: 0,
    ReadCapacityUnits: units?.read ?? 0,
    WriteCapacityUnits: units?.write ?? 0,
  };
}

/** DescribeTable's `Table` (`ItemCount`: the items counted now). */
export function describe(
  table: Table,
  status: "CREATING" | "ACTIVE" | "UPDATING" | "DELETING",
  itemCount?: number,
) {
  const indexes = (global: boolean) =>
    table.indexes
      .filter((i) => i.global === global)
      .map((i) => ({
        IndexName: i.name,
        KeySchema: keySchemaOf(i),
        Projection: {
          ProjectionType: i.projection,
          ...(i.nonKey && { NonKeyAttributes: i.nonKey }),
        },
        ...(global && { IndexStatus: i.status, ProvisionedThroughput: throughputOf(i.throughput) }),
        IndexArn: `${arnOf(table)}/index/${i.name}`,
      }));
  const global = indexes(true);
  const local = indexes(false);
  return {
    TableName: table.name,
    TableId: table.id,
    TableArn: arnOf(table),
    TableStatus: status,
    CreationDateTime: table.createdAt / 1000,
    AttributeDefinitions: table.attributes.map((a) => ({
      AttributeName: a.name,
      AttributeType: a.type,
    })),
    KeySchema: keySchemaOf(table),
    ProvisionedThroughput: throughputOf(table.throughput),
    BillingModeSummary: { BillingMode: table.billingMode },
    ...(itemCount !== undefined && { ItemCount: itemCount }),
    ...(global.length > 0 && { GlobalSecondaryIndexes: global }),
    ...(local.length > 0 && { LocalSecondaryIndexes: local }),
    TableClassSummary: { TableClass: table.tableClass },
    DeletionProtectionEnabled: table.deletionProtection,
  };
}

/**
 * Tables as last read, by database and name: a hint for where an item's key goes before the
 * table is read again in the same snapshot as the item (reads), or checked by the commit (writes).
 */
const cache = new Map<string, TableAt>();
const MAX_CACHED_TABLES = 10_000;

export function cachedTable(databaseId: string, name: string): TableAt | undefined {
  return cache.get(`${databaseId}\0${name}`);
}

export function rememberTable(databaseId: string, at: TableAt): TableAt {
  if (cache.size >= MAX_CACHED_TABLES) cache.clear();
  cache.set(`${databaseId}\0${at.table.name}`, at);
  return at;
}

export function forgetTable(databaseId: string, name: string): void {
  cache.delete(`${databaseId}\0${name}`);
}
