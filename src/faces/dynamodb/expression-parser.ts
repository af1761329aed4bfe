/**
 * DynamoDB's expression language, parsed: ConditionExpression, FilterExpression and
 * KeyConditionExpression (one grammar), UpdateExpression and ProjectionExpression, with the
 * request's ExpressionAttributeNames and ExpressionAttributeValues substituted. Every refusal is a
 * ValidationException with DynamoDB's message, and the checks run in DynamoDB's order — syntax
 * first, then what the expression means — so the error reported is the one DynamoDB reports.
 */
import { type AttributeValue, compare, type TypeName, typeOf } from "./attribute-value.js";
import {
  type ExpressionContext,
  type ExpressionKind,
  invalidExpression as invalid,
} from "./expression-context.js";
import {
  type Clause,
  CONDITION_KEYWORDS,
  type Comparator,
  Parser,
  type RawAction,
  type RawArithmetic,
  type RawBoolean,
  type RawCall,
  type RawOperand,
  type RawPath,
  type RawValue,
  UPDATE_KEYWORDS,
} from "./expression-syntax.js";
import { isReservedWord } from "./reserved-words.js";

export type { Comparator };

/** A document path: attribute names (already substituted) and list indexes, outermost first. */
export type Path = readonly (string | number)[];

/** A value a condition compares: an attribute of the item, a request value, or `size(…)` of one. */
export type Operand =
  | { readonly kind: "path"; readonly path: Path }
  | { readonly kind: "value"; readonly value: AttributeValue }
  | { readonly kind: "size"; readonly operand: Operand };

/** The functions that are conditions by themselves. */
export type ConditionFunction =
  | "attribute_exists"
  | "attribute_not_exists"
  | "attribute_type"
  | "begins_with"
  | "contains";

/** A parsed ConditionExpression, FilterExpression or KeyConditionExpression. */
export type Condition =
  | {
      readonly kind: "compare";
      readonly op: Comparator;
      readonly left: Operand;
      readonly right: Operand;
    }
  | {
      readonly kind: "between";
      readonly operand: Operand;
      readonly low: Operand;
      readonly high: Operand;
    }
  | { readonly kind: "in"; readonly operand: Operand; readonly list: readonly Operand[] }
  | { readonly kind: "and" | "or"; readonly left: Condition; readonly right: Condition }
  | { readonly kind: "not"; readonly condition: Condition }
  | {
      readonly kind: "function";
      readonly name: ConditionFunction;
      readonly args: readonly Operand[];
    };

/** The right-hand side of a SET action. */
export type UpdateValue =
  | { readonly kind: "path"; readonly path: Path }
  | { readonly kind: "value"; readonly value: AttributeValue }
  | { readonly kind: "if_not_exists"; readonly path: Path; readonly fallback: UpdateValue }
  | {
      readonly kind: "list_append" | "+" | "-";
      readonly left: UpdateValue;
      readonly right: UpdateValue;
    };

/** One action of an UpdateExpression; ADD's and DELETE's values are checked to be of a type they take. */
export type UpdateAction =
  | { readonly kind: "SET"; readonly path: Path; readonly value: UpdateValue }
  | { readonly kind: "REMOVE"; readonly path: Path }
  | { readonly kind: "ADD" | "DELETE"; readonly path: Path; readonly value: AttributeValue };

/** A parsed UpdateExpression: its actions in the order written (clauses in any order, each once). */
export interface Update {
  readonly actions: readonly UpdateAction[];
}

/** DynamoDB's limits on one expression. */
const MAX_EXPRESSION_BYTES = 4096;
const MAX_OPERATORS = 300;
/** Operands of IN, the one before it included. */
const MAX_IN_OPERANDS = 100;

/** The first problem of each kind found in an expression; DynamoDB reports the first kind found. */
class Problems {
  readonly #first = new Map<string, string>();

