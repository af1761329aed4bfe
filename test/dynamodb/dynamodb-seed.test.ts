/**
 * The Nimbus seed's code (seeds/nimbus-kv-dynamodb.md), run as written through the real AWS SDK
 * (`@aws-sdk/client-dynamodb` and `@aws-sdk/lib-dynamodb`) against Cairn on a SQLite file and on
 * PostgreSQL: its tables declared with `--dynamodb-table`, `KV_<NAME>` in the environment, and its
 * route handlers called with Lambda-style events.
 */
import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTableDeclaration } from "../../src/faces/dynamodb/declared-tables.js";
import { describeEach, serverForTests, storages } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";

const TOKEN = "dynamodb-seed-token";

declare global {
  // biome-ignore lint/suspicious/noExplicitAny: the seed's handlers keep their client on `global`
  var docClient: any;
}

// biome-ignore lint/suspicious/noExplicitAny: the seed's handlers take Lambda events of any shape
type Event = any;
type Handler = (event: Event) => Promise<{ statusCode: number; body: string }>;

describeEach(storages, "the Nimbus seed's code", (storage) => {
  const server = serverForTests(TOKEN, storage, {
    dynamodbTables: [
      "users:id",
      "user-profiles:userId",
      "sessions:sessionId",
      "app-config:key",
    ].map(parseTableDeclaration),
  });
  const routes = new Map<string, Handler>();
  const api = {
    route: (method: string, path: string, handler: Handler) =>
      routes.set(`${method} ${path}`, handler),
  };
  const call = async (route: string, event: Event = {}) => {
    const response = await routes.get(route)!(event);
    return {
      statusCode: response.statusCode,
      body: response.body ? JSON.parse(response.body) : "",
    };
  };
  let docClient: ReturnType<typeof dynamodbClients>["doc"];
  let tableName: string;

  beforeAll(() => {
    const clients = dynamodbClients(server(), TOKEN);
    // What the seed's `init` does, with the endpoint and credentials a deployment's environment gives.
    globalThis.docClient = docClient = clients.doc;
    process.env.KV_USERS = "users";
    process.env.KV_USER_PROFILES = "user-profiles";
    process.env.KV_SESSIONS = "sessions";
    process.env.KV_APP_CONFIG = "app-config";
    tableName = process.env.KV_USERS;
    // biome-ignore lint/suspicious/noExplicitAny: the seed's require is CommonJS's, untyped
    const require = (name: string): any => {
      if (name === "@aws-sdk/lib-dynamodb")
        return { ...libDynamodb, DynamoDBDocumentClient: { from: () => docClient } };
      if (name === "@aws-sdk/client-dynamodb") return { DynamoDBClient: class {} };
      if (name === "nanoid") return { nanoid: () => `s-${Math.random().toString(36).slice(2)}` };
      throw new Error(`no ${name}`);
    };
    const libDynamodb = {
      GetCommand,
      PutCommand,
      UpdateCommand,
      DeleteCommand,
      ScanCommand,
      BatchWriteCommand,
    };

    // --- The seed's routes, as written (its `require` resolves to the real SDK's commands). ---
    api.route("POST", "/users", async (event) => {
      const { PutCommand } = require("@aws-sdk/lib-dynamodb");
      const tableName = process.env.KV_USERS;
      const user = JSON.parse(event.body || "{}");
      await global.docClient.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            id: user.id,
            name: user.name,
            email: user.email,
            createdAt: new Date().toISOString(),
          },
        }),
      );
      return { statusCode: 201, body: JSON.stringify(user) };
    });

    api.route("GET", "/users/{id}", async (event) => {
      const { GetCommand } = require("@aws-sdk/lib-dynamodb");
      const tableName = process.env.KV_USERS;
      const userId = event.pathParameters?.id;
      const result = await global.docClient.send(
        new GetCommand({ TableName: tableName, Key: { id: userId } }),
      );
      if (!result.Item) {
        return { statusCode: 404, body: JSON.stringify({ error: "User not found" }) };
      }
      return { statusCode: 200, body: JSON.stringify(result.Item) };
    });

    api.route("PUT", "/users/{id}", async (event) => {
      const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
      const { DynamoDBDocumentClient, PutCommand } = require("@aws-sdk/lib-dynamodb");
      const client = new DynamoDBClient({});
      const docClient = DynamoDBDocumentClient.from(client);
      const tableName = process.env.KV_USERS;
      const userId = event.pathParameters?.id;
      const updates = JSON.parse(event.body || "{}");
      const item = { id: userId, ...updates, updatedAt: new Date().toISOString() };
      await docClient.send(new PutCommand({ TableName: tableName, Item: item }));
      return { statusCode: 200, body: JSON.stringify(item) };
    });

    api.route("PATCH", "/users/{id}", async (event) => {
      const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
      const { DynamoDBDocumentClient, UpdateCommand } = require("@aws-sdk/lib-dynamodb");
      const client = new DynamoDBClient({});
      const docClient = DynamoDBDocumentClient.from(client);
      const tableName = process.env.KV_USERS;
      const userId = event.pathParameters?.id;
      const updates = JSON.parse(event.body || "{}");
      const updateExpression: string[] = [];
      const expressionAttributeNames: Record<string, string> = {};
      const expressionAttributeValues: Record<string, unknown> = {};
      Object.keys(updates).forEach((key, index) => {
        const attrName = `#attr${index}`;
        const attrValue = `:val${index}`;
        updateExpression.push(`${attrName} = ${attrValue}`);
        expressionAttributeNames[attrName] = key;
        expressionAttributeValues[attrValue] = updates[key];
      });
      updateExpression.push("#updatedAt = :updatedAt");
      expressionAttributeNames["#updatedAt"] = "updatedAt";
      expressionAttributeValues[":updatedAt"] = new Date().toISOString();
      const result = await docClient.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { id: userId },
          UpdateExpression: `SET ${updateExpression.join(", ")}`,
          ExpressionAttributeNames: expressionAttributeNames,
          ExpressionAttributeValues: expressionAttributeValues,
          ReturnValues: "ALL_NEW",
        }),
      );
      return { statusCode: 200, body: JSON.stringify(result.Attributes) };
    });

    api.route("DELETE", "/users/{id}", async (event) => {
      const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
      const { DynamoDBDocumentClient, DeleteCommand } = require("@aws-sdk/lib-dynamodb");
      const client = new DynamoDBClient({});
      const docClient = DynamoDBDocumentClient.from(client);
      const tableName = process.env.KV_USERS;
      const userId = event.pathParameters?.id;
      await docClient.send(new DeleteCommand({ TableName: tableName, Key: { id: userId } }));
      return { statusCode: 204, body: "" };
    });

    api.route("GET", "/users", async () => {
      const { ScanCommand } = require("@aws-sdk/lib-dynamodb");
      const tableName = process.env.KV_USERS;
      const result = await global.docClient.send(new ScanCommand({ TableName: tableName }));
      return {
        statusCode: 200,
        body: JSON.stringify({ users: result.Items || [], count: result.Count || 0 }),
      };
    });

    api.route("GET", "/users/active", async () => {
      const { ScanCommand } = require("@aws-sdk/lib-dynamodb");
      const tableName = process.env.KV_USERS;
      const result = await global.docClient.send(
        new ScanCommand({
          TableName: tableName,
          FilterExpression: "#status = :status",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":status": "active" },
        }),
      );
      return {
        statusCode: 200,
        body: JSON.stringify({ users: result.Items || [], count: result.Count || 0 }),
      };
    });

    api.route("GET", "/users/paginated", async (event) => {
      const { ScanCommand } = require("@aws-sdk/lib-dynamodb");
      const tableName = process.env.KV_USERS;
      // biome-ignore lint/correctness/useParseIntRadix: the seed's code, as written
      const limit = parseInt(event.queryStringParameters?.limit || "10");
      const lastKey = event.queryStringParameters?.lastKey;
      const params: Record<string, unknown> = { TableName: tableName, Limit: limit };
      if (lastKey) params.ExclusiveStartKey = JSON.parse(decodeURIComponent(lastKey));
      const result = await global.docClient.send(new ScanCommand(params));
      const response: Record<string, unknown> = {
        users: result.Items || [],
        count: result.Count || 0,
      };
      if (result.LastEvaluatedKey)
        response.lastKey = encodeURIComponent(JSON.stringify(result.LastEvaluatedKey));
      return { statusCode: 200, body: JSON.stringify(response) };
    });

    api.route("PUT", "/profile", async (event) => {
      const profile = JSON.parse(event.body || "{}");
      const userId = event.requestContext?.authorizer?.userId;
      await docClient.send(
        new PutCommand({
          TableName: process.env.KV_USER_PROFILES,
          Item: { userId, ...profile, updatedAt: new Date().toISOString() },
        }),
      );
      return { statusCode: 200, body: JSON.stringify({ updated: true }) };
    });

    api.route("POST", "/sessions", async (event) => {
      const sessionId = require("nanoid").nanoid();
      const { userId } = JSON.parse(event.body || "{}");
      await docClient.send(
        new PutCommand({
          TableName: process.env.KV_SESSIONS,
          Item: {
            sessionId,
            userId,
            createdAt: new Date().toISOString(),
            expiresAt: new Date(Date.now() + 24 * 60 * 60 * 1000).toISOString(),
          },
        }),
      );
      return { statusCode: 201, body: JSON.stringify({ sessionId }) };
    });

    api.route("GET", "/config/{key}", async (event) => {
      const key = event.pathParameters?.key;
      const result = await docClient.send(
        new GetCommand({ TableName: process.env.KV_APP_CONFIG, Key: { key } }),
      );
      return { statusCode: 200, body: JSON.stringify({ key, value: result.Item?.value || null }) };
    });
  });

  afterAll(() => {
    docClient?.destroy();
  });

  it("creates, reads, replaces, updates and deletes a user through the seed's routes", async () => {
    const created = await call("POST /users", {
      body: JSON.stringify({ id: "u1", name: "Ada", email: "ada@example.com" }),
    });
    expect(created).toEqual({
      statusCode: 201,
      body: { id: "u1", name: "Ada", email: "ada@example.com" },
    });
    const read = await call("GET /users/{id}", { pathParameters: { id: "u1" } });
    expect(read.statusCode).toBe(200);
    expect(read.body).toMatchObject({ id: "u1", name: "Ada", email: "ada@example.com" });
    expect(Date.parse(read.body.createdAt)).not.toBeNaN();

    const replaced = await call("PUT /users/{id}", {
      pathParameters: { id: "u1" },
      body: JSON.stringify({ name: "Ada L." }),
    });
    expect(replaced.body).toMatchObject({ id: "u1", name: "Ada L." });
    expect((await call("GET /users/{id}", { pathParameters: { id: "u1" } })).body).toEqual(
      replaced.body,
    );

    const patched = await call("PATCH /users/{id}", {
      pathParameters: { id: "u1" },
      body: JSON.stringify({ name: "Ada Lovelace", status: "active", age: 36 }),
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.body).toMatchObject({
      id: "u1",
      name: "Ada Lovelace",
      status: "active",
      age: 36,
    });
    expect((await call("GET /users/{id}", { pathParameters: { id: "u1" } })).body).toEqual(
      patched.body,
    );

    expect(await call("DELETE /users/{id}", { pathParameters: { id: "u1" } })).toEqual({
      statusCode: 204,
      body: "",
    });
    expect(await call("GET /users/{id}", { pathParameters: { id: "u1" } })).toEqual({
      statusCode: 404,
      body: { error: "User not found" },
    });
  });

  it("lists, filters and paginates users", async () => {
    for (let i = 0; i < 25; i++) {
      await call("POST /users", {
        body: JSON.stringify({ id: `p${String(i).padStart(2, "0")}`, name: `P${i}` }),
      });
    }
    await docClient.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { id: "p03" },
        UpdateExpression: "SET #status = :s",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":s": "active" },
      }),
    );
    const all = await call("GET /users");
    expect(all.body.count).toBe(all.body.users.length);
    expect(all.body.users.filter((u: { id: string }) => u.id.startsWith("p"))).toHaveLength(25);
    const active = await call("GET /users/active");
    expect(active.body.users.map((u: { id: string }) => u.id)).toEqual(["p03"]);

    const seen: string[] = [];
    let lastKey: string | undefined;
    let pages = 0;
    do {
      const page = await call("GET /users/paginated", {
        queryStringParameters: { limit: "10", ...(lastKey && { lastKey }) },
      });
      expect(page.body.count).toBeLessThanOrEqual(10);
      seen.push(...page.body.users.map((u: { id: string }) => u.id));
      lastKey = page.body.lastKey;
      pages++;
    } while (lastKey);
    expect(seen.filter((id) => id.startsWith("p")).sort()).toEqual(
      Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, "0")}`),
    );
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it("runs the seed's advanced operations: conditional update, atomic counter, batch write", async () => {
    const userId = "cond-1";
    const newName = "Grace";
    // Only update if item exists
    const update = () =>
      docClient.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { id: userId },
          UpdateExpression: "SET #name = :name",
          ConditionExpression: "attribute_exists(id)",
          ExpressionAttributeNames: { "#name": "name" },
          ExpressionAttributeValues: { ":name": newName },
        }),
      );
    await expect(update()).rejects.toMatchObject({ name: "ConditionalCheckFailedException" });
    expect(
      (await docClient.send(new GetCommand({ TableName: tableName, Key: { id: userId } }))).Item,
    ).toBeUndefined();
    await docClient.send(new PutCommand({ TableName: tableName, Item: { id: userId } }));
    await update();
    expect(
      (await docClient.send(new GetCommand({ TableName: tableName, Key: { id: userId } }))).Item,
    ).toEqual({ id: userId, name: "Grace" });

    // Increment a counter atomically
    const increment = () =>
      docClient.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { id: "page-views" },
          UpdateExpression: "ADD #count :increment",
          ExpressionAttributeNames: { "#count": "count" },
          ExpressionAttributeValues: { ":increment": 1 },
        }),
      );
    await Promise.all(Array.from({ length: 20 }, increment));
    expect(
      (await docClient.send(new GetCommand({ TableName: tableName, Key: { id: "page-views" } })))
        .Item,
    ).toEqual({
      id: "page-views",
      count: 20,
    });

    // Batch write multiple items
    const items = [
      { id: "1", name: "User 1" },
      { id: "2", name: "User 2" },
      { id: "3", name: "User 3" },
    ];
    const result = await docClient.send(
      new BatchWriteCommand({
        RequestItems: { [tableName]: items.map((item) => ({ PutRequest: { Item: item } })) },
      }),
    );
    expect(result.UnprocessedItems).toEqual({});
    for (const item of items) {
      expect(
        (await docClient.send(new GetCommand({ TableName: tableName, Key: { id: item.id } }))).Item,
      ).toEqual(item);
    }
  });

  it("stores the seed's data types and reads them back", async () => {
    const item = {
      id: "user123",
      age: 25,
      active: true,
      tags: ["admin", "user"],
      metadata: { lastLogin: "2024-01-01", preferences: { theme: "dark", notifications: true } },
      scores: new Set([100, 200, 300]),
      roles: new Set(["admin", "user"]),
    };
    await docClient.send(new PutCommand({ TableName: tableName, Item: item }));
    const { Item } = await docClient.send(
      new GetCommand({ TableName: tableName, Key: { id: "user123" } }),
    );
    expect(Item).toEqual(item);
  });

  it("answers a ValidationException by name, as the seed's error handling expects", async () => {
    const error = await docClient
      .send(new GetCommand({ TableName: tableName, Key: { id: 42 } }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: "ValidationException",
      message: "The provided key element does not match the schema",
    });
    expect((error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
  });

  it("serves the seed's common patterns: profiles, sessions, configuration", async () => {
    expect(
      await call("PUT /profile", {
        requestContext: { authorizer: { userId: "u-9" } },
        body: JSON.stringify({ bio: "hi" }),
      }),
    ).toEqual({
      statusCode: 200,
      body: { updated: true },
    });
    const { Item: profile } = await docClient.send(
      new GetCommand({ TableName: "user-profiles", Key: { userId: "u-9" } }),
    );
    expect(profile).toMatchObject({ userId: "u-9", bio: "hi" });

    const session = await call("POST /sessions", { body: JSON.stringify({ userId: "u-9" }) });
    expect(session.statusCode).toBe(201);
    const { Item: stored } = await docClient.send(
      new GetCommand({ TableName: "sessions", Key: { sessionId: session.body.sessionId } }),
    );
    expect(stored).toMatchObject({ sessionId: session.body.sessionId, userId: "u-9" });

    expect(await call("GET /config/{key}", { pathParameters: { key: "theme" } })).toEqual({
      statusCode: 200,
      body: { key: "theme", value: null },
    });
    await docClient.send(
      new PutCommand({ TableName: "app-config", Item: { key: "theme", value: "dark" } }),
    );
    expect(await call("GET /config/{key}", { pathParameters: { key: "theme" } })).toEqual({
      statusCode: 200,
      body: { key: "theme", value: "dark" },
    });
  });
});

describe("--dynamodb-table declarations", () => {
  it("parse NAME[:HASH[:RANGE]] with typed keys, and refuse anything else", () => {
    expect(parseTableDeclaration("users")).toEqual({
      name: "users",
      hash: { name: "id", type: "S" },
    });
    expect(parseTableDeclaration("events:device:at=N")).toEqual({
      name: "events",
      hash: { name: "device", type: "S" },
      range: { name: "at", type: "N" },
    });
    for (const bad of ["", ":id", "a:b:c:d", "t:k=X"]) {
      expect(() => parseTableDeclaration(bad)).toThrow(/NAME\[:HASH\[:RANGE\]\]/);
    }
  });
});
