/**
 * DynamoDB's attribute values, in their wire form (`{ "S": "…" }`, `{ "N": "12.5" }`, …), which is
 * also how items are stored: numbers stay decimal strings (38 significant digits, exact), binary
 * stays base64. Everything here validates input as DynamoDB does and answers with its messages.
 */
import { KvError } from "../../kv-error.js";
import { compareNumbers, numberSize, parseNumber } from "./decimal.js";
import { dynamoError, validation } from "./errors.js";

export type AttributeValue =
  | { readonly S: string }
  | { readonly N: string }
  /** Base64, as on the wire. */
  | { readonly B: string }
  | { readonly BOOL: boolean }
  | { readonly NULL: true }
  | { readonly L: readonly AttributeValue[] }
  | { readonly M: Readonly<Record<string, AttributeValue>> }
  | { readonly SS: readonly string[] }
  | { readonly NS: readonly string[] }
  | { readonly BS: readonly string[] };

export type Item = Readonly<Record<string, AttributeValue>>;

export type TypeName = "S" | "N" | "B" | "BOOL" | "NULL" | "L" | "M" | "SS" | "NS" | "BS";

/** The type of a (valid) attribute value. */
export function typeOf(value: AttributeValue): TypeName {
  return Object.keys(value)[0] as TypeName;
}

const MAX_DEPTH = 32;
const ATTRIBUTE_VALUE_CLASS = "com.amazonaws.dynamodb.v20120810.AttributeValue";
const INVALID = "One or more parameter values were invalid: ";
const EMPTY =
  "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const SEVERAL =
  "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";
const TOO_DEEP =
  "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
const EMPTY_SET = {
  SS: `${INVALID}An string set  may not be empty`,
  NS: `${INVALID}An number set  may not be empty`,
  BS: `${INVALID}Binary sets should not be empty`,
};
const STRUCTURE = "Start of structure or map found where not expected";
/** The strings DynamoDB's parser takes for a boolean, upper-cased. */
const BOOLEANS: Readonly<Record<string, boolean>> = {
  TRUE: true,
  YES: true,
  "1": true,
  FALSE: false,
  NO: false,
  "0": false,
};
const TYPE_NAMES = new Set<string>(["S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"]);

/**
 * One attribute value of a request, checked as DynamoDB checks it and normalized: numbers in
 * canonical form (`parseNumber`), everywhere including L, M and NS; otherwise the wire form as
 * sent. A JSON value of the wrong type is a SerializationException, as DynamoDB's deserializer
 * answers it (`{"S": 5}`: "NUMBER_VALUE cannot be converted to String"); everything else is a
 * ValidationException with DynamoDB's message: no or several types, `NULL` not true, an empty
 * set, a duplicate set member (numbers compared as numbers), a bad number, a value nested more
 * than 32 levels deep (the value itself is level 1; nothing deeper is read). A
 * SerializationException anywhere wins over a ValidationException, and of those the first in
 * document order is reported. JSON `null` members are absent, as in DynamoDB.
 */
export function checkValue(raw: unknown): AttributeValue {
  const reader = new Reader();
  return reader.done(reader.value(raw, 1));
}

/**
 * An item (or key) of a request: a JSON object of attribute names to values, each checked as
 * `checkValue` checks it, all serialization errors before the first validation error. An empty
 * name is a ValidationException.
 */
export function checkItem(raw: unknown): Item {
  const reader = new Reader();
  const item = Object.fromEntries(
    Object.entries(map(raw)).map(([name, value]) => {
      if (name === "") reader.note(validation("Empty attribute name"));
      return [name, reader.value(value, 1)];
    }),
  );
  return reader.done(item);
}

/**
 * Reads values as DynamoDB does: it deserializes the whole request (a wrong JSON type fails at
 * once) and only then validates it, so the first invalid value is kept until the end.
 *
 * Where DynamoDB's answer is not on record, these were chosen: `null` where a whole value or a
 * set member belongs is an empty value; base64 with characters outside the alphabet gets the
 * message of non-canonical base64; an empty attribute name gets the part of the message known
 * ("Empty attribute name").
 */
class Reader {
  private problem: KvError | undefined;

  note(problem: KvError): void {
    this.problem ??= problem;
  }

  done<T>(result: T): T {
    if (this.problem) throw this.problem;
    return result;
  }

