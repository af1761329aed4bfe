/**
 * PutItem, GetItem, UpdateItem and DeleteItem through the real AWS SDK (its client and its
 * document client) against Cairn on a SQLite file and on PostgreSQL: every attribute type, exact
 * numbers, DynamoDB's limits on values, keys and item size (a refused write changes nothing),
 * ConditionExpression with every operator and function, ReturnValues, and a named database's
 * items apart from the default database's. UpdateExpression, expression errors, concurrency and
 * malformed requests are dynamodb-item-updates.test.ts's.
 */
import {
  CreateTableCommand,
  DeleteItemCommand,
  type DeleteItemCommandInput,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
  type ReturnValue,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  NumberValue,
  PutCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { describeEach, errorOf, serverForTests, storages } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";
import { contentsOf, type Item, invalid, itemTables, refusedIn } from "./dynamodb-items-fixture.js";

const TOKEN = "dynamodb-items-token";

const DIGITS_38 = "12345678901234567890123456789012345678";
const TOO_DEEP =
  "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
const MISMATCH = "The provided key element does not match the schema";
const CONDITION_FAILED = {
  name: "ConditionalCheckFailedException",
  message: "The conditional request failed",
  status: 400,
};

/** `levels` levels of values, the outermost level 1, the innermost a string; lists or maps. */
function nested(levels: number, container: "L" | "M") {
  let value: Item[string] = { S: "leaf" };
  for (let level = 1; level < levels; level++) {
    value = container === "L" ? { L: [value] } : { M: { in: value } };
  }
  return value;
}

/** `item` with the members of its sets, at any depth, in sorted order (a set has no order). */
function setsSorted(item: Item): Item {
  const sorted = (value: Item[string]): Item[string] => {
    if (value.SS) return { SS: [...value.SS].sort() };
    if (value.NS) return { NS: [...value.NS].sort() };
    if (value.BS) return { BS: [...value.BS].sort((a, b) => Buffer.compare(a, b)) };
    if (value.L) return { L: value.L.map(sorted) };
    if (value.M) return { M: setsSorted(value.M) };
    return value;
  };
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, sorted(value)]));
}

