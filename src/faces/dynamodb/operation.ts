/** What each DynamoDB operation is to the face: whether it writes, and how it runs. */
import type { Database } from "../../engine/database.js";
import type { Access } from "../face.js";
import { checkItem, checkValue, type Item } from "./attribute-value.js";
import { dynamoError, validation } from "./errors.js";
import { ExpressionContext } from "./expression-context.js";
import type { Input } from "./request-input.js";

/** What an operation works on: the request's database, as its principal may use it. */
export interface Context {
  readonly database: Database;
  /** The database's stable id (tables' descriptions are cached by it). */
  readonly databaseId: string;
}

export interface Operation {
  readonly access: Exclude<Access, "admin">;
  /** The response's members, or its JSON text when already made. */
  run(context: Context, input: Input): Promise<unknown>;
}

export type Operations = Readonly<Record<string, Operation>>;

/** A request's `ExpressionAttributeNames` and `ExpressionAttributeValues`, values checked. */
export function expressionContext(input: Input): ExpressionContext {
  const names = input.map("ExpressionAttributeNames");
  const values = input.map("ExpressionAttributeValues");
  for (const [name, value] of Object.entries(names ?? {})) {
    if (typeof value !== "string") {
      throw dynamoError(
        "SerializationException",
        `ExpressionAttributeNames.${name} must be a string`,
      );
    }
  }
  return new ExpressionContext({
    names: names as Record<string, string> | undefined,
    values:
      values &&
      Object.fromEntries(Object.entries(values).map(([name, value]) => [name, checkValue(value)])),
  });
}

/** Every `ReturnValues`, in the order DynamoDB's message lists them. */
const RETURN_VALUES = ["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"];

/**
 * `ReturnValues` among `allowed` (NONE when absent), refused with DynamoDB's messages: one that
 * is no `ReturnValues` at all, or one this operation does not take (PutItem's and DeleteItem's
 * `allowed` is ALL_OLD).
 */
export function returnValues<T extends string>(input: Input, allowed: readonly T[]): T | "NONE" {
  const value = input.string("ReturnValues") ?? "NONE";
  if (!RETURN_VALUES.includes(value)) {
    throw validation(
      `1 validation error detected: Value '${value}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [${RETURN_VALUES.join(", ")}]`,
    );
  }
  if (value !== "NONE" && !allowed.includes(value as T)) {
    throw validation(`ReturnValues can only be ${[...allowed, "NONE"].join(" or ")}`);
  }
  return value as T | "NONE";
}

/**
 * Reads the members that ask for accounting Cairn does not keep: only `NONE` is taken (capacity
 * units and item collections mean nothing without provisioned partitions).
 */
export function noAccounting(input: Input): void {
  for (const name of ["ReturnConsumedCapacity", "ReturnItemCollectionMetrics"]) {
    const value = input.string(name);
    if (value !== undefined && value !== "NONE") {
      throw validation(
        `Cairn does not report ${name.slice("Return".length)}: send ${name} NONE or leave it out`,
      );
    }
  }
}

/** Refuses DynamoDB's legacy parameters, which have expressions in their place. */
export function noLegacy(input: Input, ...names: string[]): void {
  for (const name of names) {
    if (input.has(name)) {
      throw validation(
        `Cairn supports expressions, not the legacy parameter ${name}: use ${LEGACY[name] ?? "an expression"} instead`,
      );
    }
  }
}

const LEGACY: Record<string, string> = {
  AttributesToGet: "ProjectionExpression",
  Expected: "ConditionExpression",
  ConditionalOperator: "ConditionExpression",
  AttributeUpdates: "UpdateExpression",
  KeyConditions: "KeyConditionExpression",
  QueryFilter: "FilterExpression",
  ScanFilter: "FilterExpression",
};

/** The `Key` member: the attribute values of an item's key. */
export function keyMember(input: Input, name = "Key"): Item {
  const key = input.map(name);
  if (key === undefined) {
    throw validation(
      `1 validation error detected: Value null at '${name[0]!.toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return checkItem(key);
}