  note(problem: string, message: string): void {
    if (!this.#first.has(problem)) this.#first.set(problem, message);
  }

  /** Throws the problem of the first kind in `order` that has one. */
  check(kind: ExpressionKind, order: readonly string[]): void {
    for (const problem of order) {
      const message = this.#first.get(problem);
      if (message !== undefined) throw invalid(kind, message);
    }
  }
}

/** Stands in for an undefined reference, in an expression refused for it before it is used. */
const UNDEFINED: AttributeValue = { NULL: true };

/** Function names and their numbers of operands. */
const CONDITION_FUNCTIONS: Readonly<Record<string, number>> = {
  attribute_exists: 1,
  attribute_not_exists: 1,
  attribute_type: 2,
  begins_with: 2,
  contains: 2,
  size: 1,
};
const UPDATE_FUNCTIONS: Readonly<Record<string, number>> = { if_not_exists: 2, list_append: 2 };

const TYPE_NAMES: ReadonlySet<string> = new Set("S N B BOOL NULL L M SS NS BS".split(" "));
const ORDERED_TYPES: ReadonlySet<TypeName> = new Set(["S", "N", "B"]);
/** The operand types of ADD and DELETE, and the names their errors give types. */
const SET_OPERAND_TYPES: Readonly<Record<"ADD" | "DELETE", ReadonlySet<TypeName>>> = {
  ADD: new Set(["N", "SS", "NS", "BS"]),
  DELETE: new Set(["SS", "NS", "BS"]),
};
const LONG_TYPE_NAMES: Readonly<Partial<Record<TypeName, string>>> = {
  S: "STRING",
  N: "NUMBER",
  B: "BINARY",
  BOOL: "BOOLEAN",
  NULL: "NULL",
  L: "LIST",
  M: "MAP",
};

const showPath = (path: Path) =>
  `[${path.map((part) => (typeof part === "number" ? `[${part}]` : part)).join(", ")}]`;

/** A value as DynamoDB's messages show it: `{N:1}`, `{S:a}`. */
function shown(value: AttributeValue): string {
  const payload = Object.values(value)[0];
  return `{${typeOf(value)}:${typeof payload === "string" ? payload : JSON.stringify(payload)}}`;
}

const operandType = (message: string, type: string) =>
  `Incorrect operand type for operator or function; ${message}, operand type: ${type}`;

/** Substitutes references and notes what the request lacks; shared by the three grammars. */
class Meaning {
  readonly problems = new Problems();

  constructor(
    protected readonly context: ExpressionContext,
    /** The problem kinds of an undefined `#name` and an undefined `:value`. */
    private readonly undefinedName: string,
    private readonly undefinedValue: string,
  ) {}

  path(raw: RawPath): Path {
    return raw.parts.map((part) => {
      if (typeof part === "number") return part;
      if (!part.reference) {
        if (isReservedWord(part.name)) {
          this.problems.note(
            "reserved",
            `Attribute name is a reserved keyword; reserved keyword: ${part.name}`,
          );
        }
        return part.name;
      }
      const name = this.context.name(part.name);
      if (name === undefined) {
        this.problems.note(
          this.undefinedName,
          `An expression attribute name used in the document path is not defined; attribute name: ${part.name}`,
        );
      }
      return name ?? part.name;
    });
  }

  value(raw: RawValue): AttributeValue {
    const value = this.context.value(raw.reference);
    if (value === undefined) {
      this.problems.note(
        this.undefinedValue,
        `An expression attribute value used in expression is not defined; attribute value: ${raw.reference}`,
      );
    }
    return value ?? UNDEFINED;
  }

  /** Whether `args` are as many as `name` takes (noting the problem under `problem` if not). */
  protected arity(
    name: string,
    args: readonly unknown[],
    expected: number,
    problem: string,
  ): boolean {
    if (args.length === expected) return true;
    this.problems.note(
      problem,
      `Incorrect number of operands for operator or function; operator or function: ${name}, number of operands: ${args.length}`,
    );
    return false;
  }

  /** Notes paths that overlap (one within the other) or conflict (a name against an index). */
  overlaps(paths: readonly Path[]): void {
    for (let i = 1; i < paths.length; i++) {
      for (let j = 0; j < i; j++) {
        const clash = clashOf(paths[j]!, paths[i]!);
        if (clash === undefined) continue;
        this.problems.note(
          clash,
          `Two document paths ${clash} with each other; must remove or rewrite one of these paths; path one: ${showPath(paths[j]!)}, path two: ${showPath(paths[i]!)}`,
        );
      }
    }
  }
}

function clashOf(a: Path, b: Path): "overlap" | "conflict" | undefined {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (typeof a[i] !== typeof b[i]) return "conflict";
    if (a[i] !== b[i]) return undefined;
  }
  return "overlap";
}

/** The type an operand has whatever the item: a request value's, or size()'s number. */
function staticType(operand: Operand): TypeName | undefined {
  if (operand.kind === "value") return typeOf(operand.value);
  return operand.kind === "size" ? "N" : undefined;
}

/** The kinds of problem a condition may have, in the order DynamoDB reports them. */
const CONDITION_PROBLEMS = [
  "parentheses",
  "function",
  "misuse",
  "reserved",
  "reference",
  "operands",
  "distinct",
  "type",
];

