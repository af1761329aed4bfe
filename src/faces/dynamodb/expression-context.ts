/**
 * The ExpressionAttributeNames and ExpressionAttributeValues of one DynamoDB request, which all of
 * its expressions share, and DynamoDB's checks on them: well-formed keys, and every one used.
 */
import type { AttributeValue } from "./attribute-value.js";
import { validation } from "./errors.js";

/** The request parameters that hold an expression. */
export type ExpressionKind =
  | "ConditionExpression"
  | "FilterExpression"
  | "KeyConditionExpression"
  | "UpdateExpression"
  | "ProjectionExpression";

const NAME_KEY = /^#[A-Za-z0-9_]+$/;
const VALUE_KEY = /^:[A-Za-z0-9_]+$/;

/** A request's ExpressionAttributeNames and ExpressionAttributeValues, as given (or absent). */
export interface ExpressionInput {
  readonly names?: Readonly<Record<string, string>>;
  readonly values?: Readonly<Record<string, AttributeValue>>;
}

/**
 * One request's ExpressionAttributeNames and ExpressionAttributeValues (values already validated
 * as attribute values), shared by all of the request's expressions, which record what they use.
 */
export class ExpressionContext {
  readonly #names: Readonly<Record<string, string>> | undefined;
  readonly #values: Readonly<Record<string, AttributeValue>> | undefined;
  readonly #usedNames = new Set<string>();
  readonly #usedValues = new Set<string>();
  readonly #parsed = new Set<ExpressionKind>();

  constructor(input: ExpressionInput) {
    this.#names = input.names;
    this.#values = input.values;
  }

  /**
   * For the parsers: an expression of `kind` is about to be parsed. The first one checks the
   * maps' keys (ValidationException for an empty map or a key that is no `#name` / `:value`).
   */
  begin(kind: ExpressionKind): void {
    if (this.#parsed.size === 0) {
      checkKeys("ExpressionAttributeNames", this.#names, NAME_KEY);
      checkKeys("ExpressionAttributeValues", this.#values, VALUE_KEY);
    }
    this.#parsed.add(kind);
  }

  /** For the parsers: the attribute name `reference` (`#…`) stands for, if the request gives one. */
  name(reference: string): string | undefined {
    if (this.#names === undefined || !Object.hasOwn(this.#names, reference)) return undefined;
    this.#usedNames.add(reference);
    return this.#names[reference];
  }

  /** For the parsers: the value `reference` (`:…`) stands for, if the request gives one. */
  value(reference: string): AttributeValue | undefined {
    if (this.#values === undefined || !Object.hasOwn(this.#values, reference)) return undefined;
    this.#usedValues.add(reference);
    return this.#values[reference];
  }

  /**
   * After all of a request's expressions are parsed: a ValidationException for names given
   * without any expression, values given without any of `valueExpressions` (the request's
   * parameters that may use values, in DynamoDB's order: e.g. `["UpdateExpression",
   * "ConditionExpression"]`), and for names or values no expression used.
   */
  checkAllUsed(valueExpressions: readonly ExpressionKind[]): void {
    if (this.#names !== undefined && this.#parsed.size === 0) {
      throw validation("ExpressionAttributeNames can only be specified when using expressions");
    }
    if (this.#values !== undefined && !valueExpressions.some((kind) => this.#parsed.has(kind))) {
      const which =
        valueExpressions.length === 0
          ? ""
          : `: ${valueExpressions.join(" and ")} ${valueExpressions.length > 1 ? "are" : "is"} null`;
      throw validation(
        `ExpressionAttributeValues can only be specified when using expressions${which}`,
      );
    }
    checkUsed("ExpressionAttributeNames", this.#names, this.#usedNames);
    checkUsed("ExpressionAttributeValues", this.#values, this.#usedValues);
  }
}

function checkKeys(parameter: string, map: object | undefined, pattern: RegExp): void {
  if (map === undefined) return;
  const keys = Object.keys(map);
  if (keys.length === 0) throw validation(`${parameter} must not be empty`);
  const bad = keys.find((key) => !pattern.test(key));
  if (bad !== undefined)
    throw validation(`${parameter} contains invalid key: Syntax error; key: "${bad}"`);
}

function checkUsed(parameter: string, map: object | undefined, used: ReadonlySet<string>): void {
  const unused = Object.keys(map ?? {}).filter((key) => !used.has(key));
  if (unused.length > 0) {
    throw validation(
      `Value provided in ${parameter} unused in expressions: keys: {${unused.join(", ")}}`,
    );
  }
}

/** ValidationException for an expression of `kind`: "Invalid <kind>: <message>". */
export const invalidExpression = (kind: ExpressionKind, message: string) =>
  validation(`Invalid ${kind}: ${message}`);
