/**
 * A DynamoDB request's JSON members, read by name and type: a member of the wrong JSON type is a
 * `SerializationException` (as DynamoDB's parser answers), and a member no operation reads is
 * refused rather than ignored (`done`).
 */
import { dynamoError } from "./errors.js";

type Json = null | boolean | number | string | Json[] | { [name: string]: Json };
export type JsonObject = { readonly [name: string]: Json };

const wrongType = (what: string, expected: string, got: unknown) =>
  dynamoError(
    "SerializationException",
    `${jsonType(got)} cannot be converted to ${expected} (at ${what})`,
  );

function jsonType(value: unknown): string {
  if (value === null) return "NULL_VALUE";
  if (Array.isArray(value)) return "START_ARRAY";
  switch (typeof value) {
    case "string":
      return "VALUE_STRING";
    case "number":
      return Number.isInteger(value) ? "VALUE_NUMBER_INT" : "VALUE_NUMBER_FLOAT";
    case "boolean":
      return value ? "VALUE_TRUE" : "VALUE_FALSE";
    default:
      return "START_OBJECT";
  }
}

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** An object of a request, whose members are taken one by one. */
export class Input {
  readonly #read = new Set<string>();

  constructor(
    readonly members: JsonObject,
    /** Where it is in the request, for messages (`""`: the request itself). */
    readonly path = "",
  ) {}

  static of(value: unknown, path: string): Input {
    if (!isObject(value)) throw wrongType(path || "the request", "an object", value);
    return new Input(value, path);
  }

  #where(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  /** The member `name` as JSON; `undefined` when absent or null. */
  raw(name: string): unknown {
    this.#read.add(name);
    const value = this.members[name];
    return value === null ? undefined : value;
  }

  has(name: string): boolean {
    return this.members[name] !== undefined && this.members[name] !== null;
  }

  string(name: string): string | undefined {
    const value = this.raw(name);
    if (value !== undefined && typeof value !== "string") {
      throw wrongType(this.#where(name), "String", value);
    }
    return value;
  }

  number(name: string): number | undefined {
    const value = this.raw(name);
    if (value !== undefined && typeof value !== "number") {
      throw wrongType(this.#where(name), "Number", value);
    }
    return value;
  }

  boolean(name: string): boolean | undefined {
    const value = this.raw(name);
    if (value !== undefined && typeof value !== "boolean") {
      throw wrongType(this.#where(name), "Boolean", value);
    }
    return value;
  }

  object(name: string): Input | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (!isObject(value)) throw wrongType(this.#where(name), "an object", value);
    return new Input(value, this.#where(name));
  }

  /** A map member, as its JSON (its values are read by the caller). */
  map(name: string): JsonObject | undefined {
    const value = this.raw(name);
    if (value !== undefined && !isObject(value)) {
      throw wrongType(this.#where(name), "a map", value);
    }
    return value;
  }

  list(name: string): readonly unknown[] | undefined {
    const value = this.raw(name);
    if (value !== undefined && !Array.isArray(value)) {
      throw wrongType(this.#where(name), "a list", value);
    }
    return value;
  }

  /** A list of objects. */
  objects(name: string): Input[] | undefined {
    return this.list(name)?.map((value, i) => Input.of(value, `${this.#where(name)}.${i + 1}`));
  }

  /** A list of strings. */
  strings(name: string): string[] | undefined {
    return this.list(name)?.map((value, i) => {
      if (typeof value !== "string")
        throw wrongType(`${this.#where(name)}.${i + 1}`, "String", value);
      return value;
    });
  }

  /**
   * Refuses members nobody read: what Cairn does not implement is said, not ignored. Members
   * that carry no meaning for Cairn and are accepted as given are named in `accepted`.
   */
  done(accepted: readonly string[] = []): void {
    for (const name of Object.keys(this.members)) {
      if (this.#read.has(name) || accepted.includes(name) || this.members[name] === null) continue;
      throw dynamoError(
        "ValidationException",
        `Cairn does not support the parameter ${this.#where(name)}; remove it from the request`,
      );
    }
  }
}
