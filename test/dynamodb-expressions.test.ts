/**
 * DynamoDB's expression language on the DynamoDB face: the parsers accept DynamoDB's grammar and
 * refuse everything else with DynamoDB's messages, in DynamoDB's order; fuzzed, they only ever
 * throw the face's ValidationException.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AttributeValue, Item } from "../src/faces/dynamodb/attribute-value.js";
import { parseNumber } from "../src/faces/dynamodb/decimal.js";
import { faultOf } from "../src/faces/dynamodb/errors.js";
import {
  ExpressionContext,
  type ExpressionInput,
  type ExpressionKind,
} from "../src/faces/dynamodb/expression-context.js";
import { applyUpdate, evaluate, project, valueAt } from "../src/faces/dynamodb/expression-eval.js";
import {
  parseCondition,
  parseProjection,
  parseUpdate,
} from "../src/faces/dynamodb/expression-parser.js";
import { keyCondition } from "../src/faces/dynamodb/key-condition.js";
import { KvError } from "../src/kv-error.js";
import { edgeString, fuzz, returnsOrKvError } from "./fuzz/fuzz.js";

/** Request values the cases below use, one of each type. */
const VALUES: Record<string, AttributeValue> = {
  ":s": { S: "abc" },
  ":n": { N: "1" },
  ":b": { B: "YWJj" },
  ":t": { BOOL: true },
  ":z": { NULL: true },
  ":l": { L: [{ S: "x" }] },
  ":m": { M: { x: { N: "1" } } },
  ":ss": { SS: ["a", "b"] },
  ":ns": { NS: ["1", "2"] },
  ":bs": { BS: ["YQ=="] },
};

const withValues = (input: ExpressionInput = {}) =>
  new ExpressionContext({ values: VALUES, ...input });

const condition = (text: string, input?: ExpressionInput) =>
  parseCondition(text, "ConditionExpression", withValues(input));
const update = (text: string, input?: ExpressionInput) => parseUpdate(text, withValues(input));
const projection = (text: string, input?: ExpressionInput) =>
  parseProjection(text, new ExpressionContext(input ?? {}));

/** The message of the ValidationException `run` throws. */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    if (!(e instanceof KvError)) throw e;
    expect(faultOf(e).type).toBe("ValidationException");
    return e.message;
  }
  throw new Error("not refused");
}

