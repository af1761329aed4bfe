/**
 * DynamoDB's JSON protocol (API version 2012-08-10), so that the AWS SDKs and the AWS CLI use
 * Cairn as their DynamoDB: `POST /` (or `/db/<name>/`) with `X-Amz-Target:
 * DynamoDB_20120810.<Operation>`, signed with AWS Signature V4 by a principal's name and token;
 * answers and errors as DynamoDB sends them (`application/x-amz-json-1.0`, `x-amzn-RequestId`,
 * `x-amz-crc32`). The operations are in the files beside this one; docs/dynamodb.md tells what
 * differs from AWS.
 */
import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import type { Authenticator, Face, Principal, Route } from "../face.js";
import { Reply, type Request, readBody } from "../http-io.js";
import { batchOperations } from "./batch-operations.js";
import { dynamoError, faultOf, statusOf } from "./errors.js";
import { itemOperations } from "./item-operations.js";
import type { Operations } from "./operation.js";
import { readOperations } from "./read-operations.js";
import { Input } from "./request-input.js";
import { accessKeyIdOf, SignatureError, verifySignature } from "./sigv4.js";
import { tableOperations } from "./table-operations.js";

const CONTENT_TYPE = "application/x-amz-json-1.0";
const TARGET_PREFIX = "DynamoDB_20120810.";

const OPERATIONS: Operations = {
  ...tableOperations,
  ...itemOperations,
  ...readOperations,
  ...batchOperations,
};

/** Request ids, 32 hex digits like DynamoDB's, cut from a pool of random bytes. */
let pool = Buffer.alloc(0);
function requestId(): string {
  if (pool.length < 16) pool = randomBytes(4096);
  const id = pool.subarray(0, 16).toString("hex").toUpperCase();
  pool = pool.subarray(16);
  return id;
}

function reply(status: number, body: string): Reply {
  return new Reply(status, CONTENT_TYPE, body, {
    "x-amzn-requestid": requestId(),
    "x-amz-crc32": String(crc32(body)),
  });
}

/** The body as JSON; DynamoDB answers a body that is not JSON with a SerializationException. */
function parseBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw dynamoError("SerializationException", "The request body is not valid JSON");
  }
}

/**
 * The principal that signed `req` (AWS Signature V4: the access key id is its name, the secret
 * access key its token), with DynamoDB's errors for what does not verify.
 */
async function signedBy(req: Request, tokens: Authenticator): Promise<Principal> {
  const body = await readBody(req, limits.dynamoMaxRequestBytes);
  const keyId = accessKeyIdOf(req.headers.authorization);
  let key: Awaited<ReturnType<Authenticator["signingKey"]>> | undefined;
  try {
    // No SigV4 signature: in only as the server lets in a request without credentials (auth
    // off); else refused below, as DynamoDB refuses it.
    if (keyId === undefined) return await tokens.authenticate(undefined);
    key = await tokens.signingKey(keyId);
  } catch (error) {
    if (!(error instanceof KvError && error.code === "UNAUTHORIZED")) throw error;
  }
  if (key?.secret === null) return key.principal;
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  try {
    verifySignature(
      {
        method: req.method ?? "POST",
        path: q === -1 ? url : url.slice(0, q),
        query: q === -1 ? "" : url.slice(q + 1),
        headers: req.headers,
        body,
      },
      () => key?.secret ?? undefined,
      Date.now(),
    );
  } catch (error) {
    if (error instanceof SignatureError) throw dynamoError(error.type, error.message);
    throw error;
  }
  return key!.principal;
}

export function dynamodbFace(): Face {
  const routes = Object.entries(OPERATIONS).map(
    ([name, operation]): Route => ({
      method: "POST",
      path: "/",
      header: { name: "x-amz-target", value: `${TARGET_PREFIX}${name}` },
      access: operation.access,
      operation: name,
      async handle(request) {
        const input = Input.of(parseBody(await request.bytes()), "");
        const output = await operation.run(
          { database: request.database, databaseId: request.databaseId },
          input,
        );
        return reply(200, typeof output === "string" ? output : JSON.stringify(output));
      },
    }),
  );
  routes.push({
    method: "POST",
    path: "/",
    header: { name: "x-amz-target", value: `${TARGET_PREFIX}*` },
    access: "read",
    operation: "UnknownOperation",
    async handle(request) {
      throw dynamoError(
        "UnknownOperationException",
        `Cairn does not know the operation ${request.req.headers["x-amz-target"]}`,
      );
    },
  });
  return {
    name: "dynamodb",
    bases: [""],
    routes,
    authenticate: signedBy,
    errorReply(error) {
      const fault = faultOf(error);
      const body = JSON.stringify({
        __type: fault.qualifiedType,
        message: error.message,
        ...fault.extra,
      });
      return reply(statusOf(fault), body);
    },
  };
}
