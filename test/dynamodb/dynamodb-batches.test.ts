/**
 * BatchGetItem, BatchWriteItem, TransactWriteItems and TransactGetItems through the real AWS SDK
 * (`@aws-sdk/client-dynamodb` and `@aws-sdk/lib-dynamodb`) against Cairn on a SQLite file and on
 * PostgreSQL: DynamoDB's limits and refusals (nothing written after any of them), atomic
 * transactions across tables with their cancellation reasons, idempotency tokens, concurrent
 * transfers and snapshot reads; and the tables' items seen through Cairn's own list and watch.
 */
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  type TransactionCanceledException,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  type BatchGetCommandInput,
  BatchWriteCommand,
  type BatchWriteCommandInput,
  DeleteCommand,
  GetCommand,
  PutCommand,
  ScanCommand,
  TransactGetCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openKv } from "../../src/index.js";
import type { KvEntryMaybe } from "../../src/kv/types.js";
import { collect, describeEach, errorOf, serverForTests, storages, until } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";

const TOKEN = "dynamodb-batches-token";

type Row = Record<string, unknown>;
type Transact = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** What a refused call tells its caller: the SDK's exception class, message and HTTP status. */
async function refusal(call: () => Promise<unknown>) {
  const error = (await errorOf(call)) as {
    name: string;
    message: string;
    $metadata?: { httpStatusCode?: number };
  };
  return { name: error.name, message: error.message, status: error.$metadata?.httpStatusCode };
}

const invalid = (message: string | RegExp) => ({
  name: "ValidationException",
  message: typeof message === "string" ? message : expect.stringMatching(message),
  status: 400,
});

const DUPLICATES = invalid("Provided list of item keys contains duplicates");
const SAME_ITEM = invalid("Transaction request cannot include multiple operations on one item");

const orderKey = (i: number) => ({ id: `o${String(i).padStart(3, "0")}` });
/** `value` with its objects' members in name order, so that equal items have equal JSON. */
const canonical = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(canonical)
    : value !== null && typeof value === "object"
      ? Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((k) => [k, canonical((value as Row)[k])]),
        )
      : value;
const byJson = (rows: readonly unknown[]) =>
  rows.map((row) => JSON.stringify(canonical(row))).sort();