describe("syntax", () => {
  it("parses paths, references, precedence and keywords in any case", () => {
    expect(
      condition("a.#n[2].c = :s OR b = :n and NOT c <> :s", { names: { "#n": "x y" } }),
    ).toEqual({
      kind: "or",
      left: {
        kind: "compare",
        op: "=",
        left: { kind: "path", path: ["a", "x y", 2, "c"] },
        right: { kind: "value", value: VALUES[":s"] },
      },
      right: {
        kind: "and",
        left: {
          kind: "compare",
          op: "=",
          left: { kind: "path", path: ["b"] },
          right: { kind: "value", value: VALUES[":n"] },
        },
        right: {
          kind: "not",
          condition: {
            kind: "compare",
            op: "<>",
            left: { kind: "path", path: ["c"] },
            right: { kind: "value", value: VALUES[":s"] },
          },
        },
      },
    });
    expect(condition("a BeTwEeN :n aNd :n")).toMatchObject({ kind: "between" });
    expect(condition("a in (:n, :s, b)")).toMatchObject({ kind: "in", list: { length: 3 } });
    expect(condition("(a = :n OR b = :n) AND c = :n")).toMatchObject({
      kind: "and",
      left: { kind: "or" },
    });
    expect(condition("size(a) >= :n")).toMatchObject({ left: { kind: "size" } });
    expect(condition("attribute_not_exists (a)")).toMatchObject({
      kind: "function",
      name: "attribute_not_exists",
    });
    // A parenthesized path goes on, and whitespace is free.
    expect(condition("(a . b) [ 1 ] = :n")).toMatchObject({
      left: { path: ["a", "b", 1] },
    });
  });

  it("parses update clauses in any order and case", () => {
    expect(
      update("remove x[1], y ADD n :n set a = (b) + :n, c = if_not_exists(c, :l) DELETE s :ss")
        .actions,
    ).toEqual([
      { kind: "REMOVE", path: ["x", 1] },
      { kind: "REMOVE", path: ["y"] },
      { kind: "ADD", path: ["n"], value: VALUES[":n"] },
      {
        kind: "SET",
        path: ["a"],
        value: {
          kind: "+",
          left: { kind: "path", path: ["b"] },
          right: { kind: "value", value: VALUES[":n"] },
        },
      },
      {
        kind: "SET",
        path: ["c"],
        value: {
          kind: "if_not_exists",
          path: ["c"],
          fallback: { kind: "value", value: VALUES[":l"] },
        },
      },
      { kind: "DELETE", path: ["s"], value: VALUES[":ss"] },
    ]);
    expect(
      update("SET a = ((b) - :n), c = list_append(:l, if_not_exists(c, :l))").actions,
    ).toHaveLength(2);
  });

  it("parses projections", () => {
    expect(projection("a, b.c[1], #d", { names: { "#d": "d.e" } })).toEqual([
      ["a"],
      ["b", "c", 1],
      ["d.e"],
    ]);
  });

  it.each([
    ["ConditionExpression", "foo", `token: "<EOF>", near: "foo"`],
    ["ConditionExpression", "a", `token: "<EOF>", near: "a"`],
    ["ConditionExpression", ":s", `token: "<EOF>", near: ":s"`],
    ["ConditionExpression", "NOT a", `token: "<EOF>", near: "a"`],
    ["ConditionExpression", "a AND :s", `token: "AND", near: "a AND :s"`],
    ["ConditionExpression", "a > 4", `token: "4", near: "> 4"`],
    ["ConditionExpression", "a != :s", `token: "!", near: "a !="`],
    ["ConditionExpression", "a == :s", `token: "=", near: "== :s"`],
    ["ConditionExpression", "a IN ()", `token: ")", near: "()"`],
    ["ConditionExpression", "a IN :s", `token: ":s", near: "IN :s"`],
    ["ConditionExpression", "a > between", `token: "between", near: "> between"`],
    ["ConditionExpression", "a = b + :n", `token: "+", near: "b + :n"`],
    ["ConditionExpression", "#l[-1].#c = :s", `token: "-", near: "[-1"`],
    ["ConditionExpression", "#l[abc] = :s", `token: "abc", near: "[abc]"`],
    ["ConditionExpression", "(a = :s) = :s", `token: "=", near: ") = :s"`],
    ["ConditionExpression", "ü > a", `token: "ü", near: "ü >"`],
    ["ConditionExpression", "size(a).b > :n", `token: ".", near: ").b"`],
    ["ConditionExpression", "   ", `token: "<EOF>", near: ""`],
    ["UpdateExpression", "SET = :s", `token: "=", near: "SET = :s"`],
    ["UpdateExpression", "ADD hits : incr", `token: ":", near: "hits : incr"`],
    ["UpdateExpression", "SET MyStr = myNum + 1", `token: "1", near: "+ 1"`],
    ["UpdateExpression", "SET numx = numx * :n", `token: "*", near: "numx * :n"`],
    ["UpdateExpression", "SET note = :n +", `token: "<EOF>", near: "+"`],
    ["UpdateExpression", "ADD numx", `token: "<EOF>", near: "numx"`],
    ["UpdateExpression", "DELETE setx a", `token: "a", near: "setx a"`],
    ["UpdateExpression", "SET _123 = :s", `token: "_", near: "SET _123"`],
    ["UpdateExpression", "SET #l[0.#c = :s", `token: ".", near: "0.#c"`],
    ["UpdateExpression", "HELLO a = :s", `token: "HELLO", near: "HELLO a"`],
    ["UpdateExpression", "SET a = :s b = :s", `token: "b", near: ":s b ="`],
    ["UpdateExpression", "SET a = b + c + d", `token: "+", near: "c + d"`],
    ["UpdateExpression", "SET c = if_not_exists(c, :n + :n)", `token: "+", near: ":n + :n"`],
    ["UpdateExpression", "SET a = set", `token: "set", near: "= set"`],
    ["UpdateExpression", "SET :s = a", `token: ":s", near: "SET :s ="`],
    ["UpdateExpression", "REMOVE a = b", `token: "=", near: "a = b"`],
    ["UpdateExpression", "SET (a = (b + c))", `token: "(", near: "SET (a"`],
    ["ProjectionExpression", "#l[].#c", `token: "]", near: "[]."`],
    ["ProjectionExpression", "a,", `token: "<EOF>", near: ","`],
    ["ProjectionExpression", "(a)", `token: "(", near: "(a"`],
  ] as const)("%s %j: syntax error", (kind, text, where) => {
    const context = withValues({ names: { "#l": "l", "#c": "c" } });
    const parse = () =>
      kind === "UpdateExpression"
        ? parseUpdate(text, context)
        : kind === "ProjectionExpression"
          ? parseProjection(text, context)
          : parseCondition(text, kind, context);
    expect(refusal(parse)).toBe(`Invalid ${kind}: Syntax error; ${where}`);
  });

  it("refuses an empty expression, one over 4 KB, and over 300 operators", () => {
    expect(refusal(() => condition(""))).toBe(
      "Invalid ConditionExpression: The expression can not be empty;",
    );
    const padded = (bytes: number) => `a = :s${" ".repeat(bytes - 6)}`;
    expect(condition(padded(4096))).toMatchObject({ kind: "compare" });
    expect(refusal(() => condition(padded(4097)))).toBe(
      "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4097",
    );
    // UTF-8 bytes, not characters.
    expect(refusal(() => condition(`é = :s${" ".repeat(4089)}`))).toMatch(/Syntax error/);
    expect(refusal(() => condition(`é = :s${" ".repeat(4090)}`))).toMatch(/expression size: 4097$/);
    const disjunction = (n: number) => Array.from({ length: n }, () => "a=:n").join(" OR ");
    expect(condition(disjunction(150))).toMatchObject({ kind: "or" });
    expect(refusal(() => condition(disjunction(151)))).toBe(
      "Invalid ConditionExpression: The expression contains too many operators; operator count: 301",
    );
  });

  it("refuses deep paths, huge list indexes, and nesting no expression needs", () => {
    const deep = (levels: number) => Array.from({ length: levels }, (_, i) => `a${i}`).join(".");
    expect(projection(deep(32))).toHaveLength(1);
    expect(refusal(() => projection(deep(33)))).toBe(
      "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33",
    );
    expect(projection("a[2147483647]")).toEqual([["a", 2147483647]]);
    expect(refusal(() => projection("a[99999999999999]"))).toBe(
      "Invalid ProjectionExpression: List index is not within the allowable range; index: [99999999999999]",
    );
    expect(refusal(() => condition(`${"(".repeat(2000)}a = :s${")".repeat(2000)}`))).toBe(
      "Invalid ConditionExpression: The expression has too many nesting levels; nesting levels: 401",
    );
    expect(refusal(() => update(`SET a = ${"f(".repeat(2000)}`))).toMatch(/nesting levels: 401$/);
  });
});

