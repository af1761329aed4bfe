/**
 * The syntax of DynamoDB's expressions: a lexer and a recursive-descent parser that turn an
 * expression into a tree of what is written (references not yet substituted), or throw DynamoDB's
 * syntax error, which quotes the offending token with its neighbours.
 */
import { type ExpressionKind, invalidExpression } from "./expression-context.js";

/** DynamoDB's limits on a document path. */
const MAX_PATH_DEPTH = 32;
const MAX_LIST_INDEX = 2 ** 31 - 1;
/** Cairn's: parentheses and calls within each other (an expression refused anyway, see `nested`). */
const MAX_NESTING = 400;

export type Comparator = "=" | "<>" | "<" | "<=" | ">" | ">=";

// ---------------------------------------------------------------------------------------------
// Lexical analysis

type TokenType = "name" | "nameRef" | "valueRef" | "integer" | "symbol" | "eof";

interface Token {
  readonly type: TokenType;
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/**
 * One token at a time: whitespace (skipped), a name (a letter, then letters, digits and `_`), an
 * integer, a `#name` or `:value` reference, a two-character comparator, or any one character,
 * which the parser then refuses where it makes no sense (a lone `_`, `#`, `:`, `$`, `ü`…).
 */
const TOKEN =
  /[ \t\r\n]+|([A-Za-z][A-Za-z0-9_]*)|([0-9]+)|(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|(<>|<=|>=|[\s\S])/uy;

const TOKEN_TYPES: readonly TokenType[] = ["name", "integer", "nameRef", "valueRef", "symbol"];

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  for (let match = TOKEN.exec(text); match !== null; match = TOKEN.exec(text)) {
    const group = match.findIndex((part, i) => i > 0 && part !== undefined);
    if (group > 0) {
      const end = TOKEN.lastIndex;
      tokens.push({ type: TOKEN_TYPES[group - 1]!, text: match[0], start: match.index, end });
    }
  }
  tokens.push({ type: "eof", text: "<EOF>", start: text.length, end: text.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Syntax: expressions as written, references not yet substituted

export type RawPart = { readonly name: string; readonly reference: boolean } | number;
export interface RawPath {
  readonly t: "path";
  readonly parts: readonly RawPart[];
}
export interface RawValue {
  readonly t: "value";
  readonly reference: string;
}
export interface RawCall {
  readonly t: "call";
  readonly name: string;
  readonly args: readonly RawOperand[];
}
export type RawOperand = RawPath | RawValue | RawCall;
export interface RawArithmetic {
  readonly t: "+" | "-";
  readonly left: RawOperand;
  readonly right: RawOperand;
}
export type RawCondition =
  | {
      readonly t: "compare";
      readonly op: Comparator;
      readonly left: RawOperand;
      readonly right: RawOperand;
    }
  | {
      readonly t: "between";
      readonly operand: RawOperand;
      readonly low: RawOperand;
      readonly high: RawOperand;
    }
  | { readonly t: "in"; readonly operand: RawOperand; readonly list: readonly RawOperand[] }
  | { readonly t: "and" | "or"; readonly left: RawBoolean; readonly right: RawBoolean }
  | { readonly t: "not"; readonly condition: RawBoolean };
/** A condition as written; a function call may be one (`attribute_exists(a)`) or an operand (`size(a)`). */
export type RawBoolean = RawCondition | RawCall;
/** Parentheses hold either a condition or an operand, so the parser builds either until it knows. */
export type RawNode = RawOperand | RawCondition;

export type Clause = "SET" | "REMOVE" | "ADD" | "DELETE";
export type RawAction =
  | { readonly t: "SET"; readonly path: RawPath; readonly value: RawOperand | RawArithmetic }
  | { readonly t: "REMOVE"; readonly path: RawPath }
  | { readonly t: "ADD" | "DELETE"; readonly path: RawPath; readonly value: RawValue };

export const CONDITION_KEYWORDS: ReadonlySet<string> = new Set([
  "AND",
  "OR",
  "NOT",
  "BETWEEN",
  "IN",
]);
export const UPDATE_KEYWORDS: ReadonlySet<string> = new Set(["SET", "REMOVE", "ADD", "DELETE"]);
const COMPARATORS: ReadonlySet<string> = new Set(["=", "<>", "<", "<=", ">", ">="]);

/** A recursive-descent parser over one expression's tokens; `fail` is DynamoDB's syntax error. */
export class Parser {
  private position = 0;
  /** Each parenthesized group: the token index of its "(" mapped to that of its ")". */
  readonly groups = new Map<number, number>();
  /** Operators and functions, which DynamoDB counts against its limit. */
  operators = 0;
  /** Parentheses and function calls the parser is inside. */
  private depth = 0;

  constructor(
    private readonly text: string,
    private readonly kind: ExpressionKind,
    private readonly keywords: ReadonlySet<string>,
    private readonly tokens: readonly Token[] = lex(text),
  ) {}

  // Condition grammar. Comparisons, BETWEEN and IN bind tightest, then NOT, AND, OR.

  condition(): RawBoolean {
    const node = this.requireCondition(this.or());
    this.expectEnd();
    return node;
  }

  private or(): RawNode {
    let left = this.and();
    while (this.atKeyword("OR")) {
      const first = this.requireCondition(left);
      const second = this.requireCondition(this.operatorThen(() => this.and()));
      left = { t: "or", left: first, right: second };
    }
    return left;
  }

  private and(): RawNode {
    let left = this.not();
    while (this.atKeyword("AND")) {
      const first = this.requireCondition(left);
      const second = this.requireCondition(this.operatorThen(() => this.not()));
      left = { t: "and", left: first, right: second };
    }
    return left;
  }

  private not(): RawNode {
    let negations = 0;
    for (; this.atKeyword("NOT"); this.position++) negations++;
    const node = this.comparison();
    if (negations === 0) return node;
    let negated = this.requireCondition(node);
    this.operators += negations;
    for (; negations > 0; negations--) negated = { t: "not", condition: negated };
    return negated;
  }

  private comparison(): RawNode {
    const left = this.operandOrGroup();
    const token = this.peek();
    if (token.type === "symbol" && COMPARATORS.has(token.text)) {
      const operand = this.requireOperand(left);
      const right = this.operatorThen(() => this.operand());
      return { t: "compare", op: token.text as Comparator, left: operand, right };
    }
    if (this.atKeyword("BETWEEN")) {
      const operand = this.requireOperand(left);
      const low = this.operatorThen(() => this.operand());
      if (!this.atKeyword("AND")) this.fail();
      this.position++;
      return { t: "between", operand, low, high: this.operand() };
    }
    if (this.atKeyword("IN")) {
      const operand = this.requireOperand(left);
      this.operatorThen(() => this.expect("("));
      const list = this.list(() => this.operand());
      this.expect(")");
      return { t: "in", operand, list };
    }
    return left;
  }

  private operand(): RawOperand {
    return this.requireOperand(this.operandOrGroup());
  }

  private operandOrGroup(): RawNode {
    const token = this.peek();
    if (this.at("(")) {
      const open = this.position++;
      const inner = this.nested(() => this.or());
      this.expect(")");
      this.groups.set(open, this.position - 1);
      // A parenthesized path goes on: "(a.b).c" is a.b.c.
      return inner.t === "path" ? this.pathRest([...inner.parts]) : inner;
    }
    if (token.type === "valueRef") {
      this.position++;
      return { t: "value", reference: token.text };
    }
    if (token.type === "name" && !this.isKeyword(token) && this.at("(", 1)) {
      return this.call(() => this.operand());
    }
    return this.path();
  }

  private requireCondition(node: RawNode): RawBoolean {
    if (node.t === "path" || node.t === "value") this.fail();
    return node;
  }

  private requireOperand(node: RawNode): RawOperand {
    if (node.t !== "path" && node.t !== "value" && node.t !== "call") this.fail();
    return node;
  }

  // Update grammar: clauses of comma-separated actions.

  update(): { clauses: Clause[]; actions: RawAction[] } {
    const clauses: Clause[] = [];
    const actions: RawAction[] = [];
    do {
      const token = this.peek();
      if (!this.isKeyword(token)) this.fail();
      this.position++;
      const clause = token.text.toUpperCase() as Clause;
      clauses.push(clause);
      actions.push(...this.list(() => this.action(clause)));
    } while (this.peek().type !== "eof");
    return { clauses, actions };
  }

  private action(clause: Clause): RawAction {
    const path = this.path();
    switch (clause) {
      case "SET":
        this.expect("=");
        return { t: clause, path, value: this.setValue() };
      case "REMOVE":
        return { t: clause, path };
      default: {
        const token = this.peek();
        if (token.type !== "valueRef") this.fail();
        this.position++;
        return { t: clause, path, value: { t: "value", reference: token.text } };
      }
    }
  }

  /** `operand`, `operand + operand` or `operand - operand`, each part and the whole in at most one pair of parentheses. */
  private setValue(): RawOperand | RawArithmetic {
    if (!this.at("(")) return this.sum();
    this.position++;
    const inner = this.sum();
    this.expect(")");
    return inner.t === "path" || inner.t === "value" || inner.t === "call"
      ? this.sumRest(inner)
      : inner;
  }

  private sum(): RawOperand | RawArithmetic {
    return this.sumRest(this.updateOperand());
  }

  private sumRest(left: RawOperand): RawOperand | RawArithmetic {
    const token = this.peek();
    if (!this.at("+") && !this.at("-")) return left;
    const right = this.operatorThen(() => this.updateOperand());
    return { t: token.text as "+" | "-", left, right };
  }

  private updateOperand(): RawOperand {
    if (!this.at("(")) return this.plainUpdateOperand();
    this.position++;
    const operand = this.plainUpdateOperand();
    this.expect(")");
    return operand;
  }

  private plainUpdateOperand(): RawOperand {
    const token = this.peek();
    if (token.type === "valueRef") {
      this.position++;
      return { t: "value", reference: token.text };
    }
    if (token.type === "name" && !this.isKeyword(token) && this.at("(", 1)) {
      return this.call(() => this.updateOperand());
    }
    return this.path();
  }

  // Projection grammar.

  projection(): RawPath[] {
    const paths = this.list(() => this.path());
    this.expectEnd();
    return paths;
  }

  // Shared pieces.

  private call(argument: () => RawOperand): RawCall {
    const name = this.peek().text;
    this.operatorThen(() => this.expect("("));
    const args = this.nested(() => this.list(argument));
    this.expect(")");
    return { t: "call", name, args };
  }

  private path(): RawPath {
    return this.pathRest([this.pathName()]);
  }

  private pathRest(parts: RawPart[]): RawPath {
    for (;;) {
      if (this.at(".")) {
        this.position++;
        parts.push(this.pathName());
      } else if (this.at("[")) {
        this.position++;
        const index = this.peek();
        if (index.type !== "integer") this.fail();
        this.position++;
        this.expect("]");
        if (Number(index.text) > MAX_LIST_INDEX) {
          throw invalidExpression(
            this.kind,
            `List index is not within the allowable range; index: [${index.text}]`,
          );
        }
        parts.push(Number(index.text));
      } else break;
    }
    if (parts.length > MAX_PATH_DEPTH) {
      throw invalidExpression(
        this.kind,
        `The document path has too many nesting levels; nesting levels: ${parts.length}`,
      );
    }
    return { t: "path", parts };
  }

  private pathName(): RawPart {
    const token = this.peek();
    const bare = token.type === "name" && !this.isKeyword(token);
    if (!bare && token.type !== "nameRef") this.fail();
    this.position++;
    return { name: token.text, reference: !bare };
  }

  private list<T>(item: () => T): T[] {
    const items = [item()];
    while (this.at(",")) {
      this.position++;
      items.push(item());
    }
    return items;
  }

  /**
   * Parses what is inside parentheses. Deeper than any valid expression can go (each level
   * adds an operator, a redundant pair of parentheses or a path level), the parser stops
   * before the recursion exhausts the stack.
   */
  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_NESTING) {
      throw invalidExpression(
        this.kind,
        `The expression has too many nesting levels; nesting levels: ${this.depth}`,
      );
    }
    const result = parse();
    this.depth--;
    return result;
  }

  /** Consumes an operator's token, counts it, and parses what follows it. */
  private operatorThen<T>(then: () => T): T {
    this.position++;
    this.operators++;
    return then();
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.position + offset, this.tokens.length - 1)]!;
  }

  private at(symbol: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token.type === "symbol" && token.text === symbol;
  }

  private isKeyword(token: Token): boolean {
    return token.type === "name" && this.keywords.has(token.text.toUpperCase());
  }

  private atKeyword(word: string): boolean {
    const token = this.peek();
    return token.type === "name" && token.text.toUpperCase() === word;
  }

  private expect(symbol: string): void {
    if (!this.at(symbol)) this.fail();
    this.position++;
  }

  private expectEnd(): void {
    if (this.peek().type !== "eof") this.fail();
  }

  /** DynamoDB's syntax error at the current token, quoting it with its neighbours. */
  private fail(): never {
    const at = Math.min(this.position, this.tokens.length - 1);
    const token = this.tokens[at]!;
    const from = this.tokens[at - 1]?.start ?? token.start;
    const to = this.tokens[Math.min(at + 1, this.tokens.length - 1)]!.end;
    throw invalidExpression(
      this.kind,
      `Syntax error; token: "${token.text}", near: "${this.text.slice(from, to)}"`,
    );
  }
}
