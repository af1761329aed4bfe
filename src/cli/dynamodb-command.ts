/**
 * `cairn dynamodb create-table|env`: DynamoDB tables for programs that expect theirs to exist
 * (Nimbus's `KV_<NAME>` convention), created through a server's DynamoDB API with a signed
 * request, and the environment lines such a program needs to reach them.
 */
import type { Command } from "commander";
import { KvError } from "../kv-error.js";
import {
  createTableRequest,
  parseTableDeclaration,
  signRequest,
  type TableDeclaration,
} from "../server/faces.js";
import { parseToken } from "../server/tokens.js";
import { type ServerFlags, serverOptions, withServerToken } from "./data-commands.js";

/** The region the AWS SDKs are told; Cairn takes any. */
const REGION = "us-east-1";

/** The access key id and secret access key of `token`: a principal's name and token, or the admin's. */
function credentialsOf(token: string | undefined): { keyId: string; secret: string } {
  if (token === undefined) {
    throw new KvError(
      "UNAUTHORIZED",
      "The DynamoDB API needs a token: pass --token or set CAIRN_TOKEN",
    );
  }
  return { keyId: parseToken(token)?.name ?? "admin", secret: token };
}

/** The DynamoDB endpoint of `url` (a named database's when it ends in `/db/<name>`). */
const endpointOf = (url: string) => url.replace(/\/+$/, "");

/** Calls `operation` of the DynamoDB API at `url`, signed with `token`. */
async function call(url: string, token: string | undefined, operation: string, body: unknown) {
  const { keyId, secret } = credentialsOf(token);
  const target = new URL(`${endpointOf(url)}/`);
  const text = JSON.stringify(body);
  const headers = {
    host: target.host,
    "content-type": "application/x-amz-json-1.0",
    "x-amz-target": `DynamoDB_20120810.${operation}`,
  };
  const signed = signRequest(
    { method: "POST", path: target.pathname, query: "", headers, body: Buffer.from(text) },
    keyId,
    secret,
    REGION,
    Date.now(),
  );
  let response: Response;
  try {
    response = await fetch(target, {
      method: "POST",
      headers: { ...headers, ...signed },
      body: text,
    });
  } catch (e) {
    const reason = ((e as Error).cause as Error | undefined)?.message ?? (e as Error).message;
    throw new KvError(
      "UNAVAILABLE",
      `Cannot reach the Cairn server at ${target.origin}: ${reason}`,
    );
  }
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.ok) return answer;
  const type = String(answer.__type ?? "")
    .split("#")
    .pop();
  throw new KvError(
    response.status === 400 && type === "UnrecognizedClientException"
      ? "UNAUTHORIZED"
      : "INVALID_ARGUMENT",
    `${target.origin} answered ${type}: ${answer.message ?? answer.Message ?? response.statusText}`,
  );
}

/** `KV_<NAME>`: the name upper-cased, `-` and `.` as `_` (Nimbus's convention). */
const variableOf = (table: string) => `KV_${table.toUpperCase().replace(/[-.]/g, "_")}`;

/** The environment a program needs to use `tables` at `url` with `token`. */
function environment(url: string, token: string | undefined, tables: readonly string[]): string[] {
  const { keyId, secret } = credentialsOf(token);
  return [
    `AWS_ENDPOINT_URL_DYNAMODB=${endpointOf(url)}`,
    `AWS_REGION=${REGION}`,
    `AWS_ACCESS_KEY_ID=${keyId}`,
    `AWS_SECRET_ACCESS_KEY=${secret}`,
    ...tables.flatMap((table) => [
      `${variableOf(table)}=${table}`,
      `${variableOf(table)}_ARN=arn:aws:dynamodb:cairn:000000000000:table/${table}`,
    ]),
  ];
}

const declarations = (texts: string[]): TableDeclaration[] => texts.map(parseTableDeclaration);

export function addDynamodbCommand(cli: Command): void {
  const dynamodb = cli
    .command("dynamodb")
    .description(
      "DynamoDB tables: create them on a server, and print the environment programs need.",
    );
  serverOptions(
    dynamodb
      .command("create-table")
      .argument(
        "<table...>",
        "NAME[:HASH[:RANGE]], keys attribute[=S|N|B] (default id), e.g. users:email.",
      )
      .description(
        "Create tables (on demand billing) that do not exist, then print the environment lines.",
      ),
  ).action((texts: string[], flags: ServerFlags) => {
    const tables = declarations(texts); // checked before the server is reached
    return withServerToken(flags, async (token) => {
      for (const table of tables) {
        try {
          await call(flags.url, token, "CreateTable", createTableRequest(table));
          console.error(`created ${table.name}`);
        } catch (error) {
          if (!(error instanceof KvError && /ResourceInUseException/.test(error.message)))
            throw error;
          console.error(`${table.name} exists`);
        }
      }
      for (const line of environment(
        flags.url,
        token,
        tables.map((t) => t.name),
      ))
        console.log(line);
    });
  });
  serverOptions(
    dynamodb
      .command("env")
      .argument("[table...]", "Tables to name in KV_<NAME> variables.")
      .description(
        "Print the environment lines an AWS SDK program needs to use the server's DynamoDB API.",
      ),
  ).action((tables: string[], flags: ServerFlags) =>
    withServerToken(flags, async (token) => {
      for (const line of environment(flags.url, token, tables)) console.log(line);
    }),
  );
}
