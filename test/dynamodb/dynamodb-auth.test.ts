/**
 * Who may use Cairn's DynamoDB API, on a SQLite file and on PostgreSQL: AWS Signature V4 by the
 * admin (`admin` and the server's token) and by principals (their name and token) made through
 * the admin API or `cairn token create --data`, each held to its grants; and every way a request
 * is refused (wrong secret, unknown key, revoked or expired token, skewed clock, no or a
 * malformed signature, an unknown operation), with DynamoDB's exception names. Answers carry
 * `x-amzn-RequestId` and a CRC32 of their body; `auth: false` takes any signature.
 */
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startServer } from "../../src/server/server.js";
import { runCairn } from "../cairn-cli.js";
import { describeEach, serverForTests, storages, until } from "../targets.js";
import { dynamodbClients } from "./dynamodb-client.js";
import { postDynamodb } from "./raw-requests.js";
import { refusal } from "./refusal.js";

const TOKEN = "dynamodb-auth-token";
const TARGET = "DynamoDB_20120810.";
const MINUTE = 60_000;

const BAD_SIGNATURE = {
  name: "InvalidSignatureException",
  message:
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
  status: 400,
};
const UNRECOGNIZED = {
  name: "UnrecognizedClientException",
  message: "The security token included in the request is invalid.",
  status: 400,
};
const denied = (access: "read" | "write") => ({
  name: "AccessDeniedException",
  message: expect.stringMatching(new RegExp(`^This token may not ${access} `)),
  status: 400,
});

const TIME = "\\d{8}T\\d{6}Z";
const EXPIRED = new RegExp(
  `^Signature expired: ${TIME} is now earlier than ${TIME} \\(${TIME} - 15 min\\.\\)$`,
);
const NOT_YET = new RegExp(
  `^Signature not yet current: ${TIME} is still later than ${TIME} \\(${TIME} \\+ 15 min\\.\\)$`,
);

const table = (TableName: string) =>
  new CreateTableCommand({
    TableName,
    BillingMode: "PAY_PER_REQUEST",
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
  });

/** A client of `url` signing with `accessKeyId` and `secretAccessKey`, with no retries. */
const clientOf = (url: string, accessKeyId: string, secretAccessKey: string, more = {}) =>
  new DynamoDBClient({
    endpoint: url,
    region: "eu-west-3",
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
    ...more,
  });