class ConditionMeaning extends Meaning {
  constructor(context: ExpressionContext) {
    super(context, "reference", "reference");
  }

  condition(raw: RawBoolean): Condition {
    switch (raw.t) {
      case "and":
      case "or":
        return { kind: raw.t, left: this.condition(raw.left), right: this.condition(raw.right) };
      case "not":
        return { kind: "not", condition: this.condition(raw.condition) };
      case "compare": {
        const left = this.operand(raw.left);
        const right = this.operand(raw.right);
        this.misused(raw.left, raw.right);
        this.distinct(raw.op, left, right);
        if (raw.op !== "=" && raw.op !== "<>") this.ordered(raw.op, left, right);
        return { kind: "compare", op: raw.op, left, right };
      }
      case "between": {
        const operand = this.operand(raw.operand);
        const low = this.operand(raw.low);
        const high = this.operand(raw.high);
        this.misused(raw.operand, raw.low, raw.high);
        this.ordered("BETWEEN", operand, low, high);
        this.bounds(low, high);
        return { kind: "between", operand, low, high };
      }
      case "in": {
        const operand = this.operand(raw.operand);
        const list = raw.list.map((o) => this.operand(o));
        this.misused(raw.operand, ...raw.list);
        if (list.length + 1 > MAX_IN_OPERANDS) {
          this.problems.note(
            "operands",
            `The IN operator is provided with too many operands; number of operands: ${list.length + 1}`,
          );
        }
        return { kind: "in", operand, list };
      }
      case "call":
        return this.functionCondition(raw);
    }
  }

  private functionCondition(raw: RawCall): Condition {
    const args = raw.args.map((arg) => this.operand(arg));
    this.misused(...raw.args);
    if (this.known(raw.name)) {
      if (raw.name === "size") this.misuse(raw.name);
      else if (this.arity(raw.name, args, CONDITION_FUNCTIONS[raw.name]!, "operands")) {
        if (args.length === 2) this.distinct(raw.name, args[0]!, args[1]!);
        this.functionTypes(raw.name, args);
      }
    }
    return { kind: "function", name: raw.name as ConditionFunction, args };
  }

  private operand(raw: RawOperand): Operand {
    switch (raw.t) {
      case "path":
        return { kind: "path", path: this.path(raw) };
      case "value":
        return { kind: "value", value: this.value(raw) };
      case "call": {
        const args = raw.args.map((arg) => this.operand(arg));
        this.misused(...raw.args);
        if (this.known(raw.name)) {
          if (raw.name !== "size") this.misuse(raw.name);
          else if (this.arity(raw.name, args, 1, "operands")) this.functionTypes(raw.name, args);
        }
        return { kind: "size", operand: args[0] ?? { kind: "value", value: UNDEFINED } };
      }
    }
  }

  /** Whether `name` is a condition function (noting the problem if not). */
  private known(name: string): boolean {
    if (Object.hasOwn(CONDITION_FUNCTIONS, name)) return true;
    this.problems.note(
      "function",
      Object.hasOwn(UPDATE_FUNCTIONS, name)
        ? `The function is not allowed in a condition expression; function: ${name}`
        : `Invalid function name; function: ${name}`,
    );
    return false;
  }

  /** Only size() gives a value; any other function among `operands` is misused. */
  private misused(...operands: readonly RawOperand[]): void {
    for (const operand of operands) {
      if (operand.t === "call" && operand.name !== "size") this.misuse(operand.name);
    }
  }

  private misuse(name: string): void {
    this.problems.note(
      "misuse",
      `The function is not allowed to be used this way in an expression; function: ${name}`,
    );
  }

  private distinct(operator: string, first: Operand, other: Operand): void {
    if (first.kind !== "path" || other.kind !== "path") return;
    if (first.path.length !== other.path.length || clashOf(first.path, other.path) !== "overlap") {
      return;
    }
    this.problems.note(
      "distinct",
      `The first operand must be distinct from the remaining operands for this operator or function; operator: ${operator}, first operand: ${showPath(first.path)}`,
    );
  }

  /** Request values an ordering compares must be strings, numbers or binaries. */
  private ordered(operator: string, ...operands: readonly Operand[]): void {
    for (const operand of operands) {
      const type = operand.kind === "value" ? typeOf(operand.value) : undefined;
      if (type !== undefined && !ORDERED_TYPES.has(type)) {
        this.problems.note("type", operandType(`operator or function: ${operator}`, type));
      }
    }
  }

