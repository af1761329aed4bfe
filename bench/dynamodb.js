/**
 * The server benchmark's DynamoDB routes (bench/server-bench.js): table `bench`, hash key `id`
 * (S), holding items `{ id: "k<i>", v: VALUE.v }` of PRELOAD_KEYS keys, preloaded through the
 * face's own operations; requests signed with AWS Signature V4 as the AWS SDKs sign them (access
 * key id `admin`, the server's token as secret access key).
 */
import { declareTables } from "../dist/faces/dynamodb/declared-tables.js";
import { itemOperations } from "../dist/faces/dynamodb/item-operations.js";
import { Input } from "../dist/faces/dynamodb/request-input.js";
import { signRequest } from "../dist/faces/dynamodb/sigv4.js";
import { databaseOf } from "../dist/kv/kv.js";
import { PRELOAD_KEYS, rewrittenValue, VALUE } from "./workloads.js";

export const TABLE = "bench";
const CONTENT_TYPE = "application/x-amz-json-1.0";
/** Items written at once when preloading (each PutItem is a commit; concurrent ones share one). */
const PRELOAD_CONCURRENCY = 1000;

const itemOf = (i, v) => ({ id: { S: `k${i}` }, v: { S: v } });
const randomKey = () => Math.floor(Math.random() * PRELOAD_KEYS);

/** The bodies of GetItem of item `i` and of PutItem of item `i` holding `v`. */
export const getItemBody = (i) => ({ TableName: TABLE, Key: { id: { S: `k${i}` } } });
export const putItemBody = (i, v) => ({ TableName: TABLE, Item: itemOf(i, v) });

/**
 * The `n`th request of each DynamoDB route, `{ operation, body }`: GetItem of a random preloaded
 * item; PutItem of a random one with VALUE's size and the `n`th rewritten value.
 */
export const DYNAMO_REQUESTS = {
  "dynamo-get": () => ({ operation: "GetItem", body: getItemBody(randomKey()) }),
  "dynamo-put": (n) => ({
    operation: "PutItem",
    body: putItemBody(randomKey(), rewrittenValue(n).v),
  }),
};

/**
 * Creates the table in the database of `kv` (opened on the server's data, before the server
 * starts) and writes its PRELOAD_KEYS items by PutItem.
 */
export async function preloadDynamo(kv) {
  // Any stable string: it only names the database in the face's cache of table descriptions.
  const context = { database: databaseOf(kv)(), databaseId: "bench-preload" };
  await declareTables(context.database, context.databaseId, [
    { name: TABLE, hash: { name: "id", type: "S" } },
  ]);
  for (let row = 0; row < PRELOAD_KEYS; row += PRELOAD_CONCURRENCY) {
    const count = Math.min(PRELOAD_CONCURRENCY, PRELOAD_KEYS - row);
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        itemOperations.PutItem.run(context, new Input(putItemBody(row + i, VALUE.v))),
      ),
    );
  }
}

/**
 * The headers of a DynamoDB request of `operation` with the JSON text `body` to the server at
 * `url`, signed at `now` by `admin` with `token`. `host` is signed as `url`'s host and not
 * returned: fetch and autocannon send exactly that Host themselves.
 */
export function signedHeaders(url, token, operation, body, now = Date.now()) {
  const headers = {
    host: new URL(url).host,
    "content-type": CONTENT_TYPE,
    "x-amz-target": `DynamoDB_20120810.${operation}`,
  };
  const request = { method: "POST", path: "/", query: "", headers, body: Buffer.from(body) };
  const { host: _, ...sent } = headers;
  return { ...sent, ...signRequest(request, "admin", token, "us-east-1", now) };
}
