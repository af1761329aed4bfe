/**
 * GetItem, PutItem, UpdateItem and DeleteItem. A write reads the item and its table in one
 * snapshot, decides, and commits on condition that neither changed (else reads again): the
 * condition, the item, its TTL and its index entries are one atomic commit.
 */
import { ValueEncoding } from "../../codec/value-codec.js";
import { checkCommit } from "../../engine/commit-limits.js";
import type { RawEntry } from "../../engine/database.js";
import { limits } from "../../limits.js";
import { checkItem, type Item } from "./attribute-value.js";
import { dynamoError } from "./errors.js";
import type { ExpressionContext, ExpressionKind } from "./expression-context.js";
import { applyUpdate, evaluate, project } from "./expression-eval.js";
import { type Path, parseCondition, parseProjection, parseUpdate } from "./expression-parser.js";
import {
  checkSize,
  decodeItem,
  type ItemKey,
  keyOfItem,
  keyOfKey,
  writeMutations,
} from "./items.js";
import { tableKey } from "./keys.js";
import {
  type Context,
  expressionContext,
  keyMember,
  noAccounting,
  noLegacy,
  type Operations,
  returnValues,
} from "./operation.js";
import type { Input } from "./request-input.js";
import {
  cachedTable,
  checkTableName,
  notFound,
  rememberTable,
  type Table,
  type TableAt,
  tableOf,
} from "./tables.js";

/** How many times a write reads again after a concurrent change before giving up. */
const MAX_ATTEMPTS = 100;

/**
 * Table `name` and the entry of the item `keyOf` places in it, from one snapshot. The key is
 * placed by the table as cached, and read again if the table turns out to have changed.
 */
export async function readItem(
  context: Context,
  name: string,
  keyOf: (table: Table) => ItemKey,
): Promise<{ at: TableAt; key: ItemKey; entry: RawEntry | null }> {
  let at = cachedTable(context.databaseId, name);
  for (;;) {
    let key: ItemKey | undefined;
    try {
      key = at && keyOf(at.table);
    } catch {
      key = undefined; // the cached table may be stale: decide on the one read below
    }
    const [tableEntry, entry] = await context.database.get(
      key ? [tableKey(name), key.bytes] : [tableKey(name)],
    );
    if (tableEntry === null) throw notFound(name);
    // The description is decoded only when it changed.
    if (at !== undefined && tableEntry!.versionstamp === at.versionstamp) {
      if (key !== undefined) return { at, key, entry: entry ?? null };
      keyOf(at.table); // throws what it threw above
    }
    const read = tableOf(tableEntry, name);
    at = rememberTable(context.databaseId, read);
  }
}

export const conditionFailed = (old: Item | undefined, returnOld: boolean) =>
  dynamoError(
    "ConditionalCheckFailedException",
    "The conditional request failed",
    returnOld && old !== undefined ? { Item: old } : undefined,
  );

/** `ReturnValuesOnConditionCheckFailure`: whether a failed condition answers with the item. */
function returnOldOnFailure(input: Input): boolean {
  const value = input.string("ReturnValuesOnConditionCheckFailure") ?? "NONE";
  if (value !== "NONE" && value !== "ALL_OLD") {
    throw dynamoError(
      "ValidationException",
      `1 validation error detected: Value '${value}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]`,
    );
  }
  return value === "ALL_OLD";
}

export interface Write {
  readonly table: string;
  keyOf(table: Table): ItemKey;
  /**
   * The item to store in place of `old` (`undefined`: none): `undefined` deletes, `old` itself
   * leaves it as it is (a transaction's ConditionCheck). Throws `conditionFailed` when the
   * write's condition does not hold.
   */
  next(table: Table, old: Item | undefined): Item | undefined;
  /** Whether `next` looks at `old` (else, on a table without indexes, it is not read). */
  readonly readsOld: boolean;
}