  value(raw: unknown, depth: number): AttributeValue {
    // Deeper levels are not read: DynamoDB reports the depth before anything below it.
    if (depth > MAX_DEPTH) return this.invalid(TOO_DEEP);
    if (raw === null || raw === undefined) return this.invalid(EMPTY);
    if (Array.isArray(raw)) {
      throw serialization(`Unrecognized collection type class ${ATTRIBUTE_VALUE_CLASS}`);
    }
    if (typeof raw !== "object") throw serialization("Unexpected value type in payload");
    // Members DynamoDB does not know are ignored, as its deserializer ignores them.
    const members = Object.entries(raw).filter(([type, v]) => TYPE_NAMES.has(type) && v != null);
    const values = members.map(([type, v]) => this.member(type as TypeName, v, depth));
    if (values.length !== 1) return this.invalid(values.length ? SEVERAL : EMPTY);
    return values[0]!;
  }

  private member(type: TypeName, raw: unknown, depth: number): AttributeValue {
    switch (type) {
      case "S":
        return { S: string(raw) };
      case "N":
        return { N: this.number(string(raw)) };
      case "B":
        return { B: base64(raw) };
      case "BOOL":
        return { BOOL: boolean(raw) };
      case "NULL":
        if (!boolean(raw)) {
          this.note(validation(`${INVALID}Null attribute value types must have the value of true`));
        }
        return { NULL: true };
      case "L":
        return { L: list(raw).map((v) => this.value(v, depth + 1)) };
      case "M":
        return {
          M: Object.fromEntries(
            Object.entries(map(raw)).map(([name, v]) => [name, this.value(v, depth + 1)]),
          ),
        };
      case "SS":
        return { SS: this.set("SS", raw, string) };
      case "NS":
        return { NS: this.set("NS", raw, (v) => this.number(string(v))) };
      case "BS":
        return { BS: this.set("BS", raw, base64) };
    }
  }

  private set(type: "SS" | "NS" | "BS", raw: unknown, read: (v: unknown) => string): string[] {
    const members = list(raw).map((v) => {
      if (v != null) return read(v);
      this.note(validation(EMPTY));
      return "";
    });
    if (members.length === 0) this.note(validation(EMPTY_SET[type]));
    const repeat = firstRepeat(members);
    if (repeat >= 0) this.note(validation(duplicates(type, members, repeat)));
    return members;
  }

  private number(text: string): string {
    try {
      return parseNumber(text);
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
      this.note(error);
      return text;
    }
  }

  /** Notes a validation error and stands in for the value it spoils. */
  private invalid(message: string): AttributeValue {
    this.note(validation(message));
    return { NULL: true };
  }
}

function firstRepeat(members: readonly string[]): number {
  const seen = new Set<string>();
  for (const [index, member] of members.entries()) {
    if (seen.has(member)) return index;
    seen.add(member);
  }
  return -1;
}

/**
 * DynamoDB's message for a set whose member `repeat` repeats an earlier one. It lists the
 * members before the repeat in byte order (they went into a sorted set), then the repeat, then
 * the rest as sent; a number set's message lists none.
 */
function duplicates(type: "SS" | "NS" | "BS", members: readonly string[], repeat: number): string {
  if (type === "NS") return `${INVALID}Input collection contains duplicates.`;
  const bytes = type === "SS" ? (s: string) => Buffer.from(s) : binaryOf;
  const listed = [
    ...members.slice(0, repeat).sort((a, b) => Buffer.compare(bytes(a), bytes(b))),
    ...members.slice(repeat),
  ];
  return type === "SS"
    ? `${INVALID}Input collection [${listed.map((s) => JSON.stringify(s)).join(", ")}] contains duplicates.`
    : `${INVALID}Input collection ${JSON.stringify(listed)}of type BS contains duplicates.`;
}

const serialization = (message: string): KvError => dynamoError("SerializationException", message);

/** DynamoDB's SerializationException for `raw` where a Java `type` scalar belongs. */
function mismatch(raw: unknown, type: "String" | "Boolean"): KvError {
  if (Array.isArray(raw))
    return serialization(`Unrecognized collection type class java.lang.${type}`);
  if (typeof raw === "object") return serialization(STRUCTURE);
  if (typeof raw === "boolean") {
    return serialization(`${raw ? "TRUE" : "FALSE"}_VALUE cannot be converted to ${type}`);
  }
  // JSON.parse keeps no spelling, so `1.0` reads as an integer here where DynamoDB sees a decimal.
  const kind = typeof raw === "number" && !Number.isInteger(raw) ? "DECIMAL" : "NUMBER";
  return serialization(`${kind}_VALUE cannot be converted to ${type}`);
}

function string(raw: unknown): string {
  if (typeof raw === "string") return raw;
  throw mismatch(raw, "String");
}

function boolean(raw: unknown): boolean {
  if (typeof raw === "boolean") return raw;
  if (typeof raw !== "string") throw mismatch(raw, "Boolean");
  const value = BOOLEANS[raw.toUpperCase()];
  if (value === undefined) throw serialization("Unexpected token received from parser");
  return value;
}

