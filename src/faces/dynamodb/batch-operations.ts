/**
 * BatchGetItem and BatchWriteItem (each item on its own), TransactGetItems (one snapshot) and
 * TransactWriteItems (one commit: every condition holds and every write lands, or none does).
 */
import { createHash } from "node:crypto";
import { ValueEncoding } from "../../codec/value-codec.js";
import { checkCommit } from "../../engine/commit-limits.js";
import type { Mutation } from "../../engine/database.js";
import { KvError } from "../../kv-error.js";
import { limits } from "../../limits.js";
import { type Item, itemSize } from "./attribute-value.js";
import { DynamoFault, dynamoError, validation } from "./errors.js";
import { project } from "./expression-eval.js";
import { parseProjection } from "./expression-parser.js";
import {
  conditionCheckWrite,
  deleteWrite,
  type PlannedWrite,
  putWrite,
  updateWrite,
  type Write,
  writeItem,
} from "./item-operations.js";
import { decodeItem, keyOfKey, writeMutations } from "./items.js";
import { tableKey, transactionKey } from "./keys.js";
import {
  type Context,
  expressionContext,
  keyMember,
  noAccounting,
  noLegacy,
  type Operations,
} from "./operation.js";
import { Input } from "./request-input.js";
import { checkTableName, rememberTable, type Table, tableOf } from "./tables.js";

/** DynamoDB's limit on a response's size (BatchGetItem answers the rest as unprocessed). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** How long a transaction's idempotency token is remembered. */
const TOKEN_TTL_MS = 10 * 60_000;

/** The tables named, read (each once). */
async function tablesOf(context: Context, names: Iterable<string>): Promise<Map<string, Table>> {
  const unique = [...new Set(names)];
  const entries = await context.database.get(unique.map(tableKey));
  return new Map(
    unique.map((name, i) => [
      name,
      rememberTable(context.databaseId, tableOf(entries[i], name)).table,
    ]),
  );
}

function refuseDuplicates(keys: readonly Uint8Array[], message: string): void {
  const seen = new Set<string>();
  for (const key of keys) {
    const text = Buffer.from(key).toString("latin1");
    if (seen.has(text)) throw validation(message);
    seen.add(text);
  }
}

const DUPLICATE_KEYS = "Provided list of item keys contains duplicates";

/** A transaction's items: `Get` (TransactGetItems) or Put/Update/Delete/ConditionCheck. */
function transactItems(input: Input): Input[] {
  const items = input.objects("TransactItems");
  if (items === undefined || items.length === 0 || items.length > limits.dynamoMaxTransactItems) {
    throw validation(
      `1 validation error detected: Value '${items === undefined ? "null" : `[${items.length} items]`}' at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to ${limits.dynamoMaxTransactItems}, Member must have length greater than or equal to 1`,
    );
  }
  return items;
}

/** The one action a transaction item holds. */
function actionOf(item: Input, kinds: readonly string[]): { kind: string; input: Input } {
  const present = kinds.filter((kind) => item.has(kind));
  if (present.length !== 1) {
    throw validation(
      `TransactItems can only contain one of ${kinds.join(", ")}: each item names exactly one`,
    );
  }
  const kind = present[0]!;
  const input = item.object(kind)!;
  item.done();
  return { kind, input };
}

function plannedWrite(kind: string, input: Input): PlannedWrite<"NONE"> {
  switch (kind) {
    case "Put":
      return putWrite(input, []);
    case "Delete":
      return deleteWrite(input, []);
    case "Update":
      return updateWrite(input, []);
    default:
      return conditionCheckWrite(input);
  }
}

/** What a cancelled transaction says of an item. */
function reasonOf(error: unknown): Record<string, unknown> {
  if (error instanceof KvError && error.cause instanceof DynamoFault) {
    if (error.cause.type === "ConditionalCheckFailedException") {
      return { Code: "ConditionalCheckFailed", Message: error.message, ...error.cause.extra };
    }
    if (error.cause.type === "ValidationException") {
      return { Code: "ValidationError", Message: error.message };
    }
  }
  throw error;
}

/** The hash of a request that an idempotency token stands for. */
const requestHash = (input: Input) =>
  createHash("sha256").update(JSON.stringify(input.members.TransactItems)).digest("hex");