/** Applies `write`; resolves the item before and after. */
export async function writeItem(
  context: Context,
  write: Write,
): Promise<{ old: Item | undefined; next: Item | undefined }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const cached = cachedTable(context.databaseId, write.table);
    let at: TableAt;
    let key: ItemKey;
    let old: Item | undefined;
    let oldVersionstamp: string | null | undefined;
    if (cached !== undefined && !write.readsOld && cached.table.indexes.length === 0) {
      // Nothing to read: the commit checks the table is still the one cached.
      at = cached;
      key = write.keyOf(at.table);
    } else {
      const read = await readItem(context, write.table, write.keyOf);
      ({ at, key } = read);
      old = read.entry ? decodeItem(read.entry) : undefined;
      oldVersionstamp = read.entry?.versionstamp ?? null;
    }
    const next = write.next(at.table, old);
    const now = Date.now();
    const result = await context.database.commit(
      checkCommit(
        {
          checks: [
            { key: tableKey(write.table), versionstamp: at.versionstamp },
            ...(oldVersionstamp === undefined
              ? []
              : [{ key: key.bytes, versionstamp: oldVersionstamp }]),
          ],
          mutations: writeMutations(at.table, key.bytes, old, next, now),
        },
        undefined,
        limits.dynamoCommit,
      ),
    );
    if (result.ok) return { old, next };
    if (oldVersionstamp === undefined) {
      rememberTable(context.databaseId, (await readItem(context, write.table, write.keyOf)).at);
    }
  }
  throw dynamoError(
    "TransactionConflictException",
    "Transaction request cannot include multiple operations on one item: the item kept changing; retry",
  );
}

const tableName = (input: Input) => checkTableName(input.string("TableName"));

/** A write as a request describes it (PutItem's, or a transaction's Put). */
export interface PlannedWrite<R extends string> {
  readonly write: Write;
  readonly returns: R | "NONE";
  /** The attributes an update touched, once `next` ran (for UPDATED_OLD and UPDATED_NEW). */
  updated(): readonly Path[];
}

/**
 * The parts every write takes: its table, expressions and condition, `ReturnValues` among
 * `returns` and `ReturnValuesOnConditionCheckFailure`; refuses unread members once `plan` has
 * read its own.
 */
function planned<R extends string>(
  input: Input,
  returns: readonly R[],
  /** The expressions of this write that may use values (for `checkAllUsed`). */
  valueKinds: readonly ExpressionKind[],
  plan: (
    expressions: ExpressionContext,
    condition: (old: Item | undefined) => void,
  ) => Omit<Write, "table"> & { updated?: () => readonly Path[] },
): PlannedWrite<R> {
  const table = tableName(input);
  const expressions = expressionContext(input);
  const conditionText = input.string("ConditionExpression");
  const condition =
    conditionText === undefined
      ? undefined
      : parseCondition(conditionText, "ConditionExpression", expressions);
  const returnValue = returns.length > 0 ? returnValues(input, returns) : "NONE";
  const returnOld = returnOldOnFailure(input);
  const check = (old: Item | undefined) => {
    if (condition !== undefined && !evaluate(condition, old)) throw conditionFailed(old, returnOld);
  };
  const { updated, ...write } = plan(expressions, check);
  noLegacy(input, "Expected", "ConditionalOperator", "AttributeUpdates");
  expressions.checkAllUsed(valueKinds);
  return {
    write: {
      table,
      ...write,
      readsOld: write.readsOld || condition !== undefined || returnValue !== "NONE",
    },
    returns: returnValue,
    updated: updated ?? (() => []),
  };
}

function itemMember(input: Input): Item {
  const raw = input.map("Item");
  if (raw === undefined) {
    throw dynamoError(
      "ValidationException",
      "1 validation error detected: Value null at 'item' failed to satisfy constraint: Member must not be null",
    );
  }
  return checkSize(checkItem(raw));
}

export const putWrite = <R extends string>(input: Input, returns: readonly R[]) =>
  planned(input, returns, ["ConditionExpression"], (_expressions, condition) => {
    const item = itemMember(input);
    return {
      keyOf: (table) => keyOfItem(table, item),
      readsOld: false,
      next(_table, old) {
        condition(old);
        return item;
      },
    };
  });

export const deleteWrite = <R extends string>(input: Input, returns: readonly R[]) =>
  planned(input, returns, ["ConditionExpression"], (_expressions, condition) => {
    const key = keyMember(input);
    return {
      keyOf: (table) => keyOfKey(table, key),
      readsOld: false,
      next(_table, old) {
        condition(old);
        return undefined;
      },
    };
  });