/** Standard base64, padded and canonical (the bits after the last byte are zero). */
function base64(raw: unknown): string {
  if (typeof raw === "string") {
    if (raw.length % 4) {
      throw serialization(
        `Base64 encoded length is expected a multiple of 4 bytes but found: ${raw.length}`,
      );
    }
    // DynamoDB's spelling, typo included.
    if (binaryOf(raw).toString("base64") !== raw) {
      throw serialization("Invalid last non-pad Base64 character dectected");
    }
    return raw;
  }
  if (Array.isArray(raw))
    throw serialization("Unrecognized collection type class java.nio.ByteBuffer");
  if (typeof raw === "object") throw serialization(STRUCTURE);
  throw serialization("only base-64-encoded strings are convertible to bytes");
}

function list(raw: unknown): unknown[] {
  if (Array.isArray(raw)) return Array.from(raw);
  throw serialization(
    typeof raw === "object" && raw !== null ? STRUCTURE : "Unexpected field type",
  );
}

function map(raw: unknown): object {
  if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) return raw;
  throw serialization(
    Array.isArray(raw)
      ? `Unrecognized collection type java.util.Map<java.lang.String, ${ATTRIBUTE_VALUE_CLASS}>`
      : "Unexpected field type",
  );
}

/** The bytes of a binary value (base64 on the wire and in storage). */
export function binaryOf(b64: string): Buffer {
  return Buffer.from(b64, "base64");
}

/**
 * DynamoDB's equality, on values as `checkValue` returns them (where a number and a byte string
 * each have one spelling): numbers by value, binaries by bytes, sets as sets, lists in order,
 * maps by their names. Values of different types are never equal.
 */
export function equals(a: AttributeValue, b: AttributeValue): boolean {
  if ("L" in a)
    return "L" in b && a.L.length === b.L.length && a.L.every((v, i) => equals(v, b.L[i]!));
  if ("M" in a) {
    const names = Object.keys(a.M);
    return (
      "M" in b &&
      names.length === Object.keys(b.M).length &&
      names.every((name) => Object.hasOwn(b.M, name) && equals(a.M[name]!, b.M[name]!))
    );
  }
  const type = typeOf(a);
  if (type !== typeOf(b)) return false;
  const x = payload(a);
  const y = payload(b);
  if (Array.isArray(x) && Array.isArray(y)) {
    const members = new Set<unknown>(y);
    return x.length === y.length && x.every((m) => members.has(m));
  }
  return x === y;
}

/**
 * The order of DynamoDB's comparators and sort keys: strings by their UTF-8 bytes, numbers by
 * value, binaries by unsigned bytes; -1, 0 or 1. `undefined` when the types differ or are not
 * S, N or B (such comparisons are false in a condition).
 */
export function compare(a: AttributeValue, b: AttributeValue): number | undefined {
  if ("S" in a && "S" in b) return Math.sign(Buffer.compare(Buffer.from(a.S), Buffer.from(b.S)));
  if ("N" in a && "N" in b) return compareNumbers(a.N, b.N);
  if ("B" in a && "B" in b) return Math.sign(Buffer.compare(binaryOf(a.B), binaryOf(b.B)));
  return undefined;
}

/**
 * A value's size as DynamoDB counts it toward the 400 KB item limit (the developer guide's "Item
 * sizes and formats"): S its UTF-8 bytes, N per `numberSize`, B its raw bytes, BOOL and NULL 1,
 * a set the sum of its members, L and M 3 plus, per element, 1 and its size (and a map
 * element's name in UTF-8).
 */
export function valueSize(value: AttributeValue): number {
  if ("S" in value) return utf8Size(value.S);
  if ("N" in value) return numberSize(value.N);
  if ("B" in value) return binarySize(value.B);
  if ("SS" in value) return sum(value.SS, utf8Size);
  if ("NS" in value) return sum(value.NS, numberSize);
  if ("BS" in value) return sum(value.BS, binarySize);
  if ("L" in value) return 3 + sum(value.L, (v) => 1 + valueSize(v));
  if ("M" in value) return 3 + Object.keys(value.M).length + itemSize(value.M);
  return 1;
}

/** An item's size as DynamoDB counts it: each attribute's name in UTF-8 plus its value's size. */
export function itemSize(item: Item): number {
  return sum(Object.entries(item), ([name, value]) => utf8Size(name) + valueSize(value));
}

const utf8Size = (s: string): number => Buffer.byteLength(s, "utf8");
const binarySize = (b64: string): number => Buffer.byteLength(b64, "base64");

function sum<T>(items: readonly T[], size: (item: T) => number): number {
  return items.reduce((total, item) => total + size(item), 0);
}

function payload(value: AttributeValue): unknown {
  return Object.values(value)[0];
}
