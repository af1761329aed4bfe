/**
 * DynamoDB's table operations through the real AWS SDK, on a SQLite file and on PostgreSQL:
 * CreateTable (every key shape, billing mode and index kind) and its refusals with DynamoDB's
 * messages, DescribeTable, ListTables' pages, UpdateTable (billing, throughput, a global
 * secondary index added over existing items and deleted, deletion protection), DeleteTable, TTL
 * (exact expiry, turned on over expired items), named databases, the SDK's waiters, tables
 * declared with `--dynamodb-table`, and `cairn dynamodb create-table|env`.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  paginateListTables,
  QueryCommand,
  ScanCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
} from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseTableDeclaration } from "../../src/faces/dynamodb/declared-tables.js";
import { startServer } from "../../src/server/server.js";
import { runCairn } from "../cairn-cli.js";
import { describeEach, serverForTests, sleep, storages } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";
import { postDynamodb } from "./raw-requests.js";
import { refusal } from "./refusal.js";

const TOKEN = "dynamodb-tables-token";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const arnOf = (table: string) => `arn:aws:dynamodb:cairn:000000000000:table/${table}`;
const PARAMETERS = "One or more parameter values were invalid: ";

const validation = (message: string) => ({ name: "ValidationException", message, status: 400 });

const notFound = (table: string) => ({
  name: "ResourceNotFoundException",
  message: `Requested resource not found: Table: ${table} not found`,
  status: 400,
});

const byName = (a: AttributeDefinition, b: AttributeDefinition) =>
  a.AttributeName! < b.AttributeName! ? -1 : 1;

/** Epoch seconds `ms` from now, as a DynamoDB number. */
const secondsFromNow = (ms: number) => ({ N: String(Math.floor((Date.now() + ms) / 1000)) });