export const conditionCheckWrite = (input: Input) =>
  planned(input, [], ["ConditionExpression"], (_expressions, condition) => {
    const key = keyMember(input);
    if (!input.has("ConditionExpression")) {
      throw dynamoError(
        "ValidationException",
        "1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null",
      );
    }
    return {
      keyOf: (table) => keyOfKey(table, key),
      readsOld: true,
      next(_table, old) {
        condition(old);
        return old;
      },
    };
  });

export const updateWrite = <R extends string>(input: Input, returns: readonly R[]) =>
  planned(input, returns, ["UpdateExpression", "ConditionExpression"], (expressions, condition) => {
    const key = keyMember(input);
    const text = input.string("UpdateExpression");
    const update = text === undefined ? undefined : parseUpdate(text, expressions);
    let updated: readonly Path[] = [];
    return {
      keyOf: (table) => keyOfKey(table, key),
      readsOld: true,
      updated: () => updated,
      next(table, old) {
        condition(old);
        const base = old ?? key;
        if (update === undefined) return base;
        const result = applyUpdate(update, base, old !== undefined);
        for (const path of result.updated) {
          const top = path[0];
          if (top === table.hash.name || top === table.range?.name) {
            throw dynamoError(
              "ValidationException",
              `One or more parameter values were invalid: Cannot update attribute ${top}. This attribute is part of the key`,
            );
          }
        }
        updated = result.updated;
        const item = checkSize(
          result.item,
          "Item size to update has exceeded the maximum allowed size",
        );
        keyOfItem(table, item); // index keys keep their types
        return item;
      },
    };
  });

export const itemOperations: Operations = {
  GetItem: {
    access: "read",
    async run(context, input) {
      const name = tableName(input);
      const key = keyMember(input);
      const expressions = expressionContext(input);
      const projectionText = input.string("ProjectionExpression");
      const projection =
        projectionText === undefined ? undefined : parseProjection(projectionText, expressions);
      input.boolean("ConsistentRead"); // every read is strongly consistent
      noAccounting(input);
      noLegacy(input, "AttributesToGet");
      expressions.checkAllUsed([]);
      input.done();
      const { entry } = await readItem(context, name, (table) => keyOfKey(table, key));
      if (entry === null) return "{}";
      // The stored JSON is the item's wire form: sent as is.
      if (
        projection === undefined &&
        entry.encoding === ValueEncoding.JSON &&
        entry.data[0] === "{"
      ) {
        return `{"Item":${entry.data}}`;
      }
      return { Item: projection ? project(decodeItem(entry), projection) : decodeItem(entry) };
    },
  },

  PutItem: {
    access: "write",
    async run(context, input) {
      const { write, returns } = putWrite(input, ["ALL_OLD"] as const);
      noAccounting(input);
      input.done();
      const { old } = await writeItem(context, write);
      return returns === "ALL_OLD" && old !== undefined ? { Attributes: old } : {};
    },
  },

  DeleteItem: {
    access: "write",
    async run(context, input) {
      const { write, returns } = deleteWrite(input, ["ALL_OLD"] as const);
      noAccounting(input);
      input.done();
      const { old } = await writeItem(context, write);
      return returns === "ALL_OLD" && old !== undefined ? { Attributes: old } : {};
    },
  },

  UpdateItem: {
    access: "write",
    async run(context, input) {
      const plan = updateWrite(input, [
        "ALL_OLD",
        "UPDATED_OLD",
        "ALL_NEW",
        "UPDATED_NEW",
      ] as const);
      noAccounting(input);
      input.done();
      const { old, next } = await writeItem(context, plan.write);
      switch (plan.returns) {
        case "ALL_OLD":
          return old === undefined ? {} : { Attributes: old };
        case "ALL_NEW":
          return { Attributes: next };
        case "UPDATED_OLD":
          return old === undefined ? {} : nonEmpty(project(old, plan.updated()));
        case "UPDATED_NEW":
          return nonEmpty(project(next!, plan.updated()));
        default:
          return {};
      }
    },
  },
};

const nonEmpty = (item: Item) => (Object.keys(item).length === 0 ? {} : { Attributes: item });