describeEach(storages, "DynamoDB authentication", (storage) => {
  const server = serverForTests(TOKEN, storage);
  const clients: DynamoDBClient[] = [];
  let admin: DynamoDBClient;

  /** A new principal with `grants` (as the admin API takes them); its token. */
  async function principal(name: string, grants: unknown[], expiresIn?: number): Promise<string> {
    const response = await fetch(`${server().url}/admin/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name, grants, ...(expiresIn && { expiresIn }) }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { token: string }).token;
  }

  /** A client signing as `name` with `secret` (kept to be destroyed after the tests). */
  function as(name: string, secret: string, more = {}): DynamoDBClient {
    const client = clientOf(server().url, name, secret, more);
    clients.push(client);
    return client;
  }

  const itemOf = async (client: DynamoDBClient, TableName: string, id: string) =>
    (await client.send(new GetItemCommand({ TableName, Key: { id: { S: id } } }))).Item;

  beforeAll(async () => {
    admin = dynamodbClients(server(), TOKEN).client;
    for (const name of ["users", "orders"]) {
      await admin.send(table(name));
      await admin.send(
        new PutItemCommand({ TableName: name, Item: { id: { S: "seed" }, v: { N: "1" } } }),
      );
    }
  });
  afterAll(() => {
    admin?.destroy();
    for (const client of clients) client.destroy();
  });

  it("takes the admin's signature: `admin` and the server's token, any region", async () => {
    const names = (await admin.send(new ListTablesCommand({}))).TableNames;
    expect(names).toEqual(["orders", "users"]);
    const elsewhere = as("admin", TOKEN);
    expect(await itemOf(elsewhere, "orders", "seed")).toEqual({ id: { S: "seed" }, v: { N: "1" } });
  });

  it("holds a principal to its grants: readwrite on one table uses it, and no other table", async () => {
    const token = await principal("ana", [{ prefix: ["dynamodb", "users"], access: "readwrite" }]);
    const ana = as("ana", token);
    await ana.send(new PutItemCommand({ TableName: "users", Item: { id: { S: "ana" } } }));
    await ana.send(
      new UpdateItemCommand({
        TableName: "users",
        Key: { id: { S: "ana" } },
        UpdateExpression: "SET age = :a",
        ExpressionAttributeValues: { ":a": { N: "36" } },
      }),
    );
    expect(await itemOf(ana, "users", "ana")).toEqual({ id: { S: "ana" }, age: { N: "36" } });
    const queried = await ana.send(
      new QueryCommand({
        TableName: "users",
        KeyConditionExpression: "id = :id",
        ExpressionAttributeValues: { ":id": { S: "seed" } },
      }),
    );
    expect(queried.Items).toEqual([{ id: { S: "seed" }, v: { N: "1" } }]);
    expect(
      (await ana.send(new DescribeTableCommand({ TableName: "users" }))).Table!.TableName,
    ).toBe("users");
    await ana.send(new DeleteItemCommand({ TableName: "users", Key: { id: { S: "ana" } } }));

    expect(await refusal(itemOf(ana, "orders", "seed"))).toEqual(denied("read"));
    expect(
      await refusal(
        ana.send(new PutItemCommand({ TableName: "orders", Item: { id: { S: "ana" } } })),
      ),
    ).toEqual(denied("read"));
    expect(await refusal(ana.send(new ScanCommand({ TableName: "orders" })))).toEqual(
      denied("read"),
    );
    expect(await refusal(ana.send(new ListTablesCommand({})))).toEqual(denied("read"));
    // Creating a table checks that it is absent: a read of its key.
    expect(await refusal(ana.send(table("anas")))).toEqual(denied("read"));
    // A transaction reaching one key outside the grants applies nothing.
    expect(
      await refusal(
        ana.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              { Put: { TableName: "users", Item: { id: { S: "half" } } } },
              { Put: { TableName: "orders", Item: { id: { S: "half" } } } },
            ],
          }),
        ),
      ),
    ).toMatchObject({ name: "AccessDeniedException", status: 400 });
    expect(await itemOf(admin, "users", "half")).toBeUndefined();
    expect(await itemOf(admin, "orders", "half")).toBeUndefined();
    expect(await itemOf(admin, "orders", "ana")).toBeUndefined();
    expect((await admin.send(new ListTablesCommand({}))).TableNames).toEqual(["orders", "users"]);

    // A grant that names a database holds in that database only.
    const scopedToken = await principal("scoped", [
      { prefix: ["dynamodb", "users"], access: "readwrite", database: "app" },
    ]);
    const { client: appAdmin } = dynamodbClients(server(), TOKEN, { database: "app" });
    clients.push(appAdmin);
    await appAdmin.send(table("users"));
    const { client: scoped } = dynamodbClients(server(), TOKEN, {
      database: "app",
      accessKeyId: "scoped",
      secretAccessKey: scopedToken,
    });
    clients.push(scoped);
    await scoped.send(new PutItemCommand({ TableName: "users", Item: { id: { S: "in-app" } } }));
    expect(await itemOf(appAdmin, "users", "in-app")).toEqual({ id: { S: "in-app" } });
    expect(await refusal(itemOf(as("scoped", scopedToken), "users", "seed"))).toEqual(
      denied("read"),
    );

    // `cairn dynamodb env` with a principal's token: its name is the access key id.
    const env = await runCairn(["dynamodb", "env", "users", "--url", server().url], {
      CAIRN_TOKEN: token,
    });
    expect(env.out.split("\n").slice(2, 4)).toEqual([
      "AWS_ACCESS_KEY_ID=ana",
      `AWS_SECRET_ACCESS_KEY=${token}`,
    ]);
  });

  it("lets a read-only principal get, query and scan, and refuses its writes, changing nothing", async () => {
    const token = await principal("reader", [{ prefix: ["dynamodb", "users"], access: "read" }]);
    const reader = as("reader", token);
    expect(await itemOf(reader, "users", "seed")).toEqual({ id: { S: "seed" }, v: { N: "1" } });
    const queried = await reader.send(
      new QueryCommand({
        TableName: "users",
        KeyConditionExpression: "id = :id",
        ExpressionAttributeValues: { ":id": { S: "seed" } },
      }),
    );
    expect(queried.Count).toBe(1);
    expect((await reader.send(new ScanCommand({ TableName: "users" }))).Items).toContainEqual({
      id: { S: "seed" },
      v: { N: "1" },
    });
    for (const write of [
      new PutItemCommand({ TableName: "users", Item: { id: { S: "seed" }, v: { N: "2" } } }),
      new UpdateItemCommand({
        TableName: "users",
        Key: { id: { S: "seed" } },
        UpdateExpression: "SET v = :v",
        ExpressionAttributeValues: { ":v": { N: "3" } },
      }),
      new DeleteItemCommand({ TableName: "users", Key: { id: { S: "seed" } } }),
    ]) {
      expect(await refusal(reader.send(write as PutItemCommand))).toEqual(denied("write"));
    }
    expect(await itemOf(admin, "users", "seed")).toEqual({ id: { S: "seed" }, v: { N: "1" } });
  });

  it("refuses a wrong secret, an unknown access key id, a revoked principal and an expired token", async () => {
    const token = await principal("temp", [{ prefix: ["dynamodb"], access: "read" }]);
    expect(await refusal(itemOf(as("temp", `${token}x`), "users", "seed"))).toEqual(BAD_SIGNATURE);
    expect(await refusal(itemOf(as("admin", `${TOKEN}x`), "users", "seed"))).toEqual(BAD_SIGNATURE);
    expect(await refusal(itemOf(as("nobody", token), "users", "seed"))).toEqual(UNRECOGNIZED);

    const temp = as("temp", token);
    expect((await temp.send(new ListTablesCommand({}))).TableNames).toEqual(["orders", "users"]);
    const revoked = await fetch(`${server().url}/admin/tokens/temp`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(revoked.status).toBe(200);
    expect(await refusal(temp.send(new ListTablesCommand({})))).toEqual(UNRECOGNIZED);

    const brief = await principal("brief", [{ prefix: ["dynamodb"], access: "read" }], 500);
    const short = as("brief", brief);
    expect(await refusal(short.send(new ListTablesCommand({})))).toEqual({ name: "accepted" });
    await until(
      async () => (await refusal(short.send(new ListTablesCommand({})))).name !== "accepted",
    );
    expect(await refusal(short.send(new ListTablesCommand({})))).toEqual(UNRECOGNIZED);
  });

  it("refuses a request signed 20 minutes off the server's clock, from the SDK or raw", async () => {
    const skewed = as("admin", TOKEN, { systemClockOffset: -20 * MINUTE });
    expect(await refusal(skewed.send(new ListTablesCommand({})))).toEqual({
      name: "InvalidSignatureException",
      message: expect.stringMatching(EXPIRED),
      status: 400,
    });
    for (const [offset, message] of [
      [-20 * MINUTE, EXPIRED],
      [20 * MINUTE, NOT_YET],
    ] as const) {
      const answer = await postDynamodb(
        server().url,
        `${TARGET}ListTables`,
        {},
        {
          keyId: "admin",
          secret: TOKEN,
          at: Date.now() + offset,
        },
      );
      expect({ status: answer.status, json: answer.json }).toEqual({
        status: 400,
        json: {
          __type: "com.amazon.coral.service#InvalidSignatureException",
          message: expect.stringMatching(message),
        },
      });
    }
    // Within 15 minutes, either way, is on time.
    for (const offset of [-10 * MINUTE, 10 * MINUTE]) {
      const answer = await postDynamodb(
        server().url,
        `${TARGET}ListTables`,
        {},
        {
          keyId: "admin",
          secret: TOKEN,
          at: Date.now() + offset,
        },
      );
      expect(answer.json).toEqual({ TableNames: ["orders", "users"] });
    }
  });

  it("refuses a request with no signature, a malformed one, or no date; and an unknown operation", async () => {
    const url = server().url;
    const refused = async (answer: ReturnType<typeof postDynamodb>) => {
      const { status, json } = await answer;
      return { status, json };
    };
    expect(await refused(postDynamodb(url, `${TARGET}ListTables`, {}))).toEqual({
      status: 400,
      json: {
        __type: "com.amazon.coral.service#MissingAuthenticationTokenException",
        message: "Request is missing Authentication Token",
      },
    });
    const malformed = "AWS4-HMAC-SHA256 Credential=admin, Signature=nope";
    expect(
      await refused(
        postDynamodb(url, `${TARGET}ListTables`, {}, undefined, { authorization: malformed }),
      ),
    ).toEqual({
      status: 400,
      json: {
        __type: "com.amazon.coral.service#IncompleteSignatureException",
        message: `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, and the AWS4-HMAC-SHA256 algorithm. Authorization=${malformed}`,
      },
    });
    const undated = `AWS4-HMAC-SHA256 Credential=admin/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-target, Signature=${"0".repeat(64)}`;
    expect(
      await refused(
        postDynamodb(url, `${TARGET}ListTables`, {}, undefined, { authorization: undated }),
      ),
    ).toEqual({
      status: 400,
      json: {
        __type: "com.amazon.coral.service#IncompleteSignatureException",
        message:
          "The request must carry an X-Amz-Date header (yyyyMMdd'T'HHmmss'Z') of the credential's date",
      },
    });
    expect(
      await refused(
        postDynamodb(url, `${TARGET}Frobnicate`, {}, { keyId: "admin", secret: TOKEN }),
      ),
    ).toEqual({
      status: 400,
      json: {
        __type: "com.amazon.coral.service#UnknownOperationException",
        message: "Cairn does not know the operation DynamoDB_20120810.Frobnicate",
      },
    });
    // A body signed for another one is a wrong signature, not a change that passes.
    const tampered = await postDynamodb(
      url,
      `${TARGET}ListTables`,
      '{"Limit":1}',
      {
        keyId: "admin",
        secret: TOKEN,
      },
      { "x-amz-content-sha256": "0".repeat(64) },
    );
    expect(tampered.json.__type).toBe("com.amazon.coral.service#InvalidSignatureException");
  });

  it("answers with a request id and the CRC32 of each body, errors included", async () => {
    const url = server().url;
    const signer = { keyId: "admin", secret: TOKEN };
    const answers = [
      await postDynamodb(url, `${TARGET}ListTables`, {}, signer),
      await postDynamodb(
        url,
        `${TARGET}GetItem`,
        { TableName: "users", Key: { id: { S: "seed" } } },
        signer,
      ),
      await postDynamodb(url, `${TARGET}DescribeTable`, { TableName: "missing" }, signer),
      await postDynamodb(url, `${TARGET}ListTables`, {}),
      await postDynamodb(url, `${TARGET}ListTables`, "{not json", signer),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 400, 400, 400]);
    expect(answers[4]!.json.__type).toBe("com.amazon.coral.service#SerializationException");
    for (const answer of answers) {
      expect(answer.headers.get("content-type")).toBe("application/x-amz-json-1.0");
      expect(answer.headers.get("x-amzn-requestid")).toMatch(/^[0-9A-F]{32}$/);
      expect(answer.headers.get("x-amz-crc32")).toBe(String(crc32(answer.text)));
    }
    const ids = new Set(answers.map((a) => a.headers.get("x-amzn-requestid")));
    expect(ids.size).toBe(answers.length);
  });

  it("lets a principal made with `cairn token create --data` beside the server's token sign; one made without it cannot", {
    timeout: 30_000,
  }, async () => {
    const { data, drop } = await storage.open();
    const serverToken = "data-server-token";
    const options = { host: "127.0.0.1", port: 0, data, auth: true, token: serverToken };
    try {
      // The database exists once a server has run on it.
      const first = await startServer(options);
      const seeded = clientOf(first.url, "admin", serverToken);
      await seeded.send(table("users"));
      seeded.destroy();
      await first.close();

      const create = (name: string, env: Record<string, string> = {}) =>
        runCairn(
          ["token", "create", name, "--data", data, "--readwrite", "dynamodb/users", "--json"],
          env,
        );
      const blind = await create("blind");
      expect(blind).toMatchObject({ code: 0, err: "" });
      // Where `cairn serve` keeps its token beside a SQLite file; PostgreSQL has CAIRN_TOKEN.
      const withToken: Record<string, string> = {};
      if (storage.postgres) withToken.CAIRN_TOKEN = serverToken;
      else await writeFile(join(dirname(data), "token"), `${serverToken}\n`, { mode: 0o600 });
      const sealed = await create("sealed", withToken);
      expect(sealed).toMatchObject({ code: 0, err: "" });

      const second = await startServer(options);
      const sealedClient = clientOf(second.url, "sealed", JSON.parse(sealed.out).token);
      const blindClient = clientOf(second.url, "blind", JSON.parse(blind.out).token);
      try {
        await sealedClient.send(
          new PutItemCommand({ TableName: "users", Item: { id: { S: "from-cli" } } }),
        );
        expect(await itemOf(sealedClient, "users", "from-cli")).toEqual({ id: { S: "from-cli" } });
        expect(await refusal(sealedClient.send(table("other")))).toEqual(denied("read"));
        expect(await refusal(itemOf(blindClient, "users", "from-cli"))).toEqual(UNRECOGNIZED);
      } finally {
        sealedClient.destroy();
        blindClient.destroy();
        await second.close();
      }
    } finally {
      await drop();
    }
  });
});

describeEach(storages, "DynamoDB with auth off", (storage) => {
  const server = serverForTests(TOKEN, storage, { auth: false });

  it("takes any signature, and none", async () => {
    const client = clientOf(server().url, "anyone", "any-secret");
    try {
      await client.send(table("open"));
      await client.send(new PutItemCommand({ TableName: "open", Item: { id: { S: "x" } } }));
      const other = clientOf(server().url, "someone-else", "another-secret");
      expect(
        (await other.send(new GetItemCommand({ TableName: "open", Key: { id: { S: "x" } } }))).Item,
      ).toEqual({ id: { S: "x" } });
      other.destroy();
    } finally {
      client.destroy();
    }
    const unsigned = await postDynamodb(server().url, `${TARGET}ListTables`, {});
    expect({ status: unsigned.status, json: unsigned.json }).toEqual({
      status: 200,
      json: { TableNames: ["open"] },
    });
  });
});