describeEach(storages, "DynamoDB batches and transactions", (storage) => {
  const server = serverForTests(TOKEN, storage);
  let client: ReturnType<typeof dynamodbClients>["client"];
  let doc: ReturnType<typeof dynamodbClients>["doc"];

  /** Every item of `table`, sorted by their JSON. */
  const everything = async (TableName: string) =>
    byJson((await doc.send(new ScanCommand({ TableName }))).Items ?? []);

  const batchWrite = (RequestItems: BatchWriteCommandInput["RequestItems"]) =>
    doc.send(new BatchWriteCommand({ RequestItems }));
  const batchGet = (RequestItems: BatchGetCommandInput["RequestItems"]) =>
    doc.send(new BatchGetCommand({ RequestItems }));
  const transact = (TransactItems: Transact[], ClientRequestToken?: string) =>
    doc.send(new TransactWriteCommand({ TransactItems, ClientRequestToken }));
  const get = async (TableName: string, Key: Row) =>
    (await doc.send(new GetCommand({ TableName, Key }))).Item;

  beforeAll(async () => {
    ({ client, doc } = dynamodbClients(server(), TOKEN));
    const table = (TableName: string, hash: string, range?: string) =>
      client.send(
        new CreateTableCommand({
          TableName,
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [
            { AttributeName: hash, KeyType: "HASH" },
            ...(range ? [{ AttributeName: range, KeyType: "RANGE" as const }] : []),
          ],
          AttributeDefinitions: [
            { AttributeName: hash, AttributeType: "S" },
            ...(range ? [{ AttributeName: range, AttributeType: "N" as const }] : []),
          ],
        }),
      );
    await table("orders", "id");
    await table("lines", "order", "line");
    await table("accounts", "id");
    await table("counters", "id");
    for (let i = 0; i < 60; i += 20) {
      await batchWrite({
        orders: Array.from({ length: 20 }, (_, j) => ({
          PutRequest: { Item: { ...orderKey(i + j), status: "new", total: i + j } },
        })),
      });
    }
    for (let i = 0; i < 50; i += 25) {
      await batchWrite({
        lines: Array.from({ length: 25 }, (_, j) => ({
          PutRequest: { Item: { order: "o", line: i + j, sku: `sku${i + j}`, qty: 1 } },
        })),
      });
    }
  });

  afterAll(() => client?.destroy());

  it("gets 100 keys across two tables; missing keys are simply absent; projections apply", async () => {
    const { Responses, UnprocessedKeys } = await batchGet({
      orders: { Keys: Array.from({ length: 60 }, (_, i) => orderKey(i * 2)) },
      lines: { Keys: Array.from({ length: 40 }, (_, i) => ({ order: "o", line: i + 15 })) },
    });
    expect(UnprocessedKeys).toEqual({});
    expect(byJson(Responses!.orders!)).toEqual(
      byJson(
        Array.from({ length: 30 }, (_, i) => ({ ...orderKey(i * 2), status: "new", total: i * 2 })),
      ),
    );
    expect(byJson(Responses!.lines!)).toEqual(
      byJson(
        Array.from({ length: 35 }, (_, i) => ({
          order: "o",
          line: i + 15,
          sku: `sku${i + 15}`,
          qty: 1,
        })),
      ),
    );

    const projected = await batchGet({
      orders: {
        Keys: [orderKey(1), orderKey(2), { id: "absent" }],
        ProjectionExpression: "#s, id",
        ExpressionAttributeNames: { "#s": "status" },
      },
      lines: { Keys: [{ order: "o", line: 3 }], ProjectionExpression: "sku", ConsistentRead: true },
    });
    expect(byJson(projected.Responses!.orders!)).toEqual(
      byJson([
        { id: "o001", status: "new" },
        { id: "o002", status: "new" },
      ]),
    );
    expect(projected.Responses!.lines).toEqual([{ sku: "sku3" }]);

    const nothing = await batchGet({ orders: { Keys: [{ id: "absent" }] } });
    expect(nothing.Responses).toEqual({ orders: [] });
  });

  it("refuses 101 keys, duplicate keys, keys off the schema and unknown tables", async () => {
    expect(
      await refusal(() =>
        batchGet({
          orders: { Keys: Array.from({ length: 60 }, (_, i) => orderKey(i)) },
          lines: { Keys: Array.from({ length: 41 }, (_, i) => ({ order: "o", line: i })) },
        }),
      ),
    ).toEqual(invalid("Too many items requested for the BatchGetItem call"));
    expect(
      await refusal(() => batchGet({ orders: { Keys: [orderKey(1), orderKey(2), orderKey(1)] } })),
    ).toEqual(DUPLICATES);
    // The same number spelled twice is the same key.
    expect(
      await refusal(() =>
        client.send(
          new BatchGetItemCommand({
            RequestItems: {
              lines: {
                Keys: [
                  { order: { S: "o" }, line: { N: "1" } },
                  { order: { S: "o" }, line: { N: "1.0" } },
                ],
              },
            },
          }),
        ),
      ),
    ).toEqual(DUPLICATES);
    // The same key in two tables is two items.
    const both = await batchGet({
      orders: { Keys: [{ id: "o" }] },
      lines: { Keys: [{ order: "o", line: 0 }] },
    });
    expect(both.Responses!.lines).toHaveLength(1);
    expect(await refusal(() => batchGet({ orders: { Keys: [{ id: 1 }] } }))).toEqual(
      invalid("The provided key element does not match the schema"),
    );
    expect(await refusal(() => batchGet({ lines: { Keys: [{ order: "o" }] } }))).toEqual(
      invalid("The provided key element does not match the schema"),
    );
    expect(
      await refusal(() =>
        batchGet({ orders: { Keys: [orderKey(1)] }, missing: { Keys: [{ id: "x" }] } }),
      ),
    ).toMatchObject({ name: "ResourceNotFoundException", status: 400 });
  });

  it("writes 25 puts and deletes across two tables in one batch", async () => {
    const before = { orders: await everything("orders"), lines: await everything("lines") };
    const result = await batchWrite({
      orders: [
        ...Array.from({ length: 10 }, (_, i) => ({
          PutRequest: { Item: { id: `w${i}`, status: "batched" } },
        })),
        ...[0, 1, 2, 3, 4].map((i) => ({ DeleteRequest: { Key: orderKey(i) } })),
      ],
      lines: [
        ...Array.from({ length: 7 }, (_, i) => ({
          PutRequest: { Item: { order: "w", line: i, qty: i } },
        })),
        ...[0, 1].map((line) => ({ DeleteRequest: { Key: { order: "o", line } } })),
        // Deleting what is not there is no error.
        { DeleteRequest: { Key: { order: "nobody", line: 0 } } },
      ],
    });
    expect(result.UnprocessedItems).toEqual({});
    const orders = await everything("orders");
    expect(orders).toEqual(
      byJson([
        ...before.orders
          .map((row) => JSON.parse(row))
          .filter((row) => !["o000", "o001", "o002", "o003", "o004"].includes(row.id)),
        ...Array.from({ length: 10 }, (_, i) => ({ id: `w${i}`, status: "batched" })),
      ]),
    );
    const lines = await everything("lines");
    expect(lines).toEqual(
      byJson([
        ...before.lines
          .map((row) => JSON.parse(row))
          .filter((row) => !(row.order === "o" && row.line < 2)),
        ...Array.from({ length: 7 }, (_, i) => ({ order: "w", line: i, qty: i })),
      ]),
    );
  });

  it("refuses over 25 requests, duplicate keys and any invalid request, writing nothing", async () => {
    const before = { orders: await everything("orders"), lines: await everything("lines") };
    const put = (id: string, more: Row = {}) => ({ PutRequest: { Item: { id, ...more } } });
    const fresh = (n: number, prefix = "x") =>
      Array.from({ length: n }, (_, i) => put(`${prefix}${i}`));

    expect(await refusal(() => batchWrite({ orders: fresh(26) }))).toEqual(
      invalid(/Member must have length less than or equal to 25/),
    );
    expect(
      await refusal(() =>
        batchWrite({
          orders: fresh(13),
          lines: Array.from({ length: 13 }, (_, line) => ({
            PutRequest: { Item: { order: "x", line } },
          })),
        }),
      ),
    ).toEqual(invalid("Too many items requested for the BatchWriteItem call"));
    expect(
      await refusal(() => batchWrite({ orders: [...fresh(3), put("x1", { again: true })] })),
    ).toEqual(DUPLICATES);
    expect(
      await refusal(() =>
        batchWrite({ orders: [...fresh(3), { DeleteRequest: { Key: { id: "x2" } } }] }),
      ),
    ).toEqual(DUPLICATES);

    const refusedAmongValid: [string, Row, ReturnType<typeof invalid> | Row][] = [
      [
        "a missing key",
        { status: "keyless" },
        invalid("One or more parameter values were invalid: Missing the key id in the item"),
      ],
      [
        "a key of the wrong type",
        { id: 7 },
        invalid(
          "One or more parameter values were invalid: Type mismatch for key id expected: S actual: N",
        ),
      ],
      [
        "an empty key",
        { id: "" },
        invalid(
          "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: id",
        ),
      ],
      [
        "an item over 400 KB",
        { id: "huge", blob: "x".repeat(400 * 1024) },
        invalid("Item size has exceeded the maximum allowed size"),
      ],
    ];
    for (const [what, Item, expected] of refusedAmongValid) {
      expect(
        await refusal(() => batchWrite({ orders: [...fresh(5), { PutRequest: { Item } }] })),
        what,
      ).toEqual(expected);
    }
    expect(
      await refusal(() =>
        client.send(
          new BatchWriteItemCommand({
            RequestItems: {
              orders: [
                { PutRequest: { Item: { id: { S: "x0" } } } },
                { PutRequest: { Item: { id: { S: "x1" }, tags: { SS: [] } } } },
              ],
            },
          }),
        ),
      ),
    ).toMatchObject({ name: "ValidationException", status: 400 });
    expect(
      await refusal(() =>
        batchWrite({ orders: fresh(5), missing: [{ PutRequest: { Item: { id: "m" } } }] }),
      ),
    ).toMatchObject({ name: "ResourceNotFoundException", status: 400 });
    expect(
      await refusal(() =>
        batchWrite({
          orders: fresh(2),
          lines: [{ DeleteRequest: { Key: { order: "o" } } }],
        }),
      ),
    ).toEqual(invalid("The provided key element does not match the schema"));

    expect(await everything("orders")).toEqual(before.orders);
    expect(await everything("lines")).toEqual(before.lines);
  });

  it("applies Put, Update, Delete and ConditionCheck across two tables atomically", async () => {
    await doc.send(new PutCommand({ TableName: "orders", Item: { id: "t1", status: "open" } }));
    await doc.send(new PutCommand({ TableName: "orders", Item: { id: "t-gone", status: "old" } }));
    await doc.send(
      new PutCommand({ TableName: "lines", Item: { order: "t1", line: 1, qty: 2, sku: "a" } }),
    );
    const result = await transact([
      {
        Put: {
          TableName: "orders",
          Item: { id: "t2", status: "new" },
          ConditionExpression: "attribute_not_exists(id)",
        },
      },
      {
        Update: {
          TableName: "lines",
          Key: { order: "t1", line: 1 },
          UpdateExpression: "ADD qty :one SET sku = :sku",
          ConditionExpression: "qty = :two",
          ExpressionAttributeValues: { ":one": 1, ":two": 2, ":sku": "b" },
        },
      },
      { Delete: { TableName: "orders", Key: { id: "t-gone" } } },
      {
        ConditionCheck: {
          TableName: "orders",
          Key: { id: "t1" },
          ConditionExpression: "#s = :open",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: { ":open": "open" },
        },
      },
    ]);
    expect(result.$metadata.httpStatusCode).toBe(200);
    expect(await get("orders", { id: "t2" })).toEqual({ id: "t2", status: "new" });
    expect(await get("lines", { order: "t1", line: 1 })).toEqual({
      order: "t1",
      line: 1,
      qty: 3,
      sku: "b",
    });
    expect(await get("orders", { id: "t-gone" })).toBeUndefined();
    expect(await get("orders", { id: "t1" })).toEqual({ id: "t1", status: "open" });
  });

  it("cancels a transaction whose condition fails, with its reasons, applying nothing", async () => {
    await doc.send(new PutCommand({ TableName: "orders", Item: { id: "c1", status: "shipped" } }));
    const before = { orders: await everything("orders"), lines: await everything("lines") };
    const error = (await errorOf(() =>
      client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: "orders", Item: { id: { S: "c-new" } } } },
            {
              Update: {
                TableName: "lines",
                Key: { order: { S: "o" }, line: { N: "10" } },
                UpdateExpression: "SET qty = :q",
                ExpressionAttributeValues: { ":q": { N: "99" } },
              },
            },
            {
              ConditionCheck: {
                TableName: "orders",
                Key: { id: { S: "c1" } },
                ConditionExpression: "#s = :open",
                ExpressionAttributeNames: { "#s": "status" },
                ExpressionAttributeValues: { ":open": { S: "open" } },
                ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              },
            },
            {
              Delete: {
                TableName: "orders",
                Key: { id: { S: "absent" } },
                ConditionExpression: "attribute_exists(id)",
              },
            },
          ],
        }),
      ),
    )) as TransactionCanceledException;
    expect(error.name).toBe("TransactionCanceledException");
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect(error.message).toBe(
      "Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, ConditionalCheckFailed, ConditionalCheckFailed]",
    );
    expect(error.CancellationReasons).toEqual([
      { Code: "None" },
      { Code: "None" },
      {
        Code: "ConditionalCheckFailed",
        Message: "The conditional request failed",
        Item: { id: { S: "c1" }, status: { S: "shipped" } },
      },
      { Code: "ConditionalCheckFailed", Message: "The conditional request failed" },
    ]);
    expect(await everything("orders")).toEqual(before.orders);
    expect(await everything("lines")).toEqual(before.lines);
  });

  it("refuses two actions on one item and more than 100 actions, applying nothing", async () => {
    const before = { orders: await everything("orders"), lines: await everything("lines") };
    expect(
      await refusal(() =>
        transact([
          { Put: { TableName: "orders", Item: { id: "d1" } } },
          { Put: { TableName: "lines", Item: { order: "d1", line: 1 } } },
          {
            Update: {
              TableName: "orders",
              Key: { id: "d1" },
              UpdateExpression: "SET a = :a",
              ExpressionAttributeValues: { ":a": 1 },
            },
          },
        ]),
      ),
    ).toEqual(SAME_ITEM);
    expect(
      await refusal(() =>
        transact([
          { Delete: { TableName: "orders", Key: orderKey(10) } },
          {
            ConditionCheck: {
              TableName: "orders",
              Key: orderKey(10),
              ConditionExpression: "attribute_exists(id)",
            },
          },
        ]),
      ),
    ).toEqual(SAME_ITEM);
    const puts = (n: number) =>
      Array.from({ length: n }, (_, line) => ({
        Put: { TableName: "lines", Item: { order: "bulk", line, at: line * 1.5 } },
      }));
    expect(await refusal(() => transact(puts(101)))).toEqual(
      invalid(
        /^1 validation error detected: Value '.*' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100/,
      ),
    );
    expect(await everything("orders")).toEqual(before.orders);
    expect(await everything("lines")).toEqual(before.lines);

    await transact(puts(100));
    const { Items } = await doc.send(
      new ScanCommand({
        TableName: "lines",
        FilterExpression: "#o = :bulk",
        ExpressionAttributeNames: { "#o": "order" },
        ExpressionAttributeValues: { ":bulk": "bulk" },
      }),
    );
    expect(Items?.map((item) => item.line)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("applies a request with a ClientRequestToken once, and refuses the token for another", async () => {
    const increment = (by: number, token: string) =>
      transact(
        [
          {
            Update: {
              TableName: "counters",
              Key: { id: "hits" },
              UpdateExpression: "ADD n :by",
              ExpressionAttributeValues: { ":by": by },
            },
          },
        ],
        token,
      );
    await increment(1, "token-1");
    await increment(1, "token-1");
    expect(await get("counters", { id: "hits" })).toEqual({ id: "hits", n: 1 });
    const mismatch = await refusal(() => increment(2, "token-1"));
    expect(mismatch).toMatchObject({ name: "IdempotentParameterMismatchException", status: 400 });
    expect(await get("counters", { id: "hits" })).toEqual({ id: "hits", n: 1 });
    await Promise.all([increment(5, "token-2"), increment(5, "token-2"), increment(5, "token-2")]);
    expect(await get("counters", { id: "hits" })).toEqual({ id: "hits", n: 6 });
    await increment(1, "token-3");
    expect(await get("counters", { id: "hits" })).toEqual({ id: "hits", n: 7 });
    // The token is known to every table its request wrote, whichever comes first in another.
    const elsewhere = await refusal(() =>
      transact(
        [
          { Put: { TableName: "accounts", Item: { id: "token-3-other" } } },
          {
            Update: {
              TableName: "counters",
              Key: { id: "hits" },
              UpdateExpression: "ADD n :by",
              ExpressionAttributeValues: { ":by": 1 },
            },
          },
        ],
        "token-3",
      ),
    );
    expect(elsewhere).toMatchObject({ name: "IdempotentParameterMismatchException", status: 400 });
    expect(await get("accounts", { id: "token-3-other" })).toBeUndefined();
    expect(await get("counters", { id: "hits" })).toEqual({ id: "hits", n: 7 });
    expect(await refusal(() => increment(1, "t".repeat(37)))).toMatchObject({
      name: "ValidationException",
      status: 400,
    });
  });

  it("keeps a balance's sum under 20 concurrent transfers, and reads both from one snapshot", async () => {
    await transact([
      { Put: { TableName: "accounts", Item: { id: "a", balance: 100 } } },
      { Put: { TableName: "accounts", Item: { id: "b", balance: 100 } } },
    ]);
    const transfers = Array.from({ length: 20 }, (_, i) => ({
      from: i % 3 === 0 ? "b" : "a",
      to: i % 3 === 0 ? "a" : "b",
      amount: 5 + ((i * 7) % 23),
    }));
    let running = true;
    const snapshots: number[] = [];
    const reader = (async () => {
      while (running) {
        const { Responses } = await doc.send(
          new TransactGetCommand({
            TransactItems: ["a", "b"].map((id) => ({
              Get: { TableName: "accounts", Key: { id } },
            })),
          }),
        );
        snapshots.push(
          (Responses![0]!.Item!.balance as number) + (Responses![1]!.Item!.balance as number),
        );
      }
    })();
    const outcomes = await Promise.all(
      transfers.map(({ from, to, amount }) =>
        transact([
          {
            Update: {
              TableName: "accounts",
              Key: { id: from },
              UpdateExpression: "SET balance = balance - :x",
              ConditionExpression: "balance >= :x",
              ExpressionAttributeValues: { ":x": amount },
            },
          },
          {
            Update: {
              TableName: "accounts",
              Key: { id: to },
              UpdateExpression: "SET balance = balance + :x",
              ExpressionAttributeValues: { ":x": amount },
            },
          },
        ]).then(
          () => "applied",
          (e: TransactionCanceledException) => {
            // Only a balance too low for the transfer may cancel it.
            expect(e.name).toBe("TransactionCanceledException");
            expect(e.CancellationReasons?.map((r) => r.Code)).toEqual([
              "ConditionalCheckFailed",
              "None",
            ]);
            return "cancelled";
          },
        ),
      ),
    );
    running = false;
    await reader;
    const a = (await get("accounts", { id: "a" }))!.balance as number;
    const b = (await get("accounts", { id: "b" }))!.balance as number;
    expect(a + b).toBe(200);
    const moved = transfers.reduce(
      (sum, t, i) =>
        outcomes[i] === "applied" ? sum + (t.to === "a" ? t.amount : -t.amount) : sum,
      0,
    );
    expect(a).toBe(100 + moved);
    expect(outcomes.filter((o) => o === "applied").length).toBeGreaterThan(0);
    expect(snapshots.length).toBeGreaterThan(0);
    expect(new Set(snapshots)).toEqual(new Set([200]));
  });

  it("reads several items of two tables from one snapshot, projected, missing ones empty", async () => {
    await doc.send(
      new PutCommand({
        TableName: "orders",
        Item: { id: "g1", status: "s", nested: { a: [1, 2] } },
      }),
    );
    const { Responses } = await doc.send(
      new TransactGetCommand({
        TransactItems: [
          { Get: { TableName: "orders", Key: { id: "g1" } } },
          { Get: { TableName: "orders", Key: { id: "g1x" } } },
          {
            Get: {
              TableName: "lines",
              Key: { order: "o", line: 20 },
              ProjectionExpression: "sku, #l",
              ExpressionAttributeNames: { "#l": "line" },
            },
          },
          {
            Get: { TableName: "accounts", Key: { id: "nobody" }, ProjectionExpression: "balance" },
          },
          {
            Get: {
              TableName: "orders",
              Key: orderKey(30),
              ProjectionExpression: "#t",
              ExpressionAttributeNames: { "#t": "total" },
            },
          },
        ],
      }),
    );
    expect(Responses).toEqual([
      { Item: { id: "g1", status: "s", nested: { a: [1, 2] } } },
      {},
      { Item: { sku: "sku20", line: 20 } },
      {},
      { Item: { total: 30 } },
    ]);
    const nested = await doc.send(
      new TransactGetCommand({
        TransactItems: [
          { Get: { TableName: "orders", Key: { id: "g1" }, ProjectionExpression: "nested.a[1]" } },
        ],
      }),
    );
    expect(nested.Responses).toEqual([{ Item: { nested: { a: [2] } } }]);
    expect(
      await refusal(() =>
        doc.send(
          new TransactGetCommand({
            TransactItems: [
              { Get: { TableName: "orders", Key: { id: "g1" } } },
              { Get: { TableName: "orders", Key: { id: "g1" }, ProjectionExpression: "id" } },
            ],
          }),
        ),
      ),
    ).toEqual(SAME_ITEM);
  });

  it("shows each table's items to Cairn's list and watch, as DynamoDB JSON", async () => {
    const kv = await openKv(server().url, { accessToken: TOKEN });
    try {
      const delivered: KvEntryMaybe[][] = [];
      const watch = kv.watch(
        [
          ["dynamodb", "orders", "item"],
          ["dynamodb", "lines", "item"],
        ],
        (entries) => {
          delivered.push(entries);
        },
        { emitInitial: false },
      );
      await watch.ready;

      await doc.send(
        new PutCommand({ TableName: "orders", Item: { id: "seen", n: 1, tags: new Set(["x"]) } }),
      );
      const listed = await collect(kv.list({ prefix: ["dynamodb", "orders", "item"] }));
      const seen = listed.find((entry) => entry.key[3] === "seen");
      expect(seen?.key).toEqual(["dynamodb", "orders", "item", "seen"]);
      expect(seen?.value).toEqual({ id: { S: "seen" }, n: { N: "1" }, tags: { SS: ["x"] } });
      await until(() => delivered.length >= 1);
      expect(delivered[0]).toMatchObject([
        {
          key: ["dynamodb", "orders", "item", "seen"],
          value: { id: { S: "seen" }, n: { N: "1" }, tags: { SS: ["x"] } },
        },
      ]);

      // A transaction across both tables is one commit: delivered at once.
      await transact([
        { Put: { TableName: "orders", Item: { id: "seen2" } } },
        { Put: { TableName: "lines", Item: { order: "seen2", line: 1.5 } } },
        { Delete: { TableName: "orders", Key: { id: "seen" } } },
      ]);
      await until(() => delivered.length >= 2);
      const commit = delivered[1]!;
      const at = (table: string, id: string) =>
        commit.find((entry) => entry.key[1] === table && entry.key[3] === id);
      expect(commit).toHaveLength(3);
      expect(at("orders", "seen")?.value).toBeNull();
      expect(at("orders", "seen2")?.value).toEqual({ id: { S: "seen2" } });
      expect(at("lines", "seen2")?.value).toEqual({ order: { S: "seen2" }, line: { N: "1.5" } });
      expect(at("lines", "seen2")?.key).toHaveLength(5);
      expect(at("orders", "seen2")?.versionstamp).toBe(at("lines", "seen2")?.versionstamp);
      watch.stop();
      await doc.send(new DeleteCommand({ TableName: "orders", Key: { id: "seen2" } }));
    } finally {
      await kv.close();
    }
  });
});