  /** BETWEEN's bounds, when both are request values, must be of one type and in order. */
  private bounds(low: Operand, high: Operand): void {
    if (low.kind !== "value" || high.kind !== "value") return;
    const problem =
      typeOf(low.value) !== typeOf(high.value)
        ? "same data type for lower and upper bounds"
        : (compare(low.value, high.value) ?? 0) > 0
          ? "upper bound to be greater than or equal to lower bound"
          : undefined;
    if (problem === undefined) return;
    this.problems.note(
      "type",
      `The BETWEEN operator requires ${problem}; lower bound operand: AttributeValue: ${shown(low.value)}, upper bound operand: AttributeValue: ${shown(high.value)}`,
    );
  }

  private functionTypes(name: string, args: readonly Operand[]): void {
    const problem = (type: string) =>
      this.problems.note("type", operandType(`operator or function: ${name}`, type));
    switch (name) {
      case "attribute_exists":
      case "attribute_not_exists":
        if (args[0]!.kind !== "path") {
          this.problems.note(
            "type",
            `Operator or function requires a document path; operator or function: ${name}`,
          );
        }
        return;
      case "begins_with": {
        const type = args.map(staticType).find((t) => t !== undefined && t !== "S" && t !== "B");
        if (type !== undefined) problem(type);
        return;
      }
      case "attribute_type": {
        const type = args[1]!;
        if (type.kind !== "value" || !("S" in type.value)) {
          problem(staticType(type) ?? "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
        } else if (!TYPE_NAMES.has(type.value.S)) {
          this.problems.note(
            "type",
            `Invalid attribute type name found; type: ${type.value.S}, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}`,
          );
        }
        return;
      }
      case "size": {
        const type = staticType(args[0]!);
        if (type === "N" || type === "BOOL" || type === "NULL") problem(type);
        return;
      }
    }
  }
}

/** The kinds of problem an update may have, in the order DynamoDB reports them. */
const UPDATE_PROBLEMS = [
  "reserved",
  "function",
  "section",
  "name",
  "value",
  "overlap",
  "conflict",
  "operands",
  "type",
];

class UpdateMeaning extends Meaning {
  constructor(context: ExpressionContext) {
    super(context, "name", "value");
  }

  update(clauses: readonly Clause[], raw: readonly RawAction[]): Update {
    const repeated = clauses.find((clause, i) => clauses.indexOf(clause) < i);
    if (repeated !== undefined) {
      this.problems.note(
        "section",
        `The "${repeated}" section can only be used once in an update expression;`,
      );
    }
    const actions = raw.map((action) => this.action(action));
    this.overlaps(actions.map((action) => action.path));
    return { actions };
  }

  private action(raw: RawAction): UpdateAction {
    const path = this.path(raw.path);
    switch (raw.t) {
      case "SET":
        return { kind: raw.t, path, value: this.setValue(raw.value) };
      case "REMOVE":
        return { kind: raw.t, path };
      default: {
        const value = this.value(raw.value);
        const type = typeOf(value);
        if (!SET_OPERAND_TYPES[raw.t].has(type)) {
          this.problems.note(
            "operands",
            `${operandType(`operator: ${raw.t}`, LONG_TYPE_NAMES[type]!)}, typeSet: ALLOWED_FOR_${raw.t}_OPERAND`,
          );
        }
        return { kind: raw.t, path, value };
      }
    }
  }

  private setValue(raw: RawOperand | RawArithmetic): UpdateValue {
    switch (raw.t) {
      case "path":
        return { kind: "path", path: this.path(raw) };
      case "value":
        return { kind: "value", value: this.value(raw) };
      case "call":
        return this.call(raw);
      default: {
        const left = this.setValue(raw.left);
        const right = this.setValue(raw.right);
        this.valueTypes(raw.t, "N", left, right);
        return { kind: raw.t, left, right };
      }
    }
  }

  private call(raw: RawCall): UpdateValue {
    const args = raw.args.map((arg) => this.setValue(arg));
    const [first, second] = args;
    if (!Object.hasOwn(UPDATE_FUNCTIONS, raw.name)) {
      this.problems.note(
        "function",
        Object.hasOwn(CONDITION_FUNCTIONS, raw.name)
          ? `The function is not allowed in an update expression; function: ${raw.name}`
          : `Invalid function name; function: ${raw.name}`,
      );
    } else if (this.arity(raw.name, args, UPDATE_FUNCTIONS[raw.name]!, "type")) {
      if (raw.name === "list_append") {
        this.valueTypes(raw.name, "L", ...args);
        if (raw.args.some((arg) => arg.t === "call" && arg.name === "list_append")) {
          this.problems.note(
            "type",
            "The function is not allowed to be used this way in an expression; function: list_append",
          );
        }
        return { kind: "list_append", left: first!, right: second! };
      }
      if (first?.kind === "path") {
        return { kind: "if_not_exists", path: first.path, fallback: second! };
      }
      this.problems.note(
        "type",
        "Operator or function requires a document path; operator or function: if_not_exists",
      );
    }
    return first ?? { kind: "value", value: UNDEFINED };
  }