describe("meaning", () => {
  it.each([
    ["((a = :s))", "The expression has redundant parentheses;"],
    ["a = :s AND ((b = :s AND c = :s)) AND d = :s", "The expression has redundant parentheses;"],
    ["a > ((b))", "The expression has redundant parentheses;"],
    ["(a)between(((b.c)).d)and(c)", "The expression has redundant parentheses;"],
    ["dog(a) = :n", "Invalid function name; function: dog"],
    ["BEGINS_WITH(a, :s)", "Invalid function name; function: BEGINS_WITH"],
    ["a = :s and whatever((:s)) > a", "Invalid function name; function: whatever"],
    [
      "if_not_exists(a, a) = :n",
      "The function is not allowed in a condition expression; function: if_not_exists",
    ],
    ["size(a)", "The function is not allowed to be used this way in an expression; function: size"],
    [
      "attribute_exists(a) < :n",
      "The function is not allowed to be used this way in an expression; function: attribute_exists",
    ],
    [
      "size(contains(a, b)) > a",
      "The function is not allowed to be used this way in an expression; function: contains",
    ],
    [
      "a IN (b, attribute_exists(c))",
      "The function is not allowed to be used this way in an expression; function: attribute_exists",
    ],
    [
      "attribute_exists(views, #x)",
      "Attribute name is a reserved keyword; reserved keyword: views",
    ],
    [":s < abOrT", "Attribute name is a reserved keyword; reserved keyword: abOrT"],
    [
      "#x = :s",
      "An expression attribute name used in the document path is not defined; attribute name: #x",
    ],
    [
      "a = :nope",
      "An expression attribute value used in expression is not defined; attribute value: :nope",
    ],
    [
      "size(a, a) = :n",
      "Incorrect number of operands for operator or function; operator or function: size, number of operands: 2",
    ],
    [
      "begins_with(a)",
      "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1",
    ],
    [
      "a = a",
      "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]",
    ],
    [
      "contains(a.b[1], #a.b[1])",
      "The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a, b, [1]]",
    ],
    [
      "attribute_exists(:s)",
      "Operator or function requires a document path; operator or function: attribute_exists",
    ],
    [
      "begins_with(a, :n)",
      "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
    ],
    [
      "begins_with(a, size(b))",
      "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
    ],
    [
      "attribute_type(a, :n)",
      "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
    ],
    [
      "attribute_type(a, b)",
      "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}",
    ],
    [
      "size(:n) > a",
      "Incorrect operand type for operator or function; operator or function: size, operand type: N",
    ],
    [
      "size(size(a)) > :n",
      "Incorrect operand type for operator or function; operator or function: size, operand type: N",
    ],
    [
      "a < :l",
      "Incorrect operand type for operator or function; operator or function: <, operand type: L",
    ],
    [
      "a BETWEEN :t AND :n",
      "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: BOOL",
    ],
  ])("%j", (text, message) => {
    expect(refusal(() => condition(text, { names: { "#a": "a" } }))).toBe(
      `Invalid ConditionExpression: ${message}`,
    );
  });

  it("checks attribute_type's type names and IN's operand count", () => {
    expect(
      refusal(() =>
        parseCondition(
          "attribute_type(a, :t)",
          "FilterExpression",
          new ExpressionContext({ values: { ":t": { S: "DOG" } } }),
        ),
      ),
    ).toBe(
      "Invalid FilterExpression: Invalid attribute type name found; type: DOG, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
    );
    const within = (n: number) => {
      const values = Object.fromEntries(
        Array.from({ length: n }, (_, i) => [`:v${i}`, { N: `${i}` }] as const),
      );
      return parseCondition(
        `a IN (${Object.keys(values).join(",")})`,
        "ConditionExpression",
        new ExpressionContext({ values }),
      );
    };
    expect(within(99)).toMatchObject({ kind: "in" });
    expect(refusal(() => within(100))).toBe(
      "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101",
    );
  });

  it("checks BETWEEN's bounds when the request gives both", () => {
    const between = (low: AttributeValue, high: AttributeValue) =>
      parseCondition(
        "a between :b and :a",
        "KeyConditionExpression",
        new ExpressionContext({ values: { ":a": high, ":b": low } }),
      );
    expect(refusal(() => between({ N: "1" }, { S: "a" }))).toBe(
      "Invalid KeyConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}",
    );
    expect(refusal(() => between({ S: "b" }, { S: "a" }))).toBe(
      "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {S:b}, upper bound operand: AttributeValue: {S:a}",
    );
    expect(refusal(() => between({ N: "10" }, { N: "9" }))).toMatch(/upper bound to be greater/);
    expect(between({ N: "9" }, { N: "10" })).toMatchObject({ kind: "between" });
    expect(between({ S: "a" }, { S: "a" })).toMatchObject({ kind: "between" });
  });

  it("reports the first kind of problem DynamoDB reports", () => {
    // Parentheses before function names before reserved words before references before operand counts.
    expect(refusal(() => condition("dog(views) = :nope AND ((a = b))"))).toMatch(/redundant/);
    expect(refusal(() => condition("size(views, #x) = :nope AND dog(a) = :n"))).toMatch(
      /function: dog$/,
    );
    expect(refusal(() => condition("size(views, #x) = :nope"))).toMatch(/keyword: views$/);
    expect(refusal(() => condition("size(a, #x) = :nope"))).toMatch(/attribute name: #x$/);
    expect(refusal(() => condition("size(a, b) = c AND c = c"))).toMatch(/number of operands: 2$/);
  });

  it.each([
    ["SET a = :s SET c = :s", 'The "SET" section can only be used once in an update expression;'],
    [
      "REMOVE d SET a = b REMOVE e",
      'The "REMOVE" section can only be used once in an update expression;',
    ],
    [" remove Absolute ", "Attribute name is a reserved keyword; reserved keyword: Absolute"],
    ["SET a = size(b)", "The function is not allowed in an update expression; function: size"],
    ["SET a = f123_hi(b)", "Invalid function name; function: f123_hi"],
    [
      "SET #x = :s",
      "An expression attribute name used in the document path is not defined; attribute name: #x",
    ],
    [
      "SET a = if_not_exists(:nope)",
      "An expression attribute value used in expression is not defined; attribute value: :nope",
    ],
    [
      "SET a = :s REMOVE a",
      "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
    ],
    [
      "SET a = :s, a.b = :s",
      "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
    ],
    [
      "SET a[1][1] = :s, a[1] = :s",
      "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, [1], [1]], path two: [a, [1]]",
    ],
    [
      "SET #a = :s, a = :s",
      "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
    ],
    [
      "SET a.b = :s, a[1] = :s",
      "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]",
    ],
    [
      "ADD a.b :s",
      "Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND",
    ],
    [
      "ADD a :l",
      "Incorrect operand type for operator or function; operator: ADD, operand type: LIST, typeSet: ALLOWED_FOR_ADD_OPERAND",
    ],
    [
      "DELETE a :n",
      "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND",
    ],
    [
      "DELETE a :m",
      "Incorrect operand type for operator or function; operator: DELETE, operand type: MAP, typeSet: ALLOWED_FOR_DELETE_OPERAND",
    ],
    [
      "SET a = if_not_exists(c)",
      "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1",
    ],
    [
      "SET a = if_not_exists(:s, c)",
      "Operator or function requires a document path; operator or function: if_not_exists",
    ],
    [
      "SET a = if_not_exists(if_not_exists(a, :n), :n)",
      "Operator or function requires a document path; operator or function: if_not_exists",
    ],
    [
      "SET a = list_append(:s, a)",
      "Incorrect operand type for operator or function; operator or function: list_append, operand type: S",
    ],
    [
      "SET a = list_append(a, :m)",
      "Incorrect operand type for operator or function; operator or function: list_append, operand type: M",
    ],
    [
      "SET a = list_append(list_append(:l, :l), :l)",
      "The function is not allowed to be used this way in an expression; function: list_append",
    ],
    [
      "SET a = a + :s",
      "Incorrect operand type for operator or function; operator or function: +, operand type: S",
    ],
    [
      "SET a = :b - a",
      "Incorrect operand type for operator or function; operator or function: -, operand type: B",
    ],
  ])("%j", (text, message) => {
    expect(refusal(() => update(text, { names: { "#a": "a" } }))).toBe(
      `Invalid UpdateExpression: ${message}`,
    );
  });

  it.each([
    ["list[0].#c", "Attribute name is a reserved keyword; reserved keyword: list"],
    [
      "#x",
      "An expression attribute name used in the document path is not defined; attribute name: #x",
    ],
    [
      "a.b[0], a.b[0]",
      "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b, [0]], path two: [a, b, [0]]",
    ],
    [
      "a, a.b[0]",
      "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b, [0]]",
    ],
    [
      "a.b, a[1]",
      "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]",
    ],
  ])("projection %j", (text, message) => {
    expect(refusal(() => projection(text, { names: { "#c": "COMMENT" } }))).toBe(
      `Invalid ProjectionExpression: ${message}`,
    );
  });

  it("accepts paths that only share a prefix, and functions within functions where DynamoDB does", () => {
    expect(projection("a.b, a.c, c[1].x, c[2]")).toHaveLength(4);
    expect(update("SET a.b = :s, a.c.d = :s, b.x = :s REMOVE a.x, b.y").actions).toHaveLength(5);
    expect(
      update(
        "SET a = list_append(if_not_exists(a, :l), :l), b = if_not_exists(b, if_not_exists(c, :n))",
      ).actions,
    ).toHaveLength(2);
    expect(update("SET b = if_not_exists(b, :n) + :n").actions).toHaveLength(1);
  });
});

describe("ExpressionContext", () => {
  const kinds = ["UpdateExpression", "ConditionExpression"] as const satisfies ExpressionKind[];

  it("refuses names or values no expression uses", () => {
    const context = new ExpressionContext({
      names: { "#a": "a", "#b": "b", "#c": "c" },
      values: { ":a": VALUES[":s"]!, ":b": VALUES[":s"]!, ":c": VALUES[":s"]! },
    });
    parseUpdate("SET #c = :c", context);
    parseCondition("#c = :c", "ConditionExpression", context);
    expect(refusal(() => context.checkAllUsed(kinds))).toBe(
      "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}",
    );
    parseProjection("#a, #b", context);
    expect(refusal(() => context.checkAllUsed(kinds))).toBe(
      "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :b}",
    );
    // A reference counts as used however evaluation would short-circuit.
    const short = new ExpressionContext({ names: { "#a": "a" }, values: { ":a": VALUES[":s"]! } });
    parseCondition("attribute_not_exists(x) OR #a = :a", "ConditionExpression", short);
    short.checkAllUsed(kinds);
  });

  it("refuses names or values given without an expression that could use them", () => {
    expect(refusal(() => new ExpressionContext({ names: {} }).checkAllUsed(kinds))).toBe(
      "ExpressionAttributeNames can only be specified when using expressions",
    );
    expect(refusal(() => new ExpressionContext({ values: {} }).checkAllUsed(kinds))).toBe(
      "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null",
    );
    const scan = new ExpressionContext({ values: { ":a": VALUES[":s"]! } });
    parseProjection("a", scan);
    expect(refusal(() => scan.checkAllUsed(["FilterExpression"]))).toBe(
      "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null",
    );
    new ExpressionContext({}).checkAllUsed(kinds);
  });

  it("refuses empty maps and malformed keys when an expression is parsed", () => {
    expect(refusal(() => projection("a", { names: {} }))).toBe(
      "ExpressionAttributeNames must not be empty",
    );
    expect(refusal(() => projection("a", { names: { a: "a" } }))).toBe(
      'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"',
    );
    expect(refusal(() => condition("a = :s", { values: {} }))).toBe(
      "ExpressionAttributeValues must not be empty",
    );
    expect(refusal(() => condition("a = :s", { values: { "::s": VALUES[":s"]! } }))).toBe(
      'ExpressionAttributeValues contains invalid key: Syntax error; key: "::s"',
    );
  });
});

describe("keyCondition", () => {
  const key = (text: string, schema: readonly [string, string?] = ["p", "c"]) =>
    keyCondition(
      parseCondition(text, "KeyConditionExpression", withValues({ names: { "#p": "p" } })),
      ...schema,
    );

  it("splits the partition key's equality from the sort key's condition", () => {
    expect(key("p = :s")).toEqual({ hash: VALUES[":s"] });
    expect(key("#p = :s AND c BETWEEN :n AND :n")).toEqual({
      hash: VALUES[":s"],
      sort: { op: "BETWEEN", values: [VALUES[":n"], VALUES[":n"]] },
    });
    expect(key("begins_with(c, :s) and :s = p")).toEqual({
      hash: VALUES[":s"],
      sort: { op: "begins_with", values: [VALUES[":s"]] },
    });
    // The key may come last; the comparison is then mirrored.
    for (const [written, meant] of [
      ["<", ">"],
      ["<=", ">="],
      [">", "<"],
      [">=", "<="],
      ["=", "="],
    ]) {
      expect(key(`(p = :s) AND (:n ${written} c)`).sort).toEqual({
        op: meant,
        values: [VALUES[":n"]],
      });
    }
    expect(key("p = :s", ["p"])).toEqual({ hash: VALUES[":s"] });
  });

  it.each([
    ["p = :s OR c = :n", "Invalid operator used in KeyConditionExpression: OR"],
    ["NOT p = :s", "Invalid operator used in KeyConditionExpression: NOT"],
    ["p IN (:s, :n)", "Invalid operator used in KeyConditionExpression: IN"],
    ["p <> :s", "Invalid operator used in KeyConditionExpression: <>"],
    ["attribute_exists(p)", "Invalid operator used in KeyConditionExpression: attribute_exists"],
    ["contains(p, :s)", "Invalid operator used in KeyConditionExpression: contains"],
    ["p = :s AND size(c) > :n", "KeyConditionExpressions cannot contain nested operations"],
    [
      "p = :s AND c BETWEEN size(c) AND :n",
      "KeyConditionExpressions cannot contain nested operations",
    ],
    [
      ":s BETWEEN p AND c",
      "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand",
    ],
    [
      "begins_with(:s, c)",
      "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand",
    ],
    [
      "p = c",
      "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
    ],
    ["p.x = :s", "KeyConditionExpressions cannot have conditions on nested attributes"],
    ["p[0] = :s", "KeyConditionExpressions cannot have conditions on nested attributes"],
    [
      ":s = :n AND p = :s",
      "Invalid condition in KeyConditionExpression: No key attribute specified",
    ],
    ["p = :s AND #p = :s", "KeyConditionExpressions must only contain one condition per key"],
    ["p = :s AND c = :n AND x = :n", "Conditions can be of length 1 or 2 only"],
    ["c = :n", "Query condition missed key schema element: p"],
    ["p = :s AND x = :n", "Query condition missed key schema element: c"],
    ["p > :s", "Query key condition not supported"],
    ["p BETWEEN :s AND :s", "Query key condition not supported"],
  ])("%j", (text, message) => {
    expect(refusal(() => key(text))).toBe(message);
  });

  it("refuses a sort key condition on a table without a sort key", () => {
    expect(refusal(() => key("p = :s AND c = :n", ["p"]))).toBe(
      "Query key condition not supported",
    );
  });
});

/** An item with an attribute of each type, and nested ones. */
const ITEM: Item = {
  s: { S: "hello" },
  e: { S: "é" },
  n: { N: "10" },
  b: { B: "AIA=" },
  t: { BOOL: true },
  z: { NULL: true },
  l: { L: [{ S: "x" }, { N: "2" }, { M: { k: { S: "v" } } }] },
  m: { M: { a: { N: "1" }, xs: { L: [{ N: "1" }, { N: "2" }, { N: "3" }, { N: "4" }] } } },
  ss: { SS: ["a", "b"] },
  ns: { NS: ["1", "2.5"] },
  bs: { BS: ["AA==", "AQ=="] },
};

describe("evaluate", () => {
  const holds = (
    text: string,
    item: Item | undefined = ITEM,
    values: ExpressionInput["values"] = {},
  ) =>
    evaluate(
      parseCondition(
        text,
        "ConditionExpression",
        new ExpressionContext({ values: { ...VALUES, ...values } }),
      ),
      item,
    );

  it("compares values as DynamoDB does", () => {
    expect(holds("s = :v", ITEM, { ":v": { S: "hello" } })).toBe(true);
    expect(holds("n = :v", ITEM, { ":v": { N: "10" } })).toBe(true);
    expect(holds("n = :v", ITEM, { ":v": { S: "10" } })).toBe(false);
    expect(holds("ss = :v", ITEM, { ":v": { SS: ["b", "a"] } })).toBe(true);
    expect(holds("m = :v", ITEM, { ":v": ITEM.m! })).toBe(true);
    expect(holds("n > :v", ITEM, { ":v": { N: "9" } })).toBe(true);
    expect(holds("n <= :v", ITEM, { ":v": { N: "1E1" } })).toBe(true);
    // Strings by UTF-8 bytes (U+1F600 after U+FF61, though not in UTF-16), binaries unsigned.
    expect(holds(":v > :w", ITEM, { ":v": { S: "😀" }, ":w": { S: "｡" } })).toBe(true);
    expect(holds(":v > :w", ITEM, { ":v": { B: "gA==" }, ":w": { B: "fw==" } })).toBe(true);
    // Different or unordered types, and absent attributes, are false, never errors; <> is true.
    expect(holds("n < s")).toBe(false);
    expect(holds("l < :n")).toBe(false);
    expect(holds("absent = :n")).toBe(false);
    expect(holds("absent = gone")).toBe(false);
    expect(holds("absent <> :n")).toBe(true);
    expect(holds("absent <> gone")).toBe(true);
    expect(holds("absent < gone")).toBe(false);
    expect(holds("n <> :n")).toBe(true);
    expect(holds("s <> s2", { s: { S: "x" }, s2: { S: "x" } })).toBe(false);
  });

  it("evaluates BETWEEN, IN and the logical operators", () => {
    expect(holds("n BETWEEN :a AND :b", ITEM, { ":a": { N: "10" }, ":b": { N: "11" } })).toBe(true);
    expect(holds("n BETWEEN :a AND :b", ITEM, { ":a": { N: "11" }, ":b": { N: "12" } })).toBe(
      false,
    );
    expect(holds("n BETWEEN :a AND :b", ITEM, { ":a": { S: "1" }, ":b": { S: "2" } })).toBe(false);
    expect(holds("absent BETWEEN :n AND :n")).toBe(false);
    expect(holds("n BETWEEN m.a AND absent")).toBe(false);
    expect(holds("n IN (:s, :v, :n)", ITEM, { ":v": { N: "10" } })).toBe(true);
    expect(holds("n IN (:s, :n)")).toBe(false);
    expect(holds("absent IN (:s, :n)")).toBe(false);
    expect(holds("NOT n = :n AND (s = :s OR attribute_exists(s))")).toBe(true);
    expect(holds("NOT NOT attribute_exists(s)")).toBe(true);
    expect(holds("attribute_exists(s) AND attribute_exists(absent)")).toBe(false);
  });

  it("evaluates the functions on every type", () => {
    expect(holds("attribute_exists(m.xs[3])")).toBe(true);
    expect(holds("attribute_exists(m.xs[4])")).toBe(false);
    expect(holds("attribute_exists(l[2].k)")).toBe(true);
    expect(holds("attribute_exists(m[0])")).toBe(false);
    expect(holds("attribute_not_exists(m.nope)")).toBe(true);
    for (const [name, type] of Object.entries({
      s: "S",
      n: "N",
      b: "B",
      t: "BOOL",
      z: "NULL",
      l: "L",
      m: "M",
      ss: "SS",
      ns: "NS",
      bs: "BS",
    })) {
      expect(holds(`attribute_type(${name}, :t)`, ITEM, { ":t": { S: type } })).toBe(true);
      expect(
        holds(`attribute_type(${name}, :t)`, ITEM, { ":t": { S: type === "S" ? "N" : "S" } }),
      ).toBe(false);
    }
    expect(holds("attribute_type(absent, :t)", ITEM, { ":t": { S: "NULL" } })).toBe(false);
    expect(holds("begins_with(s, :v)", ITEM, { ":v": { S: "he" } })).toBe(true);
    expect(holds("begins_with(s, :v)", ITEM, { ":v": { S: "lo" } })).toBe(false);
    expect(holds("begins_with(b, :v)", ITEM, { ":v": { B: "AA==" } })).toBe(true);
    expect(holds("begins_with(b, :v)", ITEM, { ":v": { B: "gA==" } })).toBe(false);
    expect(holds("begins_with(n, :v)", ITEM, { ":v": { S: "1" } })).toBe(false);
    expect(holds("contains(s, :v)", ITEM, { ":v": { S: "ell" } })).toBe(true);
    expect(holds("contains(s, :v)", ITEM, { ":v": { S: "elk" } })).toBe(false);
    expect(holds("contains(b, :v)", ITEM, { ":v": { B: "gA==" } })).toBe(true);
    expect(holds("contains(ss, :v)", ITEM, { ":v": { S: "b" } })).toBe(true);
    expect(holds("contains(ns, :v)", ITEM, { ":v": { N: "2.5" } })).toBe(true);
    expect(holds("contains(ns, :v)", ITEM, { ":v": { S: "2.5" } })).toBe(false);
    expect(holds("contains(bs, :v)", ITEM, { ":v": { B: "AQ==" } })).toBe(true);
    expect(holds("contains(l, :v)", ITEM, { ":v": { N: "2" } })).toBe(true);
    expect(holds("contains(l, :v)", ITEM, { ":v": { M: { k: { S: "v" } } } })).toBe(true);
    expect(holds("contains(l, :v)", ITEM, { ":v": { S: "2" } })).toBe(false);
    expect(holds("contains(n, :v)", ITEM, { ":v": { N: "1" } })).toBe(false);
    expect(holds("contains(a, b)", { a: { S: "xyz" }, b: { S: "y" } })).toBe(true);
  });

  it("sizes strings in UTF-8 bytes, binaries in bytes, collections in members", () => {
    const sizes = { s: 5, e: 2, b: 2, l: 3, m: 2, ss: 2, ns: 2, bs: 2 };
    for (const [name, size] of Object.entries(sizes)) {
      expect(holds(`size(${name}) = :v`, ITEM, { ":v": { N: String(size) } })).toBe(true);
    }
    expect(holds("size(m.xs) > size(l)")).toBe(true);
    expect(holds("size(:l) = :n")).toBe(true);
    for (const name of ["n", "t", "z", "absent"]) {
      expect(holds(`size(${name}) >= :v`, ITEM, { ":v": { N: "0" } })).toBe(false);
      expect(holds(`size(${name}) <> :v`, ITEM, { ":v": { N: "0" } })).toBe(true);
    }
  });

  it("treats a missing item as an empty one", () => {
    const none = (text: string) => evaluate(condition(text), undefined);
    expect(none("attribute_not_exists(s)")).toBe(true);
    expect(none("s <> :s")).toBe(true);
    expect(none("s = :s")).toBe(false);
  });
});

describe("applyUpdate", () => {
  const applied = (text: string, item: Item = ITEM, input: ExpressionInput = {}, exists = true) =>
    applyUpdate(parseUpdate(text, withValues(input)), item, exists).item;

  it("sets, removes, adds and deletes, leaving the given item as it was", () => {
    const before = structuredClone(ITEM);
    const after = applied(
      "SET s = :n, m.a = :s, l[0] = :t, x = n REMOVE e, ss ADD n :n, ns :ns DELETE bs :v",
      ITEM,
      { values: { ...VALUES, ":v": { BS: ["AQ=="] } } },
    );
    expect(ITEM).toEqual(before);
    expect(after).toMatchObject({
      s: VALUES[":n"],
      m: { M: { a: VALUES[":s"], xs: ITEM.m && valueAt(ITEM, ["m", "xs"]) } },
      l: { L: [VALUES[":t"], { N: "2" }, { M: { k: { S: "v" } } }] },
      x: { N: "10" },
      n: { N: "11" },
      ns: { NS: ["1", "2.5", "2"] },
      bs: { BS: ["AA=="] },
    });
    expect(after).not.toHaveProperty("e");
    expect(after).not.toHaveProperty("ss");
  });

  it("computes every value from the item before the update", () => {
    expect(applied("SET a = n, n = :n, z = s REMOVE s, t")).toMatchObject({
      a: { N: "10" },
      n: VALUES[":n"],
      z: { S: "hello" },
    });
    expect(refusal(() => applied("SET x = :n, y = x"))).toBe(
      "The provided expression refers to an attribute that does not exist in the item",
    );
  });

  it("computes arithmetic exactly, list_append and if_not_exists", () => {
    const item = { p: { N: "0.1" }, q: { N: "0.2" }, l: { L: [{ S: "a" }] } };
    expect(applied("SET r = p + q, d = p - q, c = if_not_exists(c, :n) + :n", item)).toMatchObject({
      r: { N: "0.3" },
      d: { N: "-0.1" },
      c: { N: "2" },
    });
    expect(
      applied("SET p = if_not_exists(p, :n), l = list_append(l, :l), k = list_append(:l, l)", item),
    ).toMatchObject({
      p: { N: "0.1" },
      l: { L: [{ S: "a" }, { S: "x" }] },
      k: { L: [{ S: "x" }, { S: "a" }] },
    });
    expect(refusal(() => applied("SET r = absent + :n", item))).toBe(
      "The provided expression refers to an attribute that does not exist in the item",
    );
    expect(refusal(() => applied("SET r = l + :n", item))).toBe(
      "An operand in the update expression has an incorrect data type",
    );
    expect(refusal(() => applied("SET r = list_append(p, :l)", item))).toBe(
      "An operand in the update expression has an incorrect data type",
    );
    expect(refusal(() => applied("SET r = list_append(:l, absent)", item))).toBe(
      "The provided expression refers to an attribute that does not exist in the item",
    );
    expect(
      refusal(() =>
        applied("SET r = :v + :n", item, {
          values: { ...VALUES, ":v": { N: parseNumber("9E125") } },
        }),
      ),
    ).toMatch(/^Number overflow/);
  });

  it("indexes lists as they were: SET past the end appends, REMOVE past it does nothing", () => {
    const list = (item: Item) =>
      (valueAt(item, ["m", "xs"]) as { L: AttributeValue[] }).L.map((v) => (v as { N: string }).N);
    expect(list(applied("REMOVE m.xs[1], m.xs[3]"))).toEqual(["1", "3"]);
    expect(
      list(
        applied("REMOVE m.xs[1] SET m.xs[3] = :v", ITEM, {
          values: { ...VALUES, ":v": { N: "9" } },
        }),
      ),
    ).toEqual(["1", "3", "9"]);
    expect(
      list(
        applied("SET m.xs[84] = :a, m.xs[37] = :b, m.xs[50] = :c", ITEM, {
          values: { ":a": { N: "84" }, ":b": { N: "37" }, ":c": { N: "50" } },
        }),
      ),
    ).toEqual(["1", "2", "3", "4", "37", "50", "84"]);
    expect(list(applied("REMOVE m.xs[17]"))).toEqual(["1", "2", "3", "4"]);
    expect(list(applied("ADD m.xs[9] :n"))).toEqual(["1", "2", "3", "4", "1"]);
  });

  it("refuses paths through what is absent or not a map or xs", () => {
    for (const text of [
      "SET absent.a = :n",
      "SET absent[0] = :n",
      "SET m[0] = :n",
      "SET l.a = :n",
      "SET s.a = :n",
      "SET l[7].a = :n",
      "REMOVE absent.a",
      "REMOVE m[1]",
      "ADD absent.a :n",
      "DELETE l.a :ss",
    ]) {
      expect(refusal(() => applied(text))).toBe(
        "The document path provided in the update expression is invalid for update",
      );
    }
    // Unless the item is new: REMOVE inside what is absent then does nothing.
    expect(applied("REMOVE absent.a, x[0]", { p: { S: "key" } }, {}, false)).toEqual({
      p: { S: "key" },
    });
    expect(refusal(() => applied("SET absent.a = :n", { p: { S: "key" } }, {}, false))).toMatch(
      /invalid for update/,
    );
    // A absent member of a map that is there is no problem.
    expect(applied("REMOVE m.nope, nope")).toEqual(ITEM);
  });

  it("ADDs numbers and set members, to what is absent too", () => {
    expect(
      applied("ADD n :v, fresh :v, ss :w, newset :w", ITEM, {
        values: { ":v": { N: "-10.5" }, ":w": { SS: ["c", "a"] } },
      }),
    ).toMatchObject({
      n: { N: "-0.5" },
      fresh: { N: "-10.5" },
      ss: { SS: ["a", "b", "c"] },
      newset: { SS: ["c", "a"] },
    });
    for (const text of ["ADD s :n", "ADD ss :ns", "ADD n :ss", "ADD l :ns"]) {
      expect(refusal(() => applied(text))).toBe(
        "An operand in the update expression has an incorrect data type",
      );
    }
  });

  it("DELETEs set members, the attribute with its last one, and nothing from what is absent", () => {
    expect(
      applied("DELETE ss :v, ns :w, absent :v", ITEM, {
        values: { ":v": { SS: ["a", "q"] }, ":w": { NS: ["1", "2.5"] } },
      }),
    ).toMatchObject({ ss: { SS: ["b"] } });
    expect(
      applied("DELETE ns :v", ITEM, { values: { ":v": { NS: ["1", "2.5"] } } }),
    ).not.toHaveProperty("ns");
    for (const text of ["DELETE ss :ns", "DELETE n :ns", "DELETE l :ss"]) {
      expect(refusal(() => applied(text))).toBe(
        "An operand in the update expression has an incorrect data type",
      );
    }
  });

  it("reports the paths it touched, for UPDATED_OLD and UPDATED_NEW", () => {
    const update = parseUpdate("SET m.a = :s, l[0] = :s REMOVE s ADD fresh :n", withValues());
    const { item, updated } = applyUpdate(update, ITEM);
    expect(updated).toEqual([["m", "a"], ["l", 0], ["s"], ["fresh"]]);
    expect(project(ITEM, updated)).toEqual({
      m: { M: { a: { N: "1" } } },
      l: { L: [{ S: "x" }] },
      s: { S: "hello" },
    });
    expect(project(item, updated)).toEqual({
      m: { M: { a: VALUES[":s"] } },
      l: { L: [VALUES[":s"]] },
      fresh: VALUES[":n"],
    });
  });

  it("takes any attribute name, __proto__ too", () => {
    const after = applied(
      "SET #p = :n, #q.#p = :n",
      { q: { M: {} } },
      { names: { "#p": "__proto__", "#q": "q" } },
    );
    expect(Object.hasOwn(after, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(after)).toBe(Object.prototype);
    expect(valueAt(after, ["q", "__proto__"])).toEqual(VALUES[":n"]);
    const stored: Item = JSON.parse('{"__proto__": {"S": "x"}, "k": {"S": "y"}}');
    expect(
      evaluate(
        condition("#p = :v", { names: { "#p": "__proto__" }, values: { ":v": { S: "x" } } }),
        stored,
      ),
    ).toBe(true);
    expect(applied("REMOVE #p", stored, { names: { "#p": "__proto__" } })).toEqual({
      k: { S: "y" },
    });
    expect(Object.keys(project(stored, [["__proto__"]]))).toEqual(["__proto__"]);
  });
});

describe("project", () => {
  const projected = (text: string, item: Item = ITEM) =>
    project(item, parseProjection(text, new ExpressionContext({})));

  it("keeps the chosen members of maps and elements of lists, in order", () => {
    expect(projected("s, m.a, m.xs[3], m.xs[1], l[2].k")).toEqual({
      s: ITEM.s,
      m: { M: { a: { N: "1" }, xs: { L: [{ N: "2" }, { N: "4" }] } } },
      l: { L: [{ M: { k: { S: "v" } } }] },
    });
    expect(projected("absent, m.nope, m.xs[9], l.k, s.x")).toEqual({});
    expect(projected("m[0], l[0].x")).toEqual({});
    expect(projected("m")).toEqual({ m: ITEM.m });
  });

  it("keeps a whole value when paths within it are given too", () => {
    expect(project(ITEM, [["m", "xs", 0], ["m"], ["m", "a"]])).toEqual({ m: ITEM.m });
  });
});

/** Pieces of expressions, valid and not, that random soups are made of. */
const TOKENS = [
  ...["a", "b.c", "a[1]", "x.y[0].z", "#n", "#nope", ":s", ":n", ":l", ":ss", ":nope", "views"],
  ...["(", ")", "[", "]", "[0]", "[99999999999999]", ",", ".", "=", "<>", "<", "<=", ">", ">="],
  ...["+", "-", "AND", "or", "NOT", "BETWEEN", "IN", "SET", "remove", "ADD", "DELETE"],
  ...["size", "attribute_exists", "attribute_not_exists", "attribute_type", "begins_with"],
  ...[
    "contains",
    "if_not_exists",
    "list_append",
    "dog",
    "1",
    "_",
    "ü",
    "😀",
    ":",
    "#",
    "!",
    "\u0000",
  ],
];

const soup = fc
  .array(fc.tuple(fc.constantFrom(...TOKENS), fc.constantFrom("", " ", "\t")), { maxLength: 40 })
  .map((parts) => parts.map(([token, space]) => token + space).join(""));

const expressionText = fc.oneof(
  soup,
  edgeString,
  fc.string({ maxLength: 60 }),
  fc.nat({ max: 5000 }).map((n) => `${"(".repeat(n)}a = :s${")".repeat(n % 7 === 0 ? n : 1)}`),
);

const KINDS: readonly ExpressionKind[] = [
  "ConditionExpression",
  "FilterExpression",
  "KeyConditionExpression",
  "UpdateExpression",
  "ProjectionExpression",
];

describe("fuzz", () => {
  it("parsers only ever refuse with a ValidationException", () => {
    fc.assert(
      fc.property(expressionText, fc.constantFrom(...KINDS), (text, kind) => {
        const context = withValues({ names: { "#n": "n" } });
        returnsOrKvError(() => {
          if (kind === "UpdateExpression") parseUpdate(text, context);
          else if (kind === "ProjectionExpression") parseProjection(text, context);
          else parseCondition(text, kind, context);
          context.checkAllUsed(KINDS);
        });
      }),
      fuzz(3000),
    );
  });
});

describe("fuzz: evaluation", () => {
  const path = fc.constantFrom("a", "n", "s", "l", "m", "m.a", "m.l[1]", "l[0]", "l[5].x", "#n");
  const value = fc.constantFrom(...Object.keys(VALUES), ":ty");
  const operand = fc.oneof(
    path,
    value,
    path.map((p) => `size(${p})`),
  );
  const condition = fc.letrec<{ condition: string }>((tie) => ({
    condition: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc
        .tuple(operand, fc.constantFrom("=", "<>", "<", "<=", ">", ">="), operand)
        .map((parts) => parts.join(" ")),
      fc.tuple(operand, operand, operand).map(([a, b, c]) => `${a} BETWEEN ${b} AND ${c}`),
      fc
        .tuple(operand, fc.array(operand, { minLength: 1, maxLength: 4 }))
        .map(([a, list]) => `${a} IN (${list.join(", ")})`),
      fc
        .tuple(fc.constantFrom("attribute_exists", "attribute_not_exists"), path)
        .map(([f, p]) => `${f}(${p})`),
      fc
        .tuple(fc.constantFrom("begins_with", "contains", "attribute_type"), operand, operand)
        .map(([f, a, b]) => `${f}(${a}, ${b})`),
      fc
        .tuple(tie("condition"), fc.constantFrom("AND", "OR"), tie("condition"))
        .map(([a, op, b]) => `(${a}) ${op} (${b})`),
      tie("condition").map((c) => `NOT (${c})`),
    ),
  })).condition;

  const setValue = fc.oneof(
    path,
    value,
    fc.tuple(path, value).map(([p, v]) => `if_not_exists(${p}, ${v})`),
    fc
      .tuple(fc.oneof(path, value), fc.oneof(path, value))
      .map(([a, b]) => `list_append(${a}, ${b})`),
    fc
      .tuple(fc.oneof(path, value), fc.constantFrom("+", "-"), fc.oneof(path, value))
      .map((parts) => parts.join(" ")),
  );
  const update = fc
    .tuple(
      fc.array(
        fc.tuple(path, setValue).map(([p, v]) => `${p} = ${v}`),
        { maxLength: 3 },
      ),
      fc.array(path, { maxLength: 2 }),
      fc.array(
        fc.tuple(path, value).map((pv) => pv.join(" ")),
        { maxLength: 2 },
      ),
      fc.array(
        fc.tuple(path, value).map((pv) => pv.join(" ")),
        { maxLength: 2 },
      ),
    )
    .map(([set, remove, add, del]) =>
      [
        ["SET", set],
        ["REMOVE", remove],
        ["ADD", add],
        ["DELETE", del],
      ]
        .filter(([, actions]) => actions!.length > 0)
        .map(([clause, actions]) => `${clause} ${(actions as string[]).join(", ")}`)
        .join(" "),
    );

  const attributeValue = fc.letrec<{ value: AttributeValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.string({ maxLength: 4 }).map((S) => ({ S })),
      fc.integer({ min: -20, max: 20 }).map((n) => ({ N: String(n) })),
      fc.uint8Array({ maxLength: 3 }).map((b) => ({ B: Buffer.from(b).toString("base64") })),
      fc.boolean().map((BOOL) => ({ BOOL })),
      fc.constant({ NULL: true as const }),
      fc.array(tie("value"), { maxLength: 4 }).map((L) => ({ L })),
      fc
        .dictionary(fc.constantFrom("a", "l", "x"), tie("value"), { maxKeys: 3 })
        .map((M) => ({ M })),
      fc.uniqueArray(fc.constantFrom("a", "b", "abc"), { minLength: 1 }).map((SS) => ({ SS })),
      fc.uniqueArray(fc.constantFrom("1", "2", "-1"), { minLength: 1 }).map((NS) => ({ NS })),
      fc.uniqueArray(fc.constantFrom("AA==", "YWJj"), { minLength: 1 }).map((BS) => ({ BS })),
    ),
  })).value;
  const item = fc.dictionary(fc.constantFrom("a", "n", "s", "l", "m", "x"), attributeValue, {
    maxKeys: 6,
  });
  const context = () =>
    withValues({ names: { "#n": "n" }, values: { ...VALUES, ":ty": { S: "L" } } });

  it("conditions evaluate on any item without throwing", () => {
    fc.assert(
      fc.property(condition, item, (text, it) => {
        const parsed = returnsOrKvError(() => parseCondition(text, "FilterExpression", context()));
        if (parsed instanceof KvError) return;
        expect(evaluate(parsed, it)).toBeTypeOf("boolean");
        expect(evaluate(parsed, undefined)).toBeTypeOf("boolean");
      }),
      fuzz(1000),
    );
  });

  it("updates apply to any item or refuse with a ValidationException, and project", () => {
    fc.assert(
      fc.property(update, item, fc.boolean(), (text, it, exists) => {
        const parsed = returnsOrKvError(() => parseUpdate(text, context()));
        if (parsed instanceof KvError) return;
        const applied = returnsOrKvError(() => applyUpdate(parsed, it, exists));
        if (applied instanceof KvError) return;
        project(it, applied.updated);
        project(applied.item, applied.updated);
      }),
      fuzz(1000),
    );
  });
});