async function transactWrite(context: Context, input: Input) {
  const actions = transactItems(input).map((item) =>
    actionOf(item, ["ConditionCheck", "Put", "Delete", "Update"]),
  );
  const token = input.string("ClientRequestToken");
  noAccounting(input);
  input.done();
  if (token !== undefined && (token.length < 1 || token.length > 36)) {
    throw validation(
      `1 validation error detected: Value '${token}' at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36`,
    );
  }
  const writes = actions.map(({ kind, input }) => {
    const plan = plannedWrite(kind, input);
    input.done();
    return plan.write;
  });
  const hash = requestHash(input);
  for (;;) {
    const tables = await tablesOf(
      context,
      writes.map((w) => w.table),
    );
    const keys = writes.map((w) => w.keyOf(tables.get(w.table)!));
    refuseDuplicates(
      keys.map((k) => k.bytes),
      "Transaction request cannot include multiple operations on one item",
    );
    const tableNames = [...tables.keys()];
    // The token is kept under every table the transaction writes, so that any later use of it
    // with one of those tables is known (its table's grants cover it).
    const tokenKeys =
      token === undefined ? [] : tableNames.map((name) => transactionKey(name, token));
    const read = await context.database.get([
      ...tableNames.map(tableKey),
      ...keys.map((k) => k.bytes),
      ...tokenKeys,
    ]);
    const tableEntries = read.slice(0, tableNames.length);
    const itemEntries = read.slice(tableNames.length, tableNames.length + keys.length);
    const used = read.slice(tableNames.length + keys.length).filter((entry) => entry !== null);
    if (used.length > 0) {
      if (used.length === tokenKeys.length && used.every((e) => e!.data === JSON.stringify(hash))) {
        return {};
      }
      throw dynamoError(
        "IdempotentParameterMismatchException",
        "The request uses the same client token as a previous, but non-identical request.",
      );
    }
    const current = new Map(tableNames.map((name, i) => [name, tableOf(tableEntries[i], name)]));
    if (tableNames.some((name) => current.get(name)!.table.id !== tables.get(name)!.id)) continue;
    const now = Date.now();
    const mutations: Mutation[] = [];
    const reasons: Record<string, unknown>[] = [];
    let cancelled = false;
    let total = 0;
    writes.forEach((write, i) => {
      const table = current.get(write.table)!.table;
      const old = itemEntries[i] ? decodeItem(itemEntries[i]!) : undefined;
      try {
        const next = write.next(table, old);
        reasons.push({ Code: "None" });
        if (next !== old) mutations.push(...writeMutations(table, keys[i]!.bytes, old, next, now));
        if (next !== undefined && next !== old) total += itemSize(next);
      } catch (error) {
        reasons.push(reasonOf(error));
        cancelled = true;
      }
    });
    if (cancelled) {
      throw dynamoError(
        "TransactionCanceledException",
        `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(", ")}]`,
        { CancellationReasons: reasons },
      );
    }
    if (total > limits.dynamoMaxTransactionBytes) {
      throw validation("Transaction request exceeds the maximum allowed size of 4 MB");
    }
    for (const key of tokenKeys) {
      mutations.push({
        type: "set",
        key,
        value: { encoding: ValueEncoding.JSON, data: JSON.stringify(hash) },
        expireIn: TOKEN_TTL_MS,
      });
    }
    const result = await context.database.commit(
      checkCommit(
        {
          checks: [
            ...tableNames.map((name) => ({
              key: tableKey(name),
              versionstamp: current.get(name)!.versionstamp,
            })),
            ...keys.map((k, i) => ({
              key: k.bytes,
              versionstamp: itemEntries[i]?.versionstamp ?? null,
            })),
            ...tokenKeys.map((key) => ({ key, versionstamp: null })),
          ],
          mutations,
        },
        undefined,
        limits.dynamoCommit,
      ),
    );
    if (result.ok) return {};
  }
}

async function transactGet(context: Context, input: Input) {
  const gets = transactItems(input).map((item) => {
    const { input: get } = actionOf(item, ["Get"]);
    const name = checkTableName(get.string("TableName"));
    const key = keyMember(get);
    const expressions = expressionContext(get);
    const text = get.string("ProjectionExpression");
    const projection = text === undefined ? undefined : parseProjection(text, expressions);
    expressions.checkAllUsed([]);
    get.done();
    return { name, key, projection };
  });
  noAccounting(input);
  input.done();
  const tables = await tablesOf(
    context,
    gets.map((g) => g.name),
  );
  const keys = gets.map((g) => keyOfKey(tables.get(g.name)!, g.key).bytes);
  refuseDuplicates(keys, "Transaction request cannot include multiple operations on one item");
  const names = [...tables.keys()];
  const read = await context.database.get([...names.map(tableKey), ...keys]);
  names.forEach((name, i) => {
    if (tableOf(read[i], name).table.id !== tables.get(name)!.id) {
      throw dynamoError(
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        { CancellationReasons: gets.map(() => ({ Code: "TransactionConflict" })) },
      );
    }
  });
  return {
    Responses: read.slice(names.length).map((entry, i) => {
      if (entry === null) return {};
      const item = decodeItem(entry);
      return { Item: gets[i]!.projection ? project(item, gets[i]!.projection!) : item };
    }),
  };
}