  /** Operands among `operands` whose type is known whatever the item must be of `type`. */
  private valueTypes(operator: string, type: TypeName, ...operands: readonly UpdateValue[]): void {
    for (const operand of operands) {
      const actual = updateType(operand) ?? type;
      if (actual !== type) {
        this.problems.note("type", operandType(`operator or function: ${operator}`, actual));
      }
    }
  }
}

/**
 * The type a SET operand has whatever the item: a request value's, a sum's, list_append's, and
 * if_not_exists's fallback's (DynamoDB refuses `if_not_exists(a, :list) + :n` before reading `a`).
 */
function updateType(value: UpdateValue): TypeName | undefined {
  switch (value.kind) {
    case "value":
      return typeOf(value.value);
    case "+":
    case "-":
      return "N";
    case "list_append":
      return "L";
    case "if_not_exists":
      return updateType(value.fallback);
    default:
      return undefined;
  }
}

function parserOf(
  text: string,
  kind: ExpressionKind,
  context: ExpressionContext,
  keywords: ReadonlySet<string>,
): Parser {
  context.begin(kind);
  if (text.length === 0) throw invalid(kind, "The expression can not be empty;");
  const size = Buffer.byteLength(text, "utf8");
  if (size > MAX_EXPRESSION_BYTES) {
    throw invalid(
      kind,
      `Expression size has exceeded the maximum allowed size; expression size: ${size}`,
    );
  }
  return new Parser(text, kind, keywords);
}

function checkOperators(parser: Parser, kind: ExpressionKind): void {
  if (parser.operators > MAX_OPERATORS) {
    throw invalid(
      kind,
      `The expression contains too many operators; operator count: ${parser.operators}`,
    );
  }
}

/**
 * A ConditionExpression, FilterExpression or KeyConditionExpression (KeyConditionExpression's
 * own restrictions are `keyCondition`'s). ValidationException with DynamoDB's message if it is
 * not one: syntax, limits (4 KB, 300 operators, 100 IN operands, 32 path levels), redundant
 * parentheses, unknown or misplaced functions, reserved words, undefined references, operand
 * counts and types.
 */
export function parseCondition(
  text: string,
  kind: "ConditionExpression" | "FilterExpression" | "KeyConditionExpression",
  context: ExpressionContext,
): Condition {
  const syntax = parserOf(text, kind, context, CONDITION_KEYWORDS);
  const raw = syntax.condition();
  checkOperators(syntax, kind);
  const meaning = new ConditionMeaning(context);
  for (const [open, close] of syntax.groups) {
    if (syntax.groups.get(open + 1) === close - 1) {
      meaning.problems.note("parentheses", "The expression has redundant parentheses;");
    }
  }
  const condition = meaning.condition(raw);
  meaning.problems.check(kind, CONDITION_PROBLEMS);
  return condition;
}

/**
 * An UpdateExpression. ValidationException with DynamoDB's message if it is not one: syntax,
 * limits, a clause given twice, unknown functions or functions of conditions, reserved words,
 * undefined references, paths that overlap or conflict, operands of the wrong number or type.
 */
export function parseUpdate(text: string, context: ExpressionContext): Update {
  const kind = "UpdateExpression";
  const syntax = parserOf(text, kind, context, UPDATE_KEYWORDS);
  const { clauses, actions } = syntax.update();
  checkOperators(syntax, kind);
  const meaning = new UpdateMeaning(context);
  const update = meaning.update(clauses, actions);
  meaning.problems.check(kind, UPDATE_PROBLEMS);
  return update;
}

/**
 * A ProjectionExpression: its paths in order. ValidationException with DynamoDB's message for
 * syntax, limits, reserved words, undefined names, and paths that overlap or conflict.
 */
export function parseProjection(text: string, context: ExpressionContext): Path[] {
  const kind = "ProjectionExpression";
  const raw = parserOf(text, kind, context, new Set()).projection();
  const meaning = new Meaning(context, "reference", "reference");
  const paths = raw.map((path) => meaning.path(path));
  meaning.overlaps(paths);
  meaning.problems.check(kind, ["reserved", "reference", "overlap", "conflict"]);
  return paths;
}
