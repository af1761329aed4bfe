/**
 * What the item tests share: the tables they declare, a table's contents, and the refusal of a
 * request that must leave a table as it was.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  type DynamoDBServiceException,
  paginateScan,
  type ScanCommandInput,
} from "@aws-sdk/client-dynamodb";

import { expect } from "vitest";
import { parseTableDeclaration } from "../../src/faces/dynamodb/declared-tables.js";
import { errorOf } from "../targets.js";

/** `items` (key `pk`, S), `pairs` (`pk` S and `sk` N), `bytes` (`id` B) and `big` (`pk` S). */
export const itemTables = ["items:pk", "pairs:pk:sk=N", "bytes:id=B", "big:pk"].map(
  parseTableDeclaration,
);

export type Item = Record<string, AttributeValue>;

/** Every item of `table`, in the order of their keys' JSON. */
export async function contentsOf(client: DynamoDBClient, table: string): Promise<Item[]> {
  const items: Item[] = [];
  const input: ScanCommandInput = { TableName: table, ConsistentRead: true };
  for await (const page of paginateScan({ client }, input)) items.push(...(page.Items ?? []));
  const keyOf = (item: Item) => JSON.stringify([item.pk ?? item.id, item.sk]);
  return items.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
}

/** What the SDK says of a refused request: the exception's name, message and HTTP status. */
export interface Refusal {
  readonly name: string;
  readonly message: string;
  readonly status: number | undefined;
}

/** The refusal `send` fails with; asserts that `table`'s contents are the same afterwards. */
export async function refusedIn(
  client: DynamoDBClient,
  table: string,
  send: () => Promise<unknown>,
): Promise<Refusal> {
  const before = await contentsOf(client, table);
  const error = (await errorOf(send)) as DynamoDBServiceException;
  expect(await contentsOf(client, table)).toEqual(before);
  return { name: error.name, message: error.message, status: error.$metadata?.httpStatusCode };
}

/** A ValidationException's refusal with `message`. */
export const invalid = (message: string): Refusal => ({
  name: "ValidationException",
  message,
  status: 400,
});
