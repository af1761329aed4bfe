/**
 * Malformed PutItem, UpdateItem and GetItem requests, sent raw (signed with `signRequest`, POSTed
 * with fetch) to Cairn on a SQLite file and on PostgreSQL: a body that is not JSON or members of
 * the wrong JSON type are SerializationExceptions, unknown and legacy parameters
 * ValidationExceptions naming them; and, fuzzed, any body or expression is answered with a 400
 * and DynamoDB's `__type`, never a 5xx, and changes nothing.
 */
import { type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { beforeAll, expect, it } from "vitest";
import { signRequest } from "../../src/faces/dynamodb/sigv4.js";
import { edgeString, fuzz, hostileValue, jsonText, nearValid, timeoutFor } from "../fuzz/fuzz.js";
import { describeEach, serverForTests, storages } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";
import { contentsOf, itemTables, refusedIn } from "./dynamodb-items-fixture.js";

const TOKEN = "dynamodb-item-requests-token";

describeEach(storages, "Malformed DynamoDB item requests", (storage) => {
  const server = serverForTests(TOKEN, storage, { dynamodbTables: itemTables });
  let client: DynamoDBClient;

  beforeAll(async () => {
    ({ client } = dynamodbClients(server(), TOKEN));
    await client.send(
      new PutItemCommand({ TableName: "items", Item: { pk: { S: "raw" }, a: { S: "kept" } } }),
    );
  });

  /** POSTs `body` to `operation`, signed as the admin; the status and the JSON answer. */
  const raw = async (operation: string, body: string) => {
    const url = new URL(server().url);
    const bytes = Buffer.from(body);
    const headers = {
      host: url.host,
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `DynamoDB_20120810.${operation}`,
    };
    const signed = signRequest(
      { method: "POST", path: "/", query: "", headers, body: bytes },
      "admin",
      TOKEN,
      "us-east-1",
      Date.now(),
    );
    const response = await fetch(url, {
      method: "POST",
      headers: { ...headers, ...signed },
      body: bytes,
    });
    const text = await response.text();
    return { status: response.status, answer: JSON.parse(text) as Record<string, unknown> };
  };
  const error = (type: string, message: string | RegExp = /./) => ({
    status: 400,
    answer: { __type: type, message: expect.stringMatching(message) },
  });
  const SERIALIZATION = "com.amazon.coral.service#SerializationException";
  const VALIDATION = "com.amazon.coral.validate#ValidationException";

  it("answers what is not a request with a SerializationException", async () => {
    const before = await contentsOf(client, "items");
    const key = { pk: { S: "raw" } };
    const any = ["{not json", "", "[]", "5", "null"];
    const bodies: Record<string, unknown[]> = {
      PutItem: [
        { TableName: 5, Item: key },
        { TableName: "items", Item: [] },
        { TableName: "items", Item: { pk: { S: 5 } } },
        { TableName: "items", Item: key, ConditionExpression: ["a"] },
        { TableName: "items", Item: key, ExpressionAttributeValues: [] },
      ],
      UpdateItem: [
        { TableName: "items", Key: "raw" },
        { TableName: "items", Key: key, UpdateExpression: 5 },
        { TableName: "items", Key: key, ExpressionAttributeNames: { "#a": 1 } },
        { TableName: "items", Key: key, ReturnValues: true },
      ],
      GetItem: [
        { TableName: ["items"], Key: key },
        { TableName: "items", Key: key, ConsistentRead: "yes" },
        { TableName: "items", Key: key, ProjectionExpression: {} },
      ],
    };
    for (const [operation, members] of Object.entries(bodies)) {
      for (const body of [...any, ...members.map((m) => JSON.stringify(m))]) {
        expect([operation, body, await raw(operation, body)]).toEqual([
          operation,
          body,
          error(SERIALIZATION),
        ]);
      }
    }
    expect(await contentsOf(client, "items")).toEqual(before);
  });

  it("names a parameter it does not know, or does not support", async () => {
    const key = { pk: { S: "raw" } };
    expect(
      await raw("GetItem", JSON.stringify({ TableName: "items", Key: key, Bogus: 1 })),
    ).toEqual(
      error(VALIDATION, /^Cairn does not support the parameter Bogus; remove it from the request$/),
    );
    expect(
      await raw(
        "GetItem",
        JSON.stringify({ TableName: "items", Key: key, AttributesToGet: ["a"] }),
      ),
    ).toEqual(error(VALIDATION, /the legacy parameter AttributesToGet: use ProjectionExpression/));
    const before = await contentsOf(client, "items");
    const expected = { a: { Value: { S: "kept" } } };
    expect(
      await raw("PutItem", JSON.stringify({ TableName: "items", Item: key, Expected: expected })),
    ).toEqual(error(VALIDATION, /the legacy parameter Expected: use ConditionExpression/));
    expect(
      await raw(
        "UpdateItem",
        JSON.stringify({
          TableName: "items",
          Key: key,
          AttributeUpdates: { a: { Action: "DELETE" } },
        }),
      ),
    ).toEqual(error(VALIDATION, /the legacy parameter AttributeUpdates: use UpdateExpression/));
    expect(await contentsOf(client, "items")).toEqual(before);
    // The SDK sends them too, and hears the same.
    const refusal = await refusedIn(client, "items", () =>
      client.send(new PutItemCommand({ TableName: "items", Item: key, Expected: expected })),
    );
    expect(refusal).toMatchObject({ name: "ValidationException", status: 400 });
  });

  /** Paths and operands of expressions: mostly valid, some not (a reserved word, an undefined name). */
  const path = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("a", "b.c", "l[0]", "#n", "m.#n[3]") },
    fc.constantFrom("#x", "name"),
  );
  const operand = fc.oneof(
    { weight: 4, arbitrary: fc.oneof(path, fc.constantFrom(":v", "size(a)")) },
    fc.constantFrom(":x", "size(:v)"),
  );
  /** Conditions and updates as DynamoDB's grammar builds them. */
  const grammatical = fc.letrec((tie) => ({
    condition: fc.oneof(
      { depthSize: "small" },
      fc
        .tuple(operand, fc.constantFrom("=", "<>", "<", "<=", ">", ">="), operand)
        .map((parts) => parts.join(" ")),
      fc
        .tuple(operand, operand, operand)
        .map(([x, low, high]) => `${x} BETWEEN ${low} AND ${high}`),
      fc
        .tuple(operand, fc.array(operand, { minLength: 1, maxLength: 3 }))
        .map(([x, list]) => `${x} IN (${list.join(", ")})`),
      fc
        .tuple(fc.constantFrom("attribute_exists", "attribute_not_exists", "size"), path)
        .map(([f, p]) => `${f}(${p})`),
      fc
        .tuple(fc.constantFrom("attribute_type", "begins_with", "contains"), path, operand)
        .map(([f, p, o]) => `${f}(${p}, ${o})`),
      fc
        .tuple(tie("condition"), fc.constantFrom("AND", "OR"), tie("condition"))
        .map((parts) => parts.join(" ")),
      tie("condition").map((c) => `NOT (${c})`),
    ),
    update: fc
      .array(
        fc.oneof(
          fc.tuple(path, operand).map(([p, o]) => `SET ${p} = ${o}`),
          fc.tuple(path, operand, operand).map(([p, x, y]) => `SET ${p} = ${x} + ${y}`),
          fc.tuple(path, operand).map(([p, o]) => `SET ${p} = if_not_exists(${p}, ${o})`),
          fc.tuple(path, operand).map(([p, o]) => `SET ${p} = list_append(${p}, ${o})`),
          path.map((p) => `REMOVE ${p}`),
          fc.tuple(fc.constantFrom("ADD", "DELETE"), path).map(([c, p]) => `${c} ${p} :v`),
        ),
        { minLength: 1, maxLength: 3 },
      )
      .map((actions) => actions.join(" ")),
  }));
  /** Expressions: any text, DynamoDB's tokens in any order, or grammatical ones. */
  const expression = fc.oneof(
    edgeString,
    fc
      .array(
        fc.constantFrom(
          ...["a", "b.c", "l[0]", "l[", "#n", "#x", ":v", ":x", "=", "<>", "<", ">=", "(", ")"],
          ...[",", "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE", "+"],
          ...["-", "size", "attribute_exists", "attribute_type", "begins_with", "if_not_exists"],
          ...["list_append", "name", "pk", "#", ":", "[", "]", "."],
        ),
        { maxLength: 12 },
      )
      .chain((tokens) => fc.constantFrom(" ", "").map((gap) => tokens.join(gap))),
    grammatical.condition,
    grammatical.update,
  );
  const expressionContext = fc.record(
    {
      ExpressionAttributeNames: fc.constant({ "#n": "n" }),
      ExpressionAttributeValues: fc.constant({ ":v": { N: "1" } }),
    },
    { requiredKeys: [] },
  );
  /** Requests that are well formed but for a key that fails once the expressions are read. */
  const shapes = {
    PutItem: fc.record({
      TableName: fc.constant("items"),
      Item: fc.constant({ nokey: { S: "x" } }),
      ConditionExpression: expression,
    }),
    UpdateItem: fc.record({
      TableName: fc.constant("items"),
      Key: fc.constant({ pk: { N: "1" } }),
      UpdateExpression: expression,
      ConditionExpression: fc.option(expression, { nil: undefined, freq: 2 }),
    }),
    GetItem: fc.record({
      TableName: fc.constant("items"),
      Key: fc.constant({ pk: { N: "1" } }),
      ProjectionExpression: expression,
    }),
  };
  const request = fc.oneof(
    fc.tuple(
      fc.constantFrom(...Object.keys(shapes)),
      fc.oneof(hostileValue, fc.string()).map(jsonText),
    ),
    ...Object.entries(shapes).map(([operation, shape]) =>
      fc.tuple(
        fc.constant(operation),
        nearValid(
          fc.tuple(shape, expressionContext).map(([body, context]) => ({ ...body, ...context })),
          ["Item", "Key"],
        ).map(jsonText),
      ),
    ),
  );
  const RUNS = 150;

  it("answers any body or expression with a 400 and DynamoDB's __type, changing nothing", {
    timeout: timeoutFor(RUNS, 20),
  }, async () => {
    const before = await contentsOf(client, "items");
    await fc.assert(
      fc.asyncProperty(request, async ([operation, body]) => {
        const { status, answer } = await raw(operation, body);
        expect(status).toBe(400);
        expect(answer.__type).toMatch(
          /^com\.amazon(\.coral\.(validate|service)|aws\.dynamodb\.v20120810)#[A-Za-z]+Exception$/,
        );
        expect(typeof answer.message).toBe("string");
      }),
      fuzz(RUNS),
    );
    expect(await contentsOf(client, "items")).toEqual(before);
  });
});