describeEach(storages, "DynamoDB items", (storage) => {
  const server = serverForTests(TOKEN, storage, { dynamodbTables: itemTables });
  let client: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  const get = async (Key: Item, TableName = "items") =>
    (await client.send(new GetItemCommand({ TableName, Key }))).Item;
  const refused = (send: () => Promise<unknown>, table = "items") => refusedIn(client, table, send);
  const put = (input: Omit<PutItemCommandInput, "TableName">, TableName = "items") =>
    client.send(new PutItemCommand({ TableName, ...input }));

  beforeAll(() => {
    ({ client, doc } = dynamodbClients(server(), TOKEN));
  });

  describe("attribute types", () => {
    it("stores and returns every type, through the client", async () => {
      const item: Item = {
        pk: { S: "every type" },
        s: { S: "héllo ✓ 😀" },
        empty: { S: "" },
        n: { N: "-12.5" },
        b: { B: Uint8Array.from([0, 1, 2, 254, 255]) },
        emptyBytes: { B: new Uint8Array() },
        yes: { BOOL: true },
        no: { BOOL: false },
        nothing: { NULL: true },
        l: { L: [{ S: "a" }, { N: "1" }, { L: [] }, { M: {} }, { NULL: true }] },
        m: { M: { x: { S: "y" }, inner: { M: { z: { N: "2" }, list: { L: [{ BOOL: true }] } } } } },
        ss: { SS: ["b", "a", ""] },
        ns: { NS: ["3", "-1", "0.5"] },
        bs: { BS: [Uint8Array.from([2]), Uint8Array.from([1, 0])] },
      };
      await put({ Item: item });
      expect(setsSorted((await get({ pk: item.pk! }))!)).toEqual(setsSorted(item));
    });

    it("keeps numbers exact to 38 digits, in DynamoDB's canonical form", async () => {
      const numbers: Record<string, [string, string]> = {
        digits: [DIGITS_38, DIGITS_38],
        negative: [`-${DIGITS_38}`, `-${DIGITS_38}`],
        fraction: [`0.${DIGITS_38}`, `0.${DIGITS_38}`],
        padded: ["01.50", "1.5"],
        zero: ["-0.000", "0"],
        exponent: ["1.5e3", "1500"],
        plus: ["+7", "7"],
      };
      await put({
        Item: {
          pk: { S: "numbers" },
          ...Object.fromEntries(
            Object.entries(numbers).map(([name, [sent]]) => [name, { N: sent }]),
          ),
          set: { NS: [DIGITS_38, "01.50"] },
        },
      });
      expect(await get({ pk: { S: "numbers" } })).toEqual({
        pk: { S: "numbers" },
        ...Object.fromEntries(
          Object.entries(numbers).map(([name, [, kept]]) => [name, { N: kept }]),
        ),
        set: { NS: [DIGITS_38, "1.5"] },
      });
      expect(
        await refused(() => put({ Item: { pk: { S: "numbers" }, n: { N: `${DIGITS_38}9` } } })),
      ).toEqual(invalid("Attempting to store more than 38 significant digits in a Number"));
      expect(
        await refused(() => put({ Item: { pk: { S: "numbers" }, n: { N: "1e126" } } })),
      ).toEqual(
        invalid(
          "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
      );
      expect(await refused(() => put({ Item: { pk: { S: "numbers" }, n: { N: "12a" } } }))).toEqual(
        invalid("The parameter cannot be converted to a numeric value: 12a"),
      );
    });

    it("stores and returns every type, through the document client", async () => {
      const item = {
        pk: "document",
        s: "text",
        n: 42.5,
        big: NumberValue.from(DIGITS_38),
        b: Uint8Array.from([9, 8, 7]),
        yes: true,
        nothing: null,
        l: [1, "two", [3], { four: 4 }],
        m: { deep: { deeper: ["x", false] } },
        ss: new Set(["red", "green"]),
        ns: new Set([1, 2.5]),
        bs: new Set([Uint8Array.from([1]), Uint8Array.from([2])]),
      };
      await doc.send(new PutCommand({ TableName: "items", Item: item }));
      const { Item } = await doc.send(
        new GetCommand({ TableName: "items", Key: { pk: "document" } }),
      );
      // An integer past 2^53 reads as a bigint, exactly; the client sees the number as sent.
      expect(Item).toEqual({ ...item, big: BigInt(DIGITS_38) });
      expect((await get({ pk: { S: "document" } }))!.big).toEqual({ N: DIGITS_38 });
      await doc.send(new DeleteCommand({ TableName: "items", Key: { pk: "document" } }));
      expect(await get({ pk: { S: "document" } })).toBeUndefined();
    });

    it("takes values nested 32 levels deep, and refuses 33", async () => {
      for (const container of ["L", "M"] as const) {
        const item = { pk: { S: `deep ${container}` }, v: nested(32, container) };
        await put({ Item: item });
        expect(await get({ pk: item.pk })).toEqual(item);
        expect(await refused(() => put({ Item: { ...item, v: nested(33, container) } }))).toEqual(
          invalid(TOO_DEEP),
        );
        // An expression's values are held to the same depth.
        const compared = (levels: number) => () =>
          put({
            Item: item,
            ConditionExpression: "v = :v",
            ExpressionAttributeValues: { ":v": nested(levels, container) },
          });
        await compared(32)();
        expect(await refused(compared(33))).toEqual(invalid(TOO_DEEP));
      }
    });

    it("refuses empty sets and sets with duplicates", async () => {
      const pk = { S: "sets" };
      await put({ Item: { pk, ss: { SS: ["kept"] } } });
      const cases: [Item[string], string][] = [
        [{ SS: [] }, "One or more parameter values were invalid: An string set  may not be empty"],
        [{ NS: [] }, "One or more parameter values were invalid: An number set  may not be empty"],
        [{ BS: [] }, "One or more parameter values were invalid: Binary sets should not be empty"],
        [
          { NS: ["1", "1.0"] },
          "One or more parameter values were invalid: Input collection contains duplicates.",
        ],
      ];
      for (const [value, message] of cases) {
        expect(await refused(() => put({ Item: { pk, v: value } }))).toEqual(invalid(message));
      }
      for (const value of [
        { SS: ["a", "b", "a"] },
        { BS: [Uint8Array.from([1]), Uint8Array.from([1])] },
      ]) {
        const refusal = await refused(() => put({ Item: { pk, v: value } }));
        expect(refusal).toMatchObject({ name: "ValidationException", status: 400 });
        expect(refusal.message).toMatch(
          /^One or more parameter values were invalid: Input collection .* contains duplicates\.$/,
        );
      }
      // In an update, too.
      expect(
        await refused(() =>
          client.send(
            new UpdateItemCommand({
              TableName: "items",
              Key: { pk },
              UpdateExpression: "ADD ss :none",
              ExpressionAttributeValues: { ":none": { SS: [] } },
            }),
          ),
        ),
      ).toEqual(
        invalid("One or more parameter values were invalid: An string set  may not be empty"),
      );
      expect(await get({ pk })).toEqual({ pk, ss: { SS: ["kept"] } });
    });
  });

  describe("keys", () => {
    it("refuses an empty string or binary as a key", async () => {
      const empty = (kind: string, name: string) =>
        invalid(
          `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty ${kind} value. Key: ${name}`,
        );
      expect(await refused(() => put({ Item: { pk: { S: "" } } }))).toEqual(empty("string", "pk"));
      expect(await refused(() => get({ pk: { S: "" } }))).toEqual(empty("string", "pk"));
      expect(
        await refused(() => put({ Item: { id: { B: new Uint8Array() } } }, "bytes"), "bytes"),
      ).toEqual(empty("binary", "id"));
      expect(
        await refused(
          () =>
            client.send(
              new DeleteItemCommand({ TableName: "pairs", Key: { pk: { S: "" }, sk: { N: "1" } } }),
            ),
          "pairs",
        ),
      ).toEqual(empty("string", "pk"));
      // A binary key that is not empty is a key like any other.
      await put({ Item: { id: { B: Uint8Array.from([0]) }, v: { S: "zero" } } }, "bytes");
      expect(await get({ id: { B: Uint8Array.from([0]) } }, "bytes")).toEqual({
        id: { B: Uint8Array.from([0]) },
        v: { S: "zero" },
      });
    });

    it("refuses keys of the wrong type, and missing key attributes", async () => {
      await put({ Item: { pk: { S: "a" }, sk: { N: "1" } } }, "pairs");
      const inPairs = (send: () => Promise<unknown>) => refused(send, "pairs");
      const putPair = (Item: Item) => put({ Item }, "pairs");
      expect(await refused(() => put({ Item: { pk: { N: "1" } } }))).toEqual(
        invalid(
          "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
        ),
      );
      expect(await inPairs(() => putPair({ pk: { S: "a" }, sk: { S: "1" } }))).toEqual(
        invalid(
          "One or more parameter values were invalid: Type mismatch for key sk expected: N actual: S",
        ),
      );
      expect(await refused(() => put({ Item: { other: { S: "x" } } }))).toEqual(
        invalid("One or more parameter values were invalid: Missing the key pk in the item"),
      );
      expect(await inPairs(() => putPair({ pk: { S: "a" } }))).toEqual(
        invalid("One or more parameter values were invalid: Missing the key sk in the item"),
      );
      const getPair = (Key: Item) => get(Key, "pairs");
      const keys: Item[] = [
        { pk: { S: "a" } },
        { pk: { S: "a" }, sk: { S: "1" } },
        { pk: { S: "a" }, sk: { N: "1" }, extra: { S: "x" } },
        { pk: { S: "a" }, other: { N: "1" } },
      ];
      for (const key of keys) {
        expect(await inPairs(() => getPair(key))).toEqual(invalid(MISMATCH));
        expect(
          await inPairs(() => client.send(new DeleteItemCommand({ TableName: "pairs", Key: key }))),
        ).toEqual(invalid(MISMATCH));
        expect(
          await inPairs(() =>
            client.send(
              new UpdateItemCommand({
                TableName: "pairs",
                Key: key,
                UpdateExpression: "SET v = :v",
                ExpressionAttributeValues: { ":v": { S: "x" } },
              }),
            ),
          ),
        ).toEqual(invalid(MISMATCH));
      }
      expect(await getPair({ pk: { S: "a" }, sk: { N: "1.0" } })).toEqual({
        pk: { S: "a" },
        sk: { N: "1" },
      });
    });
  });

  describe("the 400 KB item size", () => {
    /** An item of exactly `size` bytes as DynamoDB counts them: `pk` (2 + 3) and `data` (4 + its length). */
    const sized = (pk: string, size: number): Item => ({
      pk: { S: pk },
      data: { S: "x".repeat(size - 2 - pk.length - 4) },
    });
    const LIMIT = 400 * 1024;

    it("takes an item of 400 KB and refuses one byte more", async () => {
      await put({ Item: sized("big", LIMIT) }, "big");
      expect(await get({ pk: { S: "big" } }, "big")).toEqual(sized("big", LIMIT));
      expect(await refused(() => put({ Item: sized("big", LIMIT + 1) }, "big"), "big")).toEqual(
        invalid("Item size has exceeded the maximum allowed size"),
      );
      expect(await refused(() => put({ Item: sized("new", LIMIT + 1) }, "big"), "big")).toEqual(
        invalid("Item size has exceeded the maximum allowed size"),
      );
    });

    it("refuses an update that grows an item past it", async () => {
      await put({ Item: sized("grows", LIMIT - 10) }, "big");
      const update = (value: string) =>
        client.send(
          new UpdateItemCommand({
            TableName: "big",
            Key: { pk: { S: "grows" } },
            UpdateExpression: "SET more = :v",
            ExpressionAttributeValues: { ":v": { S: value } },
          }),
        );
      expect(await refused(() => update("123456x"), "big")).toEqual(
        invalid("Item size to update has exceeded the maximum allowed size"),
      );
      await update("123456");
      expect(await get({ pk: { S: "grows" } }, "big")).toEqual({
        ...sized("grows", LIMIT - 10),
        more: { S: "123456" },
      });
    });
  });

  describe("ConditionExpression", () => {
    const item = {
      pk: "cond",
      n: 5,
      s: "apple",
      b: Uint8Array.from([1, 2, 3]),
      t: true,
      nul: null,
      l: [1, "x", { c: "deep" }],
      m: { a: { b: [0, 1, { c: 7 }] } },
      ss: new Set(["red", "green"]),
      ns: new Set([1, 2]),
      "dotted.name": "d",
      name: "reserved",
    };
    type Values = Record<string, unknown>;
    /** Expressions, their values (and names), and whether they hold for `item`. */
    const cases: [string, Values, boolean, Record<string, string>?][] = [
      ["n = :v", { ":v": 5 }, true],
      ["n = :v", { ":v": 6 }, false],
      ["n <> :v", { ":v": 6 }, true],
      ["n <> :v", { ":v": 5 }, false],
      ["n < :v", { ":v": 6 }, true],
      ["n < :v", { ":v": 5 }, false],
      ["n <= :v", { ":v": 5 }, true],
      ["n <= :v", { ":v": 4 }, false],
      ["n > :v", { ":v": 4 }, true],
      ["n > :v", { ":v": 5 }, false],
      ["n >= :v", { ":v": 5 }, true],
      ["n >= :v", { ":v": 6 }, false],
      ["n < :v", { ":v": 10 }, true], // as numbers, not as text
      ["s < :v", { ":v": "banana" }, true],
      ["s > :v", { ":v": "apples" }, false],
      ["b < :v", { ":v": Uint8Array.from([1, 2, 4]) }, true],
      ["s = :v", { ":v": 5 }, false],
      ["s <> :v", { ":v": 5 }, true],
      ["s < :v", { ":v": 5 }, false], // different types do not compare
      ["zz = :v", { ":v": 5 }, false],
      ["zz <> :v", { ":v": 5 }, true],
      ["n BETWEEN :lo AND :hi", { ":lo": 4, ":hi": 6 }, true],
      ["n BETWEEN :lo AND :hi", { ":lo": 5, ":hi": 5 }, true],
      ["n BETWEEN :lo AND :hi", { ":lo": 6, ":hi": 7 }, false],
      ["s BETWEEN :lo AND :hi", { ":lo": "a", ":hi": "b" }, true],
      ["s IN (:a, :b)", { ":a": "pear", ":b": "apple" }, true],
      ["n IN (:a, :b)", { ":a": 4, ":b": 6 }, false],
      ["n = :a AND s = :b", { ":a": 5, ":b": "apple" }, true],
      ["n = :a AND s = :b", { ":a": 5, ":b": "pear" }, false],
      ["n = :a OR s = :b", { ":a": 6, ":b": "apple" }, true],
      ["n = :a OR s = :b", { ":a": 6, ":b": "pear" }, false],
      ["NOT n = :a", { ":a": 6 }, true],
      ["NOT (n = :a)", { ":a": 5 }, false],
      ["NOT NOT n = :a", { ":a": 5 }, true],
      // AND binds tighter than OR, NOT tighter than AND.
      ["n = :a OR s = :b AND t = :c", { ":a": 5, ":b": "pear", ":c": false }, true],
      ["(n = :a OR s = :b) AND t = :c", { ":a": 5, ":b": "pear", ":c": false }, false],
      ["NOT n = :a AND s = :b", { ":a": 6, ":b": "pear" }, false],
      ["NOT (n = :a AND s = :b)", { ":a": 6, ":b": "pear" }, true],
      ["attribute_exists(s)", {}, true],
      ["attribute_exists(zz)", {}, false],
      ["attribute_not_exists(zz)", {}, true],
      ["attribute_not_exists(s)", {}, false],
      ["attribute_exists(m.a.b[2].c)", {}, true],
      ["attribute_exists(m.a.b[3])", {}, false],
      ["attribute_exists(nul)", {}, true],
      ["attribute_type(s, :t)", { ":t": "S" }, true],
      ["attribute_type(n, :t)", { ":t": "N" }, true],
      ["attribute_type(b, :t)", { ":t": "B" }, true],
      ["attribute_type(t, :t)", { ":t": "BOOL" }, true],
      ["attribute_type(nul, :t)", { ":t": "NULL" }, true],
      ["attribute_type(l, :t)", { ":t": "L" }, true],
      ["attribute_type(m, :t)", { ":t": "M" }, true],
      ["attribute_type(ss, :t)", { ":t": "SS" }, true],
      ["attribute_type(ns, :t)", { ":t": "NS" }, true],
      ["attribute_type(n, :t)", { ":t": "S" }, false],
      ["attribute_type(zz, :t)", { ":t": "S" }, false],
      ["begins_with(s, :p)", { ":p": "app" }, true],
      ["begins_with(s, :p)", { ":p": "ple" }, false],
      ["begins_with(b, :p)", { ":p": Uint8Array.from([1, 2]) }, true],
      ["begins_with(n, :p)", { ":p": "5" }, false],
      ["contains(s, :v)", { ":v": "ppl" }, true],
      ["contains(s, :v)", { ":v": "pear" }, false],
      ["contains(ss, :v)", { ":v": "red" }, true],
      ["contains(ss, :v)", { ":v": "blue" }, false],
      ["contains(ns, :v)", { ":v": 2 }, true],
      ["contains(l, :v)", { ":v": "x" }, true],
      ["contains(l, :v)", { ":v": 7 }, false],
      ["size(s) = :v", { ":v": 5 }, true],
      ["size(b) = :v", { ":v": 3 }, true],
      ["size(l) = :v", { ":v": 3 }, true],
      ["size(m) = :v", { ":v": 1 }, true],
      ["size(ss) = :v", { ":v": 2 }, true],
      ["size(m.a.b) > :v", { ":v": 2 }, true],
      ["size(m.a.b) > :v", { ":v": 3 }, false],
      ["size(zz) = :v", { ":v": 0 }, false],
      ["n = size(s)", {}, true],
      ["m.a.b[2].c = :v", { ":v": 7 }, true],
      ["m.a.b[2].c = :v", { ":v": 8 }, false],
      ["m.a.b[1] = :v", { ":v": 1 }, true],
      ["l[2].c = :v", { ":v": "deep" }, true],
      ["t = :v", { ":v": true }, true],
      ["nul = :v", { ":v": null }, true],
      ["l = :v", { ":v": [1, "x", { c: "deep" }] }, true],
      ["m = :v", { ":v": { a: { b: [0, 1, { c: 7 }] } } }, true],
      ["ss = :v", { ":v": new Set(["green", "red"]) }, true],
      ["#n = :v", { ":v": 5 }, true, { "#n": "n" }],
      ["#m.#a.b[2].#c = :v", { ":v": 7 }, true, { "#m": "m", "#a": "a", "#c": "c" }],
      ["#d = :v", { ":v": "d" }, true, { "#d": "dotted.name" }],
      ["#name = :v", { ":v": "reserved" }, true, { "#name": "name" }],
    ];

    it("evaluates every comparator and function, on PutItem, UpdateItem and DeleteItem", async () => {
      const TableName = "items";
      /** Each operation's copy of the item, written back as it was when a condition holds. */
      const writes = {
        PutItem: (Item: typeof item, condition: object) =>
          doc.send(new PutCommand({ TableName, Item, ...condition })),
        UpdateItem: (Item: typeof item, condition: object) =>
          doc.send(new UpdateCommand({ TableName, Key: { pk: Item.pk }, ...condition })),
        DeleteItem: async (Item: typeof item, condition: object) => {
          await doc.send(new DeleteCommand({ TableName, Key: { pk: Item.pk }, ...condition }));
          await doc.send(new PutCommand({ TableName, Item }));
        },
      };
      const outcomes = await Promise.all(
        Object.entries(writes).map(async ([operation, write]) => {
          const copy = { ...item, pk: `cond ${operation}` };
          await doc.send(new PutCommand({ TableName, Item: copy }));
          const before = await get({ pk: { S: copy.pk } });
          const outcomes = [];
          for (const [expression, values, _holds, names] of cases) {
            const condition = {
              ConditionExpression: expression,
              ...(Object.keys(values).length > 0 && { ExpressionAttributeValues: values }),
              ...(names && { ExpressionAttributeNames: names }),
            };
            const outcome = await write(copy, condition).then(
              () => true,
              (e: Error) => e.name,
            );
            outcomes.push([operation, expression, values, outcome]);
          }
          expect(await get({ pk: { S: copy.pk } })).toEqual(before);
          return outcomes;
        }),
      );
      expect(outcomes).toEqual(
        Object.keys(writes).map((operation) =>
          cases.map(([expression, values, holds]) => [
            operation,
            expression,
            values,
            holds || "ConditionalCheckFailedException",
          ]),
        ),
      );
    });

    it("holds for a missing item only as for an empty one", async () => {
      const create = (ConditionExpression: string, ExpressionAttributeValues?: Values) =>
        doc.send(
          new PutCommand({
            TableName: "items",
            Item: { pk: "created once", v: 1 },
            ConditionExpression,
            ExpressionAttributeValues,
          }),
        );
      expect(
        await refused(() => create("v = :one OR attribute_exists(pk)", { ":one": 1 })),
      ).toEqual(CONDITION_FAILED);
      await create("attribute_not_exists(pk) AND NOT (v = :one)", { ":one": 1 });
      expect(await refused(() => create("attribute_not_exists(pk)"))).toEqual(CONDITION_FAILED);
      expect(await get({ pk: { S: "created once" } })).toEqual({
        pk: { S: "created once" },
        v: { N: "1" },
      });
    });

    it("applies to UpdateItem and DeleteItem", async () => {
      const key = { pk: "guarded" };
      await doc.send(new PutCommand({ TableName: "items", Item: { ...key, n: 1 } }));
      const update = (n: number) =>
        doc.send(
          new UpdateCommand({
            TableName: "items",
            Key: key,
            UpdateExpression: "SET n = n + :one",
            ConditionExpression: "n = :n",
            ExpressionAttributeValues: { ":one": 1, ":n": n },
          }),
        );
      expect(await refused(() => update(2))).toEqual(CONDITION_FAILED);
      await update(1);
      const remove = (n: number) =>
        doc.send(
          new DeleteCommand({
            TableName: "items",
            Key: key,
            ConditionExpression: "n >= :n",
            ExpressionAttributeValues: { ":n": n },
          }),
        );
      expect(await refused(() => remove(3))).toEqual(CONDITION_FAILED);
      expect(await get({ pk: { S: "guarded" } })).toEqual({ pk: { S: "guarded" }, n: { N: "2" } });
      await remove(2);
      expect(await get({ pk: { S: "guarded" } })).toBeUndefined();
      // A condition on an item that is not there fails a delete as it fails a put.
      expect(await refused(() => remove(0))).toEqual(CONDITION_FAILED);
    });

    it("answers with the item when ReturnValuesOnConditionCheckFailure is ALL_OLD", async () => {
      const stored: Item = { pk: { S: "old" }, n: { N: "1" }, l: { L: [{ S: "x" }] } };
      await put({ Item: stored });
      const failing = {
        ConditionExpression: "n = :two",
        ExpressionAttributeValues: { ":two": { N: "2" } },
      };
      const writes = (
        ReturnValuesOnConditionCheckFailure: "ALL_OLD" | "NONE",
        pk: string,
      ): (() => Promise<unknown>)[] => [
        () => put({ Item: { pk: { S: pk } }, ...failing, ReturnValuesOnConditionCheckFailure }),
        () =>
          client.send(
            new UpdateItemCommand({
              TableName: "items",
              Key: { pk: { S: pk } },
              UpdateExpression: "SET n = :two",
              ...failing,
              ReturnValuesOnConditionCheckFailure,
            }),
          ),
        () =>
          client.send(
            new DeleteItemCommand({
              TableName: "items",
              Key: { pk: { S: pk } },
              ...failing,
              ReturnValuesOnConditionCheckFailure,
            }),
          ),
      ];
      for (const [mode, pk, answered] of [
        ["ALL_OLD", "old", stored],
        ["NONE", "old", undefined],
        ["ALL_OLD", "no such item", undefined],
      ] as const) {
        for (const write of writes(mode, pk)) {
          const before = await contentsOf(client, "items");
          const error = (await write().catch((e: unknown) => e)) as { name: string; Item?: Item };
          expect(error.name).toBe("ConditionalCheckFailedException");
          expect(error.Item).toEqual(answered);
          expect(await contentsOf(client, "items")).toEqual(before);
        }
      }
    });
  });

  describe("ReturnValues", () => {
    const key = { pk: { S: "returns" } };
    const old: Item = {
      ...key,
      a: { N: "1" },
      b: { M: { c: { L: [{ N: "1" }, { N: "2" }] }, d: { S: "x" } } },
      e: { S: "kept" },
    };

    it("answers PutItem and DeleteItem with nothing, or the item before", async () => {
      const next = { ...key, z: { S: "new" } };
      await put({ Item: old });
      expect((await put({ Item: next, ReturnValues: "NONE" })).Attributes).toBeUndefined();
      expect((await put({ Item: old, ReturnValues: "ALL_OLD" })).Attributes).toEqual(next);
      const remove = (input: Omit<DeleteItemCommandInput, "TableName" | "Key">) =>
        client.send(new DeleteItemCommand({ TableName: "items", Key: key, ...input }));
      expect((await remove({ ReturnValues: "ALL_OLD" })).Attributes).toEqual(old);
      expect((await remove({ ReturnValues: "ALL_OLD" })).Attributes).toBeUndefined();
      expect((await put({ Item: old, ReturnValues: "ALL_OLD" })).Attributes).toBeUndefined();
      expect((await remove({ ReturnValues: "NONE" })).Attributes).toBeUndefined();
    });

    it("refuses what PutItem and DeleteItem cannot return", async () => {
      await put({ Item: old });
      const refusals = async (ReturnValues: string) => [
        await refused(() => put({ Item: { ...key }, ReturnValues: ReturnValues as ReturnValue })),
        await refused(() =>
          client.send(
            new DeleteItemCommand({
              TableName: "items",
              Key: key,
              ReturnValues: ReturnValues as ReturnValue,
            }),
          ),
        ),
      ];
      for (const value of ["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"]) {
        expect(await refusals(value)).toEqual(
          Array(2).fill(invalid("ReturnValues can only be ALL_OLD or NONE")),
        );
      }
      expect(await refusals("EVERYTHING")).toEqual(
        Array(2).fill(
          invalid(
            "1 validation error detected: Value 'EVERYTHING' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
          ),
        ),
      );
    });

    it("answers UpdateItem with the item or the updated paths, before or after", async () => {
      const update = async (ReturnValues: ReturnValue) => {
        await put({ Item: old });
        const input: UpdateItemCommandInput = {
          TableName: "items",
          Key: key,
          UpdateExpression: "SET a = a + :one, b.c[1] = :v, f = :f REMOVE b.d",
          ExpressionAttributeValues: {
            ":one": { N: "1" },
            ":v": { S: "two" },
            ":f": { BOOL: true },
          },
          ReturnValues,
        };
        return (await client.send(new UpdateItemCommand(input))).Attributes;
      };
      const next: Item = {
        ...key,
        a: { N: "2" },
        b: { M: { c: { L: [{ N: "1" }, { S: "two" }] } } },
        e: { S: "kept" },
        f: { BOOL: true },
      };
      expect(await update("NONE")).toBeUndefined();
      expect(await update("ALL_OLD")).toEqual(old);
      expect(await update("ALL_NEW")).toEqual(next);
      expect(await update("UPDATED_OLD")).toEqual({
        a: { N: "1" },
        b: { M: { c: { L: [{ N: "2" }] }, d: { S: "x" } } },
      });
      expect(await update("UPDATED_NEW")).toEqual({
        a: { N: "2" },
        b: { M: { c: { L: [{ S: "two" }] } } },
        f: { BOOL: true },
      });
      expect(await get(key)).toEqual(next);
    });

    it("answers an UpdateItem that creates the item with nothing before", async () => {
      const upsert = async (pk: string, ReturnValues: ReturnValue) =>
        (
          await client.send(
            new UpdateItemCommand({
              TableName: "items",
              Key: { pk: { S: pk } },
              UpdateExpression: "SET v = :v",
              ExpressionAttributeValues: { ":v": { S: "new" } },
              ReturnValues,
            }),
          )
        ).Attributes;
      expect(await upsert("upsert 1", "ALL_OLD")).toBeUndefined();
      expect(await upsert("upsert 2", "UPDATED_OLD")).toBeUndefined();
      expect(await upsert("upsert 3", "ALL_NEW")).toEqual({
        pk: { S: "upsert 3" },
        v: { S: "new" },
      });
      expect(await upsert("upsert 4", "UPDATED_NEW")).toEqual({ v: { S: "new" } });
    });
  });

  describe("named databases", () => {
    it("keeps a named database's items apart from the default database's", async () => {
      const named = dynamodbClients(server(), TOKEN, { database: "elsewhere" }).client;
      const key = { pk: { S: "shared key" } };
      await put({ Item: { ...key, where: { S: "default" } } });
      const putNamed = () =>
        named.send(
          new PutItemCommand({ TableName: "items", Item: { ...key, where: { S: "named" } } }),
        );
      // Declared tables are the default database's: the named one has none yet.
      expect(await errorOf(putNamed)).toMatchObject({ name: "ResourceNotFoundException" });
      await named.send(
        new CreateTableCommand({
          TableName: "items",
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
      await putNamed();
      const getNamed = async () =>
        (await named.send(new GetItemCommand({ TableName: "items", Key: key }))).Item;
      expect(await getNamed()).toEqual({ ...key, where: { S: "named" } });
      expect(await get(key)).toEqual({ ...key, where: { S: "default" } });
      await named.send(
        new UpdateItemCommand({
          TableName: "items",
          Key: key,
          UpdateExpression: "SET n = :n",
          ExpressionAttributeValues: { ":n": { N: "1" } },
        }),
      );
      await client.send(new DeleteItemCommand({ TableName: "items", Key: key }));
      expect(await getNamed()).toEqual({ ...key, where: { S: "named" }, n: { N: "1" } });
      expect(await get(key)).toBeUndefined();
      expect(await contentsOf(named, "items")).toEqual([
        { ...key, where: { S: "named" }, n: { N: "1" } },
      ]);
    });
  });
});
