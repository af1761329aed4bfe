/**
 * The real AWS SDK pointed at a test server: a DynamoDB client signing as `accessKeyId` with
 * `secretAccessKey` (default the admin and the server's token), and its document client.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { CairnServer } from "../../src/server/server.js";

export interface ClientOptions {
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  /** A named database's endpoint (`/db/<name>`). */
  readonly database?: string;
}

export function dynamodbClients(server: CairnServer, token: string, options: ClientOptions = {}) {
  const endpoint = `${server.url}${options.database ? `/db/${options.database}` : ""}`;
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: {
      accessKeyId: options.accessKeyId ?? "admin",
      secretAccessKey: options.secretAccessKey ?? token,
    },
    maxAttempts: 1,
  });
  const doc = DynamoDBDocumentClient.from(client);
  return { client, doc };
}
