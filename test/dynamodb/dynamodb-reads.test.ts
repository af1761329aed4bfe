/**
 * Query, Scan and secondary indexes through the real AWS SDK (`@aws-sdk/client-dynamodb` and
 * `@aws-sdk/lib-dynamodb`) against Cairn on a SQLite file and on PostgreSQL: key conditions on S,
 * N and B range keys, order, filters, projections, counts, paging by `Limit` and by the 1 MB page,
 * Scan's segments, global and local secondary indexes (projections, sparseness, never stale), and
 * DynamoDB's refusals.
 */
import {
  type AttributeDefinition,
  type AttributeValue,
  CreateTableCommand,
  type CreateTableCommandInput,
  PutItemCommand,
  QueryCommand as RawQueryCommand,
  type ScalarAttributeType,
} from "@aws-sdk/client-dynamodb";
import {
  BatchWriteCommand,
  DeleteCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeEach, errorOf, serverForTests, storages } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";

const TOKEN = "dynamodb-reads-token";

type Key = readonly [name: string, type: "S" | "N" | "B"];
type Row = Record<string, unknown>;

/** A CreateTable request for `name` keyed by `hash` and `range`, with `more` (indexes). */
function tableRequest(
  name: string,
  hash: Key,
  range?: Key,
  more: Partial<CreateTableCommandInput> & { extraAttributes?: Key[] } = {},
): CreateTableCommandInput {
  const { extraAttributes = [], ...rest } = more;
  const keys = range ? [hash, range] : [hash];
  return {
    TableName: name,
    BillingMode: "PAY_PER_REQUEST",
    KeySchema: keys.map(([AttributeName], i) => ({
      AttributeName,
      KeyType: i === 0 ? "HASH" : "RANGE",
    })),
    AttributeDefinitions: [...keys, ...extraAttributes].map(
      ([AttributeName, type]): AttributeDefinition => ({
        AttributeName,
        AttributeType: type as ScalarAttributeType,
      }),
    ),
    ...rest,
  };
}

/** What a refused call tells its caller: the SDK's exception class, message and HTTP status. */
async function refusal(call: () => Promise<unknown>) {
  const error = (await errorOf(call)) as {
    name: string;
    message: string;
    $metadata?: { httpStatusCode?: number };
  };
  return { name: error.name, message: error.message, status: error.$metadata?.httpStatusCode };
}

const invalid = (message: string) => ({ name: "ValidationException", message, status: 400 });