/** The requests of `RequestItems`, by table. */
function requestItems(input: Input): [string, unknown][] {
  const items = input.map("RequestItems");
  if (items === undefined || Object.keys(items).length === 0) {
    throw validation(
      "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
  }
  return Object.entries(items).map(([name, value]) => [
    checkTableName(name, "requestItems.key"),
    value,
  ]);
}

export const batchOperations: Operations = {
  BatchGetItem: {
    access: "read",
    async run(context, input) {
      const requests = requestItems(input).map(([name, value]) => {
        const request = Input.of(value, `requestItems.${name}`);
        const keys = (request.list("Keys") ?? []).map((key) =>
          keyMember(new Input({ Key: key as never })),
        );
        const expressions = expressionContext(request);
        const text = request.string("ProjectionExpression");
        const projection = text === undefined ? undefined : parseProjection(text, expressions);
        request.boolean("ConsistentRead");
        noLegacy(request, "AttributesToGet");
        expressions.checkAllUsed([]);
        request.done();
        if (keys.length === 0) {
          throw validation(
            "1 validation error detected: Value '[]' at 'requestItems.keys' failed to satisfy constraint: Member must have length greater than or equal to 1",
          );
        }
        return { name, keys, projection, raw: value as Record<string, unknown> };
      });
      noAccounting(input);
      input.done();
      const count = requests.reduce((n, r) => n + r.keys.length, 0);
      if (count > limits.dynamoMaxBatchGetKeys) {
        throw validation(`Too many items requested for the BatchGetItem call`);
      }
      const tables = await tablesOf(
        context,
        requests.map((r) => r.name),
      );
      const responses: Record<string, Item[]> = {};
      const unprocessed: Record<string, unknown> = {};
      let bytes = 0;
      for (const request of requests) {
        const table = tables.get(request.name)!;
        const keys = request.keys.map((key) => keyOfKey(table, key).bytes);
        refuseDuplicates(keys, DUPLICATE_KEYS);
        const entries = await context.database.get(keys);
        const items: Item[] = [];
        const left: Item[] = [];
        entries.forEach((entry, i) => {
          if (entry === null) return;
          if (bytes > MAX_RESPONSE_BYTES) {
            left.push(request.keys[i]!);
            return;
          }
          const item = decodeItem(entry);
          bytes += itemSize(item);
          items.push(request.projection ? project(item, request.projection) : item);
        });
        responses[request.name] = items;
        if (left.length > 0) unprocessed[request.name] = { ...request.raw, Keys: left };
      }
      return { Responses: responses, UnprocessedKeys: unprocessed };
    },
  },

  BatchWriteItem: {
    access: "write",
    async run(context, input) {
      const writes: Write[] = [];
      for (const [name, value] of requestItems(input)) {
        if (!Array.isArray(value)) {
          throw dynamoError("SerializationException", `requestItems.${name} must be a list`);
        }
        if (value.length === 0 || value.length > limits.dynamoMaxBatchWriteRequests) {
          throw validation(
            `1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to ${limits.dynamoMaxBatchWriteRequests}, Member must have length greater than or equal to 1]`,
          );
        }
        for (const [i, raw] of value.entries()) {
          const request = Input.of(raw, `requestItems.${name}.${i + 1}`);
          const { kind, input: body } = actionOf(request, ["PutRequest", "DeleteRequest"]);
          const member = kind === "PutRequest" ? "Item" : "Key";
          const only = new Input({ [member]: body.raw(member) as never, TableName: name });
          body.done();
          const plan = kind === "PutRequest" ? putWrite(only, []) : deleteWrite(only, []);
          only.done();
          writes.push(plan.write);
        }
      }
      noAccounting(input);
      input.done();
      if (writes.length > limits.dynamoMaxBatchWriteRequests) {
        throw validation("Too many items requested for the BatchWriteItem call");
      }
      // Every request is checked before any is applied.
      const tables = await tablesOf(
        context,
        writes.map((w) => w.table),
      );
      refuseDuplicates(
        writes.map((w) => w.keyOf(tables.get(w.table)!).bytes),
        DUPLICATE_KEYS,
      );
      await Promise.all(writes.map((write) => writeItem(context, write)));
      return { UnprocessedItems: {} };
    },
  },

  TransactWriteItems: { access: "write", run: transactWrite },
  TransactGetItems: { access: "read", run: transactGet },
};