describeEach(storages, "DynamoDB tables", (storage) => {
  const server = serverForTests(TOKEN, storage);
  let client: DynamoDBClient;

  beforeAll(() => {
    client = dynamodbClients(server(), TOKEN).client;
  });
  afterAll(() => {
    client?.destroy();
  });

  /** CreateTable of `name`: hash key `id` (S), on demand, with `more` over that. */
  const create = (name: string, more: Partial<CreateTableCommandInput> = {}) =>
    client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        ...more,
      }),
    );
  const describeTable = async (name: string) =>
    (await client.send(new DescribeTableCommand({ TableName: name }))).Table!;
  const scanned = async (name: string, index?: string) =>
    ((await client.send(new ScanCommand({ TableName: name, IndexName: index }))).Items ?? [])
      .map((item) => item.id?.S ?? item.pk?.S)
      .sort();

  it("creates a hash-key table on demand, and describes it as DynamoDB does, ItemCount as written", async () => {
    const before = Date.now();
    const created = await create("plain");
    const expected = {
      TableName: "plain",
      TableId: expect.stringMatching(UUID),
      TableArn: arnOf("plain"),
      TableStatus: "ACTIVE",
      CreationDateTime: expect.any(Date),
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      ProvisionedThroughput: {
        NumberOfDecreasesToday: 0,
        ReadCapacityUnits: 0,
        WriteCapacityUnits: 0,
      },
      BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" },
      ItemCount: 0,
      TableClassSummary: { TableClass: "STANDARD" },
      DeletionProtectionEnabled: false,
    };
    expect(created.TableDescription).toEqual(expected);
    const at = created.TableDescription!.CreationDateTime!.getTime();
    expect(at).toBeGreaterThanOrEqual(before - 1000);
    expect(at).toBeLessThanOrEqual(Date.now() + 1000);

    const described = await describeTable("plain");
    expect(described).toEqual({ ...expected, TableId: created.TableDescription!.TableId });
    for (const id of ["a", "b", "c"]) {
      await client.send(new PutItemCommand({ TableName: "plain", Item: { id: { S: id } } }));
    }
    expect((await describeTable("plain")).ItemCount).toBe(3);
    await client.send(new DeleteItemCommand({ TableName: "plain", Key: { id: { S: "b" } } }));
    expect((await describeTable("plain")).ItemCount).toBe(2);

    expect(await refusal(describeTable("no-such-table"))).toEqual(notFound("no-such-table"));
  });

  it("creates a provisioned table keyed by a number and binary, which stores and finds items by those keys", async () => {
    const created = await create("numbers", {
      BillingMode: "PROVISIONED",
      ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 7 },
      KeySchema: [
        { AttributeName: "n", KeyType: "HASH" },
        { AttributeName: "b", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "n", AttributeType: "N" },
        { AttributeName: "b", AttributeType: "B" },
      ],
      Tags: [{ Key: "team", Value: "core" }],
      TableClass: "STANDARD_INFREQUENT_ACCESS",
    });
    expect(created.TableDescription).toMatchObject({
      KeySchema: [
        { AttributeName: "n", KeyType: "HASH" },
        { AttributeName: "b", KeyType: "RANGE" },
      ],
      ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 7 },
      BillingModeSummary: { BillingMode: "PROVISIONED" },
      TableClassSummary: { TableClass: "STANDARD_INFREQUENT_ACCESS" },
    });
    expect([...created.TableDescription!.AttributeDefinitions!].sort(byName)).toEqual([
      { AttributeName: "b", AttributeType: "B" },
      { AttributeName: "n", AttributeType: "N" },
    ]);
    const put = (n: string, b: number[]) =>
      client.send(
        new PutItemCommand({
          TableName: "numbers",
          Item: { n: { N: n }, b: { B: new Uint8Array(b) }, v: { S: `${n}:${b}` } },
        }),
      );
    await put("1.50", [1, 2]);
    await put("-3", [0]);
    await put("1.5", [0xff]);
    const got = await client.send(
      new GetItemCommand({
        TableName: "numbers",
        Key: { n: { N: "1.5" }, b: { B: new Uint8Array([1, 2]) } },
      }),
    );
    expect(got.Item).toEqual({
      n: { N: "1.5" },
      b: { B: new Uint8Array([1, 2]) },
      v: { S: "1.50:1,2" },
    });
    const queried = await client.send(
      new QueryCommand({
        TableName: "numbers",
        KeyConditionExpression: "n = :n",
        ExpressionAttributeValues: { ":n": { N: "1.500" } },
      }),
    );
    expect(queried.Items!.map((item) => [...item.b!.B!])).toEqual([[1, 2], [0xff]]);
  });

  it("creates local and global secondary indexes with KEYS_ONLY, INCLUDE and ALL projections, and each projects as declared", async () => {
    const created = await create("indexed", {
      BillingMode: "PROVISIONED",
      ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "N" },
        { AttributeName: "score", AttributeType: "N" },
        { AttributeName: "ownedBy", AttributeType: "S" },
      ],
      LocalSecondaryIndexes: [
        {
          IndexName: "byScore",
          KeySchema: [
            { AttributeName: "pk", KeyType: "HASH" },
            { AttributeName: "score", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["title"] },
        },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: "byOwner",
          KeySchema: [{ AttributeName: "ownedBy", KeyType: "HASH" }],
          Projection: { ProjectionType: "KEYS_ONLY" },
          ProvisionedThroughput: { ReadCapacityUnits: 2, WriteCapacityUnits: 3 },
        },
        {
          IndexName: "byOwnerScore",
          KeySchema: [
            { AttributeName: "ownedBy", KeyType: "HASH" },
            { AttributeName: "score", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
          ProvisionedThroughput: { ReadCapacityUnits: 4, WriteCapacityUnits: 5 },
        },
      ],
      DeletionProtectionEnabled: true,
    });
    const indexArn = (name: string) => `${arnOf("indexed")}/index/${name}`;
    const shape = {
      LocalSecondaryIndexes: [
        {
          IndexName: "byScore",
          KeySchema: [
            { AttributeName: "pk", KeyType: "HASH" },
            { AttributeName: "score", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["title"] },
          IndexArn: indexArn("byScore"),
        },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: "byOwner",
          KeySchema: [{ AttributeName: "ownedBy", KeyType: "HASH" }],
          Projection: { ProjectionType: "KEYS_ONLY" },
          IndexStatus: "ACTIVE",
          ProvisionedThroughput: {
            NumberOfDecreasesToday: 0,
            ReadCapacityUnits: 2,
            WriteCapacityUnits: 3,
          },
          IndexArn: indexArn("byOwner"),
        },
        {
          IndexName: "byOwnerScore",
          KeySchema: [
            { AttributeName: "ownedBy", KeyType: "HASH" },
            { AttributeName: "score", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
          IndexStatus: "ACTIVE",
          ProvisionedThroughput: {
            NumberOfDecreasesToday: 0,
            ReadCapacityUnits: 4,
            WriteCapacityUnits: 5,
          },
          IndexArn: indexArn("byOwnerScore"),
        },
      ],
      DeletionProtectionEnabled: true,
    };
    expect(created.TableDescription).toMatchObject(shape);
    expect(await describeTable("indexed")).toMatchObject(shape);

    const item = {
      pk: { S: "p1" },
      sk: { N: "1" },
      score: { N: "10" },
      ownedBy: { S: "ana" },
      title: { S: "First" },
      extra: { S: "not projected" },
    };
    await client.send(new PutItemCommand({ TableName: "indexed", Item: item }));
    // No `ownedBy`: absent from both global indexes (sparse), present in the local one.
    await client.send(
      new PutItemCommand({
        TableName: "indexed",
        Item: { pk: { S: "p1" }, sk: { N: "2" }, score: { N: "5" } },
      }),
    );
    const query = async (IndexName: string, condition: string, value: string) =>
      (
        await client.send(
          new QueryCommand({
            TableName: "indexed",
            IndexName,
            KeyConditionExpression: condition,
            ExpressionAttributeValues: { ":v": { S: value } },
          }),
        )
      ).Items;
    expect(await query("byScore", "pk = :v", "p1")).toEqual([
      { pk: { S: "p1" }, sk: { N: "2" }, score: { N: "5" } },
      { pk: { S: "p1" }, sk: { N: "1" }, score: { N: "10" }, title: { S: "First" } },
    ]);
    expect(await query("byOwner", "ownedBy = :v", "ana")).toEqual([
      { pk: { S: "p1" }, sk: { N: "1" }, ownedBy: { S: "ana" } },
    ]);
    expect(await query("byOwnerScore", "ownedBy = :v", "ana")).toEqual([item]);

    expect(await refusal(client.send(new DeleteTableCommand({ TableName: "indexed" })))).toEqual(
      validation(
        "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
      ),
    );
    expect((await describeTable("indexed")).ItemCount).toBe(2);
  });

  it("refuses a CreateTable that DynamoDB refuses, with its messages, and creates nothing", async () => {
    const gsi = (name: string, more: object = {}) => ({
      IndexName: name,
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" as const }],
      Projection: { ProjectionType: "ALL" as const },
      ...more,
    });
    const ranged = {
      KeySchema: [
        { AttributeName: "id", KeyType: "HASH" as const },
        { AttributeName: "sk", KeyType: "RANGE" as const },
      ],
      AttributeDefinitions: [
        { AttributeName: "id", AttributeType: "S" as const },
        { AttributeName: "sk", AttributeType: "S" as const },
        { AttributeName: "alt", AttributeType: "S" as const },
      ],
    };
    const lsi = (name: string) => ({
      IndexName: name,
      KeySchema: [
        { AttributeName: "id", KeyType: "HASH" as const },
        { AttributeName: "alt", KeyType: "RANGE" as const },
      ],
      Projection: { ProjectionType: "KEYS_ONLY" as const },
    });
    const cases: [string, Partial<CreateTableCommandInput>, object][] = [
      [
        "ab",
        {},
        validation(
          "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3",
        ),
      ],
      [
        "bad name!",
        {},
        validation(
          "1 validation error detected: Value 'bad name!' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ),
      ],
      [
        "x".repeat(256),
        {},
        validation(
          `1 validation error detected: Value '${"x".repeat(256)}' at 'tableName' failed to satisfy constraint: Member must have length less than or equal to 255`,
        ),
      ],
      [
        "two-hashes",
        {
          KeySchema: [
            { AttributeName: "id", KeyType: "HASH" },
            { AttributeName: "sk", KeyType: "HASH" },
          ],
          AttributeDefinitions: ranged.AttributeDefinitions.slice(0, 2),
        },
        validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"),
      ],
      [
        "range-first",
        { KeySchema: [{ AttributeName: "id", KeyType: "RANGE" }] },
        validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type"),
      ],
      [
        "undefined-key",
        { AttributeDefinitions: [{ AttributeName: "other", AttributeType: "S" }] },
        validation(
          `${PARAMETERS}Some index key attributes are not defined in AttributeDefinitions. Keys: [id], AttributeDefinitions: [other]`,
        ),
      ],
      [
        "undefined-range",
        { KeySchema: ranged.KeySchema },
        validation("Invalid KeySchema: Some index key attribute have no definition"),
      ],
      [
        "unused-definition",
        {
          AttributeDefinitions: [
            { AttributeName: "id", AttributeType: "S" },
            { AttributeName: "spare", AttributeType: "N" },
          ],
        },
        validation(
          `${PARAMETERS}Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions`,
        ),
      ],
      [
        "unused-with-index",
        {
          AttributeDefinitions: [
            { AttributeName: "id", AttributeType: "S" },
            { AttributeName: "spare", AttributeType: "N" },
          ],
          GlobalSecondaryIndexes: [gsi("byId")],
        },
        validation(
          `${PARAMETERS}Some AttributeDefinitions are not used. AttributeDefinitions: [id, spare], keys used: [id]`,
        ),
      ],
      [
        "duplicate-definition",
        {
          AttributeDefinitions: [
            { AttributeName: "id", AttributeType: "S" },
            { AttributeName: "id", AttributeType: "S" },
          ],
        },
        validation("Attribute Name is duplicated: id"),
      ],
      [
        "on-demand-with-units",
        { ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 } },
        validation(
          `${PARAMETERS}Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST`,
        ),
      ],
      [
        "provisioned-without-units",
        { BillingMode: "PROVISIONED" },
        validation(
          `${PARAMETERS}ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED`,
        ),
      ],
      [
        "no-billing-mode",
        { BillingMode: undefined },
        validation(
          `${PARAMETERS}ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED`,
        ),
      ],
      [
        "zero-units",
        {
          BillingMode: "PROVISIONED",
          ProvisionedThroughput: { ReadCapacityUnits: 0, WriteCapacityUnits: 1 },
        },
        validation(
          "1 validation error detected: Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
      ],
      [
        "on-demand-index-units",
        {
          GlobalSecondaryIndexes: [
            gsi("byId", {
              ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 },
            }),
          ],
        },
        validation(
          `${PARAMETERS}ProvisionedThroughput should not be specified for index: byId when BillingMode is PAY_PER_REQUEST`,
        ),
      ],
      [
        "provisioned-index-without-units",
        {
          BillingMode: "PROVISIONED",
          ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 },
          GlobalSecondaryIndexes: [gsi("byId")],
        },
        validation(`${PARAMETERS}ProvisionedThroughput is not specified for index: byId`),
      ],
      [
        "local-without-range",
        {
          AttributeDefinitions: [
            { AttributeName: "id", AttributeType: "S" },
            { AttributeName: "alt", AttributeType: "S" },
          ],
          LocalSecondaryIndexes: [lsi("byAlt")],
        },
        validation(
          `${PARAMETERS}Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex`,
        ),
      ],
      [
        "duplicate-index",
        {
          ...ranged,
          LocalSecondaryIndexes: [lsi("twice")],
          GlobalSecondaryIndexes: [gsi("twice")],
        },
        validation(`${PARAMETERS}Duplicate index name: twice`),
      ],
      [
        "too-many-globals",
        { GlobalSecondaryIndexes: Array.from({ length: 21 }, (_, i) => gsi(`global${i}`)) },
        validation(`${PARAMETERS}GlobalSecondaryIndex count exceeds the per-table limit of 20`),
      ],
      [
        "too-many-locals",
        { ...ranged, LocalSecondaryIndexes: Array.from({ length: 6 }, (_, i) => lsi(`local${i}`)) },
        validation(`${PARAMETERS}Number of LocalSecondaryIndexes exceeds per-table limit of 5`),
      ],
      [
        "with-streams",
        { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" } },
        validation(
          "Cairn has no DynamoDB Streams: follow a table's changes with Cairn's watch or change feed on the prefix [\"dynamodb\", <table>] (docs/dynamodb.md)",
        ),
      ],
      [
        "with-encryption",
        { SSESpecification: { Enabled: true } },
        validation(
          "Cairn does not encrypt data at rest: remove SSESpecification, or set Enabled to false (encrypt the storage's disk instead)",
        ),
      ],
    ];
    for (const [name, input, expected] of cases) {
      expect({ table: name, ...(await refusal(create(name, input))) }).toEqual({
        table: name,
        ...expected,
      });
      if (name.length >= 3 && name.length <= 255 && /^[\w.-]+$/.test(name)) {
        expect(await refusal(describeTable(name))).toEqual(notFound(name));
      }
    }

    // Members the SDK does not know are sent raw: refused by name, not ignored.
    const unknown = await postDynamodb(
      server().url,
      "DynamoDB_20120810.CreateTable",
      {
        TableName: "unknown-member",
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        Frobnicate: true,
      },
      { keyId: "admin", secret: TOKEN },
    );
    expect({ status: unknown.status, json: unknown.json }).toEqual({
      status: 400,
      json: {
        __type: "com.amazon.coral.validate#ValidationException",
        message: "Cairn does not support the parameter Frobnicate; remove it from the request",
      },
    });
    expect(await refusal(describeTable("unknown-member"))).toEqual(notFound("unknown-member"));

    // Streams and encryption that are off are no refusal.
    await create("streams-off", {
      StreamSpecification: { StreamEnabled: false },
      SSESpecification: { Enabled: false },
    });

    const existing = await create("exists-once", { Tags: [{ Key: "k", Value: "v" }] });
    expect(
      await refusal(
        create("exists-once", {
          KeySchema: [{ AttributeName: "other", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "other", AttributeType: "N" }],
        }),
      ),
    ).toEqual({
      name: "ResourceInUseException",
      message: "Table already exists: exists-once",
      status: 400,
    });
    expect(await describeTable("exists-once")).toMatchObject({
      TableId: existing.TableDescription!.TableId,
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    });
  });

  it("answers any CreateTable or UpdateTable body with success or a DynamoDB error, never a fault", async () => {
    const url = server().url;
    const admin = { keyId: "admin", secret: TOKEN };
    const anyOr = <T>(...values: T[]) => fc.oneof(fc.constantFrom(...values), fc.jsonValue());
    const keyElement = fc.record(
      { AttributeName: anyOr("id", "sk", ""), KeyType: anyOr("HASH", "RANGE", "SORT") },
      { requiredKeys: [] },
    );
    const definition = fc.record(
      { AttributeName: anyOr("id", "sk"), AttributeType: anyOr("S", "N", "B", "SS") },
      { requiredKeys: [] },
    );
    const units = fc.record(
      { ReadCapacityUnits: anyOr(1, 0, 1.5, -1), WriteCapacityUnits: anyOr(1, 0) },
      { requiredKeys: [] },
    );
    const index = fc.record(
      {
        IndexName: anyOr("idx", "ix"),
        KeySchema: fc.oneof(fc.array(keyElement, { maxLength: 3 }), fc.jsonValue()),
        Projection: fc.oneof(
          fc.record(
            {
              ProjectionType: anyOr("ALL", "KEYS_ONLY", "INCLUDE"),
              NonKeyAttributes: fc.oneof(fc.array(fc.string()), fc.jsonValue()),
            },
            { requiredKeys: [] },
          ),
          fc.jsonValue(),
        ),
        ProvisionedThroughput: fc.oneof(units, fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const request = fc.record(
      {
        TableName: anyOr("fuzzed"),
        KeySchema: fc.oneof(fc.array(keyElement, { maxLength: 3 }), fc.jsonValue()),
        AttributeDefinitions: fc.oneof(fc.array(definition, { maxLength: 3 }), fc.jsonValue()),
        BillingMode: anyOr("PAY_PER_REQUEST", "PROVISIONED"),
        ProvisionedThroughput: fc.oneof(units, fc.jsonValue()),
        GlobalSecondaryIndexes: fc.oneof(fc.array(index, { maxLength: 2 }), fc.jsonValue()),
        LocalSecondaryIndexes: fc.oneof(fc.array(index, { maxLength: 2 }), fc.jsonValue()),
        GlobalSecondaryIndexUpdates: fc.oneof(
          fc.array(fc.record({ Create: index, Delete: index }, { requiredKeys: [] })),
          fc.jsonValue(),
        ),
        DeletionProtectionEnabled: fc.jsonValue(),
        StreamSpecification: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    await create("fuzzed-base");
    await fc.assert(
      fc.asyncProperty(
        request,
        fc.constantFrom("CreateTable", "UpdateTable"),
        async (body, operation) => {
          const sent = operation === "UpdateTable" ? { ...body, TableName: "fuzzed-base" } : body;
          const answer = await postDynamodb(url, `DynamoDB_20120810.${operation}`, sent, admin);
          if (answer.status === 200) {
            if (operation === "CreateTable") {
              await postDynamodb(
                url,
                "DynamoDB_20120810.DeleteTable",
                { TableName: sent.TableName },
                admin,
              );
            }
            return;
          }
          expect({ status: answer.status, type: answer.json?.__type }).toEqual({
            status: 400,
            type: expect.stringMatching(
              /^com\.amazon(aws\.dynamodb\.v20120810|\.coral\.validate|\.coral\.service)#\w+Exception$/,
            ),
          });
          expect(answer.json.message).toEqual(expect.any(String));
        },
      ),
      { numRuns: 100 },
    );
  });

  it("lists tables in name order, a page at a time, from ExclusiveStartTableName", async () => {
    const { client: named } = dynamodbClients(server(), TOKEN, { database: "listing" });
    try {
      const names = ["tbl", "tbl.x", "tbl0", "A-first", "_under", "mid", "zeta"];
      for (const name of names) {
        await named.send(
          new CreateTableCommand({
            TableName: name,
            BillingMode: "PAY_PER_REQUEST",
            KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
            AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
          }),
        );
        // Items between one table's description and the next are skipped over.
        await named.send(new PutItemCommand({ TableName: name, Item: { id: { S: "x" } } }));
      }
      const sorted = ["A-first", "_under", "mid", "tbl", "tbl.x", "tbl0", "zeta"];
      expect(await named.send(new ListTablesCommand({}))).toMatchObject({ TableNames: sorted });
      expect((await named.send(new ListTablesCommand({}))).LastEvaluatedTableName).toBeUndefined();

      const pages: { TableNames?: string[]; LastEvaluatedTableName?: string }[] = [];
      let start: string | undefined;
      do {
        const page = await named.send(
          new ListTablesCommand({ Limit: 3, ExclusiveStartTableName: start }),
        );
        pages.push({
          TableNames: page.TableNames,
          LastEvaluatedTableName: page.LastEvaluatedTableName,
        });
        start = page.LastEvaluatedTableName;
      } while (start !== undefined);
      expect(pages).toEqual([
        { TableNames: ["A-first", "_under", "mid"], LastEvaluatedTableName: "mid" },
        { TableNames: ["tbl", "tbl.x", "tbl0"], LastEvaluatedTableName: "tbl0" },
        { TableNames: ["zeta"], LastEvaluatedTableName: undefined },
      ]);

      const paginated: string[] = [];
      for await (const page of paginateListTables({ client: named, pageSize: 2 }, {})) {
        paginated.push(...(page.TableNames ?? []));
      }
      expect(paginated).toEqual(sorted);

      // A start that names no table: the tables after it.
      expect(
        (await named.send(new ListTablesCommand({ ExclusiveStartTableName: "n" }))).TableNames,
      ).toEqual(["tbl", "tbl.x", "tbl0", "zeta"]);

      for (const [limit, bound] of [
        [0, "greater than or equal to 1"],
        [101, "less than or equal to 100"],
      ] as const) {
        expect(await refusal(named.send(new ListTablesCommand({ Limit: limit })))).toEqual(
          validation(
            `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy constraint: Member must have value ${bound}`,
          ),
        );
      }
    } finally {
      named.destroy();
    }
  });

  it("keeps a named database's tables apart from the default database's", async () => {
    const { client: named } = dynamodbClients(server(), TOKEN, { database: "apart" });
    try {
      await create("shared-name");
      await named.send(
        new CreateTableCommand({
          TableName: "shared-name",
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [{ AttributeName: "n", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "n", AttributeType: "N" }],
        }),
      );
      await named.send(
        new CreateTableCommand({
          TableName: "only-named",
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        }),
      );
      await client.send(
        new PutItemCommand({ TableName: "shared-name", Item: { id: { S: "default" } } }),
      );
      await named.send(new PutItemCommand({ TableName: "shared-name", Item: { n: { N: "1" } } }));

      expect(
        (await named.send(new DescribeTableCommand({ TableName: "shared-name" }))).Table,
      ).toMatchObject({ KeySchema: [{ AttributeName: "n", KeyType: "HASH" }], ItemCount: 1 });
      expect(await describeTable("shared-name")).toMatchObject({
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        ItemCount: 1,
      });
      expect((await named.send(new ListTablesCommand({}))).TableNames).toEqual([
        "only-named",
        "shared-name",
      ]);
      expect((await client.send(new ListTablesCommand({}))).TableNames).not.toContain("only-named");
      expect(await refusal(describeTable("only-named"))).toEqual(notFound("only-named"));

      await named.send(new DeleteTableCommand({ TableName: "shared-name" }));
      expect(await scanned("shared-name")).toEqual(["default"]);
    } finally {
      named.destroy();
    }
  });

  it("updates billing and throughput, and refuses a mismatch without changing the table", async () => {
    await create("billed");
    const update = (
      input: Omit<ConstructorParameters<typeof UpdateTableCommand>[0], "TableName">,
    ) => client.send(new UpdateTableCommand({ TableName: "billed", ...input }));
    const units = (read: number, write: number) => ({
      NumberOfDecreasesToday: 0,
      ReadCapacityUnits: read,
      WriteCapacityUnits: write,
    });

    expect(await refusal(update({ BillingMode: "PROVISIONED" }))).toEqual(
      validation(
        `${PARAMETERS}ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED`,
      ),
    );
    expect(
      await refusal(
        update({ ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 } }),
      ),
    ).toEqual(
      validation(
        `${PARAMETERS}Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST`,
      ),
    );
    expect(await describeTable("billed")).toMatchObject({
      BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" },
      ProvisionedThroughput: units(0, 0),
    });

    const provisioned = await update({
      BillingMode: "PROVISIONED",
      ProvisionedThroughput: { ReadCapacityUnits: 3, WriteCapacityUnits: 4 },
    });
    expect(provisioned.TableDescription).toMatchObject({
      TableStatus: "ACTIVE",
      BillingModeSummary: { BillingMode: "PROVISIONED" },
      ProvisionedThroughput: units(3, 4),
    });
    await update({ ProvisionedThroughput: { ReadCapacityUnits: 6, WriteCapacityUnits: 8 } });
    expect(await describeTable("billed")).toMatchObject({
      BillingModeSummary: { BillingMode: "PROVISIONED" },
      ProvisionedThroughput: units(6, 8),
    });
    await update({ BillingMode: "PAY_PER_REQUEST" });
    expect(await describeTable("billed")).toMatchObject({
      BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" },
      ProvisionedThroughput: units(0, 0),
    });
    expect(
      await refusal(
        client.send(
          new UpdateTableCommand({ TableName: "no-such-table", BillingMode: "PROVISIONED" }),
        ),
      ),
    ).toEqual(notFound("no-such-table"));
  });

  it("adds a global secondary index over the existing items (backfill), keeps it current, and deletes it", async () => {
    await create("colors");
    const colors = { a: "red", b: "blue", c: "red", d: "green" };
    for (const [id, color] of Object.entries(colors)) {
      await client.send(
        new PutItemCommand({ TableName: "colors", Item: { id: { S: id }, color: { S: color } } }),
      );
    }
    for (const id of ["e", "f"]) {
      await client.send(new PutItemCommand({ TableName: "colors", Item: { id: { S: id } } }));
    }
    const updated = await client.send(
      new UpdateTableCommand({
        TableName: "colors",
        AttributeDefinitions: [{ AttributeName: "color", AttributeType: "S" }],
        GlobalSecondaryIndexUpdates: [
          {
            Create: {
              IndexName: "byColor",
              KeySchema: [{ AttributeName: "color", KeyType: "HASH" }],
              Projection: { ProjectionType: "ALL" },
            },
          },
        ],
      }),
    );
    expect(updated.TableDescription!.GlobalSecondaryIndexes).toMatchObject([
      { IndexName: "byColor", IndexStatus: "ACTIVE" },
    ]);
    const described = await describeTable("colors");
    expect([...described.AttributeDefinitions!].sort(byName)).toEqual([
      { AttributeName: "color", AttributeType: "S" },
      { AttributeName: "id", AttributeType: "S" },
    ]);
    const withColor = async (color: string) =>
      (
        await client.send(
          new QueryCommand({
            TableName: "colors",
            IndexName: "byColor",
            KeyConditionExpression: "color = :c",
            ExpressionAttributeValues: { ":c": { S: color } },
          }),
        )
      ).Items!.map((item) => item.id!.S!);
    expect((await withColor("red")).sort()).toEqual(["a", "c"]);
    expect(await withColor("blue")).toEqual(["b"]);
    expect(await scanned("colors", "byColor")).toEqual(["a", "b", "c", "d"]);

    await client.send(
      new PutItemCommand({ TableName: "colors", Item: { id: { S: "e" }, color: { S: "blue" } } }),
    );
    await client.send(new DeleteItemCommand({ TableName: "colors", Key: { id: { S: "b" } } }));
    expect(await withColor("blue")).toEqual(["e"]);

    expect(
      await refusal(
        client.send(
          new UpdateTableCommand({
            TableName: "colors",
            AttributeDefinitions: [{ AttributeName: "color", AttributeType: "S" }],
            GlobalSecondaryIndexUpdates: [
              {
                Create: {
                  IndexName: "byColor",
                  KeySchema: [{ AttributeName: "color", KeyType: "HASH" }],
                  Projection: { ProjectionType: "ALL" },
                },
              },
            ],
          }),
        ),
      ),
    ).toEqual(validation(`${PARAMETERS}Index with name: byColor already exists`));
    expect(await withColor("blue")).toEqual(["e"]);

    const deleted = await client.send(
      new UpdateTableCommand({
        TableName: "colors",
        GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: "byColor" } }],
      }),
    );
    expect(deleted.TableDescription!.GlobalSecondaryIndexes).toBeUndefined();
    // The index's key attribute goes with it: no key names it any more.
    expect(await describeTable("colors")).toMatchObject({
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    });
    expect((await describeTable("colors")).GlobalSecondaryIndexes).toBeUndefined();
    expect(await refusal(withColor("red"))).toEqual(
      validation("The table does not have the specified index: byColor"),
    );
    expect(await scanned("colors")).toEqual(["a", "c", "d", "e", "f"]);
  });

  it("turns deletion protection on and off: a protected table is not deleted", async () => {
    await create("guarded");
    await client.send(new PutItemCommand({ TableName: "guarded", Item: { id: { S: "kept" } } }));
    const protectedNow = await client.send(
      new UpdateTableCommand({ TableName: "guarded", DeletionProtectionEnabled: true }),
    );
    expect(protectedNow.TableDescription!.DeletionProtectionEnabled).toBe(true);
    expect(await refusal(client.send(new DeleteTableCommand({ TableName: "guarded" })))).toEqual(
      validation(
        "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
      ),
    );
    expect(await scanned("guarded")).toEqual(["kept"]);
    await client.send(
      new UpdateTableCommand({ TableName: "guarded", DeletionProtectionEnabled: false }),
    );
    await client.send(new DeleteTableCommand({ TableName: "guarded" }));
    expect(await refusal(describeTable("guarded"))).toEqual(notFound("guarded"));
  });

  it("deletes a table with its items and index entries: created again, it is empty", async () => {
    const indexed = {
      AttributeDefinitions: [
        { AttributeName: "id", AttributeType: "S" as const },
        { AttributeName: "tag", AttributeType: "S" as const },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: "byTag",
          KeySchema: [{ AttributeName: "tag", KeyType: "HASH" as const }],
          Projection: { ProjectionType: "ALL" as const },
        },
      ],
    };
    await create("doomed", indexed);
    for (const id of ["a", "b", "c"]) {
      await client.send(
        new PutItemCommand({ TableName: "doomed", Item: { id: { S: id }, tag: { S: "t" } } }),
      );
    }
    const deleted = await client.send(new DeleteTableCommand({ TableName: "doomed" }));
    expect(deleted.TableDescription).toMatchObject({
      TableName: "doomed",
      TableStatus: "DELETING",
    });
    expect(await refusal(describeTable("doomed"))).toEqual(notFound("doomed"));
    expect(await refusal(client.send(new DeleteTableCommand({ TableName: "doomed" })))).toEqual(
      notFound("doomed"),
    );
    expect(
      await refusal(
        client.send(new GetItemCommand({ TableName: "doomed", Key: { id: { S: "a" } } })),
      ),
    ).toEqual(notFound("doomed"));

    await create("doomed", indexed);
    expect(await scanned("doomed")).toEqual([]);
    expect(await scanned("doomed", "byTag")).toEqual([]);
    expect((await describeTable("doomed")).ItemCount).toBe(0);
  });

  it("waits for a table to exist and not to exist with the SDK's waiters", async () => {
    await create("awaited");
    const exists = await waitUntilTableExists(
      { client, maxWaitTime: 10, minDelay: 1, maxDelay: 1 },
      { TableName: "awaited" },
    );
    expect(exists.state).toBe("SUCCESS");
    await client.send(new DeleteTableCommand({ TableName: "awaited" }));
    const gone = await waitUntilTableNotExists(
      { client, maxWaitTime: 10, minDelay: 1, maxDelay: 1 },
      { TableName: "awaited" },
    );
    expect(gone.state).toBe("SUCCESS");
  });

  it("turns TTL on and off with DynamoDB's answers and refusals", async () => {
    await create("ttl-states");
    const describeTtl = async () =>
      (await client.send(new DescribeTimeToLiveCommand({ TableName: "ttl-states" })))
        .TimeToLiveDescription;
    const updateTtl = (Enabled: boolean, AttributeName: string) =>
      client.send(
        new UpdateTimeToLiveCommand({
          TableName: "ttl-states",
          TimeToLiveSpecification: { Enabled, AttributeName },
        }),
      );
    expect(await describeTtl()).toEqual({ TimeToLiveStatus: "DISABLED" });
    expect(await refusal(updateTtl(false, "expiresAt"))).toEqual(
      validation("TimeToLive is already disabled"),
    );
    expect((await updateTtl(true, "expiresAt")).TimeToLiveSpecification).toEqual({
      Enabled: true,
      AttributeName: "expiresAt",
    });
    expect(await describeTtl()).toEqual({
      TimeToLiveStatus: "ENABLED",
      AttributeName: "expiresAt",
    });
    expect(await refusal(updateTtl(true, "expiresAt"))).toEqual(
      validation("TimeToLive is already enabled"),
    );
    expect(await refusal(updateTtl(false, "other"))).toEqual(
      validation(
        "TimeToLive is active on a different AttributeName: current AttributeName is expiresAt",
      ),
    );
    expect(await describeTtl()).toEqual({
      TimeToLiveStatus: "ENABLED",
      AttributeName: "expiresAt",
    });
    expect((await updateTtl(false, "expiresAt")).TimeToLiveSpecification).toEqual({
      Enabled: false,
      AttributeName: "expiresAt",
    });
    expect(await describeTtl()).toEqual({ TimeToLiveStatus: "DISABLED" });
    expect(
      await refusal(client.send(new DescribeTimeToLiveCommand({ TableName: "no-such-table" }))),
    ).toEqual(notFound("no-such-table"));
  });

  it("expires items exactly at their TTL: past ones vanish from Get, Query, Scan and indexes at once, future ones stay", async () => {
    const ttlTable = {
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" as const },
        { AttributeName: "sk", KeyType: "RANGE" as const },
      ],
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" as const },
        { AttributeName: "sk", AttributeType: "S" as const },
        { AttributeName: "g", AttributeType: "S" as const },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: "byG",
          KeySchema: [{ AttributeName: "g", KeyType: "HASH" as const }],
          Projection: { ProjectionType: "ALL" as const },
        },
      ],
    };
    const put = (table: string, sk: string, expires?: { N: string } | { S: string }) =>
      client.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { S: "p" }, sk: { S: sk }, g: { S: "g" }, ...(expires && { expires }) },
        }),
      );
    const visible = async (table: string) => {
      const get = async (sk: string) =>
        (
          await client.send(
            new GetItemCommand({ TableName: table, Key: { pk: { S: "p" }, sk: { S: sk } } }),
          )
        ).Item?.sk?.S;
      const query = await client.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: "pk = :p",
          ExpressionAttributeValues: { ":p": { S: "p" } },
        }),
      );
      const index = await client.send(
        new QueryCommand({
          TableName: table,
          IndexName: "byG",
          KeyConditionExpression: "g = :g",
          ExpressionAttributeValues: { ":g": { S: "g" } },
        }),
      );
      const all = ["past", "future", "none", "text", "ancient", "soon"];
      return {
        get: (await Promise.all(all.map(get))).filter(Boolean).sort(),
        query: query.Items!.map((i) => i.sk!.S).sort(),
        scan: (await client.send(new ScanCommand({ TableName: table })))
          .Items!.map((i) => i.sk!.S)
          .sort(),
        index: index.Items!.map((i) => i.sk!.S).sort(),
        count: (await describeTable(table)).ItemCount,
      };
    };
    const everywhere = (sks: string[]) => ({
      get: sks,
      query: sks,
      scan: sks,
      index: sks,
      count: sks.length,
    });

    // TTL on, then written: a past expiry is gone at once.
    await create("ttl-live", ttlTable);
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: "ttl-live",
        TimeToLiveSpecification: { Enabled: true, AttributeName: "expires" },
      }),
    );
    await put("ttl-live", "past", secondsFromNow(-60_000));
    await put("ttl-live", "future", secondsFromNow(3_600_000));
    await put("ttl-live", "none");
    await put("ttl-live", "text", { S: "1" });
    // Over five years past: not taken as an expiry, as on DynamoDB.
    await put("ttl-live", "ancient", { N: "1000" });
    expect(await visible("ttl-live")).toEqual(everywhere(["ancient", "future", "none", "text"]));

    // Written while TTL is off, then turned on: the expired ones go at once.
    await create("ttl-later", ttlTable);
    await put("ttl-later", "past", secondsFromNow(-60_000));
    await put("ttl-later", "future", secondsFromNow(3_600_000));
    await put("ttl-later", "none");
    expect(await visible("ttl-later")).toEqual(everywhere(["future", "none", "past"]));
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: "ttl-later",
        TimeToLiveSpecification: { Enabled: true, AttributeName: "expires" },
      }),
    );
    expect(await visible("ttl-later")).toEqual(everywhere(["future", "none"]));

    // Due two to three seconds ahead: there now, gone once that second has passed. The same on
    // a table whose TTL is turned off meanwhile: it stays.
    const due = Math.ceil((Date.now() + 2000) / 1000);
    await put("ttl-live", "soon", { N: String(due) });
    expect((await visible("ttl-live")).get).toContain("soon");
    await put("ttl-later", "soon", { N: String(due) });
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: "ttl-later",
        TimeToLiveSpecification: { Enabled: false, AttributeName: "expires" },
      }),
    );
    await sleep(due * 1000 + 100 - Date.now());
    expect(await visible("ttl-live")).toEqual(everywhere(["ancient", "future", "none", "text"]));
    expect(await visible("ttl-later")).toEqual(everywhere(["future", "none", "soon"]));
  });

  it("starts with --dynamodb-table, and refuses to start when a declared table exists with other keys", async () => {
    const { data, drop } = await storage.open();
    try {
      const options = { host: "127.0.0.1", port: 0, data, auth: true, token: TOKEN };
      const first = await startServer({
        ...options,
        dynamodbTables: ["events:device:at=N"].map(parseTableDeclaration),
      });
      const { client: own } = dynamodbClients(first, TOKEN);
      try {
        expect(
          (await own.send(new DescribeTableCommand({ TableName: "events" }))).Table,
        ).toMatchObject({
          KeySchema: [
            { AttributeName: "device", KeyType: "HASH" },
            { AttributeName: "at", KeyType: "RANGE" },
          ],
          BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" },
        });
        await own.send(
          new PutItemCommand({
            TableName: "events",
            Item: { device: { S: "d1" }, at: { N: "1" } },
          }),
        );
      } finally {
        own.destroy();
        await first.close();
      }

      await expect(
        startServer({
          ...options,
          dynamodbTables: ["events:device"].map(parseTableDeclaration),
        }),
      ).rejects.toThrow(
        "Table events exists with hash key device=S and range key at=N, not as --dynamodb-table declares it (device=S, none)",
      );
      await expect(
        startServer({
          ...options,
          dynamodbTables: ["events:device:at"].map(parseTableDeclaration),
        }),
      ).rejects.toThrow(
        "Table events exists with hash key device=S and range key at=N, not as --dynamodb-table declares it (device=S, at=S)",
      );

      // Declared as it is: the server starts, and the table keeps its items.
      const again = await startServer({
        ...options,
        dynamodbTables: ["events:device:at=N", "more"].map(parseTableDeclaration),
      });
      const { client: later } = dynamodbClients(again, TOKEN);
      try {
        expect(
          (await later.send(new DescribeTableCommand({ TableName: "events" }))).Table!.ItemCount,
        ).toBe(1);
        expect(
          (await later.send(new DescribeTableCommand({ TableName: "more" }))).Table!.KeySchema,
        ).toEqual([{ AttributeName: "id", KeyType: "HASH" }]);
      } finally {
        later.destroy();
        await again.close();
      }
    } finally {
      await drop();
    }
  });

  it("creates tables with `cairn dynamodb create-table`, and prints the environment a program uses them with", {
    timeout: 30_000,
  }, async () => {
    const url = server().url;
    const created = await runCairn([
      ...["dynamodb", "create-table", "cli-events:device:at=N", "cli.users"],
      ...["--url", url, "--token", TOKEN],
    ]);
    const environment = [
      `AWS_ENDPOINT_URL_DYNAMODB=${url}`,
      "AWS_REGION=us-east-1",
      "AWS_ACCESS_KEY_ID=admin",
      `AWS_SECRET_ACCESS_KEY=${TOKEN}`,
      "KV_CLI_EVENTS=cli-events",
      `KV_CLI_EVENTS_ARN=${arnOf("cli-events")}`,
      "KV_CLI_USERS=cli.users",
      `KV_CLI_USERS_ARN=${arnOf("cli.users")}`,
    ];
    expect(created).toEqual({
      code: 0,
      out: environment.join("\n"),
      err: "created cli-events\ncreated cli.users",
    });
    expect(await describeTable("cli-events")).toMatchObject({
      KeySchema: [
        { AttributeName: "device", KeyType: "HASH" },
        { AttributeName: "at", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "device", AttributeType: "S" },
        { AttributeName: "at", AttributeType: "N" },
      ],
      BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" },
    });

    // Each process takes a Node.js start: they run at once.
    const [again, env, named, bad] = await Promise.all([
      runCairn(["dynamodb", "create-table", "cli-events:device:at=N", "--url", url], {
        CAIRN_TOKEN: TOKEN,
      }),
      runCairn(["dynamodb", "env", "cli-events", "--url", url, "--token", TOKEN]),
      runCairn(["dynamodb", "env", "--url", `${url}/db/app`, "--token", TOKEN]),
      runCairn(["dynamodb", "create-table", "a:b:c:d", "--url", url, "--token", TOKEN]),
    ]);
    expect(again).toEqual({
      code: 0,
      out: environment.slice(0, 6).join("\n"),
      err: "cli-events exists",
    });
    expect(env).toEqual({ code: 0, out: environment.slice(0, 6).join("\n"), err: "" });
    expect(named).toEqual({
      code: 0,
      out: environment.slice(0, 4).join("\n").replace(url, `${url}/db/app`),
      err: "",
    });
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('--dynamodb-table "a:b:c:d" is not NAME[:HASH[:RANGE]]');

    // A program given only that environment reaches the table through the AWS SDK.
    const program = `
      import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
      const client = new DynamoDBClient({});
      const TableName = process.env.KV_CLI_EVENTS;
      const Key = { device: { S: "d1" }, at: { N: "7" } };
      await client.send(new PutItemCommand({ TableName, Item: { ...Key, v: { S: "hello" } } }));
      const { Item } = await client.send(new GetItemCommand({ TableName, Key }));
      console.log(JSON.stringify(Item));`;
    const variables = Object.fromEntries(env.out.split("\n").map((line) => line.split(/=(.*)/s)));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", program],
      {
        cwd: process.cwd(),
        env: {
          PATH: process.env.PATH,
          HOME: "/nonexistent",
          AWS_CONFIG_FILE: "/dev/null",
          AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
          ...variables,
        },
      },
    );
    expect(JSON.parse(stdout)).toEqual({ device: { S: "d1" }, at: { N: "7" }, v: { S: "hello" } });
    const written = await client.send(
      new GetItemCommand({
        TableName: "cli-events",
        Key: { device: { S: "d1" }, at: { N: "7" } },
      }),
    );
    expect(written.Item?.v).toEqual({ S: "hello" });
  });
});