const NUMBERS = ["1e3", "-10", "2", "-1.5", "0", "10", "0.25", "-0.001", "99.99", "-100.5"];
const NUMBERS_SORTED = [...NUMBERS].sort((a, b) => Number(a) - Number(b));
const WORDS = ["a", "ab", "abc", "abd", "b", "Z", "é", "😀", "a b", "aa"];
/** UTF-8 byte order, DynamoDB's order for S. */
const WORDS_SORTED = [...WORDS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
const BLOBS = [[0x00], [0x00, 0x01], [0x01], [0x7f], [0x80], [0xff], [0xff, 0x00], [0x61, 0x62]];
const BLOBS_SORTED = [...BLOBS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

describeEach(storages, "DynamoDB Query, Scan and indexes", (storage) => {
  const server = serverForTests(TOKEN, storage);
  let client: ReturnType<typeof dynamodbClients>["client"];
  let doc: ReturnType<typeof dynamodbClients>["doc"];

  /** Every item a Query or Scan yields, page by page with `Limit`; the pages' item counts too. */
  async function paged(
    kind: "Query" | "Scan",
    input: QueryCommandInput | ScanCommandInput,
    limit?: number,
  ): Promise<{ items: Row[]; pages: number[] }> {
    const items: Row[] = [];
    const pages: number[] = [];
    let start: Row | undefined;
    do {
      const request = { ...input, Limit: limit, ExclusiveStartKey: start };
      const page = await doc.send(
        kind === "Query"
          ? new QueryCommand(request as QueryCommandInput)
          : new ScanCommand(request as ScanCommandInput),
      );
      items.push(...(page.Items ?? []));
      pages.push(page.Items?.length ?? 0);
      start = page.LastEvaluatedKey;
      if (pages.length > 200) throw new Error("paging does not end");
    } while (start);
    return { items, pages };
  }

  const query = (input: Omit<QueryCommandInput, "TableName">, table: string) =>
    doc.send(new QueryCommand({ TableName: table, ...input }));

  beforeAll(async () => {
    ({ client, doc } = dynamodbClients(server(), TOKEN));
    const tables = [
      tableRequest("numbers", ["pk", "S"], ["n", "N"]),
      tableRequest("words", ["pk", "S"], ["s", "S"]),
      tableRequest("blobs", ["pk", "S"], ["b", "B"]),
      tableRequest("flat", ["id", "S"]),
      tableRequest("large", ["pk", "S"], ["i", "N"]),
      tableRequest("scanned", ["id", "S"]),
      tableRequest("people", ["id", "S"], undefined, {
        extraAttributes: [
          ["g", "S"],
          ["r", "N"],
        ],
        GlobalSecondaryIndexes: [
          ["keysOnly", { ProjectionType: "KEYS_ONLY" }],
          ["included", { ProjectionType: "INCLUDE", NonKeyAttributes: ["name"] }],
          ["all", { ProjectionType: "ALL" }],
        ].map(([IndexName, Projection]) => ({
          IndexName: IndexName as string,
          KeySchema: [
            { AttributeName: "g", KeyType: "HASH" },
            { AttributeName: "r", KeyType: "RANGE" },
          ],
          Projection: Projection as object,
        })),
      }),
      tableRequest("threads", ["forum", "S"], ["subject", "S"], {
        extraAttributes: [["date", "S"]],
        LocalSecondaryIndexes: [
          {
            IndexName: "byDate",
            KeySchema: [
              { AttributeName: "forum", KeyType: "HASH" },
              { AttributeName: "date", KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "KEYS_ONLY" },
          },
        ],
      }),
    ];
    for (const table of tables) await client.send(new CreateTableCommand(table));

    const put = (TableName: string, Item: Record<string, AttributeValue>) =>
      client.send(new PutItemCommand({ TableName, Item }));
    await Promise.all([
      ...NUMBERS.map((n) => put("numbers", { pk: { S: "p" }, n: { N: n }, v: { S: `v${n}` } })),
      put("numbers", { pk: { S: "other" }, n: { N: "1" } }),
      ...WORDS.map((s) => put("words", { pk: { S: "p" }, s: { S: s } })),
      put("words", { pk: { S: "q" }, s: { S: "a" } }),
      ...BLOBS.map((b) => put("blobs", { pk: { S: "p" }, b: { B: new Uint8Array(b) } })),
      put("blobs", { pk: { S: "q" }, b: { B: new Uint8Array([0x00]) } }),
      put("flat", { id: { S: "only" }, v: { N: "1" } }),
      put("flat", { id: { S: "another" }, v: { N: "2" } }),
    ]);
  });

  afterAll(() => client?.destroy());

  const keysOf = (items: readonly Row[] | undefined, name: string) =>
    (items ?? []).map((item) => item[name]);

  it("orders N range keys numerically (negatives, decimals, exponents) under every operator", async () => {
    const raw = (KeyConditionExpression: string, values: Record<string, string>) =>
      client
        .send(
          new RawQueryCommand({
            TableName: "numbers",
            KeyConditionExpression,
            ExpressionAttributeValues: {
              ":p": { S: "p" },
              ...Object.fromEntries(Object.entries(values).map(([k, n]) => [k, { N: n }])),
            },
          }),
        )
        .then((r) => (r.Items ?? []).map((item) => Number(item.n!.N)));
    const sorted = NUMBERS_SORTED.map(Number);
    expect(await raw("pk = :p", {})).toEqual(sorted);
    expect(await raw("pk = :p AND n = :v", { ":v": "1000" })).toEqual([1000]);
    expect(await raw("pk = :p AND n = :v", { ":v": "-1.50" })).toEqual([-1.5]);
    expect(await raw("pk = :p AND n < :v", { ":v": "0" })).toEqual(sorted.filter((n) => n < 0));
    expect(await raw("pk = :p AND n <= :v", { ":v": "-1.5" })).toEqual([-100.5, -10, -1.5]);
    expect(await raw("pk = :p AND n > :v", { ":v": "2" })).toEqual([10, 99.99, 1000]);
    expect(await raw("pk = :p AND n >= :v", { ":v": "2" })).toEqual([2, 10, 99.99, 1000]);
    expect(await raw("pk = :p AND n BETWEEN :a AND :b", { ":a": "-10", ":b": "0.25" })).toEqual([
      -10, -1.5, -0.001, 0, 0.25,
    ]);
    // The key may come last, the comparison mirrored.
    expect(await raw(":v < n AND :p = pk", { ":v": "10" })).toEqual([99.99, 1000]);
    expect(await raw("pk = :p AND n > :v", { ":v": "1e3" })).toEqual([]);
    // Stored as DynamoDB stores numbers: canonical.
    const { Items } = await client.send(
      new RawQueryCommand({
        TableName: "numbers",
        KeyConditionExpression: "pk = :p AND n >= :v",
        ExpressionAttributeValues: { ":p": { S: "p" }, ":v": { N: "99" } },
      }),
    );
    expect(Items?.map((item) => item.n)).toEqual([{ N: "99.99" }, { N: "1000" }]);
  });

  it("orders S range keys by UTF-8 bytes, with begins_with and every comparison", async () => {
    const words = async (KeyConditionExpression: string, values: Row = {}) =>
      keysOf(
        (
          await query(
            { KeyConditionExpression, ExpressionAttributeValues: { ":p": "p", ...values } },
            "words",
          )
        ).Items,
        "s",
      );
    expect(await words("pk = :p")).toEqual(WORDS_SORTED);
    expect(await words("pk = :p AND begins_with(s, :b)", { ":b": "ab" })).toEqual([
      "ab",
      "abc",
      "abd",
    ]);
    expect(await words("pk = :p AND begins_with(s, :b)", { ":b": "a" })).toEqual([
      "a",
      "a b",
      "aa",
      "ab",
      "abc",
      "abd",
    ]);
    expect(await words("pk = :p AND begins_with(s, :b)", { ":b": "😀" })).toEqual(["😀"]);
    expect(await words("pk = :p AND begins_with(s, :b)", { ":b": "abz" })).toEqual([]);
    expect(await words("pk = :p AND s = :v", { ":v": "é" })).toEqual(["é"]);
    expect(await words("pk = :p AND s < :v", { ":v": "a" })).toEqual(["Z"]);
    expect(await words("pk = :p AND s <= :v", { ":v": "a" })).toEqual(["Z", "a"]);
    expect(await words("pk = :p AND s > :v", { ":v": "b" })).toEqual(["é", "😀"]);
    expect(await words("pk = :p AND s >= :v", { ":v": "b" })).toEqual(["b", "é", "😀"]);
    expect(await words("pk = :p AND s BETWEEN :a AND :b", { ":a": "aa", ":b": "abc" })).toEqual([
      "aa",
      "ab",
      "abc",
    ]);
    expect(await words("pk = :p AND s BETWEEN :a AND :b", { ":a": "ab", ":b": "ab" })).toEqual([
      "ab",
    ]);
  });

  it("orders B range keys as unsigned bytes, with begins_with and every comparison", async () => {
    const blobs = async (KeyConditionExpression: string, values: Record<string, number[]> = {}) => {
      const { Items } = await client.send(
        new RawQueryCommand({
          TableName: "blobs",
          KeyConditionExpression,
          ExpressionAttributeValues: {
            ":p": { S: "p" },
            ...Object.fromEntries(
              Object.entries(values).map(([k, b]) => [k, { B: new Uint8Array(b) }]),
            ),
          },
        }),
      );
      return (Items ?? []).map((item) => [...item.b!.B!]);
    };
    expect(await blobs("pk = :p")).toEqual(BLOBS_SORTED);
    expect(await blobs("pk = :p AND begins_with(b, :b)", { ":b": [0x00] })).toEqual([
      [0x00],
      [0x00, 0x01],
    ]);
    expect(await blobs("pk = :p AND begins_with(b, :b)", { ":b": [0xff] })).toEqual([
      [0xff],
      [0xff, 0x00],
    ]);
    expect(await blobs("pk = :p AND b < :v", { ":v": [0x7f] })).toEqual([
      [0x00],
      [0x00, 0x01],
      [0x01],
      [0x61, 0x62],
    ]);
    expect(await blobs("pk = :p AND b <= :v", { ":v": [0x00] })).toEqual([[0x00]]);
    expect(await blobs("pk = :p AND b > :v", { ":v": [0x7f] })).toEqual([
      [0x80],
      [0xff],
      [0xff, 0x00],
    ]);
    expect(await blobs("pk = :p AND b >= :v", { ":v": [0xff] })).toEqual([[0xff], [0xff, 0x00]]);
    expect(await blobs("pk = :p AND b = :v", { ":v": [0x00, 0x01] })).toEqual([[0x00, 0x01]]);
    expect(await blobs("pk = :p AND b BETWEEN :a AND :b", { ":a": [0x01], ":b": [0x80] })).toEqual([
      [0x01],
      [0x61, 0x62],
      [0x7f],
      [0x80],
    ]);
  });

  it("queries a partition-only table, forwards and backwards", async () => {
    const { Items, Count, ScannedCount } = await query(
      { KeyConditionExpression: "id = :id", ExpressionAttributeValues: { ":id": "only" } },
      "flat",
    );
    expect({ Items, Count, ScannedCount }).toEqual({
      Items: [{ id: "only", v: 1 }],
      Count: 1,
      ScannedCount: 1,
    });
    const none = await query(
      { KeyConditionExpression: "id = :id", ExpressionAttributeValues: { ":id": "absent" } },
      "flat",
    );
    expect({
      Items: none.Items,
      Count: none.Count,
      LastEvaluatedKey: none.LastEvaluatedKey,
    }).toEqual({ Items: [], Count: 0, LastEvaluatedKey: undefined });
    const backwards = await query(
      {
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": "p" },
        ScanIndexForward: false,
      },
      "numbers",
    );
    expect(keysOf(backwards.Items, "n")).toEqual(NUMBERS_SORTED.map(Number).reverse());
  });

  it("filters after Limit (Count vs ScannedCount), projects, and counts", async () => {
    const filtered = await query(
      {
        KeyConditionExpression: "pk = :p",
        FilterExpression: "n > :zero",
        ExpressionAttributeValues: { ":p": "p", ":zero": 0 },
        Limit: 5,
      },
      "numbers",
    );
    // The first five by key are -100.5, -10, -1.5, -0.001, 0: read, none kept.
    expect(filtered.Items).toEqual([]);
    expect(filtered.Count).toBe(0);
    expect(filtered.ScannedCount).toBe(5);
    expect(filtered.LastEvaluatedKey).toEqual({ pk: "p", n: 0 });
    const rest = await query(
      {
        KeyConditionExpression: "pk = :p",
        FilterExpression: "n > :zero",
        ExpressionAttributeValues: { ":p": "p", ":zero": 0 },
        ExclusiveStartKey: filtered.LastEvaluatedKey,
      },
      "numbers",
    );
    expect(keysOf(rest.Items, "n")).toEqual([0.25, 2, 10, 99.99, 1000]);
    expect([rest.Count, rest.ScannedCount, rest.LastEvaluatedKey]).toEqual([5, 5, undefined]);

    const projected = await query(
      {
        KeyConditionExpression: "pk = :p AND n BETWEEN :a AND :b",
        ProjectionExpression: "v, #n",
        ExpressionAttributeNames: { "#n": "n" },
        ExpressionAttributeValues: { ":p": "p", ":a": 2, ":b": 10 },
      },
      "numbers",
    );
    expect(projected.Items).toEqual([
      { n: 2, v: "v2" },
      { n: 10, v: "v10" },
    ]);

    const counted = await query(
      {
        KeyConditionExpression: "pk = :p AND n < :v",
        FilterExpression: "n <> :minus10",
        ExpressionAttributeValues: { ":p": "p", ":v": 0, ":minus10": -10 },
        Select: "COUNT",
      },
      "numbers",
    );
    expect(counted.Items).toBeUndefined();
    expect([counted.Count, counted.ScannedCount]).toEqual([3, 4]);
  });

  it("pages with Limit and ExclusiveStartKey, forwards and backwards, each item once in order", async () => {
    const all = NUMBERS_SORTED.map(Number);
    for (const limit of [1, 3, 4, 10, 11]) {
      const forward = await paged(
        "Query",
        {
          TableName: "numbers",
          KeyConditionExpression: "pk = :p",
          ExpressionAttributeValues: { ":p": "p" },
        },
        limit,
      );
      expect(keysOf(forward.items, "n")).toEqual(all);
      expect(Math.max(...forward.pages)).toBeLessThanOrEqual(limit);
      const backward = await paged(
        "Query",
        {
          TableName: "numbers",
          KeyConditionExpression: "pk = :p",
          ExpressionAttributeValues: { ":p": "p" },
          ScanIndexForward: false,
        },
        limit,
      );
      expect(keysOf(backward.items, "n")).toEqual([...all].reverse());
      const between = await paged(
        "Query",
        {
          TableName: "numbers",
          KeyConditionExpression: "pk = :p AND n BETWEEN :a AND :b",
          ExpressionAttributeValues: { ":p": "p", ":a": -10, ":b": 10 },
          ScanIndexForward: false,
        },
        limit,
      );
      expect(keysOf(between.items, "n")).toEqual([10, 2, 0.25, 0, -0.001, -1.5, -10]);
    }
  });

  it("starts after an ExclusiveStartKey whether or not its item exists", async () => {
    const after = (n: number, ScanIndexForward = true) =>
      query(
        {
          KeyConditionExpression: "pk = :p",
          ExpressionAttributeValues: { ":p": "p" },
          ExclusiveStartKey: { pk: "p", n },
          ScanIndexForward,
        },
        "numbers",
      ).then((r) => keysOf(r.Items, "n"));
    expect(await after(5)).toEqual([10, 99.99, 1000]);
    expect(await after(10)).toEqual([99.99, 1000]);
    expect(await after(5, false)).toEqual([2, 0.25, 0, -0.001, -1.5, -10, -100.5]);
    expect(await after(1000)).toEqual([]);
    expect(await after(-100.5, false)).toEqual([]);
  });

  it("ends a page after 1 MB with LastEvaluatedKey, and paging yields every item", async () => {
    const filler = "x".repeat(100_000);
    const items = Array.from({ length: 30 }, (_, i) => ({ pk: "big", i, filler }));
    await Promise.all(items.map((Item) => doc.send(new PutCommand({ TableName: "large", Item }))));

    const first = await query(
      { KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": "big" } },
      "large",
    );
    // About 100 KB each: the page holds what fits in 1 MB (10 or 11 items), no more.
    expect(first.Count).toBeGreaterThanOrEqual(10);
    expect(first.Count).toBeLessThanOrEqual(11);
    expect(first.LastEvaluatedKey).toEqual({ pk: "big", i: first.Count! - 1 });

    const input = {
      TableName: "large",
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": "big" },
    };
    const forward = await paged("Query", input);
    expect(keysOf(forward.items, "i")).toEqual(items.map((item) => item.i));
    expect(forward.pages.length).toBeGreaterThanOrEqual(3);
    const backward = await paged("Query", { ...input, ScanIndexForward: false });
    expect(keysOf(backward.items, "i")).toEqual(items.map((item) => item.i).reverse());

    // A filter that keeps nothing still stops at 1 MB read.
    const nothing = await query(
      {
        KeyConditionExpression: "pk = :p",
        FilterExpression: "attribute_not_exists(filler)",
        ExpressionAttributeValues: { ":p": "big" },
      },
      "large",
    );
    expect([nothing.Count, nothing.ScannedCount]).toEqual([0, first.Count]);
    expect(nothing.LastEvaluatedKey).toEqual(first.LastEvaluatedKey);

    const scanned = await paged("Scan", { TableName: "large", ProjectionExpression: "i" });
    expect(scanned.items).toEqual(items.map(({ i }) => ({ i })));
    expect(scanned.pages.length).toBeGreaterThanOrEqual(3);
  });

  it("refuses key conditions DynamoDB refuses, with its messages", async () => {
    const refused = (
      KeyConditionExpression: string | undefined,
      ExpressionAttributeValues?: Row,
      table = "numbers",
    ) =>
      refusal(() =>
        doc.send(
          new QueryCommand({ TableName: table, KeyConditionExpression, ExpressionAttributeValues }),
        ),
      );
    expect(await refused("n = :n", { ":n": 1 })).toEqual(
      invalid("Query condition missed key schema element: pk"),
    );
    expect(await refused("pk > :p", { ":p": "p" })).toEqual(
      invalid("Query key condition not supported"),
    );
    expect(await refused("begins_with(pk, :p)", { ":p": "p" })).toEqual(
      invalid("Query key condition not supported"),
    );
    expect(await refused("pk = :p AND v = :v", { ":p": "p", ":v": "x" })).toEqual(
      invalid("Query condition missed key schema element: n"),
    );
    expect(
      await refused("pk = :p AND n = :n AND v = :v", { ":p": "p", ":n": 1, ":v": "x" }),
    ).toEqual(invalid("Conditions can be of length 1 or 2 only"));
    expect(await refused("pk = :p", { ":p": 1 })).toEqual(
      invalid(
        "One or more parameter values were invalid: Condition parameter type does not match schema type",
      ),
    );
    expect(await refused("pk = :p AND n > :n", { ":p": "p", ":n": "1" })).toEqual(
      invalid(
        "One or more parameter values were invalid: Condition parameter type does not match schema type",
      ),
    );
    expect(await refused("pk = :p AND begins_with(n, :n)", { ":p": "p", ":n": 1 })).toEqual(
      invalid(
        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
      ),
    );
    expect(await refused("pk = :p OR n = :n", { ":p": "p", ":n": 1 })).toEqual(
      invalid("Invalid operator used in KeyConditionExpression: OR"),
    );
    expect(await refused("pk = :p AND n <> :n", { ":p": "p", ":n": 1 })).toEqual(
      invalid("Invalid operator used in KeyConditionExpression: <>"),
    );
    expect(await refused("pk = :p AND n > :a AND n < :b", { ":p": "p", ":a": 1, ":b": 2 })).toEqual(
      invalid("KeyConditionExpressions must only contain one condition per key"),
    );
    expect(await refused(undefined)).toEqual(
      invalid(
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
      ),
    );
    expect(await refused("id = :id AND v = :v", { ":id": "only", ":v": 1 }, "flat")).toMatchObject({
      name: "ValidationException",
      status: 400,
    });
    expect(
      await refusal(() =>
        doc.send(
          new QueryCommand({
            TableName: "numbers",
            KeyConditionExpression: "pk = :p",
            ExpressionAttributeValues: { ":p": "p" },
            ExclusiveStartKey: { pk: "p", n: 1, v: "x" },
          }),
        ),
      ),
    ).toEqual(
      invalid(
        "The provided starting key is invalid: The provided key element does not match the schema",
      ),
    );
    const startingAt = (ExclusiveStartKey: Row, KeyConditionExpression = "pk = :p", values = {}) =>
      refusal(() =>
        doc.send(
          new QueryCommand({
            TableName: "numbers",
            KeyConditionExpression,
            ExpressionAttributeValues: { ":p": "p", ...values },
            ExclusiveStartKey,
          }),
        ),
      );
    expect(await startingAt({ pk: "other", n: 1 })).toEqual(
      invalid("The provided starting key is outside query boundaries based on provided conditions"),
    );
    expect(await startingAt({ pk: "p", n: 5 }, "pk = :p AND n > :n", { ":n": 10 })).toEqual(
      invalid("The provided starting key does not match the range key predicate"),
    );
    expect(
      await startingAt({ pk: "p", n: 5 }, "pk = :p AND n BETWEEN :a AND :b", { ":a": 6, ":b": 9 }),
    ).toEqual(invalid("The provided starting key does not match the range key predicate"));
    expect(await refused("pk = :p", { ":p": "p" }, "absent")).toMatchObject({
      name: "ResourceNotFoundException",
      status: 400,
    });
  });

  it("scans every item, filtered, projected, counted and paged", async () => {
    const items = Array.from({ length: 20 }, (_, i) => ({
      id: `s${String(i).padStart(2, "0")}`,
      i,
      odd: i % 2 === 1,
      tags: ["t", i],
    }));
    for (let i = 0; i < items.length; i += 10) {
      await doc.send(
        new BatchWriteCommand({
          RequestItems: {
            scanned: items.slice(i, i + 10).map((Item) => ({ PutRequest: { Item } })),
          },
        }),
      );
    }
    const byId = (rows: readonly Row[]) =>
      [...rows].sort((a, b) => String(a.id).localeCompare(String(b.id)));

    const all = await doc.send(new ScanCommand({ TableName: "scanned" }));
    expect(byId(all.Items!)).toEqual(items);
    expect([all.Count, all.ScannedCount, all.LastEvaluatedKey]).toEqual([20, 20, undefined]);

    const odd = await doc.send(
      new ScanCommand({
        TableName: "scanned",
        FilterExpression: "odd = :t AND i >= :five",
        ExpressionAttributeValues: { ":t": true, ":five": 5 },
        ProjectionExpression: "id, tags[1]",
      }),
    );
    expect(byId(odd.Items!)).toEqual(
      items.filter((item) => item.odd && item.i >= 5).map(({ id, i }) => ({ id, tags: [i] })),
    );
    expect([odd.Count, odd.ScannedCount]).toEqual([8, 20]);

    const counted = await doc.send(
      new ScanCommand({
        TableName: "scanned",
        Select: "COUNT",
        FilterExpression: "odd = :f",
        ExpressionAttributeValues: { ":f": false },
      }),
    );
    expect([counted.Items, counted.Count, counted.ScannedCount]).toEqual([undefined, 10, 20]);

    for (const limit of [1, 3, 7, 20]) {
      const { items: scanned, pages } = await paged("Scan", { TableName: "scanned" }, limit);
      expect(byId(scanned)).toEqual(items);
      expect(Math.max(...pages)).toBeLessThanOrEqual(limit);
    }
  });

  it("splits a Scan into segments that together yield every item exactly once", async () => {
    const ids = new Set((await paged("Scan", { TableName: "scanned" })).items.map((i) => i.id));
    const seen: unknown[] = [];
    const segments: number[] = [];
    for (let segment = 0; segment < 4; segment++) {
      const { items } = await paged(
        "Scan",
        { TableName: "scanned", Segment: segment, TotalSegments: 4, ProjectionExpression: "id" },
        3,
      );
      seen.push(...items.map((item) => item.id));
      segments.push(items.length);
    }
    expect(seen.length).toBe(ids.size);
    expect(new Set(seen)).toEqual(ids);
    // The hash spreads 20 partitions over the segments, not all in one.
    expect(segments.filter((n) => n > 0).length).toBeGreaterThan(1);

    const single = await paged("Scan", { TableName: "scanned", Segment: 0, TotalSegments: 1 });
    expect(single.items.length).toBe(ids.size);

    const scan = (input: Partial<ScanCommandInput>) =>
      refusal(() => doc.send(new ScanCommand({ TableName: "scanned", ...input })));
    expect(await scan({ Segment: 4, TotalSegments: 4 })).toEqual(
      invalid(
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 4 is not less than TotalSegments: 4",
      ),
    );
    expect(await scan({ Segment: -1, TotalSegments: 4 })).toEqual(
      invalid(
        "1 validation error detected: Value '-1' at 'segment' failed to satisfy constraint: Member must have value greater than or equal to 0",
      ),
    );
    expect(await scan({ Segment: 1_000_000, TotalSegments: 1_000_000 })).toEqual(
      invalid(
        "1 validation error detected: Value '1000000' at 'segment' failed to satisfy constraint: Member must have value less than or equal to 999999",
      ),
    );
    expect(await scan({ Segment: 0, TotalSegments: 0 })).toEqual(
      invalid(
        "1 validation error detected: Value '0' at 'totalSegments' failed to satisfy constraint: Member must have value greater than or equal to 1",
      ),
    );
    expect(await scan({ Segment: 0, TotalSegments: 1_000_001 })).toEqual(
      invalid(
        "1 validation error detected: Value '1000001' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000",
      ),
    );
    expect(await scan({ TotalSegments: 4 })).toEqual(
      invalid(
        "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
      ),
    );
    expect(await scan({ Segment: 1 })).toEqual(
      invalid(
        "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
      ),
    );
  });

  it("projects global secondary indexes as declared: KEYS_ONLY, INCLUDE, ALL", async () => {
    const people = [
      { id: "p1", g: "team", r: 2, name: "Ann", age: 30, extra: { deep: [1] } },
      { id: "p2", g: "team", r: 1, name: "Bob", age: 40 },
      { id: "p3", g: "team", r: -5, age: 50 },
      { id: "p4", g: "other", r: 1, name: "Cy" },
    ];
    for (const Item of people) await doc.send(new PutCommand({ TableName: "people", Item }));
    const team = (IndexName: string, more: Partial<QueryCommandInput> = {}) =>
      query(
        {
          IndexName,
          KeyConditionExpression: "g = :g",
          ExpressionAttributeValues: { ":g": "team" },
          ...more,
        },
        "people",
      );
    const ordered = [people[2]!, people[1]!, people[0]!];
    expect((await team("keysOnly")).Items).toEqual(ordered.map(({ id, g, r }) => ({ id, g, r })));
    expect((await team("included")).Items).toEqual(
      ordered.map(({ id, g, r, name }) => ({ id, g, r, ...(name && { name }) })),
    );
    expect((await team("all")).Items).toEqual(ordered);
    expect((await team("all", { ScanIndexForward: false })).Items).toEqual([...ordered].reverse());
    expect((await team("keysOnly", { Select: "ALL_PROJECTED_ATTRIBUTES" })).Items).toEqual(
      ordered.map(({ id, g, r }) => ({ id, g, r })),
    );
    expect((await team("keysOnly", { Select: "COUNT" })).Count).toBe(3);
    expect(
      (
        await team("included", {
          KeyConditionExpression: "g = :g AND r > :r",
          FilterExpression: "attribute_exists(#name)",
          ProjectionExpression: "#name, id",
          ExpressionAttributeNames: { "#name": "name" },
          ExpressionAttributeValues: { ":g": "team", ":r": 0 },
        })
      ).Items,
    ).toEqual([
      { id: "p2", name: "Bob" },
      { id: "p1", name: "Ann" },
    ]);

    const scanned = await doc.send(new ScanCommand({ TableName: "people", IndexName: "keysOnly" }));
    expect(scanned.Items?.map((item) => item.id).sort()).toEqual(["p1", "p2", "p3", "p4"]);
    expect(scanned.Items?.every((item) => Object.keys(item).sort().join() === "g,id,r")).toBe(true);

    expect(await refusal(() => team("keysOnly", { Select: "ALL_ATTRIBUTES" }))).toEqual(
      invalid(
        "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index keysOnly because its projection type is not ALL",
      ),
    );
    expect(await refusal(() => team("all", { ConsistentRead: true }))).toEqual(
      invalid("Consistent reads are not supported on global secondary indexes"),
    );
    expect(await refusal(() => team("nope"))).toEqual(
      invalid("The table does not have the specified index: nope"),
    );
    expect(
      await refusal(() => doc.send(new ScanCommand({ TableName: "people", IndexName: "nope" }))),
    ).toEqual(invalid("The table does not have the specified index: nope"));
    expect(await refusal(() => team("all", { KeyConditionExpression: "id = :g" }))).toEqual(
      invalid("Query condition missed key schema element: g"),
    );
  });

  it("leaves items without an index's keys out of it (sparse indexes)", async () => {
    await doc.send(new PutCommand({ TableName: "people", Item: { id: "s1", name: "no g" } }));
    await doc.send(new PutCommand({ TableName: "people", Item: { id: "s2", g: "sparse" } }));
    await doc.send(new PutCommand({ TableName: "people", Item: { id: "s3", r: 1 } }));
    await doc.send(new PutCommand({ TableName: "people", Item: { id: "s4", g: "sparse", r: 7 } }));
    for (const IndexName of ["keysOnly", "included", "all"]) {
      const { Items } = await query(
        {
          IndexName,
          KeyConditionExpression: "g = :g",
          ExpressionAttributeValues: { ":g": "sparse" },
        },
        "people",
      );
      expect(Items?.map((item) => item.id)).toEqual(["s4"]);
      const { items } = await paged("Scan", { TableName: "people", IndexName }, 2);
      const ids = items.map((item) => item.id);
      expect(ids).toContain("s4");
      expect(ids).not.toContain("s1");
      expect(ids).not.toContain("s2");
      expect(ids).not.toContain("s3");
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it("keeps indexes current in the write's commit: written, moved, removed, deleted", async () => {
    const live = async (g: string) =>
      (
        await query(
          {
            IndexName: "keysOnly",
            KeyConditionExpression: "g = :g",
            ExpressionAttributeValues: { ":g": g },
          },
          "people",
        )
      ).Items?.map((item) => `${item.id}@${item.r}`);
    for (let i = 0; i < 10; i++) {
      await doc.send(
        new PutCommand({ TableName: "people", Item: { id: `l${i}`, g: "live", r: i } }),
      );
      expect(await live("live")).toContain(`l${i}@${i}`);
    }
    await doc.send(
      new UpdateCommand({
        TableName: "people",
        Key: { id: "l3" },
        UpdateExpression: "SET g = :g",
        ExpressionAttributeValues: { ":g": "moved" },
      }),
    );
    expect(await live("live")).not.toContain("l3@3");
    expect(await live("moved")).toEqual(["l3@3"]);
    await doc.send(
      new UpdateCommand({
        TableName: "people",
        Key: { id: "l4" },
        UpdateExpression: "SET r = :r",
        ExpressionAttributeValues: { ":r": 100 },
      }),
    );
    expect(await live("live")).toEqual([
      "l0@0",
      "l1@1",
      "l2@2",
      "l5@5",
      "l6@6",
      "l7@7",
      "l8@8",
      "l9@9",
      "l4@100",
    ]);
    await doc.send(new DeleteCommand({ TableName: "people", Key: { id: "l0" } }));
    await doc.send(
      new UpdateCommand({ TableName: "people", Key: { id: "l1" }, UpdateExpression: "REMOVE g" }),
    );
    await doc.send(new PutCommand({ TableName: "people", Item: { id: "l2", g: "moved", r: 2 } }));
    expect(await live("live")).toEqual(["l5@5", "l6@6", "l7@7", "l8@8", "l9@9", "l4@100"]);
    expect(await live("moved")).toEqual(["l2@2", "l3@3"]);
    const { Items } = await query(
      {
        IndexName: "all",
        KeyConditionExpression: "g = :g AND r = :r",
        ExpressionAttributeValues: { ":g": "moved", ":r": 3 },
      },
      "people",
    );
    expect(Items).toEqual([{ id: "l3", g: "moved", r: 3 }]);
  });

  it("pages through index entries with equal index keys, each once", async () => {
    await doc.send(
      new BatchWriteCommand({
        RequestItems: {
          people: Array.from({ length: 7 }, (_, i) => ({
            PutRequest: { Item: { id: `tie${i}`, g: "tie", r: 1, name: `n${i}` } },
          })),
        },
      }),
    );
    for (const IndexName of ["keysOnly", "included", "all"]) {
      for (const ScanIndexForward of [true, false]) {
        const { items, pages } = await paged(
          "Query",
          {
            TableName: "people",
            IndexName,
            KeyConditionExpression: "g = :g",
            ExpressionAttributeValues: { ":g": "tie" },
            ScanIndexForward,
          },
          2,
        );
        expect(items.map((item) => item.id).sort()).toEqual(
          Array.from({ length: 7 }, (_, i) => `tie${i}`),
        );
        expect(pages.length).toBe(4);
      }
    }
    const first = await query(
      {
        IndexName: "keysOnly",
        KeyConditionExpression: "g = :g",
        ExpressionAttributeValues: { ":g": "tie" },
        Limit: 1,
      },
      "people",
    );
    expect(Object.keys(first.LastEvaluatedKey!).sort()).toEqual(["g", "id", "r"]);
  });

  it("reads whole items through a local secondary index with ALL_ATTRIBUTES", async () => {
    const threads = [
      { forum: "f", subject: "a", date: "2024-03", body: "first", views: 1 },
      { forum: "f", subject: "b", date: "2024-01", body: "second", views: 2 },
      { forum: "f", subject: "c", date: "2024-02", body: "third" },
      { forum: "f", subject: "d", body: "undated" },
      { forum: "g", subject: "a", date: "2024-01", body: "elsewhere" },
    ];
    for (const Item of threads) await doc.send(new PutCommand({ TableName: "threads", Item }));
    const byDate = (more: Partial<QueryCommandInput> = {}) =>
      query(
        {
          IndexName: "byDate",
          KeyConditionExpression: "forum = :f",
          ExpressionAttributeValues: { ":f": "f" },
          ...more,
        },
        "threads",
      );
    const dated = [threads[1]!, threads[2]!, threads[0]!];
    expect((await byDate({ Select: "ALL_ATTRIBUTES" })).Items).toEqual(dated);
    expect((await byDate({ Select: "ALL_ATTRIBUTES", ConsistentRead: true })).Items).toEqual(dated);
    expect((await byDate({ Select: "ALL_PROJECTED_ATTRIBUTES" })).Items).toEqual(
      dated.map(({ forum, subject, date }) => ({ forum, subject, date })),
    );
    // Without Select, an index is read as projected (DynamoDB's ALL_PROJECTED_ATTRIBUTES default).
    expect((await byDate()).Items).toEqual(
      dated.map(({ forum, subject, date }) => ({ forum, subject, date })),
    );
    expect(
      (
        await byDate({
          KeyConditionExpression: "forum = :f AND #date BETWEEN :a AND :b",
          ExpressionAttributeNames: { "#date": "date", "#views": "views" },
          ExpressionAttributeValues: { ":f": "f", ":a": "2024-02", ":b": "2024-12" },
          ProjectionExpression: "body, #views",
          ScanIndexForward: false,
        })
      ).Items,
    ).toEqual([{ body: "first", views: 1 }, { body: "third" }]);
    const { items } = await paged(
      "Query",
      {
        TableName: "threads",
        IndexName: "byDate",
        KeyConditionExpression: "forum = :f",
        ExpressionAttributeValues: { ":f": "f" },
        Select: "ALL_ATTRIBUTES",
      },
      1,
    );
    expect(items).toEqual(dated);
  });
});
