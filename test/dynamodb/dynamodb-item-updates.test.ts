/**
 * UpdateItem's UpdateExpression through the real AWS SDK against Cairn on a SQLite file and on
 * PostgreSQL: SET (arithmetic, if_not_exists, list_append, list indexes), REMOVE, ADD, DELETE,
 * exact arithmetic; expression errors answered with DynamoDB's messages (a refused update changes
 * nothing); and concurrent writes to one item. The other item operations are
 * dynamodb-items.test.ts's, malformed requests dynamodb-item-requests.test.ts's.
 */
import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import { type DynamoDBDocumentClient, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { describeEach, serverForTests, storages } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";
import { type Item, invalid, itemTables, refusedIn } from "./dynamodb-items-fixture.js";

const TOKEN = "dynamodb-item-updates-token";
const WRONG_TYPE = "An operand in the update expression has an incorrect data type";
const OVERFLOW =
  "Number overflow. Attempting to store a number with magnitude larger than supported range";

describeEach(storages, "DynamoDB UpdateItem", (storage) => {
  const server = serverForTests(TOKEN, storage, { dynamodbTables: itemTables });
  let client: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  const get = async (pk: string) =>
    (await client.send(new GetItemCommand({ TableName: "items", Key: { pk: { S: pk } } }))).Item;
  const put = (Item: Item) => client.send(new PutItemCommand({ TableName: "items", Item }));
  /** UpdateItem on `items`' item `pk` with `expression` and `values` (`:name` → value). */
  const update = async (
    pk: string,
    expression: string | undefined,
    values?: Item,
    more: Partial<UpdateItemCommandInput> = {},
  ) =>
    client.send(
      new UpdateItemCommand({
        TableName: "items",
        Key: { pk: { S: pk } },
        UpdateExpression: expression,
        ExpressionAttributeValues: values,
        ...more,
      }),
    );
  const refused = (send: () => Promise<unknown>, table = "items") => refusedIn(client, table, send);

  beforeAll(() => {
    ({ client, doc } = dynamodbClients(server(), TOKEN));
  });

  describe("UpdateExpression", () => {
    it("SETs sums and differences, computed from the item as it was", async () => {
      await put({ pk: { S: "sums" }, n: { N: "10" } });
      await update("sums", "SET n = n + :five, m = n - :three, o = :three - n, p = :three", {
        ":five": { N: "5" },
        ":three": { N: "3" },
      });
      expect(await get("sums")).toEqual({
        pk: { S: "sums" },
        n: { N: "15" },
        m: { N: "7" },
        o: { N: "-7" },
        p: { N: "3" },
      });
    });

    it("SETs with if_not_exists and list_append, at either end", async () => {
      await put({
        pk: { S: "functions" },
        kept: { S: "here" },
        l: { L: [{ N: "1" }, { N: "2" }] },
      });
      const counted = { ":zero": { N: "0" }, ":one": { N: "1" } };
      await update(
        "functions",
        "SET c = if_not_exists(c, :zero) + :one, kept = if_not_exists(kept, :other), fallback = if_not_exists(absent, :other), l = list_append(l, :tail)",
        { ...counted, ":other": { S: "other" }, ":tail": { L: [{ S: "tail" }] } },
      );
      await update(
        "functions",
        "SET c = if_not_exists(c, :zero) + :one, l = list_append(:head, l)",
        {
          ...counted,
          ":head": { L: [{ S: "head" }] },
        },
      );
      expect(await get("functions")).toEqual({
        pk: { S: "functions" },
        kept: { S: "here" },
        fallback: { S: "other" },
        c: { N: "2" },
        l: { L: [{ S: "head" }, { N: "1" }, { N: "2" }, { S: "tail" }] },
      });
    });

    it("SETs a list element past the end by appending, in index order", async () => {
      await put({ pk: { S: "appends" }, l: { L: [{ S: "a" }, { S: "b" }] } });
      await update("appends", "SET l[1] = :B, l[10] = :y, l[7] = :x", {
        ":B": { S: "B" },
        ":x": { S: "x" },
        ":y": { S: "y" },
      });
      expect((await get("appends"))!.l).toEqual({
        L: [{ S: "a" }, { S: "B" }, { S: "x" }, { S: "y" }],
      });
    });

    it("REMOVEs attributes, nested attributes and list elements", async () => {
      await put({
        pk: { S: "removes" },
        a: { S: "gone" },
        b: { M: { c: { S: "gone" }, d: { S: "kept" } } },
        l: { L: [{ N: "0" }, { N: "1" }, { N: "2" }, { N: "3" }] },
      });
      // List indexes are positions before the update: l[1] and l[3] both go.
      await update("removes", "REMOVE a, b.c, l[1], l[3], l[9], absent");
      expect(await get("removes")).toEqual({
        pk: { S: "removes" },
        b: { M: { d: { S: "kept" } } },
        l: { L: [{ N: "0" }, { N: "2" }] },
      });
    });

    it("ADDs to numbers, a missing one starting at 0, and to sets", async () => {
      await put({ pk: { S: "adds" }, n: { N: "1.5" }, ss: { SS: ["a"] }, ns: { NS: ["1"] } });
      await update("adds", "ADD n :one, tally :one, ss :ss, ns :ns, newset :ss, bs :bs", {
        ":one": { N: "1" },
        ":ss": { SS: ["b", "a"] },
        ":ns": { NS: ["2", "1"] },
        ":bs": { BS: [Uint8Array.from([1])] },
      });
      await update("adds", "ADD tally :minus", { ":minus": { N: "-3" } });
      const item = (await get("adds"))!;
      expect(item).toMatchObject({
        n: { N: "2.5" },
        tally: { N: "-2" },
        bs: { BS: [Uint8Array.from([1])] },
      });
      expect(item.ss!.SS!.sort()).toEqual(["a", "b"]);
      expect(item.ns!.NS!.sort()).toEqual(["1", "2"]);
      expect(item.newset!.SS!.sort()).toEqual(["a", "b"]);
    });

    it("DELETEs from sets, and removes a set left empty", async () => {
      await put({
        pk: { S: "deletes" },
        ss: { SS: ["a", "b", "c"] },
        ns: { NS: ["1", "2"] },
      });
      await update("deletes", "DELETE ss :some, ns :all, absent :some", {
        ":some": { SS: ["a", "z"] },
        ":all": { NS: ["2", "1.0"] },
      });
      const item = (await get("deletes"))!;
      expect(Object.keys(item).sort()).toEqual(["pk", "ss"]);
      expect(item.ss!.SS!.sort()).toEqual(["b", "c"]);
    });

    it("applies every clause of one expression, in any order", async () => {
      await put({
        pk: { S: "clauses" },
        gone: { S: "x" },
        n: { N: "1" },
        ss: { SS: ["a", "b"] },
      });
      await update("clauses", "REMOVE gone ADD n :one SET s = :s DELETE ss :a", {
        ":one": { N: "1" },
        ":s": { S: "set" },
        ":a": { SS: ["a"] },
      });
      expect(await get("clauses")).toEqual({
        pk: { S: "clauses" },
        n: { N: "2" },
        s: { S: "set" },
        ss: { SS: ["b"] },
      });
    });

    it("computes exactly to 38 digits and refuses an overflow", async () => {
      const nines = "9".repeat(38);
      await put({
        pk: { S: "exact" },
        a: { N: "0.1" },
        big: { N: `${"9".repeat(37)}8` },
        top: { N: `${nines}${"0".repeat(88)}` },
      });
      await update("exact", "SET a = a + :b, big = big + :one, c = :b - a ADD d :tiny", {
        ":b": { N: "0.2" },
        ":one": { N: "1" },
        ":tiny": { N: "0.000000000000000000000000000000000000000000000000001" },
      });
      expect(await get("exact")).toMatchObject({
        a: { N: "0.3" },
        big: { N: nines },
        c: { N: "0.1" },
        d: { N: "0.000000000000000000000000000000000000000000000000001" },
      });
      const e88 = { N: "1".padEnd(89, "0") };
      expect(await refused(() => update("exact", "SET top = top + :e", { ":e": e88 }))).toEqual(
        invalid(OVERFLOW),
      );
      expect(await refused(() => update("exact", "ADD top :e", { ":e": e88 }))).toEqual(
        invalid(OVERFLOW),
      );
      expect(
        await refused(() => update("exact", "SET m = :min - top", { ":min": { N: `-${e88.N}` } })),
      ).toEqual(invalid(OVERFLOW));
    });

    it("creates a missing item, and only its key without an UpdateExpression", async () => {
      await update("upserted", "SET a = :a ADD n :one", { ":a": { S: "a" }, ":one": { N: "1" } });
      expect(await get("upserted")).toEqual({
        pk: { S: "upserted" },
        a: { S: "a" },
        n: { N: "1" },
      });
      await update("key only", undefined);
      expect(await get("key only")).toEqual({ pk: { S: "key only" } });
      await update("upserted", undefined);
      expect(await get("upserted")).toEqual({
        pk: { S: "upserted" },
        a: { S: "a" },
        n: { N: "1" },
      });
    });

    it("refuses to update a key attribute", async () => {
      await put({ pk: { S: "keyed" } });
      const keyPart = (attribute: string) =>
        invalid(
          `One or more parameter values were invalid: Cannot update attribute ${attribute}. This attribute is part of the key`,
        );
      expect(await refused(() => update("keyed", "SET pk = :v", { ":v": { S: "other" } }))).toEqual(
        keyPart("pk"),
      );
      expect(await refused(() => update("keyed", "REMOVE pk"))).toEqual(keyPart("pk"));
      await client.send(
        new PutItemCommand({ TableName: "pairs", Item: { pk: { S: "p" }, sk: { N: "1" } } }),
      );
      expect(
        await refused(
          () =>
            client.send(
              new UpdateItemCommand({
                TableName: "pairs",
                Key: { pk: { S: "p" }, sk: { N: "1" } },
                UpdateExpression: "ADD sk :one",
                ExpressionAttributeValues: { ":one": { N: "1" } },
              }),
            ),
          "pairs",
        ),
      ).toEqual(keyPart("sk"));
    });

    it("refuses what the item's data makes impossible", async () => {
      await put({ pk: { S: "typed" }, s: { S: "text" }, n: { N: "1" }, m: { M: {} } });
      const cases: [string, Item | undefined, string][] = [
        ["ADD s :one", { ":one": { N: "1" } }, WRONG_TYPE],
        ["SET n = s + :one", { ":one": { N: "1" } }, WRONG_TYPE],
        ["SET l = list_append(n, :l)", { ":l": { L: [] } }, WRONG_TYPE],
        ["DELETE n :ss", { ":ss": { SS: ["a"] } }, WRONG_TYPE],
        [
          "SET a = absent",
          undefined,
          "The provided expression refers to an attribute that does not exist in the item",
        ],
        [
          "SET n = absent + :one",
          { ":one": { N: "1" } },
          "The provided expression refers to an attribute that does not exist in the item",
        ],
        [
          "SET absent.a = :one",
          { ":one": { N: "1" } },
          "The document path provided in the update expression is invalid for update",
        ],
        [
          "SET s.a = :one",
          { ":one": { N: "1" } },
          "The document path provided in the update expression is invalid for update",
        ],
        [
          "SET m[0] = :one",
          { ":one": { N: "1" } },
          "The document path provided in the update expression is invalid for update",
        ],
      ];
      for (const [expression, values, message] of cases) {
        expect([expression, await refused(() => update("typed", expression, values))]).toEqual([
          expression,
          invalid(message),
        ]);
      }
    });
  });

  describe("expression errors", () => {
    const cases: [string, Partial<UpdateItemCommandInput>, string][] = [
      ["SET NewAttr = {", {}, 'Invalid UpdateExpression: Syntax error; token: "{", near: "= {"'],
      [
        "SET a = :v 1",
        { ExpressionAttributeValues: { ":v": { N: "1" } } },
        'Invalid UpdateExpression: Syntax error; token: "1", near: ":v 1"',
      ],
      [
        "SET _123 = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } } },
        'Invalid UpdateExpression: Syntax error; token: "_", near: "SET _123"',
      ],
      [
        "SET a = :v",
        {},
        "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :v",
      ],
      [
        "SET #a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } } },
        "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #a",
      ],
      [
        "SET a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" }, ":extra": { N: "2" } } },
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:extra}",
      ],
      [
        "SET a = :v",
        {
          ExpressionAttributeValues: { ":v": { N: "1" } },
          ExpressionAttributeNames: { "#extra": "x" },
        },
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#extra}",
      ],
      [
        "SET name = :n",
        { ExpressionAttributeValues: { ":n": { S: "x" } } },
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name",
      ],
      [
        "SET a = :v, a.b = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } } },
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
      ],
      [
        "SET a[0] = :v REMOVE a.b",
        { ExpressionAttributeValues: { ":v": { N: "1" } } },
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [0]], path two: [a, b]",
      ],
      [
        "ADD a :s",
        { ExpressionAttributeValues: { ":s": { S: "x" } } },
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND",
      ],
      [
        "DELETE a :n",
        { ExpressionAttributeValues: { ":n": { N: "1" } } },
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND",
      ],
      [
        "SET a = :s + :n",
        { ExpressionAttributeValues: { ":s": { S: "x" }, ":n": { N: "1" } } },
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S",
      ],
      [
        "SET a = if_not_exists(a, :l) + :n",
        { ExpressionAttributeValues: { ":l": { L: [] }, ":n": { N: "1" } } },
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: L",
      ],
      [
        "SET a = size(b)",
        {},
        "Invalid UpdateExpression: The function is not allowed in an update expression; function: size",
      ],
      ["SET a = nope(b)", {}, "Invalid UpdateExpression: Invalid function name; function: nope"],
      [
        "SET a = if_not_exists(:v, b)",
        { ExpressionAttributeValues: { ":v": { N: "1" } } },
        "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists",
      ],
      [
        "SET a = :v SET b = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } } },
        'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;',
      ],
      ["", {}, "Invalid UpdateExpression: The expression can not be empty;"],
      [
        "SET a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } }, ConditionExpression: "size(a, b) > :v" },
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: size, number of operands: 2",
      ],
      [
        "SET a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } }, ConditionExpression: "a = = :v" },
        'Invalid ConditionExpression: Syntax error; token: "=", near: "= = :v"',
      ],
      [
        "SET a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } }, ConditionExpression: "name = :v" },
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: name",
      ],
      [
        "SET a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } }, ConditionExpression: "#x = :w" },
        "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x",
      ],
      [
        "SET a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } }, ConditionExpression: "((a = :v))" },
        "Invalid ConditionExpression: The expression has redundant parentheses;",
      ],
      [
        "SET a = :v",
        {
          ExpressionAttributeValues: { ":v": { N: "1" } },
          ConditionExpression: "attribute_type(a, :v)",
        },
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
      ],
      [
        "SET a = :v",
        { ExpressionAttributeValues: { ":v": { N: "1" } }, ExpressionAttributeNames: { x: "a" } },
        'ExpressionAttributeNames contains invalid key: Syntax error; key: "x"',
      ],
    ];

    it("answers with DynamoDB's ValidationException, and changes nothing", async () => {
      await put({ pk: { S: "errors" }, a: { N: "0" } });
      const refusals = [];
      for (const [expression, more] of cases) {
        refusals.push([
          expression,
          more,
          await refused(() => update("errors", expression, undefined, more)),
        ]);
      }
      expect(refusals).toEqual(
        cases.map(([expression, more, message]) => [expression, more, invalid(message)]),
      );
    });

    it("refuses values or names given where no expression uses them", async () => {
      const values = { ":v": { N: "1" } };
      await put({ pk: { S: "errors" } });
      expect(
        await refused(() =>
          client.send(
            new PutItemCommand({
              TableName: "items",
              Item: { pk: { S: "errors" } },
              ExpressionAttributeValues: values,
            }),
          ),
        ),
      ).toEqual(
        invalid(
          "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null",
        ),
      );
      expect(await refused(() => update("errors", undefined, values))).toEqual(
        invalid(
          "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null",
        ),
      );
      expect(
        await refused(() =>
          update("errors", undefined, undefined, { ExpressionAttributeNames: { "#a": "a" } }),
        ),
      ).toEqual(invalid("ExpressionAttributeNames can only be specified when using expressions"));
    });
  });

  describe("concurrent writes", () => {
    it("counts 50 concurrent ADDs to one item", async () => {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          doc.send(
            new UpdateCommand({
              TableName: "items",
              Key: { pk: "counter" },
              UpdateExpression: "ADD n :one",
              ExpressionAttributeValues: { ":one": 1 },
            }),
          ),
        ),
      );
      expect(await get("counter")).toEqual({ pk: { S: "counter" }, n: { N: "50" } });
    });

    it("lets exactly one of 20 concurrent conditional puts create the item", async () => {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, (_, writer) =>
          doc.send(
            new PutCommand({
              TableName: "items",
              Item: { pk: "claimed", writer },
              ConditionExpression: "attribute_not_exists(pk)",
            }),
          ),
        ),
      );
      const won = outcomes.flatMap((outcome, writer) =>
        outcome.status === "fulfilled" ? [writer] : [],
      );
      expect(won).toHaveLength(1);
      expect(
        outcomes.flatMap((outcome) =>
          outcome.status === "rejected" ? [(outcome.reason as Error).name] : [],
        ),
      ).toEqual(Array(19).fill("ConditionalCheckFailedException"));
      expect(await get("claimed")).toEqual({ pk: { S: "claimed" }, writer: { N: String(won[0]) } });
    });
  });
});
