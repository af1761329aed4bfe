/**
 * A Query's KeyConditionExpression, split as DynamoDB requires: equality on the partition key and
 * at most one condition on the sort key. Anything else is refused with DynamoDB's messages.
 */
import type { AttributeValue } from "./attribute-value.js";
import { validation } from "./errors.js";
import type { Comparator, Condition, Operand } from "./expression-parser.js";

/** How a Query may narrow the sort key. */
export type SortOperator = "=" | "<" | "<=" | ">" | ">=" | "BETWEEN" | "begins_with";

/** A key condition: the partition key's value, and the sort key's condition if there is one. */
export interface KeyCondition {
  readonly hash: AttributeValue;
  /** `values` has two members for BETWEEN (low, high), one for the others. */
  readonly sort?: { readonly op: SortOperator; readonly values: readonly AttributeValue[] };
}

interface KeyTerm {
  readonly op: SortOperator;
  readonly values: readonly AttributeValue[];
}

/** What `a < :v` says of `a` when written `:v > a`. */
const MIRRORED: Readonly<Record<Exclude<Comparator, "<>">, SortOperator>> = {
  "=": "=",
  "<": ">",
  "<=": ">=",
  ">": "<",
  ">=": "<=",
};

/**
 * The key condition `condition` (parsed as a KeyConditionExpression) states for a key schema of
 * `hashKey` and optionally `sortKey`. ValidationException with DynamoDB's message for operators a
 * key condition cannot use, conditions not of the form `key <op> :value`, nested paths, more
 * than one condition per key or more than two in all, and a partition key missing or not
 * compared with `=`. The values' types are not checked against the schema here.
 */
export function keyCondition(
  condition: Condition,
  hashKey: string,
  sortKey: string | undefined,
): KeyCondition {
  const terms = new Map<string, KeyTerm>();
  collect(condition, terms);
  if (terms.size > 2) throw validation("Conditions can be of length 1 or 2 only");
  if (sortKey === undefined && terms.size > 1) {
    throw validation("Query key condition not supported");
  }
  const hash = terms.get(hashKey);
  if (hash === undefined) throw missed(hashKey);
  if (hash.op !== "=") throw validation("Query key condition not supported");
  if (terms.size === 1) return { hash: hash.values[0]! };
  const sort = sortKey === undefined ? undefined : terms.get(sortKey);
  if (sort === undefined) throw missed(sortKey ?? hashKey);
  return { hash: hash.values[0]!, sort };
}

const missed = (key: string) => validation(`Query condition missed key schema element: ${key}`);

const invalidOperator = (operator: string) =>
  validation(`Invalid operator used in KeyConditionExpression: ${operator}`);

const invalidCondition = (reason: string) =>
  validation(`Invalid condition in KeyConditionExpression: ${reason}`);

/** Adds the key terms `condition` states to `terms`, in the order written. */
function collect(condition: Condition, terms: Map<string, KeyTerm>): void {
  switch (condition.kind) {
    case "and":
      collect(condition.left, terms);
      collect(condition.right, terms);
      return;
    case "or":
    case "not":
    case "in":
      throw invalidOperator(condition.kind.toUpperCase());
    case "compare":
      if (condition.op === "<>") throw invalidOperator("<>");
      term(condition.op, [condition.left, condition.right], terms);
      return;
    case "between":
      if (condition.operand.kind !== "path") {
        throw invalidCondition("BETWEEN operator must have the key attribute as its first operand");
      }
      term("BETWEEN", [condition.operand, condition.low, condition.high], terms);
      return;
    case "function":
      if (condition.name !== "begins_with") throw invalidOperator(condition.name);
      if (condition.args[0]?.kind !== "path") {
        throw invalidCondition(
          "begins_with operator must have the key attribute as its first operand",
        );
      }
      term("begins_with", condition.args, terms);
  }
}

/** One comparison of a key attribute (which may come first or last) with request values. */
function term(op: SortOperator, operands: readonly Operand[], terms: Map<string, KeyTerm>): void {
  let key: { name: string; at: number } | undefined;
  const values: AttributeValue[] = [];
  operands.forEach((operand, at) => {
    switch (operand.kind) {
      case "path":
        if (key !== undefined) {
          throw invalidCondition("Multiple attribute names used in one condition");
        }
        if (operand.path.length > 1 || typeof operand.path[0] !== "string") {
          throw validation("KeyConditionExpressions cannot have conditions on nested attributes");
        }
        key = { name: operand.path[0], at };
        return;
      case "size":
        throw validation("KeyConditionExpressions cannot contain nested operations");
      case "value":
        values.push(operand.value);
    }
  });
  if (key === undefined) throw invalidCondition("No key attribute specified");
  if (terms.has(key.name)) {
    throw validation("KeyConditionExpressions must only contain one condition per key");
  }
  const mirrored = key.at > 0 && op !== "BETWEEN" && op !== "begins_with";
  terms.set(key.name, { op: mirrored ? MIRRORED[op] : op, values });
}
